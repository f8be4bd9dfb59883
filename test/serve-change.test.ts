import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Store } from '../src/store/index.ts';
import { startServer, type RunningServer } from '../src/serve/index.ts';
import { onBothEngines } from './helpers.ts';
import { l2, seedDatedStack, testConfig } from './serve-fixtures.ts';

function suite(engine: string, open: () => Promise<{ db: string; cleanup: () => Promise<void> | void }>) {
  describe(`timeline and change over co-registered dates (${engine})`, () => {
    let cleanup: () => Promise<void> | void = () => {};
    let store: Store;
    let server: RunningServer;
    const ids: Record<string, number> = {};
    const vectors = new Map<number, Float32Array>();
    /** Windows (x,y) whose content changes between 2010 and 2012. */
    const changed = new Set(['32,0', '96,64', '160,160']);

    const get = async (path: string) => {
      const res = await fetch(`${server.url}${path}`);
      return { status: res.status, body: await res.json() as { features: { id: number; properties: Record<string, unknown> }[]; detail?: string; dates?: number } };
    };

    before(async () => {
      const where = await open();
      cleanup = where.cleanup;
      store = await Store.open(where.db);
      const seeded = await seedDatedStack(store, changed);
      Object.assign(ids, seeded.ids);
      for (const [id, v] of seeded.vectors) vectors.set(id, v);
      server = await startServer({ store, config: testConfig() });
    });
    after(async () => {
      await server?.close();
      await store?.close();
      await cleanup();
    });

    test('GET /v1/change ranks exactly the windows that changed first, with their L2 distances', async () => {
      const { status, body } = await get(`/v1/change?from=${ids.y2010}&to=${ids.y2012}&k=5`);
      assert.equal(status, 200);
      const top = body.features.slice(0, 3);
      assert.deepEqual(new Set(top.map((f) => `${f.properties.x},${f.properties.y}`)), changed);
      for (const f of body.features) {
        assert.equal(f.properties.rasterId, ids.y2012);
        assert.ok(Math.abs((f.properties.distance as number) - l2(vectors.get(f.id)!, vectors.get(f.properties.fromTileId as number)!)) < 1e-4);
      }
      assert.ok((body.features[3].properties.distance as number) < 0.1, 'unchanged windows barely move');
      const inBbox = await get(`/v1/change?from=${ids.y2010}&to=${ids.y2012}&k=5&bbox=-110,37,-109.985,37.01`);
      assert.deepEqual(inBbox.body.features.map((f) => `${f.properties.x},${f.properties.y}`)[0], '32,0', 'the bbox keeps the one changed window in it first');
    });

    test('GET /v1/change: not co-registered 422, the same raster 400, unknown raster 404, unknown parameter 400', async () => {
      const notStack = await get(`/v1/change?from=${ids.y2010}&to=${ids.elsewhere}`);
      assert.equal(notStack.status, 422);
      assert.match(notStack.body.detail!, /not co-registered/);
      assert.equal((await get(`/v1/change?from=${ids.y2010}&to=${ids.y2010}`)).status, 400);
      assert.equal((await get(`/v1/change?from=${ids.y2010}&to=999999`)).status, 404);
      assert.equal((await get(`/v1/change?from=${ids.y2010}&to=${ids.y2012}&since=2010`)).status, 400);
    });

    test('GET /v1/tiles/{id}/timeline: the window on every date in date order, distances to the query and the previous date', async () => {
      const tile = (await store.tilesOfRaster(ids.y2012)).find((t) => `${t.x},${t.y}` === '96,64')!;
      const { status, body } = await get(`/v1/tiles/${tile.id}/timeline`);
      assert.equal(status, 200);
      assert.deepEqual(body.features.map((f) => f.properties.date), ['2010-06-29', '2012-07-31', '2014-07-20']);
      assert.ok(body.features.every((f) => f.properties.x === 96 && f.properties.y === 64));
      const [a, b, c] = body.features;
      assert.equal(b.id, tile.id);
      assert.equal(b.properties.distanceToQuery, 0);
      assert.equal(a.properties.distanceToPrevious, null);
      assert.ok(Math.abs((b.properties.distanceToPrevious as number) - l2(vectors.get(b.id)!, vectors.get(a.id)!)) < 1e-4);
      assert.ok((b.properties.distanceToPrevious as number) > 4, 'the 2012 jump shows');
      assert.ok((c.properties.distanceToPrevious as number) < 0.1);
      const lone = (await store.tilesOfRaster(ids.elsewhere))[0];
      assert.equal((await get(`/v1/tiles/${lone.id}/timeline`)).body.features.length, 1, 'a raster with no other dates has a timeline of one');
      assert.equal((await get('/v1/tiles/999999/timeline')).status, 404);
    });
  });
}

onBothEngines(suite);
