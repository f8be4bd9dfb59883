import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { Store } from '../src/store/index.ts';
import { startServer, type RunningServer } from '../src/serve/index.ts';
import { bruteForce, seedSynthetic, testConfig, type SyntheticWorld } from './serve-fixtures.ts';
import { freshServerDb, serverSkip } from './helpers.ts';

async function post(base: string, path: string, json: unknown): Promise<{ status: number; type: string; body: any }> {
  const res = await fetch(base + path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(json) });
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.json() };
}

async function get(base: string, path: string): Promise<{ status: number; type: string; body: any }> {
  const res = await fetch(base + path);
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.json() };
}

type Feature = { id: number; properties: { distance: number } };

/** Exactly k answers (or every candidate, when fewer), in distance order, nearly all of the exact k nearest. */
function assertNearest(answer: { status: number; body: any }, expected: { id: number }[], k: number, minRecall: number): void {
  assert.equal(answer.status, 200, JSON.stringify(answer.body).slice(0, 300));
  const got = answer.body.features as Feature[];
  assert.equal(got.length, Math.min(k, expected.length));
  got.forEach((f, i) => {
    assert.ok(Number.isFinite(f.properties.distance));
    if (i > 0) assert.ok(f.properties.distance >= got[i - 1].properties.distance, `rank ${i} is out of order`);
  });
  const exact = new Set(expected.slice(0, k).map((e) => e.id));
  const recall = got.filter((f) => exact.has(f.id)).length / exact.size;
  assert.ok(recall >= minRecall, `recall ${recall} < ${minRecall}`);
}

/**
 * k = serve.maxK on every similarity route: the default 1000 (pgvector's ef_search ceiling, through the index) and
 * a raised 1500 (past it: the exact path). 1600 tiles in 4 rasters of 400.
 */
function maxKSuite(engineName: string, openDb: () => Promise<{ db: string; cleanup: () => Promise<void> | void }>) {
  describe(`k = max on ${engineName}`, () => {
    let store: Store;
    let cleanup: () => Promise<void> | void;
    let world: SyntheticWorld;
    let ids: number[];
    const servers: RunningServer[] = [];

    before(async () => {
      let db: string;
      ({ db, cleanup } = await openDb());
      store = await Store.open(db);
      world = await seedSynthetic(store, { rasters: 4, side: 20, dim: 8, vectors: 'embedding-like' });
      ids = [...world.vectors.keys()].sort((a, b) => a - b);
    });
    after(async () => {
      for (const s of servers) await s.close();
      await store?.close();
      await cleanup?.();
    });

    for (const [maxK, minRecall] of [[1000, 0.95], [1500, 1]] as const) {
      test(`maxK ${maxK}: /similar, filtered /similar, /v1/search by vector and tile, /v1/analogy`, async () => {
        const server = await startServer({ store, config: testConfig({ maxK }) });
        servers.push(server);
        const base = server.url;
        const q = ids[123];
        const zq = world.vectors.get(q)!;
        const notQ = (id: number) => id !== q;

        assertNearest(await get(base, `/v1/tiles/${q}/similar?k=${maxK}`), bruteForce(world, zq, maxK + 1).filter((e) => notQ(e.id)), maxK, minRecall);
        const otherRasters = (id: number) => notQ(id) && world.rasterOf.get(id) !== world.rasterOf.get(q);
        assertNearest(await get(base, `/v1/tiles/${q}/similar?k=${maxK}&exclude_same_raster=true`), bruteForce(world, zq, maxK, otherRasters), maxK, minRecall);
        // A bbox over the whole world: filtered, yet every tile qualifies.
        assertNearest(await get(base, `/v1/tiles/${q}/similar?k=${maxK}&bbox=-180,-90,180,90`), bruteForce(world, zq, maxK, notQ), maxK, minRecall);
        assertNearest(await post(base, '/v1/search', { tileId: q, k: maxK }), bruteForce(world, zq, maxK, notQ), maxK, minRecall);
        assertNearest(await post(base, '/v1/search', { vector: [...zq], k: maxK, bbox: [-180, -90, 180, 90] }), bruteForce(world, zq, maxK), maxK, minRecall);

        const [a, b, c] = [ids[5], ids[600], ids[1400]];
        const target = world.vectors.get(a)!.map((v, i) => v - world.vectors.get(b)![i] + world.vectors.get(c)![i]);
        const notAbc = (id: number) => ![a, b, c].includes(id);
        assertNearest(await post(base, '/v1/analogy', { a, b, c, k: maxK }), bruteForce(world, target, maxK, notAbc), maxK, minRecall);
        assertNearest(await post(base, '/v1/analogy', { a, b, c, k: maxK, bbox: [-180, -90, 180, 90] }), bruteForce(world, target, maxK, notAbc), maxK, minRecall);
      });
    }
  });
}

maxKSuite('PGlite', async () => ({ db: 'memory://', cleanup: () => {} }));

describe('k = max on the PostgreSQL server', async () => {
  const skip = await serverSkip();
  if (skip) {
    test('server engine', { skip }, () => {});
    return;
  }
  maxKSuite('PostgreSQL', async () => {
    const { url, drop } = await freshServerDb();
    return { db: url, cleanup: drop };
  });
});
