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

    test('a vector whose distances would overflow single precision is a 400; an overflowing stored vector a 422', async () => {
      const server = await startServer({ store, config: testConfig() });
      servers.push(server);
      const a = await post(server.url, '/v1/search', { vector: Array(8).fill(3.4e38) });
      assert.equal(a.status, 400);
      assert.match(a.type, /^application\/problem\+json/);
      assert.match(a.body.detail, /vector: .*overflow single precision/);
      // A stored vector of 1e19s: its squared distance to anything exceeds float32's range.
      const huge = ids[ids.length - 1];
      await store.upsertEmbeddings(world.model, [{ tileId: huge, vector: new Float32Array(8).fill(1e19) }]);
      try {
        const b = await get(server.url, `/v1/tiles/${huge}/similar?k=5`);
        assert.equal(b.status, 422, JSON.stringify(b.body).slice(0, 300));
        assert.match(b.body.detail, /overflow single precision/);
      } finally {
        await store.upsertEmbeddings(world.model, [{ tileId: huge, vector: world.vectors.get(huge)! }]);
      }
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
        assertNearest(await get(base, `/v1/tiles/${q}/similar?k=${maxK}&excludeSameRaster=true`), bruteForce(world, zq, maxK, otherRasters), maxK, minRecall);
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

/** A raw socket to the service; resolves with the milliseconds until the server closed it. */
async function closedAfter(base: string, write: (socket: Socket) => void): Promise<number> {
  const { hostname, port } = new URL(base);
  const socket = connect(Number(port), hostname);
  await once(socket, 'connect');
  const started = performance.now();
  socket.on('data', () => {});
  socket.on('error', () => {});
  write(socket);
  await once(socket, 'close');
  return performance.now() - started;
}

describe('connection limits (PGlite)', () => {
  let store: Store;
  let server: RunningServer;
  before(async () => {
    store = await Store.open('memory://');
    server = await startServer({ store, config: testConfig({ headersTimeoutMs: 500, keepAliveTimeoutMs: 300, maxConnections: 3 }) });
  });
  after(async () => {
    await server?.close();
    await store?.close();
  });

  test('a silent connection is closed after headersTimeoutMs', async () => {
    const ms = await closedAfter(server.url, () => {});
    assert.ok(ms >= 400 && ms < 3000, `closed after ${ms} ms`);
  });

  test('a header drip is cut at headersTimeoutMs, though each byte comes sooner than that', async () => {
    const ms = await closedAfter(server.url, (socket) => {
      socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
      const drip = setInterval(() => socket.writable && socket.write('X-A: b\r\n'), 100);
      socket.once('close', () => clearInterval(drip));
    });
    assert.ok(ms >= 400 && ms < 3000, `closed after ${ms} ms`);
  });

  test('an idle keep-alive connection is closed after keepAliveTimeoutMs, a served request first', async () => {
    let answered = '';
    const ms = await closedAfter(server.url, (socket) => {
      socket.on('data', (d) => { answered += d.toString(); });
      socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    });
    assert.match(answered, /^HTTP\/1\.1 200/);
    assert.ok(ms >= 250 && ms < 3000, `closed after ${ms} ms`);
  });

  test('connections beyond maxConnections are closed at once; the service answers again when they go', async () => {
    const { hostname, port } = new URL(server.url);
    const held = await Promise.all([0, 1, 2].map(async () => {
      const s = connect(Number(port), hostname);
      s.on('error', () => {});
      await once(s, 'connect');
      return s;
    }));
    try {
      await new Promise((r) => setTimeout(r, 50));
      const ms = await closedAfter(server.url, (socket) => socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
      assert.ok(ms < 400, `the fourth connection was closed after ${ms} ms, not at once`);
    } finally {
      for (const s of held) s.destroy();
    }
    await new Promise((r) => setTimeout(r, 50));
    assert.equal((await get(server.url, '/healthz')).status, 200);
  });
});
