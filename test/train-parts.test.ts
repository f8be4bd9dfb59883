import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { DEFAULT_TRIPLET_LOSS, tripletLoss, type TripletLossOptions } from '../src/train/loss.ts';
import { Adam } from '../src/train/adam.ts';
import { learningRateAt } from '../src/train/trainer.ts';
import { readTensorFile, writeTensorFile } from '../src/train/tensor-file.ts';
import { tempDir } from './helpers.ts';

await tf.setBackend('cpu');

function rng(seed: number) {
  return () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32 - 0.5);
}

/** The Tile2Vec loss in float64 plain JS, written from the paper's formula. */
function referenceLoss(z: number[][], margin: number, l2: number): number {
  const b = z.length / 3;
  const dist = (p: number[], q: number[]) => Math.sqrt(p.reduce((s, v, i) => s + (v - q[i]) ** 2, 0));
  const frob = (rows: number[][]) => Math.sqrt(rows.flat().reduce((s, v) => s + v * v, 0));
  let hinge = 0;
  for (let i = 0; i < b; i++) hinge += Math.max(0, dist(z[i], z[b + i]) - dist(z[i], z[2 * b + i]) + margin);
  return hinge / b + l2 * (frob(z.slice(0, b)) + frob(z.slice(b, 2 * b)) + frob(z.slice(2 * b)));
}

test('the triplet loss equals the formula, with Euclidean distances and batch norms', () => {
  const r = rng(7);
  const z = Array.from({ length: 12 }, () => Array.from({ length: 5 }, () => r() * 4));
  for (const [margin, l2] of [[10, 0.01], [0.5, 0], [1, 0.1]]) {
    const got = tf.tidy(() => tripletLoss(tf.tensor2d(z), { ...DEFAULT_TRIPLET_LOSS, margin, l2 }).dataSync()[0]);
    const want = referenceLoss(z, margin, l2);
    assert.ok(Math.abs(got - want) / Math.abs(want) < 1e-5, `m=${margin} λ=${l2}: ${got} vs ${want}`);
  }
});

/** tfjs's gradient of the loss against central finite differences of the float64 reference. */
function assertGradientMatchesReference(z: number[][], opts: TripletLossOptions, reference: (rows: number[][]) => number): void {
  const grad = tf.tidy(() => tf.grad((x: tf.Tensor) => tripletLoss(x as tf.Tensor2D, opts))(tf.tensor2d(z)).arraySync() as number[][]);
  const h = 1e-6;
  for (let i = 0; i < z.length; i++) {
    for (let j = 0; j < z[0].length; j++) {
      const plus = z.map((row) => row.slice());
      const minus = z.map((row) => row.slice());
      plus[i][j] += h;
      minus[i][j] -= h;
      const fd = (reference(plus) - reference(minus)) / (2 * h);
      assert.ok(Math.abs(fd - grad[i][j]) < 1e-3, `∂L/∂z[${i}][${j}]: ${grad[i][j]} vs ${fd}`);
    }
  }
}

test('the triplet loss gradient matches finite differences', () => {
  const r = rng(11);
  const z = Array.from({ length: 6 }, () => Array.from({ length: 3 }, () => r() * 2));
  const opts = { ...DEFAULT_TRIPLET_LOSS, margin: 1, l2: 0.05 };
  assertGradientMatchesReference(z, opts, (rows) => referenceLoss(rows, opts.margin, opts.l2));
});

/** InfoNCE in float64 plain JS, written from its definition: each anchor names its neighbor, and each neighbor its anchor. */
function referenceInfoNce(z: number[][], temperature: number, l2: number): number {
  const b = z.length / 3;
  const unit = (v: number[]) => {
    const r = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    return v.map((x) => x / r);
  };
  const [a, n, d] = [z.slice(0, b).map(unit), z.slice(b, 2 * b).map(unit), z.slice(2 * b).map(unit)];
  const dot = (p: number[], q: number[]) => p.reduce((s, x, i) => s + x * q[i], 0);
  const crossEntropy = (queries: number[][], candidates: number[][]) =>
    queries.reduce((sum, q, i) => sum + Math.log(candidates.reduce((s, c) => s + Math.exp(dot(q, c) / temperature), 0)) - dot(q, candidates[i]) / temperature, 0) / b;
  const frob = (rows: number[][]) => Math.sqrt(rows.flat().reduce((s, v) => s + v * v, 0));
  return (crossEntropy(a, [...n, ...d]) + crossEntropy(n, [...a, ...d])) / 2 + l2 * (frob(z.slice(0, b)) + frob(z.slice(b, 2 * b)) + frob(z.slice(2 * b)));
}

test('the InfoNCE objective equals its definition, and its gradient matches finite differences', () => {
  const r = rng(13);
  const z = Array.from({ length: 9 }, () => Array.from({ length: 4 }, () => r() * 3));
  for (const [temperature, l2] of [[0.1, 0], [0.5, 0.01], [2, 0]]) {
    const opts = { ...DEFAULT_TRIPLET_LOSS, objective: 'infonce' as const, temperature, l2 };
    const got = tf.tidy(() => tripletLoss(tf.tensor2d(z), opts).dataSync()[0]);
    const want = referenceInfoNce(z, temperature, l2);
    assert.ok(Math.abs(got - want) / Math.abs(want) < 1e-5, `τ=${temperature} λ=${l2}: ${got} vs ${want}`);
  }
  const opts = { ...DEFAULT_TRIPLET_LOSS, objective: 'infonce' as const, temperature: 0.5, l2: 0.01 };
  assertGradientMatchesReference(z, opts, (rows) => referenceInfoNce(rows, opts.temperature, opts.l2));
  // Scaling an embedding leaves the cosine logits, and so the loss without its regulariser, unchanged.
  const scaled = z.map((row, i) => (i === 4 ? row.map((v) => v * 7) : row));
  const cosineOnly = { ...opts, temperature: 0.1, l2: 0 };
  const lossOf = (rows: number[][]) => tf.tidy(() => tripletLoss(tf.tensor2d(rows), cosineOnly).dataSync()[0]);
  assert.ok(Math.abs(lossOf(scaled) - lossOf(z)) < 1e-5 * lossOf(z), `${lossOf(scaled)} vs ${lossOf(z)}`);
});

test('Adam follows the PyTorch update rule, and its state restores exactly', () => {
  const opts = { lr: 0.01, beta1: 0.5, beta2: 0.999, epsilon: 1e-8 };
  const start = [0.5, -1, 2];
  const gradients = [[0.1, -0.2, 0.3], [0.05, 0.4, -0.1], [-0.3, 0.1, 0.2], [0.2, 0.2, 0.2]];
  // float64 reference
  const p = start.slice();
  const m = [0, 0, 0];
  const v = [0, 0, 0];
  gradients.forEach((g, t) => {
    for (let i = 0; i < 3; i++) {
      m[i] = opts.beta1 * m[i] + (1 - opts.beta1) * g[i];
      v[i] = opts.beta2 * v[i] + (1 - opts.beta2) * g[i] ** 2;
      const mhat = m[i] / (1 - opts.beta1 ** (t + 1));
      const vhat = v[i] / (1 - opts.beta2 ** (t + 1));
      p[i] -= (opts.lr * mhat) / (Math.sqrt(vhat) + opts.epsilon);
    }
  });

  const run = (resumeAfter?: number) => {
    const param = tf.variable(tf.tensor1d(start));
    let adam = new Adam(opts);
    gradients.forEach((g, t) => {
      if (t === resumeAfter) {
        const state = adam.state();
        const step = adam.step;
        adam.dispose();
        adam = new Adam(opts);
        adam.restore(step, state);
      }
      tf.tidy(() => adam.apply(new Map([['w', param]]), new Map([['w', tf.tensor1d(g)]])));
    });
    const out = Array.from(param.dataSync());
    param.dispose();
    adam.dispose();
    return out;
  };
  const straight = run();
  straight.forEach((x, i) => assert.ok(Math.abs(x - p[i]) < 1e-6, `param ${i}: ${x} vs ${p[i]}`));
  assert.deepEqual(run(2), straight, 'a restored optimiser continues bit-identically');
});

test('tensor files round-trip, and a corrupt one is a clear error', () => {
  const dir = tempDir();
  try {
    const path = join(dir.path, 'w.bin');
    const tensors = new Map([
      ['a.kernel', { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }],
      ['b', { shape: [1], data: Float32Array.from([Math.PI]) }],
    ]);
    writeTensorFile(path, { config: { name: 'x' }, step: 3 }, tensors);
    const back = readTensorFile<{ config: { name: string }; step: number }>(path);
    assert.deepEqual(back.header, { config: { name: 'x' }, step: 3 });
    assert.deepEqual([...back.tensors.keys()], ['a.kernel', 'b']);
    assert.deepEqual(back.tensors.get('a.kernel'), tensors.get('a.kernel'));
    assert.equal(back.tensors.get('b')!.data[0], Math.fround(Math.PI));

    const bytes = readFileSync(path);
    writeFileSync(path, bytes.subarray(0, bytes.length - 4));
    assert.throws(() => readTensorFile(path), /not a valid tilevec tensor file \(tensor b is out of bounds\)/);
    writeFileSync(path, 'hello');
    assert.throws(() => readTensorFile(path), /bad magic/);
  } finally {
    dir.cleanup();
  }
});

test('a process killed while writing a checkpoint leaves the previous one loadable', async () => {
  const { spawn } = await import('node:child_process');
  const dir = tempDir();
  try {
    const path = join(dir.path, 'checkpoint.bin');
    for (let round = 0; round < 8; round++) {
      await new Promise<void>((resolvePromise) => {
        const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures/checkpoint-writer.ts'), path]);
        let scheduled = false;
        child.stdout.on('data', () => {
          // After the first whole write, kill somewhere inside a later one, at a different moment each round.
          if (!scheduled) setTimeout(() => child.kill('SIGKILL'), 5 + round * 11);
          scheduled = true;
        });
        child.on('exit', () => resolvePromise());
      });
      const { header, tensors } = readTensorFile<{ step: number }>(path);
      const data = tensors.get('w')!.data;
      assert.equal(data.length, 4_000_000);
      assert.ok(data.every((v) => v === header.step), `round ${round}: the file holds one whole write (step ${header.step})`);
    }
  } finally {
    dir.cleanup();
  }
});

test('BatchNorm recalibration sets running statistics to the averaged batch statistics', async () => {
  const { createBackbone, BatchStatsRecorder } = await import('../src/model/index.ts');
  const { recalibrateBatchNorm } = await import('../src/train/recalibrate.ts');
  const model = createBackbone({ name: 'tiny', tileSize: 32, bands: 3, extraLayers: 0, dim: 16 }, { seed: 5 });
  const batches = [1, 2].map((seed) => tf.tidy(() => tf.add(tf.mul(tf.randomNormal([12, 32, 32, 3], 0, 1, 'float32', seed), 2), 0.5) as tf.Tensor4D));
  // The statistics each batch produces in train mode, recorded by the model itself.
  const perBatch = batches.map((x) => {
    const recorder = new BatchStatsRecorder();
    tf.tidy(() => { model.head.call(model.forwardStreams(x, { training: true, recorder }), { training: true, recorder }); });
    const stats = new Map(recorder.entries().map(([name, s]) => [name, { mean: Array.from(s.mean.dataSync()), variance: Array.from(s.variance.dataSync()), count: s.count }]));
    recorder.dispose();
    return stats;
  });
  recalibrateBatchNorm(model, batches);
  const names = model.batchNormNames();
  assert.equal(perBatch[0].size, names.length, 'every BatchNorm saw the batches');
  let worst = 0;
  for (const name of names) {
    const mean = model.params.get(`${name}.movingMean`).dataSync();
    const variance = model.params.get(`${name}.movingVariance`).dataSync();
    for (let c = 0; c < mean.length; c++) {
      const wantMean = (perBatch[0].get(name)!.mean[c] + perBatch[1].get(name)!.mean[c]) / 2;
      const unbiased = (b: number) => { const s = perBatch[b].get(name)!; return (s.variance[c] * s.count) / (s.count - 1); };
      const wantVar = (unbiased(0) + unbiased(1)) / 2;
      worst = Math.max(worst, Math.abs(mean[c] - wantMean) / (1 + Math.abs(wantMean)), Math.abs(variance[c] - wantVar) / (1 + wantVar));
    }
  }
  assert.ok(worst < 1e-5, `running statistics match the averaged batch statistics (worst relative error ${worst})`);
  tf.dispose(batches);
  model.dispose();
});

test('the cosine schedule starts at lr, halves at mid-run, ends near 0; constant stays; Adam takes each step its own rate', () => {
  assert.equal(learningRateAt('cosine', 1e-3, 1, 100), 1e-3);
  assert.ok(Math.abs(learningRateAt('cosine', 1e-3, 51, 100) - 5e-4) < 1e-12);
  assert.ok(learningRateAt('cosine', 1e-3, 100, 100) < 1e-6);
  assert.equal(learningRateAt('constant', 1e-3, 77, 100), 1e-3);
  // One Adam step moves a parameter by about lr (the bias-corrected m / sqrt(v) is ±1), whatever the configured rate.
  const adam = new Adam({ lr: 1, beta1: 0.5, beta2: 0.999, epsilon: 1e-8 });
  const p = tf.variable(tf.scalar(0));
  adam.beginStep(0.25);
  adam.update(new Map([['p', p]]), new Map([['p', tf.scalar(3)]]));
  assert.ok(Math.abs(p.dataSync()[0] + 0.25) < 1e-5, `${p.dataSync()[0]}`);
  adam.dispose();
  p.dispose();
});
