import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { Store } from '../src/store/index.ts';
import { UserError } from '../src/errors.ts';
import { startServer, type RunningServer, type ServeApp } from '../src/serve/index.ts';
import { openApiPath } from '../src/serve/openapi.ts';
import { RasterThumbnails } from '../src/serve/thumbnails.ts';
import { encodeGeoTiff } from '../src/ingest/index.ts';
import { bruteForce, rasterOrigin, seedSynthetic, testConfig, TILE_DEG, type SyntheticWorld } from './serve-fixtures.ts';
import { freshServerDb, runCli, serverSkip, tempDir } from './helpers.ts';

const TOKEN = 'a-test-token-that-is-long-enough';
const MAX_K = 50;
const SIDE = 6;
const PNG_SIGNATURE = Buffer.from('89504e470d0a1a0a', 'hex');

interface Answer {
  status: number;
  type: string;
  body: any;
  headers: Headers;
}

async function call(base: string, path: string, init: RequestInit & { json?: unknown } = {}): Promise<Answer> {
  const { json, ...rest } = init;
  const res = await fetch(base + path, json === undefined ? rest : { method: 'POST', ...rest, headers: { 'Content-Type': 'application/json', ...rest.headers }, body: JSON.stringify(json) });
  const type = res.headers.get('content-type') ?? '';
  const raw = Buffer.from(await res.arrayBuffer());
  const body = /json/.test(type) ? JSON.parse(raw.toString('utf8')) : type.startsWith('image/') ? raw : raw.toString('utf8');
  return { status: res.status, type, body, headers: res.headers };
}

function assertProblem(a: Answer, status: number, detail?: RegExp): void {
  assert.equal(a.status, status, JSON.stringify(a.body));
  assert.match(a.type, /^application\/problem\+json/);
  assert.equal(a.body.status, status);
  assert.equal(typeof a.body.title, 'string');
  if (detail) assert.match(a.body.detail, detail);
}

/** A tiny TIFF whose payload names the tile whose vector the fake embedder returns. */
function fakeChip(tileId: number): Buffer {
  return Buffer.concat([Buffer.from([0x49, 0x49, 0x2a, 0x00, 8, 0, 0, 0]), Buffer.from(`tile:${tileId}`)]);
}

function multipart(parts: { name: string; filename?: string; type?: string; data: Buffer | string }[]): { body: Buffer; contentType: string } {
  const boundary = '----tilevec-test-boundary';
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disposition = `form-data; name="${p.name}"${p.filename ? `; filename="${p.filename}"` : ''}`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${p.type ? `Content-Type: ${p.type}\r\n` : ''}\r\n`), Buffer.from(p.data), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** Checks a ranked answer against the exact brute-force ranking: same tiles, same distances, in order (ties aside). */
function assertRanking(answer: Answer, expected: { id: number; distance: number }[]): void {
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  const got = answer.body.features as { id: number; properties: { distance: number } }[];
  assert.equal(got.length, expected.length);
  got.forEach((f, i) => {
    assert.ok(Math.abs(f.properties.distance - expected[i].distance) < 1e-4, `rank ${i}: distance ${f.properties.distance} vs exact ${expected[i].distance}`);
    if (i > 0) assert.ok(f.properties.distance >= got[i - 1].properties.distance);
  });
  // Exact ties could swap places legitimately; random vectors have none, so the ids must match too.
  assert.deepEqual(got.map((f) => f.id), expected.map((e) => e.id));
}

const overlaps = (a: number[], b: number[]) => a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3];

function serviceSuite(engineName: string, openDb: () => Promise<{ db: string; cleanup: () => Promise<void> | void }>) {
  describe(`serve on ${engineName}`, () => {
    let store: Store;
    let cleanup: () => Promise<void> | void;
    let world: SyntheticWorld;
    let server: RunningServer;
    let base: string;
    let ids: number[];
    let unembedded: number;
    const get = (path: string, init?: RequestInit) => call(base, path, init);

    before(async () => {
      let db: string;
      ({ db, cleanup } = await openDb());
      store = await Store.open(db);
      world = await seedSynthetic(store, { rasters: 3, side: SIDE, dim: 8, withoutEmbedding: 1 });
      ids = [...world.rasterOf.keys()].sort((a, b) => a - b);
      unembedded = ids.find((id) => !world.vectors.has(id))!;
      server = await startServer({
        store,
        config: testConfig({ maxK: MAX_K, token: TOKEN, corsOrigins: 'https://maps.example' }),
        renderThumbnail: async (tile) => Buffer.concat([PNG_SIGNATURE, Buffer.from(String(tile.id))]),
        embedChip: async (tiff, model) => {
          const id = Number(/tile:(\d+)/.exec(Buffer.from(tiff).toString('latin1'))?.[1]);
          const v = world.vectors.get(id);
          if (!v) throw new UserError('the chip is not one the fake embedder knows', { status: 422 });
          assert.equal(model.name, world.model.name);
          return { vector: v, warnings: [] };
        },
        limits: { chipBytes: 64 * 1024 },
      });
      base = server.url;
    });
    after(async () => {
      await server?.close();
      await store?.close();
      await cleanup?.();
    });

    test('health and readiness', async () => {
      assert.deepEqual((await get('/healthz')).body, { status: 'ok' });
      const ready = await get('/readyz');
      assert.equal(ready.status, 200);
      assert.equal(ready.body.model, 'synthetic');
    });

    test('GET /v1/models', async () => {
      const a = await get('/v1/models');
      assert.equal(a.status, 200);
      assert.deepEqual(a.body.models.map((m: { name: string; dim: number }) => [m.name, m.dim]), [['synthetic', 8]]);
    });

    test('GET /v1/tiles/{id}: a Feature, 404 for a missing tile, 400 for a bad id', async () => {
      const a = await get(`/v1/tiles/${ids[3]}`);
      assert.equal(a.status, 200);
      assert.match(a.type, /^application\/geo\+json/);
      assert.equal(a.body.type, 'Feature');
      assert.equal(a.body.id, ids[3]);
      assert.equal(a.body.geometry.type, 'Polygon');
      assert.equal(a.body.properties.rasterId, world.rasterOf.get(ids[3]));
      assertProblem(await get('/v1/tiles/987654321'), 404, /does not exist/);
      for (const bad of ['abc', '0', '-1', '1.5', '1e3', '99999999999999999999', '9007199254740993', '%20']) {
        assertProblem(await get(`/v1/tiles/${bad}`), 400);
      }
    });

    test('GET /v1/tiles pages through every tile exactly once, and filters by bbox', async () => {
      const seen: number[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const a: Answer = await get(`/v1/tiles?limit=25${cursor ? `&cursor=${cursor}` : ''}`);
        assert.equal(a.status, 200);
        seen.push(...a.body.features.map((f: { id: number }) => f.id));
        cursor = a.body.nextCursor;
        pages++;
      } while (cursor && pages < 20);
      assert.deepEqual(seen, ids);

      const [lon0, lat0] = rasterOrigin(1, SIDE);
      const bbox = [lon0 + 0.015, lat0 + 0.005, lon0 + 0.035, lat0 + 0.025];
      const a = await get(`/v1/tiles?bbox=${bbox.join(',')}&limit=1000`);
      const expected = [];
      for (const id of ids) {
        const t = (await get(`/v1/tiles/${id}`)).body;
        if (overlaps(t.bbox, bbox)) expected.push(id);
      }
      assert.ok(expected.length > 0);
      assert.deepEqual(a.body.features.map((f: { id: number }) => f.id), expected);

      for (const bad of ['bbox=1,2,3', 'bbox=10,0,0,10', 'bbox=-200,0,0,10', 'bbox=a,b,c,d', 'limit=0', 'limit=1001', 'cursor=nonsense', 'limit=1&limit=2']) {
        assertProblem(await get(`/v1/tiles?${bad}`), 400);
      }
    });

    test('GET /v1/tiles?distanceTo: every tile has its L2 distance to the query tile\'s vector (the similarity layer); none without a vector', async () => {
      const query = ids.find((id) => world.vectors.has(id))!;
      const a = await get(`/v1/tiles?limit=1000&distanceTo=${query}`);
      assert.equal(a.status, 200);
      assert.deepEqual(a.body.distanceTo, { tileId: query, model: 'synthetic' });
      assert.deepEqual(a.body.features.map((f: { id: number }) => f.id), ids);
      const [nearest] = bruteForce(world, world.vectors.get(query)!, 1);
      assert.equal(nearest.id, query);
      let without = 0;
      for (const f of a.body.features as { id: number; properties: { distance?: number } }[]) {
        const v = world.vectors.get(f.id);
        if (!v) {
          without++;
          assert.equal(f.properties.distance, undefined, `tile ${f.id} has no vector`);
          continue;
        }
        const [expected] = bruteForce(world, world.vectors.get(query)!, 1, (id) => id === f.id);
        assert.ok(Math.abs(f.properties.distance! - expected.distance) <= 1e-5 * Math.max(1, expected.distance), `tile ${f.id}: ${f.properties.distance} vs ${expected.distance}`);
      }
      assert.equal(without, 1);
      const missing = ids.find((id) => !world.vectors.has(id))!;
      assertProblem(await get(`/v1/tiles?distanceTo=${missing}`), 404, /no embedding/);
      assertProblem(await get(`/v1/tiles?distanceTo=${query}&model=nope`), 404);
      assertProblem(await get('/v1/tiles?model=synthetic'), 400, /only with distanceTo/);
      for (const bad of ['distanceTo=0', 'distanceTo=x', 'distanceTo=1.5']) assertProblem(await get(`/v1/tiles?${bad}`), 400);
    });

    test('GET /v1/tiles/at: the footprints that cover a point', async () => {
      const [lon0, lat0] = rasterOrigin(0, SIDE);
      const inside = await get(`/v1/tiles/at?lon=${lon0 + 0.5 * TILE_DEG}&lat=${lat0 + 0.5 * TILE_DEG}`);
      assert.equal(inside.status, 200);
      assert.deepEqual(inside.body.features.map((f: { id: number }) => f.id), [ids[0]]);
      const edge = await get(`/v1/tiles/at?lon=${lon0 + TILE_DEG}&lat=${lat0 + 0.5 * TILE_DEG}`);
      assert.deepEqual(edge.body.features.map((f: { id: number }) => f.id), [ids[0], ids[1]]);
      assert.deepEqual((await get('/v1/tiles/at?lon=10&lat=10')).body.features, []);
      for (const bad of ['lon=10', 'lon=181&lat=0', 'lon=0&lat=-91', 'lon=x&lat=1', 'lon=1e999&lat=1', 'lon=&lat=']) {
        assertProblem(await get(`/v1/tiles/at?${bad}`), 400);
      }
    });

    test('GET /v1/tiles/{id}/similar equals the exact brute-force ranking', async () => {
      for (const [i, k] of [[0, 1], [7, 10], [50, MAX_K], [ids.length - 2, 5]] as const) {
        const id = ids[i];
        const expected = bruteForce(world, world.vectors.get(id)!, k, (t) => t !== id);
        const a = await get(`/v1/tiles/${id}/similar?k=${k}`);
        assertRanking(a, expected);
        assert.equal(a.body.model, 'synthetic');
        assert.equal(a.body.query.tileId, id);
      }
      assert.equal((await get(`/v1/tiles/${ids[0]}/similar`)).body.features.length, 10);
    });

    test('similar: many requests at once (answered in shared statements) each equal the exact ranking', async () => {
      const asked = ids.filter((_, i) => i % 3 === 0).flatMap((id, i) => [[id, 1 + (i % 3) * 4], [id, 45]] as const);
      const answers = await Promise.all(asked.map(([id, k]) => get(`/v1/tiles/${id}/similar?k=${k}`)));
      answers.forEach((a, i) => {
        const [id, k] = asked[i];
        assertRanking(a, bruteForce(world, world.vectors.get(id)!, k, (t) => t !== id));
        assert.equal(a.body.query.tileId, id);
      });
      const mixed = await Promise.all([get(`/v1/tiles/${ids[0]}/similar?k=3`), get(`/v1/tiles/${unembedded}/similar?k=3`), get('/v1/tiles/987654321/similar?k=3')]);
      assertRanking(mixed[0], bruteForce(world, world.vectors.get(ids[0])!, 3, (t) => t !== ids[0]));
      assertProblem(mixed[1], 404, /no embedding/);
      assertProblem(mixed[2], 404, /does not exist/);
    });

    test('similar: bbox filter and excludeSameRaster', async () => {
      const id = ids[2];
      const [lon0, lat0] = rasterOrigin(2, SIDE);
      const bbox = [lon0, lat0, lon0 + 0.025, lat0 + 0.025];
      const tileBbox = async (t: number) => (await get(`/v1/tiles/${t}`)).body.bbox as number[];
      const inBbox = new Set<number>();
      for (const t of world.vectors.keys()) if (overlaps(await tileBbox(t), bbox)) inBbox.add(t);
      const a = await get(`/v1/tiles/${id}/similar?k=5&bbox=${bbox.join(',')}`);
      assertRanking(a, bruteForce(world, world.vectors.get(id)!, 5, (t) => t !== id && inBbox.has(t)));
      for (const f of a.body.features) assert.ok(overlaps(f.bbox, bbox));

      const own = world.rasterOf.get(id);
      const b = await get(`/v1/tiles/${id}/similar?k=20&excludeSameRaster=true`);
      assertRanking(b, bruteForce(world, world.vectors.get(id)!, 20, (t) => world.rasterOf.get(t) !== own));
      const c = await get(`/v1/tiles/${id}/similar?k=20&excludeSameRaster=false`);
      assert.ok(c.body.features.some((f: { properties: { rasterId: number } }) => f.properties.rasterId === own));
    });

    test('similar: not found and bad parameters', async () => {
      assertProblem(await get('/v1/tiles/987654321/similar'), 404, /does not exist/);
      assertProblem(await get(`/v1/tiles/${unembedded}/similar`), 404, /no embedding/);
      assertProblem(await get(`/v1/tiles/${ids[0]}/similar?model=nope`), 404, /model 'nope'/);
      assertProblem(await get(`/v1/tiles/${ids[0]}/similar?k=${MAX_K + 1}`), 400, new RegExp(`${MAX_K}`));
      for (const bad of ['k=0', 'k=-3', 'k=abc', 'k=1.5', 'k=99999999999999999999', 'excludeSameRaster=maybe', 'bbox=1,1,0,0', 'model=']) {
        assertProblem(await get(`/v1/tiles/${ids[0]}/similar?${bad}`), 400);
      }
    });

    test('POST /v1/search by tile, by point, by vector', async () => {
      const id = ids[9];
      const byTile = await call(base, '/v1/search', { json: { tileId: id, k: 6 } });
      assertRanking(byTile, bruteForce(world, world.vectors.get(id)!, 6, (t) => t !== id));

      const [lon0, lat0] = rasterOrigin(0, SIDE);
      const byPoint = await call(base, '/v1/search', { json: { lon: lon0 + 0.5 * TILE_DEG, lat: lat0 + 0.5 * TILE_DEG, k: 4 } });
      assertRanking(byPoint, bruteForce(world, world.vectors.get(ids[0])!, 4, (t) => t !== ids[0]));
      assert.equal(byPoint.body.query.tileId, ids[0]);

      const vector = Array.from({ length: 8 }, (_, i) => Math.sin(i));
      const byVector = await call(base, '/v1/search', { json: { vector, k: 7 } });
      assertRanking(byVector, bruteForce(world, vector, 7));

      const excl = await call(base, '/v1/search', { json: { tileId: id, k: 30, excludeSameRaster: true } });
      assertRanking(excl, bruteForce(world, world.vectors.get(id)!, 30, (t) => world.rasterOf.get(t) !== world.rasterOf.get(id)));
    });

    test('POST /v1/search: not found and bad bodies', async () => {
      assertProblem(await call(base, '/v1/search', { json: { tileId: 987654321 } }), 404);
      assertProblem(await call(base, '/v1/search', { json: { lon: 10, lat: 10 } }), 404, /no tile covers/);
      const bad: unknown[] = [
        {}, { tileId: 1, vector: [1] }, { lon: 1 }, { vector: [1, 2, 3] }, { vector: [] }, { tileId: '1' }, { tileId: 1, k: MAX_K + 1 },
        { tileId: 1, extra: true }, { vector: Array(8).fill(1), excludeSameRaster: true }, { tileId: 1, bbox: [0, 0, 1] }, [1, 2], { vector: Array(8).fill(1e39) },
      ];
      for (const body of bad) assertProblem(await call(base, '/v1/search', { json: body }), 400);
      assertProblem(await call(base, '/v1/search', { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: 'tileId=1' }), 415);
    });

    test('POST /v1/search with a multipart GeoTIFF chip', async () => {
      const id = ids[11];
      const form = multipart([{ name: 'chip', filename: 'chip.tif', type: 'image/tiff', data: fakeChip(id) }, { name: 'k', data: '5' }]);
      const a = await call(base, '/v1/search', { method: 'POST', headers: { 'Content-Type': form.contentType }, body: form.body });
      // The chip is the tile itself, so it comes first at distance 0.
      assertRanking(a, bruteForce(world, world.vectors.get(id)!, 5));
      assert.equal(a.body.query.chip, 'chip.tif');
      assert.deepEqual(a.body.warnings, [], 'the embedder had nothing to warn about');

      const send = (parts: Parameters<typeof multipart>[0]) => {
        const f = multipart(parts);
        return call(base, '/v1/search', { method: 'POST', headers: { 'Content-Type': f.contentType }, body: f.body });
      };
      assertProblem(await send([{ name: 'k', data: '5' }]), 400, /chip/);
      assertProblem(await send([{ name: 'chip', data: 'not a tiff at all' }]), 415, /TIFF/);
      assertProblem(await send([{ name: 'chip', data: fakeChip(id) }, { name: 'k', data: '0' }]), 400);
      assertProblem(await send([{ name: 'chip', data: fakeChip(id) }, { name: 'colour', data: 'red' }]), 400);
      assertProblem(await send([{ name: 'chip', data: fakeChip(id) }, { name: 'model', data: 'nope' }]), 404);
      assertProblem(await send([{ name: 'chip', data: fakeChip(987654321) }]), 422, /fake embedder/);
      assertProblem(await send([{ name: 'chip', data: Buffer.concat([fakeChip(id), Buffer.alloc(65 * 1024)]) }]), 413);
      const garbled = await call(base, '/v1/search', { method: 'POST', headers: { 'Content-Type': 'multipart/form-data; boundary=xyz' }, body: 'no boundary here' });
      assertProblem(garbled, 400);
      assertProblem(await call(base, '/v1/search', { method: 'POST', headers: { 'Content-Type': 'multipart/form-data' }, body: '--x\r\n' }), 400, /boundary/);
    });

    test('POST /v1/analogy: nearest to z(a) - z(b) + z(c), never a, b or c', async () => {
      const [a, b, c] = [ids[1], ids[20], ids[40]];
      const [za, zb, zc] = [a, b, c].map((id) => world.vectors.get(id)!);
      const target = za.map((v, i) => v - zb[i] + zc[i]);
      const answer = await call(base, '/v1/analogy', { json: { a, b, c, k: 12 } });
      assertRanking(answer, bruteForce(world, target, 12, (t) => ![a, b, c].includes(t)));
      for (const f of answer.body.features) assert.ok(![a, b, c].includes(f.id));
      // With a = c, z(a) - z(b) + z(c) is far from b but c itself would rank first were it not excluded.
      const same = await call(base, '/v1/analogy', { json: { a: c, b: c, c, k: 3 } });
      assert.ok(same.body.features.every((f: { id: number }) => f.id !== c));

      assertProblem(await call(base, '/v1/analogy', { json: { a, b, c: 987654321 } }), 404);
      assertProblem(await call(base, '/v1/analogy', { json: { a, b, c: unembedded } }), 404, /no embedding/);
      for (const body of [{ a, b }, { a, b, c: 'x' }, { a, b, c, k: 0 }, { a, b, c, k: MAX_K + 1 }, { a: -1, b, c }, { a, b, c, model: 7 }]) {
        assertProblem(await call(base, '/v1/analogy', { json: body }), 400);
      }
    });

    test('GET /v1/tiles/{id}/thumbnail.png through the injected renderer', async () => {
      const a = await get(`/v1/tiles/${ids[5]}/thumbnail.png`);
      assert.equal(a.status, 200);
      assert.equal(a.type, 'image/png');
      assert.deepEqual(a.body, Buffer.concat([PNG_SIGNATURE, Buffer.from(String(ids[5]))]));
      assertProblem(await get('/v1/tiles/987654321/thumbnail.png'), 404);
      assertProblem(await get('/v1/tiles/x/thumbnail.png'), 400);
    });

    test('admin routes need the bearer token', async () => {
      assertProblem(await get('/v1/admin/status'), 401);
      assert.match((await get('/v1/admin/status')).headers.get('www-authenticate') ?? '', /^Bearer/);
      assertProblem(await get('/v1/admin/status', { headers: { Authorization: 'Bearer wrong-token-wrong-token' } }), 401);
      const ok = await get('/v1/admin/status', { headers: { Authorization: `Bearer ${TOKEN}` } });
      assert.equal(ok.status, 200);
      assert.equal(ok.body.counts.tiles, ids.length);
    });

    test('CORS answers only the configured origins', async () => {
      const allowed = await get('/v1/models', { headers: { Origin: 'https://maps.example' } });
      assert.equal(allowed.headers.get('access-control-allow-origin'), 'https://maps.example');
      const other = await get('/v1/models', { headers: { Origin: 'https://evil.example' } });
      assert.equal(other.headers.get('access-control-allow-origin'), null);
      const preflight = await fetch(`${base}/v1/analogy`, { method: 'OPTIONS', headers: { Origin: 'https://maps.example', 'Access-Control-Request-Method': 'POST' } });
      assert.equal(preflight.status, 204);
      assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /Authorization/);
    });

    test('unknown routes are 404 and wrong methods 405, both as problems', async () => {
      assertProblem(await get('/v1/nothing'), 404);
      const a = await call(base, '/v1/models', { method: 'DELETE' });
      assertProblem(a, 405);
      assert.equal(a.headers.get('allow'), 'GET, HEAD');
    });

    test('/openapi.json documents exactly the routes the app serves, and each answers', async () => {
      const doc = (await get('/openapi.json')).body;
      assert.equal(doc.openapi, '3.1.0');
      const app = server.server.listeners('request')[0] as unknown as ServeApp;
      const served = app.routes.map((r) => `${r.method} ${openApiPath(r.path)}`).sort();
      const documented = Object.entries(doc.paths as Record<string, object>).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`)).sort();
      assert.deepEqual(documented, served);
      // Express's own table: every non-static route it dispatches is documented.
      const routerPaths = new Set(app.router.stack.flatMap((l: { route?: { path: string } }) => (l.route ? [openApiPath(l.route.path)] : [])));
      assert.deepEqual([...routerPaths].filter((p) => !['/', '/docs'].includes(p)).sort(), Object.keys(doc.paths).sort());
      for (const [p, ops] of Object.entries(doc.paths as Record<string, Record<string, { parameters: { name: string; in: string }[] }>>)) {
        for (const [method, op] of Object.entries(ops)) {
          const url = p.replace('{id}', String(ids[0])) + (p.endsWith('/at') ? '?lon=0&lat=0' : '');
          const a = await call(base, url, method === 'post' ? { json: {} } : {});
          assert.ok(![404, 405].includes(a.status) || a.body.detail?.match(/does not exist|no tile/), `${method} ${p} answered ${a.status}`);
          for (const param of op.parameters.filter((x) => x.in === 'query')) assert.match(param.name, /^[a-z][a-zA-Z]*$/);
        }
      }
      const similar = doc.paths['/v1/tiles/{id}/similar'].get;
      assert.deepEqual(similar.parameters.map((x: { name: string }) => x.name), ['id', 'k', 'model', 'bbox', 'excludeSameRaster']);
      assert.ok(doc.paths['/v1/search'].post.requestBody.content['multipart/form-data']);
    });

    test('/metrics has per-route latency histograms', async () => {
      await get(`/v1/tiles/${ids[0]}/similar?k=3`);
      const text = (await get('/metrics')).body as string;
      assert.match(text, /tilevec_http_request_duration_seconds_bucket\{[^}]*route="\/v1\/tiles\/:id\/similar"[^}]*\}/);
      assert.match(text, /tilevec_http_request_duration_seconds_count\{method="GET",route="\/v1\/tiles\/:id",status="404"\} \d+/);
    });

    test('the web map, its Leaflet assets and the docs page are served', async () => {
      const page = await get('/');
      assert.equal(page.status, 200);
      assert.match(page.body, /\/vendor\/leaflet\/leaflet\.js/);
      assert.equal((await get('/vendor/leaflet/leaflet.js')).status, 200);
      assert.equal((await get('/vendor/leaflet/leaflet.css')).status, 200);
      assert.equal((await get('/ui/app.js')).status, 200);
      assert.match((await get('/docs')).body, /openapi\.json/);
      assertProblem(await get('/ui/../../../package.json'), 404);
    });
  });
}

serviceSuite('PGlite', async () => ({ db: 'memory://', cleanup: () => {} }));

describe('serve on the PostgreSQL server', async () => {
  const skip = await serverSkip();
  if (skip) {
    test('server engine', { skip }, () => {});
    return;
  }
  serviceSuite('PostgreSQL', async () => {
    const { url, drop } = await freshServerDb();
    return { db: url, cleanup: drop };
  });
});

describe('serve: deployment variants (PGlite)', () => {
  let store: Store;
  before(async () => {
    store = await Store.open('memory://');
  });
  after(async () => {
    await store?.close();
  });

  test('without a renderer, an embedder or a token the optional routes say so; with no model /readyz is 503', async () => {
    const server = await startServer({ store, config: testConfig() });
    try {
      assertProblem(await call(server.url, '/readyz'), 503, /no model/);
      await seedSynthetic(store, { rasters: 1, side: 3 });
      assert.equal((await call(server.url, '/readyz')).status, 200);
      assertProblem(await call(server.url, '/v1/tiles/1/thumbnail.png'), 501, /thumbnails/);
      const form = multipart([{ name: 'chip', data: fakeChip(1) }]);
      assertProblem(await call(server.url, '/v1/search', { method: 'POST', headers: { 'Content-Type': form.contentType }, body: form.body }), 501, /chip search/);
      assertProblem(await call(server.url, '/v1/admin/status', { headers: { Authorization: `Bearer ${TOKEN}` } }), 403, /serve\.token/);
    } finally {
      await server.close();
    }
  });

  test('a query that outlives serve.queryTimeoutMs is a 503, and the server keeps answering', async () => {
    // The store seeded above, with similarity searches that stall, standing in for a slow database.
    const stalled = (search: (...args: never[]) => Promise<unknown>) => async (...args: never[]) => {
      await new Promise((r) => setTimeout(r, 400));
      return search.apply(store, args);
    };
    const slow = new Proxy(store, {
      get: (target, prop, receiver) => (prop === 'nearestTiles' || prop === 'nearestTilesOfEach'
        ? stalled(target[prop])
        : Reflect.get(target, prop, receiver)),
    });
    const server = await startServer({ store: slow, config: testConfig({ queryTimeoutMs: 100 }) });
    try {
      const a = await call(server.url, '/v1/tiles/1/similar');
      assertProblem(a, 503, /100 ms/);
      assert.equal(a.headers.get('retry-after'), '1');
      assert.equal((await call(server.url, '/v1/tiles/1')).status, 200);
      await new Promise((r) => setTimeout(r, 500)); // the abandoned query finishes without writing anything
    } finally {
      await server.close();
    }
  });

  test('an abandoned chip search is told to stop: the embedder sees its signal abort at the 503', async () => {
    let steps = 0;
    let abortedAt: number | undefined;
    const server = await startServer({
      store, config: testConfig({ queryTimeoutMs: 100 }),
      // Works in 50 ms steps for a second, as a slow decode would, unless told to stop.
      embedChip: async (_tiff, _model, signal) => {
        signal.addEventListener('abort', () => { abortedAt = steps; });
        for (; steps < 20; steps++) {
          signal.throwIfAborted();
          await new Promise((r) => setTimeout(r, 50));
        }
        return { vector: new Float32Array(8), warnings: [] };
      },
    });
    try {
      const form = multipart([{ name: 'chip', data: fakeChip(1) }]);
      assertProblem(await call(server.url, '/v1/search', { method: 'POST', headers: { 'Content-Type': form.contentType }, body: form.body }), 503, /abandoned/);
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(abortedAt !== undefined && abortedAt < 20, 'the signal aborted while the work ran');
      assert.ok(steps <= abortedAt + 1, `the work went on for ${steps - abortedAt} steps after the abort`);
    } finally {
      await server.close();
    }
  });

  test('thumbnails render from the source GeoTIFF through the ingest renderer', async () => {
    const dir = tempDir();
    const thumbnails = new RasterThumbnails(store, 1);
    const server = await startServer({ store, config: testConfig(), renderThumbnail: (tile) => thumbnails.render(tile) });
    try {
      // A 64x64 three-band raster: red rises left to right, so the left tile renders darker than the right one.
      const size = 64;
      const band = (f: (x: number, y: number) => number) => Uint8Array.from({ length: size * size }, (_, p) => f(p % size, Math.floor(p / size)));
      const path = join(dir.path, 'ramp.tif');
      writeFileSync(path, encodeGeoTiff({ width: size, height: size, bands: [band((x) => x * 4), band(() => 100), band(() => 50)], geotransform: [-100, 0.001, 0, 40, 0, -0.001], epsg: 4326, geographic: true }));
      const square = (x0: number, y0: number, d: number) => ({ type: 'Polygon' as const, coordinates: [[[x0, y0], [x0 + d, y0], [x0 + d, y0 + d], [x0, y0 + d], [x0, y0]]] });
      const tiles = [0, 32].map((x) => ({ x, y: 0, size: 32, footprint: square(-100 + x * 0.001, 39.968, 0.032), centerLon: -100 + (x + 16) * 0.001, centerLat: 39.984, bbox: [-100 + x * 0.001, 39.968, -100 + (x + 32) * 0.001, 40] as [number, number, number, number], validFraction: 1 }));
      const rasterId = await store.replaceRaster({
        uri: path, contentHash: 'ramp', sizeBytes: 1, width: size, height: size, bandCount: 3, dtype: 'uint8', nodata: null, epsg: 4326, crsDef: null,
        geotransform: [-100, 0.001, 0, 40, 0, -0.001], georeferenced: true, footprint: square(-100, 39.936, 0.064),
        bandStats: [1, 2, 3].map((b) => ({ band: b, count: size * size, min: 0, max: 255, mean: 100, std: 50, p2: 0, p98: 255 })), tileSize: 32, stride: 32,
      }, tiles);
      const [left, right] = await store.tilesOfRaster(rasterId);
      const red = async (id: number) => {
        const a = await call(server.url, `/v1/tiles/${id}/thumbnail.png`);
        assert.equal(a.status, 200);
        assert.equal(a.type, 'image/png');
        // The tile and 8 px of context each side, 48 px, enlarged 3x to 144 px, the tile outlined from 24 to 119.
        const png = PNG.sync.read(a.body);
        assert.deepEqual([png.width, png.height], [144, 144]);
        const at = (x: number, y: number) => [...png.data.subarray((y * 144 + x) * 4, (y * 144 + x) * 4 + 4)];
        assert.deepEqual(at(24, 70), [255, 214, 0, 255], 'the outline');
        assert.deepEqual(at(119, 70), [255, 214, 0, 255], 'the outline');
        assert.equal(at(5, 5)[3], 0, 'above the raster: transparent');
        return at(72, 72)[0];
      };
      const [l, r] = [await red(left.id), await red(right.id)];
      assert.ok(l < r, `left ${l} should be darker than right ${r}`);
      const leftEdge = PNG.sync.read((await call(server.url, `/v1/tiles/${left.id}/thumbnail.png`)).body);
      assert.equal(leftEdge.data[(70 * 144 + 5) * 4 + 3], 0, 'left of the raster: transparent');
      const rightContext = PNG.sync.read((await call(server.url, `/v1/tiles/${right.id}/thumbnail.png`)).body);
      assert.equal(rightContext.data[(70 * 144 + 5) * 4 + 3], 255, 'the left tile is context of the right one');
      // A raster whose file has gone is a server fault, reported as a problem, and the service keeps going.
      const { id: _id, ingestedAt: _at, ...record } = await store.raster(rasterId);
      const goneId = await store.replaceRaster({ ...record, uri: join(dir.path, 'gone.tif') }, tiles.slice(0, 1));
      const [gone] = await store.tilesOfRaster(goneId);
      assertProblem(await call(server.url, `/v1/tiles/${gone.id}/thumbnail.png`), 500);
      assert.equal((await call(server.url, `/v1/tiles/${left.id}/thumbnail.png`)).status, 200);
    } finally {
      await server.close();
      await thumbnails.close();
      dir.cleanup();
    }
  });

  test('tilevec serve: starts on 127.0.0.1, answers, stops on SIGTERM; a missing --model fails at start', async () => {
    const dir = tempDir();
    try {
      const missing = await runCli(['--db', dir.path, 'serve', '--port', '0', '--model', 'nope']);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /model 'nope' does not exist/);

      const { spawn } = await import('node:child_process');
      const { CLI, ROOT } = await import('./helpers.ts');
      const child = spawn(process.execPath, [CLI, '--db', dir.path, 'serve', '--port', '0'], { cwd: ROOT, env: { ...process.env, TILEVEC_DB: '' } });
      const url = await new Promise<string>((resolve, reject) => {
        let err = '';
        child.stderr.on('data', (d) => {
          err += d;
          const m = /serving on (http:\/\/[^\s]+)/.exec(err);
          if (m) resolve(m[1]);
        });
        child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
        setTimeout(() => reject(new Error(`serve did not start: ${err}`)), 60_000);
      });
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal((await call(url, '/healthz')).status, 200);
      assertProblem(await call(url, '/readyz'), 503);
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      dir.cleanup();
    }
  });
});
