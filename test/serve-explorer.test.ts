import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { seedDatedStack, seedSynthetic, testConfig, type SyntheticWorld } from './serve-fixtures.ts';
import { browserWorld, chromiumMissing, flatPng } from './browser-fixtures.ts';

const TOKEN = 'explorer-test-token';

type Doc = { document: { querySelectorAll(s: string): Iterable<{ complete: boolean; naturalWidth: number; src: string }>; body: { dataset: Record<string, string> } } };

describe('the explorer in headless Chromium: imagery, date picker, click, marks, re-rank, export and label set', { skip: chromiumMissing() }, () => {
  let world: SyntheticWorld;
  const mapTileRequests: number[] = [];
  const ui = browserWorld('tilevec-explorer-', async (store) => {
    world = await seedSynthetic(store, { rasters: 2, side: 5 });
    return {
      config: testConfig({ token: TOKEN }),
      renderThumbnail: async (t) => flatPng(32, [(t.id * 67) % 256, (t.id * 131) % 256, 90]),
      renderMapTile: async (rasterId) => {
        mapTileRequests.push(rasterId);
        return flatPng(256, rasterId === world.rasterIds[0] ? [30, 120, 60] : [150, 90, 30]);
      },
    };
  });

  test('one loop of the explorer', async () => {
    const page = await ui.browser.newPage({ viewport: { width: 1280, height: 900 } });
    const failed: string[] = [];
    // Leaflet cancels the tile loads a zoom makes stale; those aborts are not failures.
    page.on('requestfailed', (r) => { if (r.failure()?.errorText !== 'net::ERR_ABORTED') failed.push(r.url()); });
    page.on('pageerror', (e) => failed.push(String(e)));
    await page.goto(ui.server.url);
    await page.waitForSelector('body[data-ready=true]', { timeout: 20_000 });

    // The imagery layer: the first raster's XYZ tiles under the footprints, and the date picker lists both rasters.
    await page.waitForSelector('img.leaflet-tile-loaded', { timeout: 10_000 });
    assert.ok(mapTileRequests.length > 0 && mapTileRequests.every((id) => id === world.rasterIds[0]), 'imagery comes from the chosen raster');
    assert.deepEqual(await page.$$eval('#raster option', (o) => o.map((x) => Number((x as unknown as { value: string }).value))), world.rasterIds);
    await page.screenshot({ path: join(ui.shots.path, '1-imagery.png') });

    // A click: the large query thumbnail, then 8 results with date, distance and rank at 128 px.
    const ids = [...world.vectors.keys()].sort((a, b) => a - b);
    await page.click(`path.tile-${ids[12]}`);
    await page.waitForSelector('#results li.result');
    await page.waitForFunction(() => [...(globalThis as unknown as Doc).document.querySelectorAll('#results img, .query-thumb')].every((img) => img.complete && img.naturalWidth > 0));
    const sizes = await page.$$eval('#results img', (imgs) => imgs.map((i) => (i as unknown as { width: number }).width));
    assert.ok(sizes.length === 8 && sizes.every((w) => w === 128), `thumbnails at 128 px: ${sizes}`);
    assert.equal(await page.locator('.query-thumb').count(), 1);
    const first = await page.textContent('#results li.result >> nth=0') ?? '';
    assert.match(first, /#1 · undated · d = \d/);
    await page.screenshot({ path: join(ui.shots.path, '2-click.png') });

    // The similarity layer: every tile in view filled by its distance to the query, the query itself brightest.
    await page.check('#similarity-layer');
    await page.waitForFunction((n) => [...(globalThis as unknown as Doc).document.querySelectorAll('path.similarity')].length === n, world.vectors.size);
    const fills = await page.$$eval('path.similarity', (paths) => paths.map((p) => [p.getAttribute('class'), p.getAttribute('fill')]));
    const fillOf = (id: number) => fills.find(([c]) => c!.split(' ').includes(`tile-${id}`))?.[1];
    assert.equal(fillOf(ids[12]), 'rgb(253,231,37)', 'the query tile is nearest');
    assert.ok(new Set(fills.map(([, f]) => f)).size > 5, 'distances spread over the ramp');
    assert.match(await page.textContent('#similarity-range') ?? '', /^0\.000 – \d/);
    await page.screenshot({ path: join(ui.shots.path, '2b-similarity.png') });
    await page.uncheck('#similarity-layer');
    await page.waitForFunction(() => [...(globalThis as unknown as Doc).document.querySelectorAll('path.similarity')].length === 0);

    // A marking round: ✓ the first result, ✗ the second, re-rank: the list is what the API answers for those marks.
    const listed = await page.$$eval('#results li.result', (items) => items.map((li) => Number(li.getAttribute('data-id'))));
    await page.click('#results li.result >> nth=0 >> .mark-positive');
    await page.click('#results li.result >> nth=1 >> .mark-negative');
    await page.click('#rerank');
    await page.waitForFunction(() => (globalThis as unknown as Doc).document.body.dataset.method === 'rocchio');
    const reranked = await page.$$eval('#results li.result', (items) => items.map((li) => Number(li.getAttribute('data-id'))));
    const expected = await (await fetch(`${ui.server.url}/v1/search`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ positives: [ids[12], listed[0]], negatives: [listed[1]], k: 8 }),
    })).json() as { features: { id: number }[] };
    assert.deepEqual(reranked, expected.features.map((f) => f.id));
    assert.match(await page.textContent('#results-title') ?? '', /rocchio/);
    await page.screenshot({ path: join(ui.shots.path, '3-reranked.png') });

    // What was found leaves as a GeoJSON download of the listed tiles, in rank order.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-geojson')]);
    assert.equal(download.suggestedFilename(), 'found-tiles.geojson');
    const exported = JSON.parse(await readFile((await download.path())!, 'utf8')) as { features: { id: number }[] };
    assert.deepEqual(exported.features.map((f) => f.id), reranked);

    // The marks (the query tile counts as a ✓) become a label set: refused without the token, saved with it.
    await page.fill('#labelset-name', 'explorer-marks');
    await page.click('#labelset-save');
    await page.waitForSelector('#status.error');
    assert.match(await page.textContent('#status') ?? '', /Bearer/);
    await page.fill('#labelset-token', TOKEN);
    await page.click('#labelset-save');
    await page.waitForFunction(() => /saved label set/.test((globalThis as unknown as { document: { getElementById(id: string): { textContent: string } } }).document.getElementById('status').textContent));
    const set = await ui.store.labelSet('explorer-marks');
    const labels = await ui.store.labelsOf(set.id);
    assert.deepEqual(labels.map((l) => [l.tileId, l.classId]).sort((a, b) => a[0] - b[0]), [[ids[12], 1], [listed[0], 1], [listed[1], 0]].sort((a, b) => a[0] - b[0]));

    // Zoomed far out, a tile is a few pixels across: the footprints give way to the imagery, and come back zoomed in.
    // The page's Leaflet map is a top-level const of its script, so it is reached by name, not through window.
    const zoom = await page.evaluate('map.getZoom()') as number;
    await page.evaluate(`map.setZoom(${zoom - 6})`);
    await page.waitForFunction(() => (globalThis as unknown as Doc).document.body.dataset.footprints === 'hidden');
    assert.equal(await page.locator('path.tile').count(), 0);
    await page.evaluate(`map.setZoom(${zoom})`);
    await page.waitForFunction(() => (globalThis as unknown as Doc).document.body.dataset.footprints === 'shown');
    assert.ok(await page.locator('path.tile').count() > 0);

    // The date picker switches the imagery to the other raster.
    const before = mapTileRequests.length;
    await page.selectOption('#raster', String(world.rasterIds[1]));
    await page.waitForFunction(() => [...(globalThis as unknown as Doc).document.querySelectorAll('img.leaflet-tile')].some((i) => i.src.includes('/v1/rasters/')));
    await page.waitForTimeout(300);
    assert.ok(mapTileRequests.slice(before).some((id) => id === world.rasterIds[1]), 'the other date\'s tiles are asked for');
    await page.screenshot({ path: join(ui.shots.path, '4-other-date.png') });
    process.stderr.write(`screenshots in ${ui.shots.path}\n`);
    assert.deepEqual(failed, []);
    await page.close();
  });
});

describe('the explorer\'s change view in headless Chromium: two dates, the windows that changed most, their timeline strip', { skip: chromiumMissing() }, () => {
  const changed = new Set(['32,0', '96,64', '160,160']);
  let ids: Awaited<ReturnType<typeof seedDatedStack>>['ids'];
  const ui = browserWorld('tilevec-change-view-', async (store) => {
    ({ ids } = await seedDatedStack(store, changed));
    return { renderThumbnail: async (t) => flatPng(32, [(t.id * 67) % 256, 80, 90]) };
  });

  test('2010 to 2012: the three changed windows first, and a click shows the window on every date with its jump', async () => {
    const page = await ui.browser.newPage({ viewport: { width: 1280, height: 900 } });
    const failed: string[] = [];
    page.on('pageerror', (e) => failed.push(String(e)));
    await page.goto(ui.server.url);
    await page.waitForSelector('body[data-ready=true]', { timeout: 20_000 });
    // The pickers list every raster oldest first, from the first date to the last.
    const dates = await page.$$eval('#change-from option', (o) => o.map((x) => x.textContent));
    assert.deepEqual(dates.map((d) => d!.slice(0, 10)), ['2010-06-29', '2011-01-01', '2012-07-31', '2014-07-20']);
    assert.equal(await page.inputValue('#change-from'), String(ids.y2010));
    assert.equal(await page.inputValue('#change-to'), String(ids.y2014));

    await page.selectOption('#change-to', String(ids.y2012));
    await page.click('#change-run');
    await page.waitForFunction(() => (globalThis as unknown as Doc).document.body.dataset.view === 'change');
    const windows = await page.$$eval('#results li.result', (items) => items.map((li) => Number(li.getAttribute('data-id'))));
    const tiles = new Map((await ui.store.tilesOfRaster(ids.y2012)).map((t) => [t.id, `${t.x},${t.y}`]));
    assert.deepEqual(new Set(windows.slice(0, 3).map((id) => tiles.get(id))), changed);
    assert.match(await page.textContent('#results-title') ?? '', /Changed most, 2010-06-29 → 2012-07-31/);

    // The timeline strip of the window clicked: three dates in order, the jump shown at 2012, and this date marked.
    await page.click('#results li.result >> nth=1');
    await page.waitForFunction((id) => (globalThis as unknown as { document: { querySelector(s: string): { getAttribute(a: string): string } | null } }).document.querySelector('#timeline-strip li.current')?.getAttribute('data-id') === String(id), windows[1]);
    assert.equal(await page.isVisible('#timeline'), true);
    const strip = await page.$$eval('#timeline-strip li', (items) => items.map((li) => li.textContent));
    assert.equal(strip.length, 3);
    assert.deepEqual(strip.map((t) => t!.slice(0, 10)), ['2010-06-29', '2012-07-31', '2014-07-20']);
    const jump = Number(/Δ ([\d.]+)/.exec(strip[1]!)![1]);
    const after = Number(/Δ ([\d.]+)/.exec(strip[2]!)![1]);
    assert.ok(jump > 4 && after < 0.1, `Δ 2012 ${jump}, Δ 2014 ${after}`);
    await page.waitForTimeout(500); // the footprints reload after the map moves to the window
    await page.screenshot({ path: join(ui.shots.path, 'change-view.png') });
    process.stderr.write(`screenshot in ${ui.shots.path}\n`);
    assert.deepEqual(failed, []);
    await page.close();
  });
});
