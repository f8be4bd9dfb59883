/**
 * Peak tensor memory of one RevBiFPN training step, reversible vs conventional, at 4, 8 and 16
 * RevSilos with the same batch and tile. Peak = the highest tf.memory().numBytes seen after any
 * kernel during the step, minus the bytes alive before it (weights, input): what the step itself
 * holds at its worst moment. (tf.profile reports the same peak but is far slower on deep graphs
 * and overflows the stack with this many kernels.)
 *
 * Then the same for the engine `tilevec train` runs, onnxruntime: peak resident memory (RSS) of ORT training steps
 * with the reversible step graph and with a conventional one that keeps its activations (the same graph, its
 * backward reading the forward's values instead of rebuilding them). Each runs in a child process: the session is
 * built, the kernel's peak-RSS mark is reset (/proc/self/clear_refs), and the peak over three steps less the RSS
 * before them is what the steps hold at their worst, ORT's arena included. ORT's batch is `--triplets` triplets.
 *
 *   node --import tsx bench/memory.ts [--batch 4] [--tile 64] [--bands 4] [--config tiny] [--triplets 4] [--no-ort]
 */
import * as tf from '@tensorflow/tfjs';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createBackbone, createGradientFunction, siloCount, type BackbonePresetName } from '../src/model/index.ts';
import { OrtTrainingStep } from '../src/train/ort-step/index.ts';

const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '4' },
    tile: { type: 'string', default: '64' },
    bands: { type: 'string', default: '4' },
    config: { type: 'string', default: 'tiny' },
    triplets: { type: 'string', default: '4' },
    'no-ort': { type: 'boolean', default: false },
    'ort-child': { type: 'string' },
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

type OrtBackward = 'reversible' | 'stored';
interface OrtRow { silos: number; backward: OrtBackward; baseMiB: number; stepPeakMiB: number; buildSeconds: number; stepSeconds: number }

/** A /proc/self/status field in MiB (VmRSS: resident now; VmHWM: the peak since the last reset). */
function procStatusMiB(field: 'VmRSS' | 'VmHWM'): number {
  const kb = Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);
  return kb / 1024;
}

/** In a child process: build the ORT step session, reset the peak-RSS mark, run three steps, report the peak they reached. */
async function ortChild(silos: number, backward: OrtBackward): Promise<OrtRow> {
  const model = createBackbone({ name: preset, tileSize, bands, extraLayers: silos - 3 }, { seed: 7 });
  if (siloCount(model.config) !== silos) throw new Error('silo count mismatch');
  const triplets = Number(values.triplets);
  const shape = [3 * triplets, tileSize, tileSize, bands] as const;
  const data = Float32Array.from({ length: shape[0] * tileSize * tileSize * bands }, (_, i) => Math.sin(i * 0.37) * 1.5);
  const step = await OrtTrainingStep.create(model, { threads: 2, backward });
  const built = performance.now();
  await step.prepare(shape);
  const buildSeconds = (performance.now() - built) / 1000;
  const baseMiB = procStatusMiB('VmRSS');
  writeFileSync('/proc/self/clear_refs', '5');
  const started = performance.now();
  for (let i = 0; i < 3; i++) await step.step(data, shape);
  const stepSeconds = (performance.now() - started) / 3000;
  const stepPeakMiB = procStatusMiB('VmHWM') - baseMiB;
  await step.dispose();
  return { silos, backward, baseMiB, stepPeakMiB, buildSeconds, stepSeconds };
}

function ortRows(): OrtRow[] {
  const rows: OrtRow[] = [];
  for (const silos of siloTargets) {
    for (const backward of ['reversible', 'stored'] as const) {
      const args = ['--import', 'tsx', import.meta.filename, '--ort-child', `${silos}:${backward}`, '--tile', String(tileSize), '--bands', String(bands), '--config', preset, '--triplets', String(values.triplets)];
      const out = execFileSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      const row = JSON.parse(out.trim().split('\n').at(-1)!) as OrtRow;
      console.error(`ORT, silos ${silos}, ${backward}: steps peak ${row.stepPeakMiB.toFixed(1)} MiB over ${row.baseMiB.toFixed(1)} MiB resident (build ${row.buildSeconds.toFixed(1)} s, step ${row.stepSeconds.toFixed(2)} s)`);
      rows.push(row);
    }
  }
  return rows;
}

async function main(): Promise<void> {
  if (values['ort-child']) {
    const [silos, backward] = values['ort-child'].split(':');
    console.log(JSON.stringify(await ortChild(Number(silos), backward as OrtBackward)));
    return;
  }
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
  const ort = values['no-ort'] ? [] : ortRows();
  const ortAt = (silos: number, backward: OrtBackward) => ort.find((r) => r.silos === silos && r.backward === backward)!;
  const ortRatioAt8 = ort.length ? ortAt(8, 'reversible').stepPeakMiB / ortAt(8, 'stored').stepPeakMiB : NaN;
  const ortSpread = ort.length ? Math.max(...siloTargets.map((n) => Math.abs(ortAt(n, 'reversible').stepPeakMiB / ortAt(4, 'reversible').stepPeakMiB - 1))) : NaN;
  if (ort.length) {
    console.log(`\nonnxruntime (the engine tilevec train runs), ${values.triplets} triplets (${3 * Number(values.triplets)} tiles), tile ${tileSize}: peak RSS of three training steps over the RSS before them`);
    console.log('| silos | reversible MiB | conventional MiB | rev/conv | resident before, rev / conv MiB | session build, rev / conv s | step, rev / conv s |');
    console.log('|------:|---------------:|-----------------:|---------:|--------------------------------:|----------------------------:|-------------------:|');
    for (const n of siloTargets) {
      const [r, c] = [ortAt(n, 'reversible'), ortAt(n, 'stored')];
      console.log(`| ${n} | ${r.stepPeakMiB.toFixed(1)} | ${c.stepPeakMiB.toFixed(1)} | ${(r.stepPeakMiB / c.stepPeakMiB).toFixed(3)} | ${r.baseMiB.toFixed(0)} / ${c.baseMiB.toFixed(0)} | ${r.buildSeconds.toFixed(1)} / ${c.buildSeconds.toFixed(1)} | ${r.stepSeconds.toFixed(2)} / ${c.stepSeconds.toFixed(2)} |`);
    }
  }
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
    ort: ort.length ? {
      triplets: Number(values.triplets),
      rows: ort.map((r) => ({ ...r, baseMiB: round(r.baseMiB), stepPeakMiB: round(r.stepPeakMiB), buildSeconds: round(r.buildSeconds), stepSeconds: round(r.stepSeconds) })),
      ratioAt8: round(ortRatioAt8),
      reversibleDeviationFrom4: round(ortSpread),
      goalsMet: ortRatioAt8 <= 0.2 && ortSpread <= 0.1,
    } : undefined,
  };
  console.log(JSON.stringify(summary));
}

function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}

await main();
