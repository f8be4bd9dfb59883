import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { trainClassifier } from '../src/classify/index.ts';
import { Store } from '../src/store/index.ts';
import { startServer, type RunningServer } from '../src/serve/index.ts';
import { onBothEngines, tempDir } from './helpers.ts';
import { seedSynthetic, testConfig, type SyntheticWorld } from './serve-fixtures.ts';

const TOKEN = 'found-tiles-token';

function suite(engine: string, open: () => Promise<{ db: string; cleanup: () => Promise<void> | void }>) {
  describe(`found tiles: export and label sets (${engine})`, () => {
    let cleanup: () => Promise<void> | void = () => {};
    let store: Store;
    let server: RunningServer;
    let world: SyntheticWorld;
    let ids: number[];

    const post = (path: string, body: unknown, token?: string) => fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });

    before(async () => {
      const where = await open();
      cleanup = where.cleanup;
      store = await Store.open(where.db);
      world = await seedSynthetic(store, { rasters: 2, side: 8, dim: 8, withoutEmbedding: 2 });
      ids = [...world.vectors.keys()].sort((a, b) => a - b);
      server = await startServer({ store, config: testConfig({ token: TOKEN }) });
    });
    after(async () => {
      await server?.close();
      await store?.close();
      await cleanup();
    });

    test('GeoJSON: the tiles in the order asked, each the feature /v1/tiles/{id} returns', async () => {
      const asked = [ids[7], ids[2], ids[40]];
      const res = await post('/v1/tiles/export', { tileIds: asked });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type')!, /application\/geo\+json/);
      const body = await res.json() as { type: string; features: { id: number }[] };
      assert.equal(body.type, 'FeatureCollection');
      assert.deepEqual(body.features.map((f) => f.id), asked);
      for (const feature of body.features) {
        const one = await (await fetch(`${server.url}/v1/tiles/${feature.id}`)).json();
        assert.deepEqual(feature, one);
      }
    });

    test('GeoParquet: one row per tile with its footprint, raster and stored embedding', async () => {
      const asked = [ids[3], ids[0], ids[20]];
      const res = await post('/v1/tiles/export', { tileIds: asked, format: 'geoparquet' });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/vnd.apache.parquet');
      assert.match(res.headers.get('content-disposition')!, /found-tiles\.parquet/);
      const file = await res.arrayBuffer();
      const geo = JSON.parse(parquetMetadata(file).key_value_metadata!.find((kv) => kv.key === 'geo')!.value!);
      assert.equal(geo.primary_column, 'geometry');
      const rows = await parquetReadObjects({ file }) as Record<string, unknown>[];
      assert.deepEqual(rows.map((r) => Number(r.tile_id)), asked);
      for (const row of rows) {
        const tile = await store.tile(Number(row.tile_id));
        assert.equal(row.raster_id, tile.rasterId);
        // hyparquet decodes the WKB geometry column to GeoJSON itself, so this also checks the GeoParquet metadata.
        assert.deepEqual(row.geometry, tile.footprint);
        const stored = world.vectors.get(tile.id)!;
        stored.forEach((v, d) => assert.ok(Math.abs((row[`emb_${String(d).padStart(3, '0')}`] as number) - v) < 1e-6));
      }
    });

    test('bad exports: unknown tiles 404, tiles without an embedding 404 for GeoParquet only, bad bodies 400', async () => {
      const unknown = await post('/v1/tiles/export', { tileIds: [ids[0], 987654] });
      assert.equal(unknown.status, 404);
      assert.match((await unknown.json() as { detail: string }).detail, /987654/);
      const unembedded = (await store.tilesOfRaster(world.rasterIds[1])).map((t) => t.id).filter((id) => !world.vectors.has(id));
      assert.equal(unembedded.length, 2);
      assert.equal((await post('/v1/tiles/export', { tileIds: unembedded })).status, 200);
      const parquet = await post('/v1/tiles/export', { tileIds: unembedded, format: 'geoparquet' });
      assert.equal(parquet.status, 404);
      assert.match((await parquet.json() as { detail: string }).detail, /no embedding/);
      for (const body of [{}, { tileIds: [] }, { tileIds: [1.5] }, { tileIds: [1], format: 'shapefile' }, { tileIds: [1], extra: true }]) {
        assert.equal((await post('/v1/tiles/export', body)).status, 400, JSON.stringify(body));
      }
    });

    test('a label set from marks: written behind the token, read by classify train, never half-written', async () => {
      const positives = ids.filter((_, i) => i % 3 === 0).slice(0, 20);
      const negatives = ids.filter((_, i) => i % 3 === 1).slice(0, 20);
      const body = { name: 'fields', positives, negatives, classes: ['field', 'other'] };
      assert.equal((await post('/v1/label-sets', body)).status, 401);
      assert.equal((await post('/v1/label-sets', body, 'wrong')).status, 401);

      const res = await post('/v1/label-sets', body, TOKEN);
      assert.equal(res.status, 201);
      const saved = await res.json() as { name: string; counts: Record<string, number>; train: string };
      assert.deepEqual(saved.counts, { field: 20, other: 20 });
      assert.match(saved.train, /tilevec classify train --labels "fields"/);
      const set = await store.labelSet('fields');
      assert.deepEqual(set.classes, [{ id: 1, name: 'field' }, { id: 0, name: 'other' }]);
      const labels = await store.labelsOf(set.id);
      assert.deepEqual(labels.filter((l) => l.classId === 1).map((l) => l.tileId), [...positives].sort((a, b) => a - b));
      assert.deepEqual(labels.filter((l) => l.classId === 0).map((l) => l.tileId), [...negatives].sort((a, b) => a - b));

      const dir = tempDir();
      try {
        const trained = await trainClassifier(store, { model: world.model.name, labels: 'fields', kind: 'logreg', folds: 5, split: 'random', blockTiles: 2, seed: 0, classifiersDir: dir.path });
        assert.equal(trained.tiles, 40);
        assert.deepEqual(trained.classes.map((c) => c.name), ['field', 'other']);
      } finally {
        dir.cleanup();
      }

      const again = await post('/v1/label-sets', body, TOKEN);
      assert.equal(again.status, 409);
      const replaced = await post('/v1/label-sets', { ...body, positives: positives.slice(0, 5), replace: true }, TOKEN);
      assert.equal(replaced.status, 201);
      assert.equal((await store.labelsOf((await store.labelSet('fields')).id)).length, 25);

      const before = (await store.listLabelSets()).length;
      const bad = [
        { name: 'x', positives: [ids[0], 987654] },
        { name: 'x', positives: [ids[0]], negatives: [ids[0]] },
        { name: 'x', positives: [ids[0]], classes: ['same', 'same'] },
        { name: '', positives: [ids[0]] },
        { name: 'x\u0001', positives: [ids[0]] },
        { name: 'x', positives: [] },
      ];
      for (const b of bad) {
        const r = await post('/v1/label-sets', b, TOKEN);
        assert.ok(r.status === 400 || r.status === 404, `${JSON.stringify(b)}: ${r.status}`);
      }
      assert.equal((await store.listLabelSets()).length, before, 'a refused request wrote a label set');
    });
  });
}

onBothEngines(suite);
