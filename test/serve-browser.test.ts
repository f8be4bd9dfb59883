import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { bruteForce, seedSynthetic, type SyntheticWorld } from './serve-fixtures.ts';
import { browserWorld, chromiumMissing, flatPng } from './browser-fixtures.ts';

describe('web map in headless Chromium', { skip: chromiumMissing() }, () => {
  let world: SyntheticWorld;
  // A swatch per tile, 16 px, so thumbnails show in the screenshot without a real renderer.
  const ui = browserWorld('tilevec-ui-', async (store) => {
    world = await seedSynthetic(store, { rasters: 2, side: 5 });
    return { renderThumbnail: async (tile) => flatPng(16, [(tile.id * 67) % 256, (tile.id * 131) % 256, (tile.id * 29) % 256]) };
  });

  test('clicking a tile lists its most similar tiles with thumbnails and highlights them', async () => {
    const page = await ui.browser.newPage({ viewport: { width: 1200, height: 800 } });
    const failed: string[] = [];
    page.on('requestfailed', (r) => failed.push(r.url()));
    page.on('pageerror', (e) => failed.push(String(e)));
    await page.goto(ui.server.url);
    await page.waitForSelector('body[data-ready=true]', { timeout: 20_000 });

    const ids = [...world.vectors.keys()].sort((a, b) => a - b);
    const query = ids[12];
    await page.fill('#k', '5');
    await page.click(`path.tile-${query}`);
    await page.waitForSelector('#results li.result', { timeout: 10_000 });

    const listed = await page.$$eval('#results li.result', (items) => items.map((li) => Number(li.getAttribute('data-id'))));
    const expected = bruteForce(world, world.vectors.get(query)!, 5, (t) => t !== query).map((e) => e.id);
    assert.deepEqual(listed, expected);
    // Every result has its footprint highlighted on the map, and its thumbnail loaded.
    for (const id of listed) assert.equal(await page.locator(`path.result-${id}`).count(), 1, `footprint of ${id} highlighted`);
    // A string, because this runs in the page and the project compiles without DOM types.
    // Predicates as functions, not strings: the page's Content-Security-Policy forbids eval. (No DOM types here.)
    await page.waitForFunction(() => {
      const { document } = globalThis as unknown as { document: { querySelectorAll(s: string): Iterable<{ complete: boolean; naturalWidth: number }> } };
      return [...document.querySelectorAll('#results img')].every((img) => img.complete && img.naturalWidth === 16);
    });
    assert.match(await page.textContent('#status') ?? '', /5 results/);

    const shot = join(ui.shots.path, 'similar.png');
    await page.screenshot({ path: shot });
    process.stderr.write(`screenshot: ${shot}\n`);
    const image = PNG.sync.read(await page.screenshot());
    assert.equal(image.width, 1200);
    assert.deepEqual(failed, []);

    // The analogy panel: pick a, b and c on the map, then run.
    for (const [slot, id] of [['a', ids[0]], ['b', ids[1]], ['c', ids[30]]] as const) {
      await page.click(`[data-pick=${slot}]`);
      await page.click(`path.tile-${id}`);
      assert.equal(await page.inputValue(`#analogy-${slot}`), String(id));
    }
    await page.click('#analogy-run');
    await page.waitForFunction(() => {
      const { document } = globalThis as unknown as { document: { querySelector(s: string): { textContent: string | null } | null } };
      return document.querySelector('#results-title')?.textContent?.includes('−');
    });
    const analogy = await page.$$eval('#results li.result', (items) => items.map((li) => Number(li.getAttribute('data-id'))));
    assert.equal(analogy.length, 5);
    for (const id of [ids[0], ids[1], ids[30]]) assert.ok(!analogy.includes(id));
    await page.screenshot({ path: join(ui.shots.path, 'analogy.png') });
    await page.close();
  });

  test('the docs page renders every operation of /openapi.json', async () => {
    const page = await ui.browser.newPage();
    await page.goto(`${ui.server.url}/docs`);
    const doc = await (await fetch(`${ui.server.url}/openapi.json`)).json() as { paths: Record<string, object> };
    const operations = Object.values(doc.paths).reduce((n, ops) => n + Object.keys(ops).length, 0);
    await page.waitForSelector('.op');
    assert.equal(await page.locator('.op').count(), operations);
    assert.match(await page.textContent('body') ?? '', /\/v1\/tiles\/\{id\}\/similar/);
    await page.close();
  });
});
