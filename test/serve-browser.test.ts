import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { chromium, type Browser } from 'playwright-core';
import { Store } from '../src/store/index.ts';
import { startServer, type RunningServer } from '../src/serve/index.ts';
import { bruteForce, seedSynthetic, testConfig, type SyntheticWorld } from './serve-fixtures.ts';
import { required, tempDir } from './helpers.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** A flat-coloured PNG per tile, so thumbnails show in the screenshot without a real renderer. */
function swatch(tileId: number): Buffer {
  const png = new PNG({ width: 16, height: 16 });
  const [r, g, b] = [(tileId * 67) % 256, (tileId * 131) % 256, (tileId * 29) % 256];
  for (let i = 0; i < png.data.length; i += 4) png.data.set([r, g, b, 255], i);
  return PNG.sync.write(png);
}

describe('web map in headless Chromium', { skip: required(existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install -y chromium)`) }, () => {
  let store: Store;
  let world: SyntheticWorld;
  let server: RunningServer;
  let browser: Browser;
  const shots = tempDir('tilevec-ui-');

  before(async () => {
    store = await Store.open('memory://');
    world = await seedSynthetic(store, { rasters: 2, side: 5 });
    server = await startServer({ store, config: testConfig(), renderThumbnail: async (tile) => swatch(tile.id) });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    await store?.close();
    if (!process.env.TILEVEC_KEEP_SCREENSHOTS) shots.cleanup();
  });

  test('clicking a tile lists its most similar tiles with thumbnails and highlights them', async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    const failed: string[] = [];
    page.on('requestfailed', (r) => failed.push(r.url()));
    page.on('pageerror', (e) => failed.push(String(e)));
    await page.goto(server.url);
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

    const shot = join(shots.path, 'similar.png');
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
    await page.screenshot({ path: join(shots.path, 'analogy.png') });
    await page.close();
  });

  test('the docs page renders every operation of /openapi.json', async () => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/docs`);
    const doc = await (await fetch(`${server.url}/openapi.json`)).json() as { paths: Record<string, object> };
    const operations = Object.values(doc.paths).reduce((n, ops) => n + Object.keys(ops).length, 0);
    await page.waitForSelector('.op');
    assert.equal(await page.locator('.op').count(), operations);
    assert.match(await page.textContent('body') ?? '', /\/v1\/tiles\/\{id\}\/similar/);
    await page.close();
  });
});
