import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { LogisticRegression } from '../src/classify/index.ts';
import { Store } from '../src/store/index.ts';
import { startServer, type RunningServer } from '../src/serve/index.ts';
import { onBothEngines } from './helpers.ts';
import { ROCCHIO_GAMMA } from '../src/serve/feedback.ts';
import { bruteForce, rng, seedSynthetic, testConfig, type SyntheticWorld } from './serve-fixtures.ts';

const DIM = 8;

/**
 * Embeddings where the answer is known: a tile is relevant when its first component is high (+2 against −2),
 * while seven other components are loud noise (σ 3), so L2 distance to any query is mostly noise.
 */
function plantedVectors(ids: number[], seed: number): { vectors: Map<number, Float32Array>; relevant: Set<number> } {
  const random = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const relevant = new Set(ids.filter((_, i) => i % 5 === 0));
  const vectors = new Map(ids.map((id) => [id, Float32Array.from({ length: DIM }, (_, j) => (j === 0 ? (relevant.has(id) ? 2 : -2) + 0.2 * gauss() : 3 * gauss()))]));
  return { vectors, relevant };
}

function suite(engine: string, open: () => Promise<{ db: string; cleanup: () => Promise<void> | void }>) {
  describe(`POST /v1/search with feedback (${engine})`, () => {
    let cleanup: () => Promise<void> | void = () => {};
    let store: Store;
    let server: RunningServer;
    let world: SyntheticWorld;
    let relevant: Set<number>;
    let ids: number[];

    const search = async (body: Record<string, unknown>) => {
      const res = await fetch(`${server.url}/v1/search`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      return { status: res.status, body: await res.json() as { method?: string; features: { id: number; properties: { distance?: number; score?: number } }[]; detail?: string } };
    };

    before(async () => {
      const where = await open();
      cleanup = where.cleanup;
      store = await Store.open(where.db);
      world = await seedSynthetic(store, { rasters: 1, side: 15, dim: DIM, index: false });
      ids = [...world.vectors.keys()].sort((a, b) => a - b);
      const planted = plantedVectors(ids, 11);
      relevant = planted.relevant;
      await store.upsertEmbeddings(world.model, ids.map((id) => ({ tileId: id, vector: planted.vectors.get(id)! })));
      await store.ensureEmbeddingIndex(world.model);
      world.vectors = planted.vectors;
      server = await startServer({ store, config: testConfig() });
    });
    after(async () => {
      await server?.close();
      await store?.close();
      await cleanup();
    });

    test('few marks: the Rocchio query (1 + γ)·mean(P) − γ·mean(N), ranked as brute force ranks it, marks left out', async () => {
      const positives = [ids[0], ids[5]];
      const negatives = [ids[1]];
      const { status, body } = await search({ positives, negatives, k: 10 });
      assert.equal(status, 200);
      assert.equal(body.method, 'rocchio');
      const dim = DIM;
      const mean = (list: number[]) => Array.from({ length: dim }, (_, j) => list.reduce((s, id) => s + world.vectors.get(id)![j], 0) / list.length);
      const [p, n] = [mean(positives), mean(negatives)];
      const q = p.map((v, j) => (1 + ROCCHIO_GAMMA) * v - ROCCHIO_GAMMA * n[j]);
      const expected = bruteForce(world, q, 10, (id) => ![...positives, ...negatives].includes(id));
      assert.deepEqual(body.features.map((f) => f.id), expected.map((e) => e.id));
      for (const [i, f] of body.features.entries()) assert.ok(Math.abs(f.properties.distance! - expected[i].distance) < 1e-4);
    });

    test('enough marks of both kinds: logistic regression, ranked by its own probabilities, and the planted answer found', async () => {
      const rel = ids.filter((id) => relevant.has(id));
      const irr = ids.filter((id) => !relevant.has(id));
      const positives = rel.slice(0, 5);
      const negatives = irr.slice(0, 5);
      const k = rel.length - positives.length;
      const logistic = await search({ positives, negatives, k });
      assert.equal(logistic.status, 200);
      assert.equal(logistic.body.method, 'logistic');
      // The reference: the classifier fitted on the same marks, its probabilities over every unmarked tile.
      const clf = new LogisticRegression({ l2: 0.1 }).fit([...positives, ...negatives].map((id) => world.vectors.get(id)!), [...positives.map(() => 1), ...negatives.map(() => 0)]);
      const unmarked = ids.filter((id) => ![...positives, ...negatives].includes(id));
      const proba = clf.predictProba(unmarked.map((id) => world.vectors.get(id)!)).map((pr) => pr[1]);
      const reference = unmarked.map((id, i) => ({ id, p: proba[i] })).sort((a, b) => b.p - a.p).slice(0, k);
      assert.deepEqual(logistic.body.features.map((f) => f.id), reference.map((r) => r.id));
      for (const [i, f] of logistic.body.features.entries()) assert.ok(Math.abs(f.properties.score! - reference[i].p) < 1e-4);

      const precision = (features: { id: number }[]) => features.filter((f) => relevant.has(f.id)).length / features.length;
      // The same marks with too few negatives: the Rocchio vector, lost in the noisy components.
      const rocchio = await search({ positives, negatives: negatives.slice(0, 2), k });
      assert.equal(rocchio.body.method, 'rocchio');
      console.log(`precision@${k}: logistic ${precision(logistic.body.features).toFixed(3)}, rocchio ${precision(rocchio.body.features).toFixed(3)}`);
      assert.ok(precision(logistic.body.features) >= 0.95, `logistic precision ${precision(logistic.body.features)}`);
      assert.ok(precision(rocchio.body.features) < precision(logistic.body.features) - 0.3);
    });

    test('bad feedback is a 400 naming the fault; a tile without an embedding is a 404', async () => {
      const cases: [Record<string, unknown>, RegExp][] = [
        [{ negatives: [ids[0]] }, /negatives go with positives|exactly one of/],
        [{ positives: [ids[0], ids[1]], negatives: [ids[1]] }, /marked both positive and negative/],
        [{ positives: [] }, /positives/],
        [{ positives: [ids[0]], tileId: ids[1] }, /exactly one of/],
        [{ positives: [ids[0]], excludeSameRaster: true }, /no single query raster/],
      ];
      for (const [body, message] of cases) {
        const res = await search(body);
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.match(res.body.detail!, message);
      }
      const missing = await search({ positives: [ids[0], 987654] });
      assert.equal(missing.status, 404);
      assert.match(missing.body.detail!, /987654/);
    });
  });
}

onBothEngines(suite);
