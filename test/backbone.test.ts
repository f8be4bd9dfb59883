import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import {
  BatchStatsRecorder,
  createBackbone,
  createGradientFunction,
  resolveBackboneConfig,
  siloCount,
  streamWidths,
  type LayerDescription,
  type RevBiFPN,
} from '../src/model/index.ts';

before(async () => {
  await tf.setBackend('cpu');
});

function relativeError(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.norm(tf.sub(a, b)).dataSync()[0] / tf.norm(b).dataSync()[0]);
}

function randomTiles(batch: number, tile: number, bands: number, seed: number): tf.Tensor4D {
  return tf.randomNormal([batch, tile, tile, bands], 0, 1, 'float32', seed) as tf.Tensor4D;
}

/** A loss that weights every embedding entry differently, so every parameter gets a gradient. */
function projectionLoss(batch: number, dim: number, seed: number) {
  const direction = tf.randomNormal([batch, dim], 0, 1, 'float32', seed);
  return { loss: (emb: tf.Tensor2D) => tf.sum(tf.mul(emb, direction)) as tf.Scalar, dispose: () => direction.dispose() };
}

describe('backbone config', () => {
  test('presets resolve and match the reference widths', () => {
    const s0 = resolveBackboneConfig('s0');
    assert.deepEqual(s0.widths, [48, 64, 80, 160]);
    assert.equal(siloCount(s0), 5);
    const tiny = resolveBackboneConfig('tiny', { extraLayers: 5 });
    assert.equal(siloCount(tiny), 8);
    assert.equal(tiny.dim, 128);
    assert.equal(resolveBackboneConfig({ name: 's0', tileSize: 256 }).tileSize, 256);
  });

  test('bad configs get clear errors', () => {
    assert.throws(() => resolveBackboneConfig('tiny', { tileSize: 48 }), /tileSize must be a positive multiple of 32.*48/);
    assert.throws(() => resolveBackboneConfig('tiny', { bands: 0 }), /bands must be an integer >= 1/);
    assert.throws(() => resolveBackboneConfig('tiny', { widths: [24, 16, 32, 48] }), /widths\[0\] must be a multiple of 16/);
    assert.throws(() => resolveBackboneConfig('tiny', { widths: [16, 16, 32] }), /widths must be an array of 4/);
    assert.throws(() => resolveBackboneConfig('tiny', { extraLayers: -1 }), /extraLayers/);
    assert.throws(() => resolveBackboneConfig('nope' as 'tiny'), /unknown backbone preset "nope"/);
  });

  test('wrong input shape is rejected', () => {
    const model = createBackbone({ tileSize: 32, extraLayers: 0 });
    try {
      const x = randomTiles(1, 32, 3, 1);
      assert.throws(() => model.apply(x), /expected NHWC input \[batch, 32, 32, 4\]/);
      x.dispose();
    } finally {
      model.dispose();
    }
  });
});

describe('backbone shapes', () => {
  for (const bands of [3, 4, 8, 13]) {
    test(`${bands} bands give [batch, dim] embeddings`, () => {
      const model = createBackbone({ tileSize: 32, bands, extraLayers: 0, dim: 24 }, { seed: bands });
      try {
        assert.equal(streamWidths(model.config)[0], 16 * Math.max(1, bands));
        const x = randomTiles(2, 32, bands, bands);
        const before = tf.memory().numTensors;
        const emb = model.apply(x);
        assert.deepEqual(emb.shape, [2, 24]);
        assert.ok(emb.dataSync().every(Number.isFinite));
        emb.dispose();
        assert.equal(tf.memory().numTensors, before, 'apply leaks no tensors');
        x.dispose();
      } finally {
        model.dispose();
      }
    });
  }
});

describe('model description', () => {
  test('named, deterministic, walkable parameters', () => {
    const a = createBackbone('tiny', { seed: 5 });
    const b = createBackbone('tiny', { seed: 5 });
    const c = createBackbone('tiny', { seed: 6 });
    try {
      const names = a.params.entries().map(([n]) => n);
      assert.equal(new Set(names).size, names.length);
      assert.ok(names.includes('layer0.stream0.block1.F.depthwise.conv.kernel'));
      assert.ok(names.includes('layer1.silo.down0to2.project.bn.movingVariance'));
      assert.ok(names.includes('layer2.silo.up3to0.mbconv.depthwise.conv.kernel'));

      const walked: string[] = [];
      const walk = (d: LayerDescription) => {
        walked.push(...d.weights);
        d.sublayers.forEach(walk);
      };
      const description = a.describe();
      description.units.forEach(walk);
      walk(description.head);
      assert.deepEqual([...walked].sort(), [...names].sort(), 'describe() reaches every parameter exactly once');
      assert.equal(description.units.filter((u) => u.className === 'RevSilo').length, siloCount(a.config));
      assert.doesNotThrow(() => JSON.stringify(description));

      const kernel = 'layer3.silo.down1to3.depthwise.conv.kernel';
      assert.deepEqual(a.params.get(kernel).shape, [7, 7, 16, 1], 'stride-4 resampling uses a 7x7 depthwise kernel');
      assert.equal(relativeError(a.params.get(kernel), b.params.get(kernel)), 0);
      assert.ok(relativeError(a.params.get(kernel), c.params.get(kernel)) > 0.1);
    } finally {
      [a, b, c].forEach((m) => m.dispose());
    }
  });
});

describe('reversibility', () => {
  for (const training of [true, false]) {
    test(`inverse reconstructs the input over 4 silos (training=${training})`, () => {
      const model = createBackbone('tiny', { seed: 3 });
      try {
        assert.ok(siloCount(model.config) >= 4);
        const x = randomTiles(2, 64, 4, 9);
        const ctx = { training };
        const streams = model.forwardStreams(x, ctx);
        assert.deepEqual(
          streams.map((s) => s.shape),
          [
            [2, 16, 16, 64],
            [2, 8, 8, 16],
            [2, 4, 4, 32],
            [2, 2, 2, 48],
          ],
        );
        const reconstructed = model.inverseStreams(streams, ctx);
        const error = relativeError(reconstructed, x);
        assert.ok(error <= 1e-4, `reconstruction error ${error}`);
        tf.dispose([x, reconstructed, ...streams]);
      } finally {
        model.dispose();
      }
    });
  }
});

/** Norm-relative error over all parameters together, and the worst tensor against the largest gradient norm. */
function compareGradients(reference: Map<string, tf.Tensor>, candidate: Map<string, tf.Tensor>) {
  let diffSquared = 0;
  let refSquared = 0;
  let largestNorm = 0;
  let worstDiff = 0;
  let worstName = '';
  for (const [name, ref] of reference) {
    const other = candidate.get(name);
    assert.ok(other, `missing gradient for ${name}`);
    const [diff, norm] = tf.tidy(() => [tf.norm(tf.sub(ref, other)).dataSync()[0], tf.norm(ref).dataSync()[0]]);
    diffSquared += diff * diff;
    refSquared += norm * norm;
    largestNorm = Math.max(largestNorm, norm);
    if (diff > worstDiff) [worstDiff, worstName] = [diff, name];
  }
  return { total: Math.sqrt(diffSquared / refSquared), worstTensor: worstDiff / largestNorm, worstName, refNorm: Math.sqrt(refSquared) };
}

describe('reversible training', () => {
  test('reversible gradients match plain autodiff on the same batch', () => {
    const model = createBackbone('tiny', { seed: 21 });
    const x = randomTiles(2, 64, 4, 22);
    const { loss, dispose } = projectionLoss(2, model.config.dim, 23);
    try {
      const options = { updateRunningStats: false };
      const conventional = createGradientFunction(model, loss, { ...options, reversible: false })(x);
      const before = tf.memory().numTensors;
      const reversible = createGradientFunction(model, loss, { ...options, reversible: true })(x);
      const outputs = 1 + reversible.grads.size;
      assert.equal(tf.memory().numTensors - before, outputs, 'reversible step leaves only its results alive');

      assert.deepEqual([...reversible.grads.keys()], model.params.trainableNames());
      assert.ok(Math.abs(reversible.value.dataSync()[0] - conventional.value.dataSync()[0]) <= 1e-4 * Math.abs(conventional.value.dataSync()[0]));
      const { total, worstTensor, worstName, refNorm } = compareGradients(conventional.grads, reversible.grads);
      assert.ok(refNorm > 0);
      assert.ok(total <= 1e-3, `norm-relative gradient error ${total}`);
      assert.ok(worstTensor <= 1e-3, `worst tensor ${worstName}: ${worstTensor}`);
      // Every stream's first block really receives gradient (nothing silently zero).
      for (let h = 0; h < 4; h++) {
        const g = reversible.grads.get(`layer3.stream${h}.block0.F.project.conv.kernel`)!;
        assert.ok(tf.tidy(() => tf.norm(g).dataSync()[0]) > 0, `stream ${h} has gradient`);
      }

      // Streaming hands out the same gradients unit by unit and returns none.
      const streamed = new Map<string, tf.Tensor>();
      const viaStream = createGradientFunction(model, loss, { ...options, onGradients: (g) => g.forEach((t, n) => streamed.set(n, t)) })(x);
      assert.equal(viaStream.grads.size, 0);
      assert.deepEqual([...streamed.keys()].sort(), [...reversible.grads.keys()].sort());
      assert.equal(compareGradients(reversible.grads, streamed).total, 0);

      tf.dispose([conventional.value, reversible.value, viaStream.value, ...conventional.grads.values(), ...reversible.grads.values(), ...streamed.values()]);
    } finally {
      dispose();
      x.dispose();
      model.dispose();
    }
  });

  for (const reversible of [true, false]) {
    test(`BatchNorm running statistics move exactly once per step (reversible=${reversible})`, () => {
      const model = createBackbone({ name: 'tiny', tileSize: 32, extraLayers: 1 }, { seed: 31 });
      const x = randomTiles(4, 32, 4, 32);
      const { loss, dispose } = projectionLoss(4, model.config.dim, 33);
      try {
        const momentum = model.config.batchNormMomentum;
        const bnNames = model.batchNormNames();
        const initial = new Map(bnNames.map((n) => [n, snapshotStats(model, n)]));

        // Batch statistics of this batch, recorded by an independent training-mode forward pass.
        const recorder = new BatchStatsRecorder();
        const ctx = { training: true, recorder };
        tf.tidy(() => model.head.call(model.forwardStreams(x, ctx), ctx));
        assert.equal(recorder.size, bnNames.length, 'every BatchNorm records once per forward');
        const batchStats = new Map(recorder.entries().map(([n, s]) => [n, { mean: [...s.mean.dataSync()], variance: [...s.variance.dataSync()], count: s.count }]));
        recorder.dispose();

        // Hand check of the very first BatchNorm: depthwise conv of the first channel half of the stem output.
        const first = 'layer0.stream0.block0.F.depthwise.bn';
        const handStats = tf.tidy(() => {
          const [stemOut] = model.stem.forward([x]);
          const [a] = tf.split(stemOut, 2, 3);
          const kernel = model.params.get('layer0.stream0.block0.F.depthwise.conv.kernel') as tf.Tensor4D;
          return tf.depthwiseConv2d(a as tf.Tensor4D, kernel, 1, Math.floor(kernel.shape[0] / 2)).reshape([-1, kernel.shape[2]]).arraySync() as number[][];
        });
        const n = handStats.length;
        const handExpected = handStats[0].map((_, c) => {
          const mean = handStats.reduce((sum, row) => sum + row[c], 0) / n;
          const unbiased = handStats.reduce((sum, row) => sum + (row[c] - mean) ** 2, 0) / (n - 1);
          // Fresh running statistics are mean 0, variance 1.
          return { mean: momentum * mean, variance: (1 - momentum) + momentum * unbiased };
        });

        const step = createGradientFunction(model, loss, { reversible });
        const result = step(x);
        tf.dispose([result.value, ...result.grads.values()]);

        for (const name of bnNames) {
          const { mean, variance, count } = batchStats.get(name)!;
          const start = initial.get(name)!;
          const now = snapshotStats(model, name);
          for (let c = 0; c < mean.length; c++) {
            const expectedMean = (1 - momentum) * start.mean[c] + momentum * mean[c];
            const expectedVariance = (1 - momentum) * start.variance[c] + momentum * ((variance[c] * count) / (count - 1));
            assertClose(now.mean[c], expectedMean, `${name}.movingMean[${c}]`);
            assertClose(now.variance[c], expectedVariance, `${name}.movingVariance[${c}]`);
          }
        }
        const firstNow = snapshotStats(model, first);
        handExpected.forEach(({ mean, variance }, c) => {
          assertClose(firstNow.mean[c], mean, `hand-computed ${first}.movingMean[${c}]`);
          assertClose(firstNow.variance[c], variance, `hand-computed ${first}.movingVariance[${c}]`);
        });

        // Inference never touches the running statistics.
        const frozen = snapshotStats(model, first);
        tf.dispose(model.apply(x, { training: false }));
        tf.dispose(model.apply(x, { training: true }));
        assert.deepEqual(snapshotStats(model, first), frozen);
      } finally {
        dispose();
        x.dispose();
        model.dispose();
      }
    });
  }
});

function snapshotStats(model: RevBiFPN, bn: string) {
  return {
    mean: [...model.params.get(`${bn}.movingMean`).dataSync()],
    variance: [...model.params.get(`${bn}.movingVariance`).dataSync()],
  };
}

function assertClose(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= 1e-4 * (1 + Math.abs(expected)), `${what}: ${actual} vs expected ${expected}`);
}
