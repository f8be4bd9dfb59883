import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Store } from '../src/store/index.ts';
import { classifiersDir, createClassifier, saveClassifier } from '../src/classify/index.ts';
import { startServer, type RunningServer } from '../src/serve/index.ts';
import { MAX_CLASSIFY_TILE_IDS } from '../src/serve/classify-route.ts';
import { loadConfig } from '../src/config.ts';
import { seedSynthetic, type SyntheticWorld } from './serve-fixtures.ts';
import { ROOT, tempDir } from './helpers.ts';

/** Class 1 where the first embedding coordinate is negative, class 2 elsewhere: a rule logreg learns exactly. */
const truth = (v: Float32Array) => (v[0] < 0 ? 1 : 2);

describe('POST /v1/classify', () => {
  let dir: ReturnType<typeof tempDir>;
  let store: Store;
  let world: SyntheticWorld;
  let server: RunningServer;
  let unembedded: number;

  before(async () => {
    dir = tempDir('tilevec-serve-classify-');
    store = await Store.open(join(dir.path, 'db'));
    world = await seedSynthetic(store, { rasters: 2, side: 6, dim: 8, withoutEmbedding: 1 });
    await store.registerModel({ name: 'other', backbone: {}, dim: 8, bands: [1], tileSize: 32, normalization: {}, metrics: {}, artifactPath: '/dev/null' });
    unembedded = [...world.rasterOf.keys()].find((id) => !world.vectors.has(id))!;
    const config = loadConfig({ db: 'memory://', logLevel: 'silent', modelsDir: join(dir.path, 'models'), serve: { port: 0 } }, {});
    const classifiers = classifiersDir(config);
    mkdirSync(classifiers, { recursive: true });
    const rows = [...world.vectors.values()];
    const classes = [{ id: 1, name: 'west' }, { id: 2, name: 'east' }];
    const fit = createClassifier('logreg').fit(rows, rows.map(truth));
    saveClassifier(join(classifiers, 'landcover.json'), fit, { model: { id: world.model.id, name: world.model.name }, featureSet: 'embedding', dim: 8, classes });
    saveClassifier(join(classifiers, 'baseline.json'), fit, { model: null, featureSet: 'band-mean-std', dim: 8, classes });
    // A saved file whose weights lost a row: it must fail when it loads, not when it predicts.
    const damaged = JSON.parse(readFileSync(join(classifiers, 'landcover.json'), 'utf8'));
    damaged.state.weights.pop();
    writeFileSync(join(classifiers, 'damaged.json'), JSON.stringify(damaged));
    server = await startServer({ store, config });
  });
  after(async () => {
    await server?.close();
    await store?.close();
    dir?.cleanup();
  });

  const post = async (body: unknown) => {
    const res = await fetch(`${server.url}/v1/classify`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as any };
  };

  test('by tile ids: one prediction per tile, from the saved classifier found by name', async () => {
    const ids = [...world.vectors.keys()].slice(0, 12);
    const { status, body } = await post({ classifier: 'landcover', tileIds: ids });
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.classifier, 'landcover');
    assert.equal(body.model, world.model.name);
    assert.deepEqual(body.classes, [{ id: 1, name: 'west' }, { id: 2, name: 'east' }]);
    assert.deepEqual(body.predictions.map((p: { tileId: number }) => p.tileId), [...ids].sort((a, b) => a - b));
    for (const p of body.predictions) {
      assert.equal(p.classId, truth(world.vectors.get(p.tileId)!));
      assert.equal(p.className, p.classId === 1 ? 'west' : 'east');
      assert.ok(p.probability > 0.5 && p.probability <= 1);
    }
  });

  test('by bbox: every embedded tile of the first raster, none of the second', async () => {
    const first = [...world.rasterOf].filter(([id, r]) => r === world.rasterIds[0] && world.vectors.has(id)).map(([id]) => id);
    // The first raster spans 6 tiles of 0.01° from (-110, 37); the second starts 0.075° east of it.
    const { status, body } = await post({ classifier: 'landcover', bbox: [-109.9995, 37.0005, -109.9405, 37.0595] });
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(body.predictions.map((p: { tileId: number }) => p.tileId), first.sort((a, b) => a - b));
  });

  test('bad requests are problems: unknown classifier 404, path-like name 400, both or neither of tileIds and bbox 400', async () => {
    let r = await post({ classifier: 'nope', tileIds: [1] });
    assert.equal(r.status, 404);
    assert.match(r.body.detail, /no classifier 'nope'/);
    r = await post({ classifier: '../../etc/passwd', tileIds: [1] });
    assert.equal(r.status, 400);
    assert.match(r.body.detail, /classifier name/);
    r = await post({ classifier: 'landcover' });
    assert.equal(r.status, 400);
    assert.match(r.body.detail, /exactly one of tileIds and bbox/);
    r = await post({ classifier: 'landcover', tileIds: [1], bbox: [0, 0, 1, 1] });
    assert.equal(r.status, 400);
    for (const body of [{ classifier: 'landcover', tileIds: ['1'] }, { classifier: 'landcover', bbox: [1, 1, 0, 0] }, { classifier: 'landcover', tileIds: [1], extra: 1 }]) {
      assert.equal((await post(body)).status, 400, JSON.stringify(body));
    }
    const raw = (type: string, text: string) => fetch(`${server.url}/v1/classify`, { method: 'POST', headers: { 'Content-Type': type }, body: text });
    assert.equal((await raw('application/json', '{"classifier": ')).status, 400);
    assert.equal((await raw('text/plain', '{"classifier": "landcover", "tileIds": [1]}')).status, 415);
  });

  test('a damaged classifier file is a 422 naming the fault, not a 500', async () => {
    const r = await post({ classifier: 'damaged', tileIds: [[...world.vectors.keys()][0]] });
    assert.equal(r.status, 422, JSON.stringify(r.body));
    assert.match(r.body.detail, /^classifier 'damaged' is damaged: its logreg state does not fit \(weights: one row of weights per class\)/);
    assert.ok(!r.body.detail.includes(dir.path), 'the server\'s paths stay on the server');
  });

  test('a tile without an embedding is a 404; another model, or a baseline classifier, is a 400', async () => {
    let r = await post({ classifier: 'landcover', tileIds: [unembedded] });
    assert.equal(r.status, 404);
    assert.match(r.body.detail, new RegExp(`tiles ${unembedded} have no embedding`));
    r = await post({ classifier: 'landcover', tileIds: [[...world.vectors.keys()][0]], model: 'other' });
    assert.equal(r.status, 400);
    assert.match(r.body.detail, /trained on embeddings of model 'synthetic'.*model 'other'/);
    r = await post({ classifier: 'baseline', tileIds: [[...world.vectors.keys()][0]] });
    assert.equal(r.status, 400);
    assert.match(r.body.detail, /band-mean-std/);
  });

  test('the OpenAPI document describes the route as it behaves, under the package\'s version', async () => {
    const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as any;
    assert.equal(doc.info.version, JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
    const op = doc.paths['/v1/classify']?.post;
    assert.ok(op, Object.keys(doc.paths).join(', '));
    const body = op.requestBody.content['application/json'].schema;
    assert.deepEqual(Object.keys(body.properties).sort(), ['bbox', 'classifier', 'model', 'tileIds']);
    assert.deepEqual(body.required, ['classifier']);
    assert.equal(body.additionalProperties, false, 'unknown fields are refused, as the extra-field request above shows');
    assert.equal(body.properties.tileIds.maxItems, MAX_CLASSIFY_TILE_IDS);
    assert.deepEqual(Object.keys(op.responses).sort(), ['200', '400', '404', '415', '422']);
    for (const status of ['400', '404', '415', '422']) assert.deepEqual(op.responses[status].content['application/problem+json'].schema, { $ref: '#/components/schemas/Problem' });
  });
});
