import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { Store, embeddingIndexName, loadMigrations, type BBox, type Engine, type NewTile, type Sql } from '../src/store/index.ts';
import { UserError } from '../src/errors.ts';
import { freshServerDb, lastJson, runCli, serverSkip, tempDir } from './helpers.ts';
import { problemFromError } from '../src/serve/problem.ts';

/** Columns, constraints and indexes of the public schema: what "the same schema" means. */
async function schemaFingerprint(engine: Engine): Promise<string> {
  const cols = await engine.query(`select table_name, column_name, data_type, is_nullable, column_default from information_schema.columns
    where table_schema = 'public' order by table_name, ordinal_position`);
  const idx = await engine.query(`select indexname, indexdef from pg_indexes where schemaname = 'public' order by indexname`);
  const cons = await engine.query(`select conname, pg_get_constraintdef(oid) as def from pg_constraint where connamespace = 'public'::regnamespace order by conname`);
  return JSON.stringify({ cols, idx, cons });
}

const square = (x0: number, y0: number, d: number) => ({
  type: 'Polygon' as const,
  coordinates: [[[x0, y0], [x0 + d, y0], [x0 + d, y0 + d], [x0, y0 + d], [x0, y0]]],
});

function gridTiles(n: number): NewTile[] {
  const tiles: NewTile[] = [];
  for (let i = 0; i < n; i++) {
    const lon = -110 + (i % 50) * 0.01;
    const lat = 37 + Math.floor(i / 50) * 0.01;
    tiles.push({ x: (i % 50) * 32, y: Math.floor(i / 50) * 32, size: 32, footprint: square(lon, lat, 0.01), centerLon: lon + 0.005,
      centerLat: lat + 0.005, bbox: [lon, lat, lon + 0.01, lat + 0.01], validFraction: 1 });
  }
  return tiles;
}

const rasterFor = (uri: string) => ({
  uri, contentHash: 'abc', sizeBytes: 1, width: 1600, height: 1600, bandCount: 4, dtype: 'uint16', nodata: 65535, epsg: 32612,
  crsDef: '+proj=utm +zone=12 +datum=WGS84 +units=m +no_defs', geotransform: [300000, 30, 0, 4200000, 0, -30], georeferenced: true,
  footprint: square(-110, 37, 0.5), bandStats: [{ band: 1, count: 10, min: 0, max: 1, mean: 0.5, std: 0.1, p2: 0.1, p98: 0.9 }],
  tileSize: 32, stride: 32,
});

/** Seeded, so a failure reproduces. */
function rng(seed: number) {
  return () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

function storeSuite(engineName: string, openDb: () => Promise<{ db: string; cleanup: () => Promise<void> | void }>) {
  describe(`store on ${engineName}`, () => {
    let db: string;
    let cleanup: () => Promise<void> | void;
    let store: Store;

    before(async () => {
      ({ db, cleanup } = await openDb());
      store = await Store.open(db, { migrate: false });
    });
    after(async () => {
      await store?.close();
      await cleanup?.();
    });

    test('migrations run twice give the same schema', async () => {
      const first = await store.migrate();
      assert.deepEqual(first.applied, loadMigrations().map((m) => m.name));
      const before = await schemaFingerprint(store.engine);
      const second = await store.migrate();
      assert.deepEqual(second.applied, []);
      assert.equal(await schemaFingerprint(store.engine), before);
      const status = await store.status();
      assert.equal(status.migrationLevel, Math.max(...loadMigrations().map((m) => m.version)));
      assert.match(status.pgvectorVersion, /^\d+\.\d+\.\d+$/);
    });

    test('a raster and its tiles land in one transaction, and a failure leaves nothing', async () => {
      const tiles = gridTiles(2500);
      const id = await store.replaceRaster(rasterFor('file:///a.tif'), tiles);
      const back = await store.tilesOfRaster(id);
      assert.equal(back.length, 2500);
      assert.deepEqual(back[7].footprint, tiles[7].footprint);
      assert.deepEqual(back[7].bbox, tiles[7].bbox);
      const raster = await store.raster(id);
      assert.deepEqual(raster.geotransform, [300000, 30, 0, 4200000, 0, -30]);
      assert.equal(raster.nodata, 65535);

      // The second chunk violates a check constraint, after the raster row and the first chunk went in.
      const bad = gridTiles(2500);
      bad[2100] = { ...bad[2100], validFraction: 2 };
      await assert.rejects(store.replaceRaster(rasterFor('file:///b.tif'), bad));
      assert.equal(await store.rasterByUri('file:///b.tif'), undefined);
      assert.equal((await store.status()).counts.tiles, 2500);
    });

    test('bbox and point queries use the footprints', async () => {
      const inBox = await store.tilesInBbox([-109.995, 37.001, -109.975, 37.009], { limit: 100 });
      assert.deepEqual(inBox.map((t) => [t.x, t.y]), [[0, 0], [32, 0], [64, 0]]);
      const page1 = await store.tilesInBbox(undefined, { limit: 1000 });
      const page2 = await store.tilesInBbox(undefined, { limit: 1000, afterId: page1.at(-1)!.id });
      assert.equal(page1.length + page2.length + (await store.tilesInBbox(undefined, { limit: 1000, afterId: page2.at(-1)!.id })).length, 2500);
      const at = await store.tilesAt(-109.9751, 37.0149);
      assert.deepEqual(at.map((t) => [t.x, t.y]), [[64, 32]]);
    });

    test('vectors round-trip, and HNSW k-NN finds the exact neighbour of a known vector', async () => {
      const raster = await store.rasterByUri('file:///a.tif');
      const tiles = await store.tilesOfRaster(raster!.id);
      const model = await store.registerModel({ name: 'test-model', backbone: { name: 'tiny' }, dim: 16, bands: [1, 2, 3, 4], tileSize: 32,
        normalization: { kind: 'zscore' }, metrics: {}, artifactPath: '/tmp/x' });
      const rand = rng(42);
      const vectors = tiles.map(() => Float32Array.from({ length: 16 }, () => rand() * 2 - 1));
      await store.upsertEmbeddings(model, tiles.map((t, i) => ({ tileId: t.id, vector: vectors[i] })));
      await store.ensureEmbeddingIndex(model);
      assert.deepEqual(await store.embedding(model.id, tiles[3].id), vectors[3]);

      // Upserting again replaces rather than duplicates.
      await store.upsertEmbeddings(model, [{ tileId: tiles[3].id, vector: vectors[3] }]);
      assert.equal((await store.status()).counts.embeddings, tiles.length);

      for (const probe of [5, 1234, 2499]) {
        const hits = await store.nearestTiles(model, { vector: vectors[probe] }, { k: 5 });
        assert.equal(hits[0].id, tiles[probe].id);
        assert.ok(hits[0].distance < 1e-6);
        // Brute force agrees on the order of the top 5.
        const exact = vectors.map((v, i) => ({ i, d: Math.hypot(...v.map((x, j) => x - vectors[probe][j])) })).sort((a, b) => a.d - b.d).slice(0, 5);
        assert.deepEqual(hits.map((h) => h.id), exact.map((e) => tiles[e.i].id));
      }
      const excluded = await store.nearestTiles(model, { vector: vectors[5] }, { k: 3, excludeTileIds: [tiles[5].id] });
      assert.ok(!excluded.some((h) => h.id === tiles[5].id));
      const byTile = await store.nearestTiles(model, { tileId: tiles[5].id }, { k: 3 });
      assert.ok(!byTile.some((h) => h.id === tiles[5].id), 'a tile query leaves the tile itself out');
      const boxed = await store.nearestTiles(model, { vector: vectors[5] }, { k: 500, bbox: [-110, 37, -109.5, 37.0099] });
      assert.equal(boxed.length, 50);
      assert.ok(boxed.every((h, i) => i === 0 || h.distance >= boxed[i - 1].distance));

      // Many tiles in one statement: each answer equals the one-tile query, with k above and below ef_search (40).
      const asked = [tiles[0].id, tiles[777].id, tiles[2499].id, 987654321];
      for (const k of [7, 45]) {
        const each = await store.nearestTilesOfEach(model, asked, k);
        assert.equal(each.length, asked.length);
        for (let i = 0; i < 3; i++) {
          const one = await store.nearestTiles(model, { tileId: asked[i] }, { k });
          assert.equal(each[i].length, k);
          assert.deepEqual(each[i].map((h) => h.id), one.map((h) => h.id));
          assert.deepEqual(each[i][0], one[0]);
        }
        assert.deepEqual(each[3], [], 'a tile without a vector finds nothing');
      }

      const indexes = await store.engine.query<{ indexname: string }>(`select indexname from pg_indexes where indexname like 'embeddings_hnsw_model_%'`);
      assert.deepEqual(indexes.map((r) => r.indexname), [`embeddings_hnsw_model_${model.id}`]);
      await store.removeModel('test-model');
      assert.equal((await store.status()).counts.embeddings, 0);
      assert.equal((await store.engine.query(`select 1 from pg_indexes where indexname like 'embeddings_hnsw_model_%'`)).length, 0);
    });

    test("a model added after another is searched through its own HNSW index, not a sort of every vector", async () => {
      const raster = await store.rasterByUri('file:///a.tif');
      const tiles = await store.tilesOfRaster(raster!.id);
      const rand = rng(7);
      const plans: string[] = [];
      for (const name of ['first-model', 'second-model']) {
        const model = await store.registerModel({ name, backbone: {}, dim: 8, bands: [1], tileSize: 32, normalization: {}, metrics: {}, artifactPath: '/x' });
        await store.upsertEmbeddings(model, tiles.map((t) => ({ tileId: t.id, vector: Float32Array.from({ length: 8 }, () => rand()) })));
        await store.ensureEmbeddingIndex(model);
        const rows = await store.engine.query<{ 'QUERY PLAN': string }>(
          `explain select tile_id from embeddings where model_id = ${model.id} order by embedding::vector(8) <-> '[0,0,0,0,0,0,0,0]' limit 10`,
        );
        plans.push(rows.map((r) => r['QUERY PLAN']).join('\n'));
        assert.match(plans.at(-1)!, new RegExp(`Index Scan using embeddings_hnsw_model_${model.id}\\b`), `${name}:\n${plans.at(-1)}`);
      }
      await store.removeModel('first-model');
      await store.removeModel('second-model');
    });

    test("migration 005 fills each raster's tile count and tile extent from its tiles, as the store writes them", async () => {
      const read = () => store.engine.query('select id, tile_count, tiles_min_lon, tiles_min_lat, tiles_max_lon, tiles_max_lat from rasters order by id');
      const written = await read();
      assert.ok(written.some((r) => r.tile_count === 2500 && r.tiles_min_lon === -110 && r.tiles_max_lat === 37.5), JSON.stringify(written));
      await store.engine.exec('update rasters set tile_count = 0, tiles_min_lon = null, tiles_min_lat = null, tiles_max_lon = null, tiles_max_lat = null');
      await store.engine.exec(loadMigrations().find((m) => m.version === 5)!.sql);
      assert.deepEqual(await read(), written);
    });

    test('a bbox over few tiles is searched exactly, from the tiles the bbox index finds, with every exclusion', async () => {
      const raster = await store.rasterByUri('file:///a.tif');
      const tiles = await store.tilesOfRaster(raster!.id);
      const model = await store.registerModel({ name: 'boxed-model', backbone: {}, dim: 8, bands: [1], tileSize: 32, normalization: {}, metrics: {}, artifactPath: '/x' });
      const rand = rng(11);
      const vectors = new Map(tiles.map((t) => [t.id, Float32Array.from({ length: 8 }, () => rand() * 2 - 1)]));
      // One tile inside the bbox stays without a vector: it must not turn up at a null distance.
      const bbox: BBox = [-109.955, 37.105, -109.925, 37.135];
      const inside = tiles.filter((t) => t.bbox[0] <= bbox[2] && t.bbox[2] >= bbox[0] && t.bbox[1] <= bbox[3] && t.bbox[3] >= bbox[1]);
      assert.equal(inside.length, 16, 'a 4 x 4 block of the grid');
      const unembedded = inside[7].id;
      await store.upsertEmbeddings(model, tiles.filter((t) => t.id !== unembedded).map((t) => ({ tileId: t.id, vector: vectors.get(t.id)! })));
      await store.ensureEmbeddingIndex(model);
      // The estimate spreads the raster's 2500 tiles evenly over their extent, (-110, 37) to (-109.5, 37.5).
      assert.equal(await store.estimateTilesIn([-110, 37, -109.75, 37.25]), 625);
      assert.ok(Math.abs((await store.estimateTilesIn(bbox)) - 9) < 1e-9, 'a 0.03 x 0.03 degree box: 9 tiles of 0.01 degrees');
      assert.equal(await store.estimateTilesIn([10, 10, 11, 11]), 0);
      const bruteForce = (q: Float32Array, leaveOut: number[]) => inside.filter((t) => t.id !== unembedded && !leaveOut.includes(t.id))
        .map((t) => ({ id: t.id, d: Math.hypot(...vectors.get(t.id)!.map((x, j) => x - q[j])) })).sort((a, b) => a.d - b.d);

      // Every statement the searches send, on the engine and in its transactions.
      const statements: { sql: string; params?: unknown[] }[] = [];
      const recorded = (db: Sql): Sql['query'] => ((sql: string, params?: unknown[], o?: never) => (statements.push({ sql, params }), db.query(sql, params, o))) as Sql['query'];
      const query = store.engine.query.bind(store.engine);
      const transaction = store.engine.transaction.bind(store.engine);
      store.engine.query = recorded({ query } as Sql);
      store.engine.transaction = ((fn: (tx: Sql) => Promise<unknown>) => transaction((tx) => fn({ query: recorded(tx), exec: (t) => tx.exec(t) }))) as typeof store.engine.transaction;
      try {
        const probe = tiles[1234].id;
        const leaveOut = [inside[0].id, inside[5].id];
        const hits = await store.nearestTiles(model, { tileId: probe }, { k: 10, bbox, excludeTileIds: leaveOut });
        const expected = bruteForce(vectors.get(probe)!, leaveOut).slice(0, 10);
        assert.deepEqual(hits.map((h) => h.id), expected.map((e) => e.id));
        for (const [i, h] of hits.entries()) assert.ok(Math.abs(h.distance - expected[i].d) < 1e-5);
        assert.deepEqual(await store.nearestTiles(model, { vector: vectors.get(probe)! }, { k: 100, bbox }).then((r) => r.map((h) => h.id)),
          bruteForce(vectors.get(probe)!, []).map((e) => e.id), 'k past the tiles inside: all of them, in exact order');
        assert.deepEqual(await store.nearestTiles(model, { tileId: probe }, { k: 10, bbox, excludeQueryRaster: true }), [], 'every tile is on the query\'s raster');
        assert.deepEqual(await store.nearestTiles(model, { tileId: unembedded }, { k: 10, bbox }), [], 'a tile without a vector finds nothing');

        // The search statement reads the bbox's tiles through its index and never walks the HNSW graph, even with
        // sorts made costly: an order the index could serve would then win the plan.
        const search = statements.find((st) => /limit \$2\) n/.test(st.sql))!;
        assert.ok(search, statements.map((st) => st.sql).join('\n'));
        const plan = (await transaction(async (tx) => {
          await tx.query(`select set_config('enable_sort', 'off', true)`);
          return tx.query<{ 'QUERY PLAN': string }>(`explain ${search.sql}`, search.params);
        })).map((r) => r['QUERY PLAN']).join('\n');
        assert.match(plan, /tiles_bbox_idx/, plan);
        assert.doesNotMatch(plan, /embeddings_hnsw_model_/, plan);
      } finally {
        store.engine.query = query;
        store.engine.transaction = transaction;
      }
      await store.removeModel('boxed-model');
    });

    test('a halfvec index is used by the search, answers carry exact float32 distances in exact order, and switching back rebuilds a vector index', async () => {
      const raster = await store.rasterByUri('file:///a.tif');
      const tiles = await store.tilesOfRaster(raster!.id);
      const registered = await store.registerModel({ name: 'half-model', backbone: {}, dim: 16, bands: [1], tileSize: 32, normalization: {}, metrics: {}, artifactPath: '/x' });
      assert.equal(registered.vectorType, 'vector', 'a new model starts with a float32 index');
      const rand = rng(5);
      const vectors = tiles.map(() => Float32Array.from({ length: 16 }, () => rand() * 2 - 1));
      await store.upsertEmbeddings(registered, tiles.map((t, i) => ({ tileId: t.id, vector: vectors[i] })));
      await store.ensureEmbeddingIndex(registered);
      const model = await store.setVectorType(registered, 'halfvec');
      assert.equal(model.vectorType, 'halfvec');
      assert.equal((await store.model('half-model')).vectorType, 'halfvec', 'the type is stored with the model');
      const indexDef = async () => (await store.engine.query<{ indexdef: string }>(`select indexdef from pg_indexes where indexname = $1`, [embeddingIndexName(model.id)]))[0]?.indexdef;
      assert.equal(await indexDef(), undefined, 'the float32 index is dropped when the type changes');
      await store.ensureEmbeddingIndex(model);
      assert.match((await indexDef())!, /::halfvec\(16\)\) halfvec_l2_ops/);

      const plan = await store.engine.query<{ 'QUERY PLAN': string }>(`explain select tile_id from embeddings e where model_id = ${model.id} order by e.embedding::halfvec(16) <-> '[${new Array(16).fill(0)}]'::halfvec(16) limit 10`);
      assert.match(plan.map((r) => r['QUERY PLAN']).join('\n'), new RegExp(`Index Scan using ${embeddingIndexName(model.id)}\\b`));
      let found = 0;
      for (const probe of [5, 1234, 2499]) {
        const hits = await store.nearestTiles(model, { tileId: tiles[probe].id }, { k: 10 });
        const exact = vectors.map((v, i) => ({ id: tiles[i].id, d: Math.hypot(...v.map((x, j) => x - vectors[probe][j])) }))
          .filter((e) => e.id !== tiles[probe].id).sort((a, b) => a.d - b.d).slice(0, 10);
        found += hits.filter((h) => exact.some((e) => e.id === h.id)).length;
        for (const [i, h] of hits.entries()) {
          const truth = Math.hypot(...vectors[tiles.findIndex((t) => t.id === h.id)].map((x, j) => x - vectors[probe][j]));
          assert.ok(Math.abs(h.distance - truth) < 1e-5, `distance ${h.distance} is not the float32 ${truth}`);
          if (i > 0) assert.ok(h.distance >= hits[i - 1].distance, 'answers come in exact order');
        }
        const each = await store.nearestTilesOfEach(model, [tiles[probe].id], 10);
        assert.deepEqual(each[0].map((h) => h.id), hits.map((h) => h.id));
      }
      assert.ok(found >= 27, `halfvec search found ${found} of the 30 exact neighbours`);
      await assert.rejects(store.setVectorType(model, 'int8' as never), /vector type must be one of vector, halfvec, got 'int8'/);

      const back = await store.setVectorType(model, 'vector');
      await store.ensureEmbeddingIndex(back);
      assert.match((await indexDef())!, /::vector\(16\)\) vector_l2_ops/);
      await store.removeModel('half-model');
    });

    test('a vector of the wrong dimension is a clear error', async () => {
      const model = await store.registerModel({ name: 'dim-check', backbone: {}, dim: 4, bands: [1], tileSize: 32, normalization: {}, metrics: {}, artifactPath: '/x' });
      await assert.rejects(store.nearestTiles(model, { vector: [1, 2, 3] }, { k: 1 }), /3 dimensions; the model has 4/);
      await assert.rejects(store.upsertEmbeddings(model, [{ tileId: 1, vector: [1, 2, NaN, 4] }]), /not a finite number/);
    });

    test('two concurrent migrate processes are safe', async () => {
      const fresh = await openDb();
      try {
        const [a, b] = await Promise.all([runCli(['db', 'migrate', '--db', fresh.db, '--json']), runCli(['db', 'migrate', '--db', fresh.db, '--json'])]);
        assert.equal(a.code, 0, a.stderr);
        assert.equal(b.code, 0, b.stderr);
        const applied = [lastJson<{ applied: string[] }>(a.stdout).applied, lastJson<{ applied: string[] }>(b.stdout).applied];
        assert.deepEqual(applied.flat().sort(), loadMigrations().map((m) => m.name).sort(), 'each migration applied exactly once');
        const status = await runCli(['db', 'status', '--json', '--db', fresh.db]);
        assert.equal(status.code, 0, status.stderr);
        const s = lastJson<{ engine: string; migrationLevel: number; pgvectorVersion: string }>(status.stdout);
        assert.equal(s.engine, engineName);
        assert.equal(s.migrationLevel, loadMigrations().length);
        assert.match(s.pgvectorVersion, /^\d+\.\d+\.\d+$/);
      } finally {
        await fresh.cleanup();
      }
    });
  });
}

storeSuite('pglite', async () => {
  const dir = tempDir();
  return { db: join(dir.path, 'db'), cleanup: dir.cleanup };
});

const skipServer = await serverSkip();
describe('server engine', { skip: skipServer }, () => {
  storeSuite('postgres', async () => {
    const fresh = await freshServerDb();
    return { db: fresh.url, cleanup: fresh.drop };
  });

  test('statementTimeoutMs makes the server cancel a long statement, which the service answers with a 503', async () => {
    const fresh = await freshServerDb();
    const store = await Store.open(fresh.url, { statementTimeoutMs: 200 });
    try {
      const t0 = performance.now();
      const err = await store.engine.query('select pg_sleep(3)').then(() => undefined, (e: unknown) => e);
      assert.ok(err, 'the statement was not cancelled');
      assert.equal((err as { code?: string }).code, '57014');
      assert.ok(performance.now() - t0 < 2000, 'cancelled long before the statement would have ended');
      const problem = problemFromError(err);
      assert.equal(problem.status, 503);
      assert.match(problem.detail, /cancelled/);
      assert.deepEqual(await store.engine.query('select 1 as one'), [{ one: 1 }], 'the pool goes on answering');
    } finally {
      await store.close();
      await fresh.drop();
    }
  });
});

describe('bad --db values', () => {
  test('an unreachable server', async () => {
    const r = await runCli(['db', 'status', '--db', 'postgres://nobody@127.0.0.1:9/none']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^tilevec: cannot connect to the PostgreSQL server at postgres:\/\/nobody@127\.0\.0\.1:9\/none: .*ECONNREFUSED/);
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line, no stack trace');
  });

  test('a server without the vector extension names it and how to install it', async () => {
    // A real Postgres wire server (PGlite behind a socket) that lacks pgvector.
    const db = await PGlite.create();
    const server = new PGLiteSocketServer({ db, port: 0, host: '127.0.0.1' });
    await server.start();
    const port = (server as unknown as { server: { address(): { port: number } } }).server.address().port;
    try {
      const r = await runCli(['db', 'migrate', '--db', `postgres://postgres:secret@127.0.0.1:${port}/postgres`]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /has no 'vector' extension \(pgvector\); install it .*setup-postgres\.sh/);
      assert.doesNotMatch(r.stderr, /secret/, 'the password is never printed');
    } finally {
      await server.stop();
      await db.close();
    }
  });

  test('a directory that cannot be written', async () => {
    const dir = tempDir();
    try {
      const file = join(dir.path, 'a-file');
      writeFileSync(file, 'not a directory');
      const r = await runCli(['db', 'migrate', '--db', join(file, 'db')]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^tilevec: cannot create the database directory .*a-file\/db: .*a-file is not a directory; pass --db with a writable directory/);
    } finally {
      dir.cleanup();
    }
  });

  test('the same embedded directory used by two stores at once is refused clearly', async () => {
    const dir = tempDir();
    const first = await Store.open(join(dir.path, 'db'));
    try {
      await assert.rejects(Store.open(join(dir.path, 'db'), { lockWaitMs: 200 }), (err: unknown) => err instanceof UserError && /is in use by process \d+/.test(err.message));
    } finally {
      await first.close();
      dir.cleanup();
    }
  });

  test('a lock left by a killed process is taken over, even when its pid now belongs to another process', async () => {
    const dir = tempDir();
    const db = join(dir.path, 'db');
    try {
      const staleLocks = [
        '2147483646 12345', // a pid no process has
        `${process.pid} 1`, // a live pid, but this process did not start at tick 1: the holder's pid was reused
      ];
      for (const stale of staleLocks) {
        writeFileSync(`${db}.lock`, stale);
        const store = await Store.open(db, { lockWaitMs: 200 });
        assert.notEqual(readFileSync(`${db}.lock`, 'utf8'), stale, 'the lock now names this process');
        await store.close();
        assert.ok(!existsSync(`${db}.lock`), 'close releases the lock');
      }
    } finally {
      dir.cleanup();
    }
  });
});
