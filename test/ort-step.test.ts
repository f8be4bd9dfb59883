import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { Adam, DEFAULT_ADAM } from '../src/train/adam.ts';
import { DEFAULT_TRIPLET_LOSS, tripletLoss, type TripletLossOptions } from '../src/train/loss.ts';
import {
  BatchStatsRecorder, createBackbone, createGradientFunction, siloCount, type BackboneConfig, type HeadPooling, type Projector, type RevBiFPN,
} from '../src/model/index.ts';
import { OrtTrainingStep, type BatchShape } from '../src/train/ort-step/index.ts';
import { Ops } from '../src/train/ort-step/ops.ts';
import { buildStepGraph } from '../src/train/ort-step/step-graph.ts';
import { GraphBuilder } from '../src/onnx/index.ts';

before(async () => {
  await tf.setBackend('cpu');
});

// A small margin keeps some triplets on each side of the hinge, so both branches of its gradient are exercised.
const LOSS: TripletLossOptions = { ...DEFAULT_TRIPLET_LOSS, margin: 1, l2: 0.01 };
const TRIPLETS = 2;
// τ large enough that no softmax saturates: every candidate's gradient path carries weight.
const INFONCE: TripletLossOptions = { ...DEFAULT_TRIPLET_LOSS, objective: 'infonce', temperature: 0.5, l2: 0.01 };

/** Tile 32 and 4 silos, narrow enough for the cpu backend to be the oracle in test time. */
function smallConfig(bands: number, stemWidth: number, stemBlock = 4, headPooling: HeadPooling = 'coarsest', projector: Projector = 'none'): Partial<BackboneConfig> {
  return { tileSize: 32, bands, stemBlock, headPooling, projector, widths: [stemWidth, 8, 8, 8], extraLayers: 1, blocksPerLayer: 1, neckWidths: [8, 8, 8, 16], dim: 16 };
}

/**
 * Stem cases: bands repeated exactly, repeated then cut (2 bands → 3 channels: Tile then Slice), the x2 stem with the
 * pyramid head, the full-resolution stem under the InfoNCE objective, and the training-only MLP projector.
 */
const CASES = [
  { bands: 1, stemWidth: 16, stemBlock: 4, headPooling: 'coarsest' as const, projector: 'none' as const, loss: LOSS },
  { bands: 2, stemWidth: 48, stemBlock: 4, headPooling: 'coarsest' as const, projector: 'none' as const, loss: LOSS },
  { bands: 2, stemWidth: 8, stemBlock: 2, headPooling: 'pyramid' as const, projector: 'none' as const, loss: LOSS },
  { bands: 3, stemWidth: 4, stemBlock: 1, headPooling: 'coarsest' as const, projector: 'none' as const, loss: INFONCE },
  { bands: 2, stemWidth: 8, stemBlock: 2, headPooling: 'coarsest' as const, projector: 'mlp' as const, loss: INFONCE },
];

function tiles(model: RevBiFPN, seed: number): { x: tf.Tensor4D; data: Float32Array; shape: BatchShape } {
  const { tileSize, bands } = model.config;
  const shape = [3 * TRIPLETS, tileSize, tileSize, bands] as const;
  const x = tf.randomNormal([...shape], 0, 1, 'float32', seed) as tf.Tensor4D;
  return { x, data: x.dataSync() as Float32Array, shape };
}

interface Comparison {
  /** ‖a − b‖ / ‖b‖ over every tensor together. */
  global: number;
  /** Worst tensor's ‖a − b‖ relative to the largest tensor norm of b. */
  worstTensor: number;
  worstName: string;
}

function compare(actual: Map<string, Float32Array>, expected: Map<string, Float32Array>): Comparison {
  let diff = 0;
  let norm = 0;
  let largest = 0;
  const errors: Array<[string, number]> = [];
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
  for (const [name, want] of expected) {
    const got = actual.get(name)!;
    assert.equal(got.length, want.length, name);
    let d = 0;
    let n = 0;
    for (let i = 0; i < want.length; i++) {
      d += (got[i] - want[i]) ** 2;
      n += want[i] ** 2;
    }
    diff += d;
    norm += n;
    largest = Math.max(largest, Math.sqrt(n));
    errors.push([name, Math.sqrt(d)]);
  }
  const [worstName, worst] = errors.reduce((a, b) => (b[1] > a[1] ? b : a));
  return { global: Math.sqrt(diff / norm), worstTensor: worst / largest, worstName };
}

function maxAbsDifference(actual: Map<string, Float32Array>, expected: Map<string, Float32Array>): { value: number; name: string } {
  let value = 0;
  let name = '';
  for (const [key, want] of expected) {
    const got = actual.get(key)!;
    for (let i = 0; i < want.length; i++) {
      const d = Math.abs(got[i] - want[i]);
      if (d > value) [value, name] = [d, key];
    }
  }
  return { value, name };
}

/** max |a − b| / max(1, |b|): absolute for small values, relative for large ones. */
function maxRelativeDifference(actual: Map<string, Float32Array>, expected: Map<string, Float32Array>): { value: number; name: string } {
  const scaled = (m: Map<string, Float32Array>, by: Map<string, Float32Array>) =>
    new Map([...m].map(([n, v]) => [n, v.map((x, i) => x / Math.max(1, Math.abs(by.get(n)![i])))]));
  return maxAbsDifference(scaled(actual, expected), scaled(expected, expected));
}

const valuesOf = (store: RevBiFPN['params'], names: string[]) => new Map(names.map((n) => [n, store.get(n).dataSync() as Float32Array]));
const dataOf = (tensors: Map<string, { data: Float32Array }>) => new Map([...tensors].map(([n, t]) => [n, t.data]));

for (const { bands, stemWidth, stemBlock, headPooling, projector, loss } of CASES) {
  describe(`ORT training step, ${bands} band(s), tile 32, 4 silos, stem x${stemBlock}, ${headPooling} pooling, projector ${projector}, ${loss.objective} loss`, () => {
    test('loss and every gradient match the tfjs reversible engine', async (t) => {
      const model = createBackbone(smallConfig(bands, stemWidth, stemBlock, headPooling, projector), { seed: 3 });
      assert.equal(siloCount(model.config), 4);
      const { x, data, shape } = tiles(model, 5);
      const ort = await OrtTrainingStep.create(model, { lossOptions: loss, threads: 2 });
      try {
        const actual = await ort.gradients(data, shape);
        const reference = createGradientFunction(model, (e) => tripletLoss(e, loss), { updateRunningStats: false })(x);
        const expectedLoss = reference.value.dataSync()[0];
        const expected = new Map([...reference.grads].map(([n, g]) => [n, g.dataSync() as Float32Array]));
        tf.dispose([reference.value, ...reference.grads.values()]);

        assert.ok(Math.abs(actual.loss - expectedLoss) <= 1e-5 * Math.abs(expectedLoss), `loss ${actual.loss} vs ${expectedLoss}`);
        const errors = compare(actual.grads, expected);
        t.diagnostic(`loss rel ${(Math.abs(actual.loss - expectedLoss) / Math.abs(expectedLoss)).toExponential(2)}, gradients norm-rel ${errors.global.toExponential(2)}, worst tensor ${errors.worstTensor.toExponential(2)} (${errors.worstName})`);
        assert.ok(errors.global <= 1e-4, `norm-relative gradient error ${errors.global}`);
        assert.ok(errors.worstTensor <= 1e-4, `gradient of ${errors.worstName}: error ${errors.worstTensor} of the largest gradient norm`);
        // Every weight takes part in the loss: a gradient left at zero would be a missing backward path.
        for (const [name, grad] of actual.grads) assert.ok(grad.some((v) => v !== 0), `gradient of ${name} is all zero`);
      } finally {
        await ort.dispose();
        x.dispose();
        model.dispose();
      }
    });

  });
}

test('the conventional step graph (activations stored, bench:memory\'s comparison) gives the reversible one\'s loss and gradients', async () => {
  const { bands, stemWidth, stemBlock, headPooling, projector, loss } = CASES[0];
  const model = createBackbone(smallConfig(bands, stemWidth, stemBlock, headPooling, projector), { seed: 4 });
  const { x, data, shape } = tiles(model, 6);
  const [reversible, stored] = await Promise.all([
    OrtTrainingStep.create(model, { lossOptions: loss, threads: 2 }),
    OrtTrainingStep.create(model, { lossOptions: loss, threads: 2, backward: 'stored' }),
  ]);
  try {
    const [a, b] = [await reversible.gradients(data, shape), await stored.gradients(data, shape)];
    assert.ok(Math.abs(a.loss - b.loss) <= 1e-6 * Math.abs(a.loss), `loss ${b.loss} vs ${a.loss}`);
    const errors = compare(b.grads, a.grads);
    assert.ok(errors.global <= 1e-4 && errors.worstTensor <= 1e-4, `gradient error ${errors.global}, worst ${errors.worstTensor} (${errors.worstName})`);
  } finally {
    await Promise.all([reversible.dispose(), stored.dispose()]);
    x.dispose();
    model.dispose();
  }
});

test('FLOPs counted from the graph: 2 x multiply-adds per product op; the reversible step costs the stored one plus its reconstruction', () => {
  const ops = new Ops(new GraphBuilder());
  const x = { name: ops.g.input('x', [2, 3, 8, 8]), shape: [2, 3, 8, 8] };
  const w = { name: ops.g.input('w', [4, 3, 3, 3]), shape: [4, 3, 3, 3] };
  ops.op('Conv', [x, w], [2, 4, 8, 8], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
  assert.equal(ops.flops, 2 * (2 * 4 * 8 * 8) * (3 * 3 * 3));
  const a = { name: ops.g.input('a', [5, 7]), shape: [5, 7] };
  const b = { name: ops.g.input('b', [7, 11]), shape: [7, 11] };
  ops.matmul(a, b);
  assert.equal(ops.flops, 2 * (2 * 4 * 8 * 8) * 27 + 2 * 5 * 11 * 7);
  assert.throws(() => ops.op('Conv', [x.name, w.name], [2, 4, 8, 8]), /without shapes/);

  const { bands, stemWidth, stemBlock, headPooling, projector, loss } = CASES[0];
  const model = createBackbone(smallConfig(bands, stemWidth, stemBlock, headPooling, projector), { seed: 4 });
  const count = (backward: 'reversible' | 'stored') => buildStepGraph(model, { tiles: 6, loss, adam: DEFAULT_ADAM, mode: 'step', backward }).flops;
  const [reversible, stored] = [count('reversible'), count('stored')];
  // Rebuilding each unit's inputs re-runs its F, G, D and U maps once: more than nothing, less than a second forward and backward.
  assert.ok(stored > 0 && reversible > stored && reversible < 1.6 * stored, `reversible ${reversible}, stored ${stored}`);
  model.dispose();
});

/**
 * In exact arithmetic some gradients are zero: the β of a BatchNorm whose every consumer renormalises (e.g. the D maps
 * into a new stream) cannot change the loss. Both engines return float noise there, and Adam's m/(√v + ε) with
 * ε = 1e-8 turns noise of either sign into full ±lr steps, so no two engines (nor two op orders) agree on those entries.
 * The whole-pipeline comparison therefore uses ε = 1e-3, which leaves real gradients Adam-scaled and noise inert; the
 * update rule itself is checked exactly, with the default ε, against tfjs Adam on the ORT gradients.
 */
const CONDITIONED_ADAM = { ...DEFAULT_ADAM, epsilon: 1e-3 };

describe('ORT training step vs tfjs + Adam', () => {
  test('three Adam steps give the weights, moments and running statistics of tfjs + Adam', async (t) => {
    const model = createBackbone(smallConfig(2, 48), { seed: 4 });
    const ort = await OrtTrainingStep.create(model, { lossOptions: LOSS, adamOptions: CONDITIONED_ADAM, threads: 2 });
    const adam = new Adam(CONDITIONED_ADAM);
    const step = createGradientFunction(model, (e) => tripletLoss(e, LOSS));
    const trainable = model.params.trainableNames();
    const all = model.params.entries().map(([n]) => n);
    try {
      for (let s = 0; s < 3; s++) {
        const { x, data, shape } = tiles(model, 20 + s);
        const ortLoss = await ort.step(data, shape);
        const { value, grads } = step(x);
        const loss = value.dataSync()[0];
        adam.apply(new Map(trainable.map((n) => [n, model.params.get(n)])), grads);
        tf.dispose([x, value, ...grads.values()]);
        // Same weights: the loss agrees to 1e-5. Afterwards the weights carry each engine's rounding, and the hinge
        // (a difference of two distances) amplifies that, so later steps get 1e-4.
        const tolerance = s === 0 ? 1e-5 : 1e-4;
        assert.ok(Math.abs(ortLoss - loss) <= tolerance * Math.abs(loss), `step ${s + 1}: loss ${ortLoss} vs ${loss}`);
      }
      assert.equal(ort.stepCount, 3);
      const trained = dataOf(ort.readWeights());
      const weights = maxAbsDifference(new Map(trainable.map((n) => [n, trained.get(n)!])), valuesOf(model.params, trainable));
      assert.ok(weights.value <= 1e-5, `weights differ by ${weights.value} (${weights.name})`);
      // Running variances reach O(100) on coarse streams: compare them relative to their size.
      const statNames = all.filter((n) => !trainable.includes(n));
      const stats = maxRelativeDifference(new Map(statNames.map((n) => [n, trained.get(n)!])), valuesOf(model.params, statNames));
      t.diagnostic(`after 3 steps: weights max |Δ| ${weights.value.toExponential(2)}, running stats max rel ${stats.value.toExponential(2)}`);
      assert.ok(stats.value <= 1e-5, `running statistics differ by ${stats.value} relative (${stats.name})`);
      const moments = compare(dataOf(ort.adamState()), dataOf(adam.state()));
      t.diagnostic(`Adam moments norm-rel ${moments.global.toExponential(2)}`);
      assert.ok(moments.global <= 1e-4, `Adam moments: norm-relative error ${moments.global}`);
    } finally {
      await ort.dispose();
      adam.dispose();
      model.dispose();
    }
  });

  test('the in-graph Adam update is PyTorch Adam (default ε) applied to the graph\'s gradients', async (t) => {
    const model = createBackbone(smallConfig(1, 16), { seed: 10 });
    const ort = await OrtTrainingStep.create(model, { lossOptions: LOSS, threads: 2 });
    const adam = new Adam(DEFAULT_ADAM);
    const trainable = model.params.trainableNames();
    try {
      for (let s = 0; s < 2; s++) {
        const { x, data, shape } = tiles(model, 30 + s);
        x.dispose();
        const { grads } = await ort.gradients(data, shape);
        const gradTensors = new Map(trainable.map((n) => [n, tf.tensor(grads.get(n)!, model.params.get(n).shape)]));
        adam.apply(new Map(trainable.map((n) => [n, model.params.get(n)])), gradTensors);
        tf.dispose([...gradTensors.values()]);
        await ort.step(data, shape);
      }
      const trained = dataOf(ort.readWeights());
      const error = maxAbsDifference(new Map(trainable.map((n) => [n, trained.get(n)!])), valuesOf(model.params, trainable));
      t.diagnostic(`weights max |Δ| ${error.value.toExponential(2)}`);
      assert.ok(error.value <= 1e-6, `weights differ by ${error.value} (${error.name})`);
    } finally {
      await ort.dispose();
      adam.dispose();
      model.dispose();
    }
  });
});

describe('ORT training step state', () => {
  test('BatchNorm running statistics move exactly once per step; weights and Adam state round-trip', async (t) => {
    const model = createBackbone(smallConfig(1, 16), { seed: 6 });
    const ort = await OrtTrainingStep.create(model, { lossOptions: LOSS, threads: 2 });
    const { x, data, shape } = tiles(model, 7);
    try {
      const before = dataOf(ort.readWeights());
      await ort.step(data, shape);
      const trained = ort.readWeights();
      const after = dataOf(trained);

      // The forward pass's batch statistics, as the tfjs layers record them (weights still the initial ones).
      const recorder = new BatchStatsRecorder();
      const ctx = { training: true, recorder };
      tf.tidy(() => {
        model.head.call(model.forwardStreams(x, ctx), ctx);
      });
      assert.equal(recorder.size, model.batchNormNames().length);
      const momentum = model.config.batchNormMomentum;
      const once = (old: Float32Array, batch: Float32Array, scale: number) => old.map((o, i) => (1 - momentum) * o + momentum * batch[i] * scale);
      const expected = new Map<string, Float32Array>();
      for (const [name, { mean, variance, count }] of recorder.entries()) {
        expected.set(`${name}.movingMean`, once(before.get(`${name}.movingMean`)!, mean.dataSync() as Float32Array, 1));
        expected.set(`${name}.movingVariance`, once(before.get(`${name}.movingVariance`)!, variance.dataSync() as Float32Array, count / (count - 1)));
      }
      recorder.dispose();
      const stats = maxAbsDifference(new Map([...expected.keys()].map((n) => [n, after.get(n)!])), expected);
      t.diagnostic(`running statistics max |Δ| ${stats.value.toExponential(2)}`);
      assert.ok(stats.value <= 1e-5, `running statistics differ by ${stats.value} (${stats.name})`);

      const state = ort.adamState();
      assert.equal(state.size, 2 * model.params.trainableNames().length);
      assert.ok([...state.keys()].every((k) => /^[mv]\//.test(k)));
      ort.writeWeights();
      assert.equal(maxAbsDifference(valuesOf(model.params, [...trained.keys()]), after).value, 0);
      const fresh = await OrtTrainingStep.create(model, { lossOptions: LOSS, threads: 2 });
      fresh.restoreAdam(ort.stepCount, state);
      assert.equal(fresh.stepCount, 1);
      assert.equal(maxAbsDifference(dataOf(fresh.adamState()), dataOf(state)).value, 0);
      assert.equal(maxAbsDifference(dataOf(fresh.readWeights()), after).value, 0);
      await fresh.dispose();

      await assert.rejects(ort.step(data, [3, 32, 32, 2]), /expected NHWC triplet tiles \[3B, 32, 32, 1\]/);
    } finally {
      await ort.dispose();
      x.dispose();
      model.dispose();
    }
  });
});
