import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import fc from 'fast-check';
import { Store } from '../src/store/index.ts';
import { startServer, type RunningServer } from '../src/serve/index.ts';
import { seedSynthetic, testConfig } from './serve-fixtures.ts';

/** Bad input of every kind must get a 4xx problem, never a 5xx. */

const NASTY = [
  '', ' ', '0', '-0', '1e308', '1e309', '-1e999', 'NaN', 'Infinity', '0x10', '1_000', '９', '99999999999999999999999999', '9007199254740993',
  "' or 1=1 --", '1; drop table tiles', '1)); select pg_sleep(10); --', '$1', '%00', '\u0000', '<script>alert(1)</script>', '../../etc/passwd',
  '{"a":1}', '[1,2,3,4]', 'null', 'true', '🗺️', 'a'.repeat(5000), '1,2,3,4,5', ',,,', '-180,-90,180,90', '1,1,0,0',
];

const FUZZ_TOKEN = 'fuzz-token-fuzz-token-0123456';
const ROUTES = ['/v1/tiles', '/v1/tiles/at', '/v1/tiles/1', '/v1/tiles/1/similar', '/v1/tiles/1/thumbnail.png', '/v1/models', '/readyz'];
const QUERY_KEYS = ['k', 'bbox', 'model', 'limit', 'cursor', 'lon', 'lat', 'excludeSameRaster'];

interface Raw {
  status: number;
  type: string;
  body: string;
}

/** A raw HTTP request, so the body and headers can be anything a client might send (fetch would tidy them). */
function send(base: string, method: string, path: string, headers: Record<string, string>, body?: Buffer | string): Promise<Raw> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    // A fresh connection each time: a socket the server closed after a 413 must not be reused (a client-side reset).
    const req = request({ host: url.hostname, port: url.port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** A malformed request gets a 4xx problem: neither a 5xx nor a success. */
function assertClientError(r: Raw, what: string): void {
  assert.ok(r.status >= 400 && r.status < 500, `${what} -> ${r.status} ${r.body.slice(0, 300)}`);
  assert.match(r.type, /^application\/problem\+json/, `${what} -> ${r.status} with ${r.type}`);
}

/** A generated request, which may happen to be valid: a success or a 4xx problem, never a 5xx. */
function assertNoServerError(r: Raw, what: string): void {
  assert.ok(r.status < 500, `${what} -> ${r.status} ${r.body.slice(0, 300)}`);
  if (r.status >= 400) assertClientError(r, what);
}

/** The query parameters each route reads (others are ignored, as HTTP APIs commonly do). */
const ROUTE_QUERY: Record<string, string[]> = {
  '/v1/tiles/1/similar': ['k', 'model', 'bbox', 'excludeSameRaster'],
  '/v1/tiles': ['bbox', 'limit', 'cursor'],
};

/** The nasty values that are well-formed where they go: those must succeed. */
const VALID = new Set(['/v1/tiles/1/similar?excludeSameRaster=0', '/v1/tiles/1/similar?excludeSameRaster=true', '/v1/tiles/1/similar?bbox=-180%2C-90%2C180%2C90', '/v1/tiles?bbox=-180%2C-90%2C180%2C90']);

describe('serve: malformed requests never get a 5xx', () => {
  let store: Store;
  let server: RunningServer;
  let base: string;

  before(async () => {
    store = await Store.open('memory://');
    await seedSynthetic(store, { rasters: 2, side: 4 });
    server = await startServer({ store, config: testConfig({ maxK: 100, token: FUZZ_TOKEN }), embedChip: async () => ({ vector: new Float32Array(8), warnings: [] }), renderThumbnail: async () => Buffer.from('png'), limits: { chipBytes: 32 * 1024 } });
    base = server.url;
  });
  after(async () => {
    await server?.close();
    await store?.close();
  });

  test('hand-picked nasty values in every path and query slot', async () => {
    let valid = 0;
    for (const value of NASTY) {
      const enc = encodeURIComponent(value);
      // An empty id is the tile list's own path.
      if (value !== '') assertClientError(await send(base, 'GET', `/v1/tiles/${enc}`, {}), `tile id ${value}`);
      assertClientError(await send(base, 'GET', `/v1/tiles/${enc}/similar`, {}), `similar id ${value}`);
      for (const [route, keys] of Object.entries(ROUTE_QUERY)) {
        for (const key of keys) {
          const path = `${route}?${key}=${enc}`;
          const r = await send(base, 'GET', path, {});
          if (VALID.has(path)) assert.equal(r.status, 200, `${path} is well-formed: ${r.body.slice(0, 300)}`);
          else assertClientError(r, `${route} ${key}=${value}`);
          valid += VALID.has(path) ? 1 : 0;
        }
      }
      // 0 and -0 are a longitude and a latitude.
      if (value !== '0' && value !== '-0') {
        assertClientError(await send(base, 'GET', `/v1/tiles/at?lon=${enc}&lat=0`, {}), `at lon=${value}`);
        assertClientError(await send(base, 'GET', `/v1/tiles/at?lon=0&lat=${enc}`, {}), `at lat=${value}`);
      }
    }
    assert.equal(valid, VALID.size);
  });

  test('malformed, mistyped, huge and oversize JSON bodies', async () => {
    const json = { 'Content-Type': 'application/json' };
    const bodies = [
      '', '{', '{"tileId": 1,}', "{'tileId': 1}", 'null', '1', '"x"', '[]', '{"tileId": 1e400}', '{"tileId": 1e308}', '{"tileId": -0}',
      '{"tileId": 1.0000000000000002}', '{"tileId": "1; drop table tiles"}', '{"tileId": {"$gt": 0}}', '{"tileId": [1]}', '{"tileId": true}',
      '{"vector": "1,2,3"}', '{"vector": [null, 1]}', '{"vector": [1e39, 1, 1, 1, 1, 1, 1, 1]}', `{"vector": [${Array(8).fill('3.4e38').join(',')}]}`,
      `{"vector": [${Array(2001).fill('0').join(',')}]}`, '{"lon": 1e308, "lat": 0}', '{"lon": "0", "lat": "0"}', '{"tileId": 1, "k": 1e9}',
      '{"tileId": 1, "bbox": "1,2,3,4"}', '{"tileId": 1, "model": "\\u0000"}', '{"__proto__": {"k": 5}, "tileId": 1}', '{"constructor": {"prototype": {}}}',
      '[' .repeat(100_000) + ']'.repeat(100_000), `{"tileId": 1, "pad": "${'x'.repeat(300 * 1024)}"}`, '\u0000\u0001\u0002', '\xff\xfe{}',
    ];
    for (const body of bodies) {
      for (const path of ['/v1/search', '/v1/analogy']) assertClientError(await send(base, 'POST', path, json, body), `${path} ${body.slice(0, 60)}`);
    }
    const big = await send(base, 'POST', '/v1/search', json, `{"vector": [${Array(100_000).fill('0.123456789').join(',')}]}`);
    assert.equal(big.status, 413);
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin-99', 'application/json; charset=utf-16', 'multipart/form-data; boundary=']) {
      assertClientError(await send(base, 'POST', '/v1/search', { 'Content-Type': type }, '{"tileId": 1}'), `content type ${type}`);
    }
    assertClientError(await send(base, 'POST', '/v1/search', { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' }, 'not gzip'), 'bad gzip');
    assertClientError(await send(base, 'POST', '/v1/search', { 'Content-Type': 'application/json', 'Content-Encoding': 'br-x' }, '{}'), 'unknown encoding');
    assertClientError(await send(base, 'GET', '/v1/tiles/%E0%A4%A', {}), 'bad percent-encoding');
    assertClientError(await send(base, 'GET', '/v1/tiles?bbox=%ZZ', {}), 'bad percent-encoding in query');
  });

  test('random JSON bodies (fast-check, seeded)', async () => {
    const field = fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constantFrom(...NASTY), fc.array(fc.double(), { maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }));
    const body = fc.record({ tileId: field, lon: field, lat: field, vector: field, k: field, bbox: field, model: field, a: field, b: field, c: field, excludeSameRaster: field }, { requiredKeys: [] });
    await fc.assert(fc.asyncProperty(body, fc.constantFrom('/v1/search', '/v1/analogy'), async (b, path) => {
      const r = await send(base, 'POST', path, { 'Content-Type': 'application/json' }, JSON.stringify(b));
      assertNoServerError(r, `${path} ${JSON.stringify(b).slice(0, 200)}`);
    }), { numRuns: 300, seed: 42 });
  });

  test('random query strings and paths (fast-check, seeded)', async () => {
    const value = fc.oneof(fc.string(), fc.constantFrom(...NASTY), fc.integer().map(String), fc.double().map(String));
    await fc.assert(fc.asyncProperty(fc.constantFrom(...ROUTES), fc.dictionary(fc.constantFrom(...QUERY_KEYS), value), async (route, query) => {
      const qs = new URLSearchParams(query).toString();
      assertNoServerError(await send(base, 'GET', `${route}?${qs}`, {}), `${route}?${qs}`);
    }), { numRuns: 300, seed: 7 });
    await fc.assert(fc.asyncProperty(fc.string({ maxLength: 40 }), async (segment) => {
      assertNoServerError(await send(base, 'GET', `/v1/tiles/${encodeURIComponent(segment)}/similar`, {}), `segment ${segment}`);
    }), { numRuns: 200, seed: 11 });
  });

  test('malformed multipart uploads', async () => {
    const boundary = 'B';
    const type = { 'Content-Type': `multipart/form-data; boundary=${boundary}` };
    const tiff = '\x49\x49\x2a\x00\x08\x00\x00\x00';
    const bodies = [
      '', '--B--', '--B\r\n\r\nno headers\r\n--B--', '--B\r\nContent-Disposition: form-data\r\n\r\nx\r\n--B--',
      '--B\r\nContent-Disposition: attachment; name="chip"\r\n\r\nx\r\n--B--', `--B\r\nContent-Disposition: form-data; name="chip"\r\n\r\n${tiff}`,
      `--B\r\nbroken header line\r\n\r\n${tiff}\r\n--B--`, `--B\r\nContent-Disposition: form-data; name="chip"\r\n\r\n${tiff}\r\n--B\r\nContent-Disposition: form-data; name="chip"\r\n\r\n${tiff}\r\n--B--`,
      `--B\r\nContent-Disposition: form-data; name="chip"\r\n\r\n${tiff}\r\n--B\r\nContent-Disposition: form-data; name="k"\r\n\r\n1e999\r\n--B--`,
      `--B\r\nContent-Disposition: form-data; name="chip"\r\n\r\n${tiff}\r\n--B\r\nContent-Disposition: form-data; name="bbox"\r\n\r\n' or 1=1\r\n--B--`,
      `--B\r\n${'X-Pad: y\r\n'.repeat(1000)}Content-Disposition: form-data; name="chip"\r\n\r\n${tiff}\r\n--B--`,
      `${`--B\r\nContent-Disposition: form-data; name="f"\r\n\r\n1\r\n`.repeat(40)}--B--`,
      `--B\r\nContent-Disposition: form-data; name="chip"\r\n\r\n${tiff}${'z'.repeat(40 * 1024)}\r\n--B--`,
    ];
    for (const body of bodies) assertClientError(await send(base, 'POST', '/v1/search', type, Buffer.from(body, 'latin1')), `multipart ${JSON.stringify(body.slice(0, 80))}`);
  });

  test('10,000 generated malformed requests, 16 at a time: no 5xx', { timeout: 600_000 }, async () => {
    const json = { 'Content-Type': 'application/json' };
    const auth = { ...json, Authorization: `Bearer ${FUZZ_TOKEN}` };
    const values = fc.sample(fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constantFrom(...NASTY), fc.double(), fc.integer(), fc.string({ unit: 'binary' })), { numRuns: 4000, seed: 2024 });
    const strings = fc.sample(fc.oneof(fc.string({ unit: 'binary', maxLength: 60 }), fc.constantFrom(...NASTY)), { numRuns: 4000, seed: 77 });
    let seed = 5;
    const random = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)];
    const bodyKeys = ['tileId', 'lon', 'lat', 'vector', 'k', 'bbox', 'model', 'a', 'b', 'c', 'excludeSameRaster', 'inputs', 'tileSize', 'stride', 'maxNodata', 'bands', 'force', '__proto__'];
    const requests: (() => Promise<[string, Raw]>)[] = [];
    for (let i = 0; i < 10_000; i++) {
      const kind = i % 10;
      if (kind < 4) {
        const route = pick([...ROUTES, '/v1/admin/status', '/v1/ingest', '/nope', '/v1/tiles/1/thumbnail.png']);
        const qs = Array.from({ length: 1 + Math.floor(random() * 3) }, () => `${encodeURIComponent(pick(QUERY_KEYS))}=${encodeURIComponent(pick(strings))}`).join('&');
        requests.push(async () => [`GET ${route}?${qs}`, await send(base, 'GET', `${route}?${qs}`, {})]);
      } else if (kind < 8) {
        const path = pick(['/v1/search', '/v1/analogy', '/v1/ingest', '/v1/ingest']);
        const body: Record<string, unknown> = {};
        for (let k = 0; k < 1 + Math.floor(random() * 4); k++) body[pick(bodyKeys)] = pick(values);
        if (path === '/v1/ingest' && random() < 0.5) body.inputs = [pick(strings), pick(['/etc/passwd', 'http://169.254.169.254/', '../../x.tif', 'file:///etc/shadow'])];
        const text = JSON.stringify(body);
        const cut = random() < 0.2 ? text.slice(0, Math.floor(random() * text.length)) : text;
        requests.push(async () => [`POST ${path} ${cut.slice(0, 120)}`, await send(base, 'POST', path, random() < 0.7 ? auth : json, cut)]);
      } else if (kind === 8) {
        const path = pick(['/v1/search', '/v1/ingest', '/v1/analogy']);
        const n = pick([10, 1000, 300 * 1024, 2 ** 20]);
        const raw = Buffer.alloc(n, pick(['[', '{', '9', 'a', '\u0000']));
        const type = pick(['application/json', 'text/plain', 'application/octet-stream']);
        // The server answers 413 and closes before an oversize body is all sent, so the client may see a reset.
        requests.push(async () => [`POST ${path} ${n} bytes`, await send(base, 'POST', path, { ...auth, 'Content-Type': type }, raw)
          .catch((err: NodeJS.ErrnoException) => {
            if (n > 256 * 1024 && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) return { status: 413, type: '', body: 'reset while sending' };
            throw err;
          })]);
      } else {
        const path = pick(['/v1/admin/status', '/v1/ingest']);
        const header = pick(['Bearer', 'Bearer ', `Bearer ${FUZZ_TOKEN}x`, 'Basic Zm9vOmJhcg==', `bearer ${'a'.repeat(4000)}`, 'Bearer \' or 1=1']);
        requests.push(async () => [`${path} auth ${header.slice(0, 30)}`, await send(base, path === '/v1/ingest' ? 'POST' : 'GET', path, { ...json, Authorization: header }, '{"inputs":["/etc/passwd"]}')]);
      }
    }
    const fivexx: string[] = [];
    const statuses = new Map<number, number>();
    for (let i = 0; i < requests.length; i += 16) {
      const settled = await Promise.all(requests.slice(i, i + 16).map((f, j) => f().catch((err: Error): [string, Raw] => [`request ${i + j}: ${err.message}`, { status: 599, type: '', body: '' }])));
      for (const [what, r] of settled) {
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        if (r.status >= 500) fivexx.push(`${what} -> ${r.status} ${r.body.slice(0, 200)}`);
      }
    }
    console.log(`serve fuzz: ${requests.length} requests; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`);
    assert.deepEqual(fivexx.slice(0, 20), []);
  });

  test('the server still answers after all of that', async () => {
    const r = await send(base, 'GET', '/v1/tiles/1/similar?k=3', {});
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).features.length, 3);
  });
});
