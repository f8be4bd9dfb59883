/**
 * Triplets/s of one full RevBiFPN training step (forward, triplet loss, backward, Adam) on the same architecture,
 * batch, tile size and thread count:
 *   - ort:       src/train/ort-step (one onnxruntime-node session.run per step)
 *   - tfjs-wasm: createGradientFunction (reversible) + Adam on the WASM backend with tilevec's training kernels
 *   - pytorch:   bench/torch_revbifpn.py (plain autograd), run with Debian's /usr/bin/python3 (python3-torch)
 * Engines are interleaved round by round (the order rotates) and each figure is the median over rounds, with the
 * spread (min–max over rounds), because other work may share the machine. Each round times `--steps` steps after a
 * warm-up step, in wall-clock and in process CPU-seconds (process.cpuUsage() around the in-process ORT steps, the
 * child's own CPU time for tfjs-wasm and PyTorch, time.process_time() there); CPU-seconds per triplet is much less
 * sensitive to a shared machine than triplets/s. The 1-minute load average at start decides whether the run counts
 * (below 1.0): only such a run's wall-clock figures belong in the README. tfjs-wasm runs in a child process:
 * its idle pthread workers, in the same process, slowed the ORT step about 3× on a 2-core machine. `pytorch-1t` (one thread) is printed
 * for reference only: it shows whether the multi-threaded figure suffers from an oversubscribed machine.
 *
 *   node --import tsx bench/train.ts [--tiles 32,64] [--batch 16] [--threads 2] [--rounds 5] [--steps 10] [--no-wasm]
 *   node --import tsx bench/train.ts --quick     # a try-out: tile 32, 2 rounds × 3 steps, no tfjs-wasm (does not count)
 *
 * The last line is one JSON object with the medians and the ratios to PyTorch.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { Adam, DEFAULT_ADAM } from '../src/train/adam.ts';
import { initBackend } from '../src/train/engine/index.ts';
import { DEFAULT_TRIPLET_LOSS, tripletLoss } from '../src/train/loss.ts';
import { createBackbone, createGradientFunction, type RevBiFPN } from '../src/model/index.ts';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../src/onnx/index.ts';
import { OrtTrainingStep } from '../src/train/ort-step/index.ts';
import { buildStepGraph } from '../src/train/ort-step/step-graph.ts';

const { values } = parseArgs({
  options: {
    tiles: { type: 'string', default: '32,64' },
    batch: { type: 'string', default: '16' },
    threads: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '5' },
    steps: { type: 'string', default: '10' },
    quick: { type: 'boolean', default: false },
    bands: { type: 'string', default: '4' },
    'no-wasm': { type: 'boolean', default: false },
    /** Internal: measure tfjs-wasm at this tile size and print seconds per step. */
    'wasm-child': { type: 'string' },
  },
});
const quick = values.quick;
const tileSizes = (quick ? '32' : values.tiles).split(',').map(Number);
const batch = Number(values.batch);
const threads = Number(values.threads);
const rounds = quick ? 2 : Number(values.rounds);
const steps = quick ? 3 : Number(values.steps);
if (quick) values['no-wasm'] = true;
/** What a run must have for its figures to count (issue 20 §1): at least this many rounds and steps, a quiet machine. */
const COUNTING = { rounds: 5, steps: 10, load: 1.0 };
const bands = Number(values.bands);
const TORCH_PYTHON = '/usr/bin/python3';
const CHILD_TIMEOUT_MS = 15 * 60_000;

type Engine = 'ort' | 'ort-nospin' | 'tfjs-wasm' | 'pytorch' | 'pytorch-1t';
const loadAverage = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
/** Wall-clock and process CPU seconds per step. */
interface Sample { wall: number; cpu: number }
const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

function tripletTiles(tile: number, seed: number): { data: Float32Array; shape: [number, number, number, number] } {
  const shape: [number, number, number, number] = [3 * batch, tile, tile, bands];
  const data = tf.tidy(() => tf.randomNormal(shape, 0, 1, 'float32', seed).dataSync() as Float32Array);
  return { data, shape };
}

/** Wall-clock and process CPU seconds per step over `steps` steps after one warm-up step. */
async function timeSteps(run: () => Promise<void> | void): Promise<Sample> {
  await run();
  const cpu0 = cpuSeconds();
  const start = performance.now();
  for (let s = 0; s < steps; s++) await run();
  const wall = (performance.now() - start) / 1000 / steps;
  return { wall, cpu: (cpuSeconds() - cpu0) / steps };
}

/**
 * FLOPs of one step, counted from the generated graphs (2 × the multiply-adds of every Conv, ConvTranspose, MatMul
 * and Einsum): the reversible step ORT runs (forward, reconstruction, backward), and the same step with stored
 * activations (forward and backward only), which is the work plain autograd does, so PyTorch's figure uses it.
 */
function stepFlops(model: RevBiFPN): { reversible: number; stored: number } {
  const count = (backward: 'reversible' | 'stored') =>
    buildStepGraph(model, { tiles: 3 * batch, loss: DEFAULT_TRIPLET_LOSS, adam: DEFAULT_ADAM, mode: 'step', backward }).flops;
  return { reversible: count('reversible'), stored: count('stored') };
}

/** The machine's practical peak: GFLOP/s of one large float32 MatMul in ORT with the bench's threads (best of 5). */
async function matmulPeakGflops(): Promise<number> {
  const n = 1536;
  const g = new GraphBuilder();
  const a = g.input('a', [n, n]);
  const b = g.input('b', [n, n]);
  g.op('MatMul', [a, b], {}, 'c');
  g.output('c', [n, n]);
  const session = await ort.InferenceSession.create(g.encode({ opset: 17, graphName: 'matmul-peak' }), { intraOpNumThreads: threads, interOpNumThreads: 1 });
  const x = new ort.Tensor('float32', Float32Array.from({ length: n * n }, (_, i) => Math.sin(i)), [n, n]);
  let best = Infinity;
  for (let i = 0; i < 6; i++) {
    const t0 = performance.now();
    await session.run({ a: x, b: x });
    if (i > 0) best = Math.min(best, (performance.now() - t0) / 1000);
  }
  await session.release();
  return (2 * n ** 3) / best / 1e9;
}

class OrtEngine {
  private constructor(private readonly step: OrtTrainingStep, readonly setupSeconds: number) {}

  static async create(model: RevBiFPN, tile: number, spinning = true): Promise<OrtEngine> {
    const start = performance.now();
    const step = await OrtTrainingStep.create(model, { threads, spinning });
    const { data, shape } = tripletTiles(tile, 1);
    await step.step(data, shape); // builds the graph and the session
    return new OrtEngine(step, (performance.now() - start) / 1000);
  }

  measure(tile: number): Promise<Sample> {
    const { data, shape } = tripletTiles(tile, 2);
    return timeSteps(async () => {
      await this.step.step(data, shape);
    });
  }

  dispose(): Promise<void> {
    return this.step.dispose();
  }
}

/** Runs in the child process: tfjs-wasm reversible gradients + Adam. */
async function measureTfjs(tile: number): Promise<Sample> {
  await initBackend('wasm', { threads });
  const model = createBackbone({ name: 'tiny', tileSize: tile, bands }, { seed: 1 });
  const adam = new Adam(DEFAULT_ADAM);
  const { data, shape } = tripletTiles(tile, 3);
  const x = tf.tensor4d(data, shape);
  const gradients = createGradientFunction(model, (e) => tripletLoss(e, DEFAULT_TRIPLET_LOSS));
  const params = new Map(model.params.trainableNames().map((n) => [n, model.params.get(n)]));
  return timeSteps(() => {
    const { value, grads } = gradients(x);
    adam.apply(params, grads);
    value.dataSync();
    tf.dispose([value, ...grads.values()]);
  });
}

/** Seconds per step (wall, and the child's own CPU), or null when the engine failed (reported on stderr). */
async function measureInChild(label: string, file: string, args: string[]): Promise<Sample | null> {
  try {
    const { stdout } = await promisify(execFile)(file, args, { timeout: CHILD_TIMEOUT_MS, maxBuffer: 1 << 24 });
    const out = JSON.parse(stdout.trim().split('\n').at(-1)!) as { secondsPerStep: number; cpuSecondsPerStep?: number };
    if (out.cpuSecondsPerStep === undefined) throw new Error(`${label} reported no CPU time`);
    return { wall: out.secondsPerStep, cpu: out.cpuSecondsPerStep };
  } catch (error) {
    console.error(`${label} failed: ${String(error).split('\n')[0]}`);
    return null;
  }
}

function measureTfjsInChild(tile: number): Promise<Sample | null> {
  const self = ['--import', 'tsx', 'bench/train.ts', '--wasm-child', String(tile), '--batch', String(batch), '--threads', String(threads), '--steps', String(steps), '--bands', String(bands)];
  return measureInChild('tfjs-wasm', process.execPath, self);
}

function measureTorch(model: RevBiFPN, torchThreads: number): Promise<Sample | null> {
  const args = JSON.stringify({ config: model.config, batch, steps, warmup: 1, threads: torchThreads });
  return measureInChild(`pytorch (${torchThreads} thread(s))`, TORCH_PYTHON, ['bench/torch_revbifpn.py', 'train', args]);
}

async function main(): Promise<void> {
  const loadBefore = loadAverage();
  const counts = !quick && rounds >= COUNTING.rounds && steps >= COUNTING.steps && loadBefore[0] < COUNTING.load;
  // The cpu backend only initialises the weights here; tfjs-wasm trains in its own process.
  await tf.setBackend('cpu');
  // ort-nospin: the same session with its idle threads sleeping instead of spinning (issue 20 §2's shared-CPU setting).
  const engines: Engine[] = ['ort', 'ort-nospin', ...(values['no-wasm'] ? [] : ['tfjs-wasm' as const]), 'pytorch', 'pytorch-1t'];
  console.log(`RevBiFPN tiny training step: batch ${batch} triplets (${3 * batch} tiles), ${bands} bands, ${threads} threads, ${rounds} rounds × ${steps} timed steps per engine`);
  console.log(`load average at start: ${loadBefore.join(' ')}: this run ${counts ? 'COUNTS' : `does NOT count (needs load < ${COUNTING.load} at start and >= ${COUNTING.rounds} rounds × ${COUNTING.steps} steps${quick ? '; --quick never counts' : ''})`}`);

  const samples = new Map<string, Sample[]>();
  const record = (tile: number, engine: Engine, value: Sample | null) => {
    if (value === null) return;
    const key = `${tile}:${engine}`;
    samples.set(key, [...(samples.get(key) ?? []), value]);
    console.log(`  tile ${tile} ${engine.padEnd(10)} ${(batch / value.wall).toFixed(2).padStart(8)} triplets/s  (${value.wall.toFixed(3)} s/step, ${((1000 * value.cpu) / batch).toFixed(1)} CPU-ms/triplet)`);
  };
  const setup: Record<string, number> = {};
  const flops: Record<number, { reversible: number; stored: number }> = {};
  const peakGflops = await matmulPeakGflops();
  console.log(`machine peak (one ${threads}-thread ORT MatMul of 1536²): ${peakGflops.toFixed(1)} GFLOP/s`);
  for (const tile of tileSizes) {
    const model = createBackbone({ name: 'tiny', tileSize: tile, bands }, { seed: 1 });
    flops[tile] = stepFlops(model);
    console.log(`tile ${tile}: ${(flops[tile].reversible / 1e9).toFixed(2)} GFLOP per reversible step, ${(flops[tile].stored / 1e9).toFixed(2)} with stored activations`);
    const ort = await OrtEngine.create(model, tile);
    const ortNoSpin = await OrtEngine.create(model, tile, false);
    setup[`ortSessionSeconds${tile}`] = ort.setupSeconds;
    for (let round = 0; round < rounds; round++) {
      console.log(`tile ${tile}, round ${round + 1}/${rounds} (load ${loadAverage().join(' ')})`);
      // Rotate the order so no engine always runs right after the same neighbour.
      const order = engines.map((_, i) => engines[(i + round) % engines.length]);
      for (const engine of order) {
        if (engine === 'ort') record(tile, engine, await ort.measure(tile));
        else if (engine === 'ort-nospin') record(tile, engine, await ortNoSpin.measure(tile));
        else if (engine === 'tfjs-wasm') record(tile, engine, await measureTfjsInChild(tile));
        else record(tile, engine, await measureTorch(model, engine === 'pytorch' ? threads : 1));
      }
    }
    await ort.dispose();
    await ortNoSpin.dispose();
    model.dispose();
  }
  const loadAfter = loadAverage();

  type Stats = { median: number; min: number; max: number };
  const stats = (xs: number[]): Stats => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });
  const results: Record<string, Record<string, { tripletsPerSecond: Stats; cpuMsPerTriplet: Stats; samples: number } | null>> = {};
  const ratios: Record<string, Record<string, number | null>> = {};
  const fmt = (st: Stats, d: number) => `${st.median.toFixed(d)} (${st.min.toFixed(d)}–${st.max.toFixed(d)})`;
  console.log(`\n| tile | engine | threads | triplets/s median (min–max) | CPU-ms/triplet median (min–max) | rounds |`);
  console.log('|---|---|---|---|---|---|');
  for (const tile of tileSizes) {
    const row: (typeof results)[string] = (results[`tile${tile}`] = {});
    for (const engine of engines) {
      const ss = samples.get(`${tile}:${engine}`);
      if (!ss) {
        row[engine] = null;
        console.log(`| ${tile} | ${engine} | ${engine === 'pytorch-1t' ? 1 : threads} | n/a | n/a | 0 |`);
        continue;
      }
      row[engine] = { tripletsPerSecond: stats(ss.map((x) => batch / x.wall)), cpuMsPerTriplet: stats(ss.map((x) => (1000 * x.cpu) / batch)), samples: ss.length };
      console.log(`| ${tile} | ${engine} | ${engine === 'pytorch-1t' ? 1 : threads} | ${fmt(row[engine]!.tripletsPerSecond, 2)} | ${fmt(row[engine]!.cpuMsPerTriplet, 1)} | ${ss.length} |`);
    }
    const wall = (e: Engine) => row[e]?.tripletsPerSecond.median ?? null;
    const cpu = (e: Engine) => row[e]?.cpuMsPerTriplet.median ?? null;
    const over = (x: number | null, y: number | null) => (x !== null && y !== null ? x / y : null);
    ratios[`tile${tile}`] = {
      // > 1: ORT is faster (more triplets/s) or cheaper (fewer CPU-seconds per triplet).
      ortVsPytorchWall: over(wall('ort'), wall('pytorch')),
      ortVsPytorchCpu: over(cpu('pytorch'), cpu('ort')),
      ortVsPytorchOneThreadWall: over(wall('ort'), wall('pytorch-1t')),
      ortVsPytorchOneThreadCpu: over(cpu('pytorch-1t'), cpu('ort')),
      ortNoSpinVsPytorchWall: over(wall('ort-nospin'), wall('pytorch')),
      ortNoSpinVsPytorchCpu: over(cpu('pytorch'), cpu('ort-nospin')),
      tfjsWasmVsPytorchWall: over(wall('tfjs-wasm'), wall('pytorch')),
      tfjsWasmVsPytorchCpu: over(cpu('pytorch'), cpu('tfjs-wasm')),
    };
  }
  // Achieved GFLOP/s: each engine's own work per step over its median seconds per step.
  const efficiency: Record<string, Record<string, { gflops: number; ofPeak: number } | null>> = {};
  for (const tile of tileSizes) {
    const row: (typeof efficiency)[string] = (efficiency[`tile${tile}`] = {});
    for (const engine of ['ort', 'pytorch'] as const) {
      const tps = results[`tile${tile}`][engine]?.tripletsPerSecond.median;
      if (tps === undefined) { row[engine] = null; continue; }
      const work = engine === 'ort' ? flops[tile].reversible : flops[tile].stored;
      const gflops = (work * (tps / batch)) / 1e9;
      row[engine] = { gflops, ofPeak: gflops / peakGflops };
      console.log(`tile ${tile} ${engine}: ${gflops.toFixed(2)} GFLOP/s, ${(100 * gflops / peakGflops).toFixed(1)} % of the MatMul peak`);
    }
  }
  console.log(`load average at start ${loadBefore.join(' ')}, at the end ${loadAfter.join(' ')}; ${counts ? 'the run counts' : 'the run does not count'}`);
  const x = (v: number | null) => (v === null ? 'n/a' : `${v.toFixed(2)}×`);
  for (const [tile, r] of Object.entries(ratios)) {
    console.log(`${tile}: ORT vs PyTorch (${threads} threads): wall-clock ${x(r.ortVsPytorchWall)}, CPU-seconds per triplet ${x(r.ortVsPytorchCpu)}; vs PyTorch 1 thread: wall ${x(r.ortVsPytorchOneThreadWall)}, CPU ${x(r.ortVsPytorchOneThreadCpu)}`);
  }
  console.log(JSON.stringify({ bench: 'train', config: 'tiny', batch, bands, threads, rounds, steps, quick, counts, loadAverage: { start: loadBefore, end: loadAfter }, ...setup, peakGflops, flops, results, ratios, efficiency }));
}

if (values['wasm-child']) {
  const sample = await measureTfjs(Number(values['wasm-child']));
  console.log(JSON.stringify({ secondsPerStep: sample.wall, cpuSecondsPerStep: sample.cpu }));
} else {
  await main();
}
