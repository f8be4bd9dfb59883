/**
 * Tiles/s of embedding (inference) on the same RevBiFPN architecture, batch, tile size and thread count:
 *   - ort:       the exported ONNX graph (BatchNorm folded) on onnxruntime-node, as `tilevec embed` runs it
 *   - ort-d4:    the same graph with test-time augmentation (`train --tta d4`: eight orientations averaged)
 *   - tfjs-wasm: RevBiFPN.apply on the WASM backend (in a child process: its worker threads would slow ORT)
 *   - pytorch:   eval mode of bench/torch_revbifpn.py under Debian's /usr/bin/python3 (python3-torch)
 * Engines alternate round by round and each figure is the median; the load average is printed with the results.
 *
 *   node --import tsx bench/embed.ts [--tile 32] [--batch 64] [--tiles 1024] [--threads 2] [--rounds 3] [--depth 1]
 *
 * The last line is one JSON object with the medians and the ratios (goals: ORT ≥ 1.5× PyTorch, ≥ 5× tfjs-wasm).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify, parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/train/engine/index.ts';
import { createBackbone, resolveBackboneConfig } from '../src/model/index.ts';
import { EmbeddingSession, exportBackboneOnnx, onnxMetadata } from '../src/embed/index.ts';
import type { ModelCard } from '../src/train/index.ts';

const { values } = parseArgs({
  options: {
    tile: { type: 'string', default: '32' },
    batch: { type: 'string', default: '64' },
    tiles: { type: 'string', default: '1024' },
    threads: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '3' },
    depth: { type: 'string', default: '1' },
    bands: { type: 'string', default: '4' },
    /** Internal: measure tfjs-wasm and print tiles/s. */
    'wasm-child': { type: 'boolean', default: false },
  },
});
const tile = Number(values.tile);
const batch = Number(values.batch);
const total = Number(values.tiles);
const threads = Number(values.threads);
const rounds = Number(values.rounds);
const config = resolveBackboneConfig('tiny', { tileSize: tile, bands: Number(values.bands), extraLayers: Number(values.depth), dim: 128 });
const run = promisify(execFile);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const loadAverage = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);

function inputs(): Float32Array {
  return tf.tidy(() => tf.randomNormal([batch, tile, tile, config.bands], 0, 1, 'float32', 7).dataSync() as Float32Array);
}

async function tilesPerSecond(embedBatch: () => Promise<unknown> | unknown): Promise<number> {
  await embedBatch(); // warm-up
  const started = performance.now();
  let done = 0;
  while (done < total) {
    await embedBatch();
    done += batch;
  }
  return done / ((performance.now() - started) / 1000);
}

if (values['wasm-child']) {
  await initBackend('wasm', { threads });
  const model = createBackbone(config, { seed: 1 });
  const x = tf.tensor4d(inputs(), [batch, tile, tile, config.bands]);
  const rate = await tilesPerSecond(() => model.apply(x).dispose());
  process.stdout.write(`${JSON.stringify({ tilesPerSecond: rate })}\n`);
  process.exit(0);
}

await initBackend('cpu');
const model = createBackbone(config, { seed: 1 });
const card = { name: 'bench', bands: Array.from({ length: config.bands }, (_, i) => i + 1), tileSize: tile, dim: config.dim,
  normalization: { version: 1, method: 'zscore', bands: Array.from({ length: config.bands }, (_, i) => i + 1), offset: new Array(config.bands).fill(0),
    scale: new Array(config.bands).fill(1), clip: null, fill: 0, rasterIds: [] } } as unknown as ModelCard;
const session = await EmbeddingSession.create(exportBackboneOnnx(model, { metadata: onnxMetadata(card) }), { threads, spinning: true });
const d4Session = await EmbeddingSession.create(exportBackboneOnnx(model, { metadata: onnxMetadata(card), tta: 'd4' }), { threads, spinning: true });
const x = inputs();

const engines = {
  ort: () => tilesPerSecond(() => session.embed(x, batch)),
  'ort-d4': () => tilesPerSecond(() => d4Session.embed(x, batch)),
  'tfjs-wasm': async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', import.meta.filename, '--wasm-child', ...process.argv.slice(2)], { maxBuffer: 1 << 20 });
    return JSON.parse(stdout.trim().split('\n').at(-1)!).tilesPerSecond as number;
  },
  pytorch: () => torchEval(threads),
  // One thread, for reference only: shows whether the multi-threaded figure suffers from a busy machine.
  'pytorch-1t': () => torchEval(1),
};
async function torchEval(torchThreads: number): Promise<number> {
  const args = JSON.stringify({ config, batch, tiles: total, threads: torchThreads });
  const { stdout } = await run('/usr/bin/python3', [new URL('./torch_revbifpn.py', import.meta.url).pathname, 'embed', args], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!).tilesPerSecond as number;
}
const results: Record<string, number[]> = { ort: [], 'ort-d4': [], 'tfjs-wasm': [], pytorch: [], 'pytorch-1t': [] };
const before = loadAverage();
for (let r = 0; r < rounds; r++) {
  for (const [name, measure] of Object.entries(engines)) results[name].push(await measure());
}
const after = loadAverage();
await session.release();
await d4Session.release();
model.dispose();

const medians = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)]));
console.log(`embedding throughput: tiny RevBiFPN (${config.extraLayers + 3} silos), ${tile} px, ${config.bands} bands, dim ${config.dim}, batch ${batch}, ${threads} threads, ${rounds} rounds (median)`);
console.log('engine      tiles/s');
for (const [name, v] of Object.entries(medians)) console.log(`${name.padEnd(11)} ${v.toFixed(1).padStart(8)}`);
const ratios = { ortVsPytorch: medians.ort / medians.pytorch, ortVsTfjsWasm: medians.ort / medians['tfjs-wasm'], ortVsPytorchOneThread: medians.ort / medians['pytorch-1t'], d4Cost: medians.ort / medians['ort-d4'] };
console.log(`ORT / PyTorch = ${ratios.ortVsPytorch.toFixed(2)}x (goal 1.5x), ORT / tfjs-wasm = ${ratios.ortVsTfjsWasm.toFixed(2)}x (goal 5x); --tta d4 costs ${ratios.d4Cost.toFixed(1)}x; load ${before.join(' ')} -> ${after.join(' ')}`);
console.log(JSON.stringify({ bench: 'embed', tile, batch, threads, bands: config.bands, silos: config.extraLayers + 3, rounds, tilesPerSecond: medians, ratios, loadAverage: { before, after } }));
