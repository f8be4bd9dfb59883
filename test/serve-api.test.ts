import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { Store } from '../src/store/index.ts';
import { startServer, type RunningServer } from '../src/serve/index.ts';
import { bruteForce, seedSynthetic, testConfig, type SyntheticWorld } from './serve-fixtures.ts';

/** A GET that shows the bytes as sent (fetch would undo the gzip). */
function rawGet(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    request(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    }).on('error', reject).end();
  });
}

describe('API conventions', () => {
  let store: Store;
  let server: RunningServer;
  let world: SyntheticWorld;
  before(async () => {
    store = await Store.open('memory://');
    world = await seedSynthetic(store, { rasters: 2, side: 6 });
    server = await startServer({ store, config: testConfig() });
  });
  after(async () => {
    await server?.close();
    await store?.close();
  });

  test('gzip when asked, the same JSON as without; small answers are sent plain', async () => {
    const url = `${server.url}/v1/tiles?limit=50`;
    const plain = await rawGet(url);
    const zipped = await rawGet(url, { 'Accept-Encoding': 'gzip' });
    assert.equal(zipped.headers['content-encoding'], 'gzip');
    assert.match(String(zipped.headers.vary), /Accept-Encoding/);
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.deepEqual(JSON.parse(gunzipSync(zipped.body).toString()), JSON.parse(plain.body.toString()));
    assert.ok(zipped.body.length * 4 < plain.body.length, `gzip ${zipped.body.length} B vs ${plain.body.length} B`);
    const small = await rawGet(`${server.url}/healthz`, { 'Accept-Encoding': 'gzip' });
    assert.equal(small.headers['content-encoding'], undefined);
  });

  test('unknown query parameters are a 400 naming them, on routes with and without parameters', async () => {
    const id = [...world.vectors.keys()][0];
    for (const path of ['/v1/tiles?limt=5', `/v1/tiles/${id}/similar?exclude_same_raster=true`, '/v1/tiles/at?lon=0&lat=0&r=1', '/v1/models?all=1', `/v1/tiles/${id}?fields=id`]) {
      const res = await fetch(`${server.url}${path}`);
      assert.equal(res.status, 400, path);
      const body = await res.json() as { detail: string };
      assert.match(body.detail, /limt|exclude_same_raster|\br\b|all|fields/, path);
    }
  });

  test('a FeatureCollection has the bbox of its features; a filtered search says whether it is complete', async () => {
    const ids = [...world.vectors.keys()].sort((a, b) => a - b);
    const page = await (await fetch(`${server.url}/v1/tiles?limit=10`)).json() as { bbox: number[]; features: { bbox: number[] }[] };
    assert.deepEqual(page.bbox, [0, 1, 2, 3].map((i) => (i < 2 ? Math.min : Math.max)(...page.features.map((f) => f.bbox[i]))));
    const unfiltered = await (await fetch(`${server.url}/v1/tiles/${ids[0]}/similar?k=5`)).json() as Record<string, unknown>;
    assert.equal(unfiltered.complete, undefined);
    // A bbox that keeps 4 tiles of raster 0 (the query among them) cannot fill k = 10: complete, with all 3 others.
    const first = await store.tile(ids[0]);
    const bbox = [first.bbox[0], first.bbox[1], first.bbox[2] + 0.01, first.bbox[3] + 0.01].map((v, i) => v + (i < 2 ? 1e-6 : -1e-6));
    const filtered = await (await fetch(`${server.url}/v1/tiles/${ids[0]}/similar?k=10&bbox=${bbox.join(',')}`)).json() as { complete: boolean; features: { id: number }[] };
    assert.equal(filtered.complete, true);
    const inBox = new Set((await store.tilesInBbox(bbox as [number, number, number, number], { limit: 100 })).map((t) => t.id));
    assert.deepEqual(filtered.features.map((f) => f.id), bruteForce(world, world.vectors.get(ids[0])!, 10, (t) => t !== ids[0] && inBox.has(t)).map((e) => e.id));
  });

  test('OpenAPI: every route has a curl example, every parameter is camelCase, 422 is declared where it can happen', async () => {
    const doc = await (await fetch(`${server.url}/openapi.json`)).json() as { paths: Record<string, Record<string, { 'x-codeSamples'?: { source: string }[]; parameters: { name: string }[]; responses: Record<string, unknown> }>> };
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        assert.match(op['x-codeSamples']?.[0]?.source ?? '', /^curl -s/, `${method} ${path} has a curl example`);
        for (const p of op.parameters) assert.match(p.name, /^[a-z][a-zA-Z]*$/, `${method} ${path}: ${p.name}`);
      }
    }
    for (const [path, method] of [['/v1/search', 'post'], ['/v1/tiles/{id}/similar', 'get'], ['/v1/change', 'get'], ['/v1/rasters/{id}/tiles/{z}/{x}/{y}.png', 'get']]) {
      assert.ok(doc.paths[path][method].responses['422'], `${method} ${path} declares 422`);
    }
  });
});
