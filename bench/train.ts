/**
 * Triplets/s of one full RevBiFPN training step (forward, triplet loss, backward, Adam) on the same architecture,
 * batch, tile size and thread count:
 *   - ort:       src/train/ort-step (one onnxruntime-node session.run per step)
 *   - tfjs-wasm: createGradientFunction (reversible) + Adam on the WASM backend with tilevec's training kernels
 *   - pytorch:   bench/torch_revbifpn.py (plain autograd), run with Debian's /usr/bin/python3 (python3-torch)
 * Engines are interleaved round by round and each figure is the median over rounds, because other work may share
 * the machine; the load average before and after is printed with the results. tfjs-wasm runs in a child process:
 * its idle pthread workers, in the same process, slowed the ORT step about 3× on a 2-core machine. `pytorch-1t` (one thread) is printed
 * for reference only: it shows whether the multi-threaded figure suffers from an oversubscribed machine.
 *
 *   node --import tsx bench/train.ts [--tiles 32,64] [--batch 16] [--threads 2] [--rounds 3] [--steps 2] [--no-wasm]
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
import { createBackbone, createGradientFunction, type RevBiFPN } from '../src/train/model/index.ts';
import { OrtTrainingStep } from '../src/train/ort-step/index.ts';

const { values } = parseArgs({
  options: {
    tiles: { type: 'string', default: '32,64' },
    batch: { type: 'string', default: '16' },
    threads: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '3' },
    steps: { type: 'string', default: '2' },
    bands: { type: 'string', default: '4' },
    'no-wasm': { type: 'boolean', default: false },
    /** Internal: measure tfjs-wasm at this tile size and print seconds per step. */
    'wasm-child': { type: 'string' },
  },
});
const tileSizes = values.tiles.split(',').map(Number);
const batch = Number(values.batch);
const threads = Number(values.threads);
const rounds = Number(values.rounds);
const steps = Number(values.steps);
const bands = Number(values.bands);
const TORCH_PYTHON = '/usr/bin/python3';
const CHILD_TIMEOUT_MS = 15 * 60_000;

type Engine = 'ort' | 'tfjs-wasm' | 'pytorch' | 'pytorch-1t';
const loadAverage = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function tripletTiles(tile: number, seed: number): { data: Float32Array; shape: [number, number, number, number] } {
  const shape: [number, number, number, number] = [3 * batch, tile, tile, bands];
  const data = tf.tidy(() => tf.randomNormal(shape, 0, 1, 'float32', seed).dataSync() as Float32Array);
  return { data, shape };
}

/** Seconds per step over `steps` steps after one warm-up step. */
async function timeSteps(run: () => Promise<void> | void): Promise<number> {
  await run();
  const start = performance.now();
  for (let s = 0; s < steps; s++) await run();
  return (performance.now() - start) / 1000 / steps;
}

class OrtEngine {
  private constructor(private readonly step: OrtTrainingStep, readonly setupSeconds: number) {}

  static async create(model: RevBiFPN, tile: number): Promise<OrtEngine> {
    const start = performance.now();
    const step = await OrtTrainingStep.create(model, { threads });
    const { data, shape } = tripletTiles(tile, 1);
    await step.step(data, shape); // builds the graph and the session
    return new OrtEngine(step, (performance.now() - start) / 1000);
  }

  measure(tile: number): Promise<number> {
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
async function measureTfjs(tile: number): Promise<number> {
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

/** Seconds per step, or null when the engine failed (reported on stderr). */
async function measureInChild(label: string, file: string, args: string[]): Promise<number | null> {
  try {
    const { stdout } = await promisify(execFile)(file, args, { timeout: CHILD_TIMEOUT_MS, maxBuffer: 1 << 24 });
    return JSON.parse(stdout.trim().split('\n').at(-1)!).secondsPerStep;
  } catch (error) {
    console.error(`${label} failed: ${String(error).split('\n')[0]}`);
    return null;
  }
}

function measureTfjsInChild(tile: number): Promise<number | null> {
  const self = ['--import', 'tsx', 'bench/train.ts', '--wasm-child', String(tile), '--batch', String(batch), '--threads', String(threads), '--steps', String(steps), '--bands', String(bands)];
  return measureInChild('tfjs-wasm', process.execPath, self);
}

function measureTorch(model: RevBiFPN, torchThreads: number): Promise<number | null> {
  const args = JSON.stringify({ config: model.config, batch, steps, warmup: 1, threads: torchThreads });
  return measureInChild(`pytorch (${torchThreads} thread(s))`, TORCH_PYTHON, ['bench/torch_revbifpn.py', 'train', args]);
}

async function main(): Promise<void> {
  const loadBefore = loadAverage();
  // The cpu backend only initialises the weights here; tfjs-wasm trains in its own process.
  await tf.setBackend('cpu');
  const engines: Engine[] = ['ort', ...(values['no-wasm'] ? [] : ['tfjs-wasm' as const]), 'pytorch', 'pytorch-1t'];
  console.log(`RevBiFPN tiny training step: batch ${batch} triplets (${3 * batch} tiles), ${bands} bands, ${threads} threads, ${rounds} rounds × ${steps} steps`);
  console.log(`load average before: ${loadBefore.join(' ')}`);

  const seconds = new Map<string, number[]>();
  const record = (tile: number, engine: Engine, value: number | null) => {
    if (value === null) return;
    const key = `${tile}:${engine}`;
    seconds.set(key, [...(seconds.get(key) ?? []), value]);
    console.log(`  tile ${tile} ${engine.padEnd(10)} ${(batch / value).toFixed(2).padStart(8)} triplets/s  (${value.toFixed(3)} s/step)`);
  };
  const setup: Record<string, number> = {};
  for (const tile of tileSizes) {
    const model = createBackbone({ name: 'tiny', tileSize: tile, bands }, { seed: 1 });
    const ort = await OrtEngine.create(model, tile);
    setup[`ortSessionSeconds${tile}`] = ort.setupSeconds;
    for (let round = 0; round < rounds; round++) {
      console.log(`tile ${tile}, round ${round + 1}/${rounds} (load ${loadAverage().join(' ')})`);
      // Rotate the order so no engine always runs right after the same neighbour.
      const order = engines.map((_, i) => engines[(i + round) % engines.length]);
      for (const engine of order) {
        if (engine === 'ort') record(tile, engine, await ort.measure(tile));
        else if (engine === 'tfjs-wasm') record(tile, engine, await measureTfjsInChild(tile));
        else record(tile, engine, await measureTorch(model, engine === 'pytorch' ? threads : 1));
      }
    }
    await ort.dispose();
    model.dispose();
  }
  const loadAfter = loadAverage();

  const throughput: Record<string, Record<string, number | null>> = {};
  const ratios: Record<string, Record<string, number | null>> = {};
  console.log(`\n| tile | engine | threads | triplets/s (median) | s/step | samples | × pytorch (${threads} threads) |`);
  console.log('|---|---|---|---|---|---|---|');
  for (const tile of tileSizes) {
    throughput[`tile${tile}`] = {};
    const torch = seconds.get(`${tile}:pytorch`);
    const torchRate = torch ? batch / median(torch) : null;
    for (const engine of engines) {
      const samples = seconds.get(`${tile}:${engine}`);
      const rate = samples ? batch / median(samples) : null;
      throughput[`tile${tile}`][engine] = rate;
      const ratio = rate !== null && torchRate !== null ? rate / torchRate : null;
      const engineThreads = engine === 'pytorch-1t' ? 1 : threads;
      console.log(`| ${tile} | ${engine} | ${engineThreads} | ${rate?.toFixed(2) ?? 'n/a'} | ${samples ? median(samples).toFixed(3) : 'n/a'} | ${samples?.length ?? 0} | ${ratio?.toFixed(2) ?? 'n/a'} |`);
    }
    const rate = (e: Engine) => throughput[`tile${tile}`][e];
    const over = (a: number | null | undefined, b: number | null | undefined) => (a != null && b != null ? a / b : null);
    ratios[`tile${tile}`] = {
      ortVsPytorch: over(rate('ort'), rate('pytorch')),
      tfjsWasmVsPytorch: over(rate('tfjs-wasm'), rate('pytorch')),
      ortVsTfjsWasm: over(rate('ort'), rate('tfjs-wasm')),
      ortVsPytorchOneThread: over(rate('ort'), rate('pytorch-1t')),
    };
  }
  console.log(`load average before ${loadBefore.join(' ')}, after ${loadAfter.join(' ')}`);
  for (const [tile, r] of Object.entries(ratios)) {
    console.log(`${tile}: ort/pytorch ${r.ortVsPytorch?.toFixed(2) ?? 'n/a'}×, tfjs-wasm/pytorch ${r.tfjsWasmVsPytorch?.toFixed(2) ?? 'n/a'}×, ort/tfjs-wasm ${r.ortVsTfjsWasm?.toFixed(2) ?? 'n/a'}×`);
  }
  console.log(JSON.stringify({ bench: 'train', config: 'tiny', batch, bands, threads, rounds, steps, loadAverage: { before: loadBefore, after: loadAfter }, ...setup, tripletsPerSecond: throughput, ratios }));
}

if (values['wasm-child']) {
  console.log(JSON.stringify({ secondsPerStep: await measureTfjs(Number(values['wasm-child'])) }));
} else {
  await main();
}
