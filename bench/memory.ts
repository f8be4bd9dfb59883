/**
 * Peak tensor memory of one RevBiFPN training step, reversible vs conventional, at 4, 8 and 16
 * RevSilos with the same batch and tile. Peak = the highest tf.memory().numBytes seen after any
 * kernel during the step, minus the bytes alive before it (weights, input): what the step itself
 * holds at its worst moment. (tf.profile reports the same peak but is far slower on deep graphs
 * and overflows the stack with this many kernels.)
 *
 *   node --import tsx bench/memory.ts [--batch 4] [--tile 64] [--bands 4] [--config tiny]
 */
import * as tf from '@tensorflow/tfjs';
import { parseArgs } from 'node:util';
import { createBackbone, createGradientFunction, siloCount, type BackbonePresetName } from '../src/train/model/index.ts';

const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '4' },
    tile: { type: 'string', default: '64' },
    bands: { type: 'string', default: '4' },
    config: { type: 'string', default: 'tiny' },
  },
});
const batch = Number(values.batch);
const tileSize = Number(values.tile);
const bands = Number(values.bands);
const preset = values.config as BackbonePresetName;
const siloTargets = [4, 8, 16];

interface Row {
  silos: number;
  parameterMiB: number;
  reversibleMiB: number;
  reversibleStreamedMiB: number;
  conventionalMiB: number;
  ratio: number;
  reversibleMs: number;
  conventionalMs: number;
}

const MiB = 1024 * 1024;

/** Samples engine bytes after every kernel; the engine has no public hook for this. */
function trackPeakBytes<T>(run: () => T): { result: T; peakBytes: number } {
  const engine = tf.engine() as unknown as { runKernelFunc: (params: unknown) => unknown; state: { numBytes: number } };
  const original = engine.runKernelFunc;
  let peakBytes = engine.state.numBytes;
  engine.runKernelFunc = function (this: unknown, params: unknown) {
    const out = original.call(engine, params);
    peakBytes = Math.max(peakBytes, engine.state.numBytes);
    return out;
  };
  try {
    return { result: run(), peakBytes };
  } finally {
    engine.runKernelFunc = original;
  }
}

type Mode = 'reversible' | 'reversible-streamed' | 'conventional';

function peakStepBytes(mode: Mode, silos: number): { bytes: number; ms: number; parameterBytes: number } {
  const model = createBackbone({ name: preset, tileSize, bands, extraLayers: silos - 3 }, { seed: 7 });
  if (siloCount(model.config) !== silos) throw new Error('silo count mismatch');
  const x = tf.randomNormal([batch, tileSize, tileSize, bands], 0, 1, 'float32', 11) as tf.Tensor4D;
  const target = tf.randomNormal([batch, model.config.dim], 0, 1, 'float32', 13);
  const loss = (emb: tf.Tensor2D) => tf.mean(tf.square(tf.sub(emb, target))) as tf.Scalar;
  // Streamed: each unit's gradients are handed to a consumer (standing in for an in-place
  // optimizer update) and released at once, so gradient storage does not accumulate.
  const onGradients = mode === 'reversible-streamed' ? (grads: Map<string, tf.Tensor>) => tf.dispose([...grads.values()]) : undefined;
  const step = createGradientFunction(model, loss, { reversible: mode !== 'conventional', onGradients });
  const parameterBytes = model.params.trainableNames().reduce((sum, n) => sum + model.params.get(n).size * 4, 0);
  const baseline = tf.memory().numBytes;
  const started = performance.now();
  const { peakBytes } = trackPeakBytes(() => {
    const { value, grads } = step(x);
    value.dispose();
    tf.dispose([...grads.values()]);
  });
  const ms = performance.now() - started;
  tf.dispose([x, target]);
  model.dispose();
  return { bytes: peakBytes - baseline, ms, parameterBytes };
}

async function main(): Promise<void> {
  await tf.setBackend('cpu');
  const rows: Row[] = [];
  for (const silos of siloTargets) {
    const rev = peakStepBytes('reversible', silos);
    const streamed = peakStepBytes('reversible-streamed', silos);
    const conv = peakStepBytes('conventional', silos);
    console.error(`silos ${silos}: reversible ${(rev.bytes / MiB).toFixed(2)} MiB, conventional ${(conv.bytes / MiB).toFixed(2)} MiB`);
    rows.push({
      silos,
      parameterMiB: rev.parameterBytes / MiB,
      reversibleMiB: rev.bytes / MiB,
      reversibleStreamedMiB: streamed.bytes / MiB,
      conventionalMiB: conv.bytes / MiB,
      ratio: rev.bytes / conv.bytes,
      reversibleMs: rev.ms,
      conventionalMs: conv.ms,
    });
  }

  console.log(`RevBiFPN ${preset}, batch ${batch}, tile ${tileSize}, bands ${bands}: peak tensor memory of one training step`);
  console.log('| silos | params MiB | reversible MiB | reversible, streamed grads MiB | conventional MiB | rev/conv | reversible ms | conventional ms |');
  console.log('|------:|-----------:|---------------:|-------------------------------:|-----------------:|---------:|--------------:|----------------:|');
  for (const r of rows) {
    console.log(
      `| ${r.silos} | ${r.parameterMiB.toFixed(2)} | ${r.reversibleMiB.toFixed(2)} | ${r.reversibleStreamedMiB.toFixed(2)} | ${r.conventionalMiB.toFixed(2)} | ${r.ratio.toFixed(3)} | ${r.reversibleMs.toFixed(0)} | ${r.conventionalMs.toFixed(0)} |`,
    );
  }
  const at = (silos: number) => rows.find((r) => r.silos === silos)!;
  // Flatness: every reversible peak within +-10% of the 4-silo peak.
  const deviation = (key: 'reversibleMiB' | 'reversibleStreamedMiB') => Math.max(...rows.map((r) => Math.abs(r[key] / rows[0][key] - 1)));
  const spread = deviation('reversibleMiB');
  const streamedSpread = deviation('reversibleStreamedMiB');
  const summary = {
    bench: 'memory',
    config: preset,
    batch,
    tileSize,
    bands,
    rows: rows.map((r) => ({
      silos: r.silos,
      parameterMiB: round(r.parameterMiB),
      reversibleMiB: round(r.reversibleMiB),
      reversibleStreamedMiB: round(r.reversibleStreamedMiB),
      conventionalMiB: round(r.conventionalMiB),
      ratio: round(r.ratio),
    })),
    ratioAt8: round(at(8).ratio),
    reversibleDeviationFrom4: round(spread),
    reversibleStreamedDeviationFrom4: round(streamedSpread),
    goals: { ratioAt8Max: 0.2, deviationMax: 0.1 },
    goalsMet: at(8).ratio <= 0.2 && spread <= 0.1,
    goalsMetWithStreamedGradients: at(8).reversibleStreamedMiB / at(8).conventionalMiB <= 0.2 && streamedSpread <= 0.1,
  };
  console.log(JSON.stringify(summary));
}

function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}

await main();
