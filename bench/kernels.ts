// Times a 3x3 conv (32->32 channels, batch 16x32x32) forward, filter gradient and input gradient:
// wasm with tilevec's training kernels, wasm's own kernels where they exist, and cpu (on a
// smaller batch, scaled, because cpu takes ~30 s per full-size filter gradient).
// Usage: node --import tsx bench/kernels.ts [--threads N]
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { registerWasmTrainingKernels } from '../src/train/engine/index.ts';
import { startWasmBackend } from '../src/train/engine/wasm-threads.ts';

const { values } = parseArgs({ options: { threads: { type: 'string', default: '2' } } });
const requestedThreads = Number(values.threads);

const [N, H, W, C, K] = [16, 32, 32, 32, 3];
const CPU_BATCH = 1;

function medianMs(run: () => void, reps: number, warmup = 2): number {
  for (let i = 0; i < warmup; i++) run();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const start = performance.now();
    run();
    times.push(performance.now() - start);
  }
  return times.sort((a, b) => a - b)[Math.floor(reps / 2)];
}

interface Row { op: string; engine: string; batch: number; ms: number }

function convBench(batch: number, engine: string, reps: number, nativeInputGrad?: tf.KernelConfig): Row[] {
  const x = tf.randomNormal([batch, H, W, C]) as tf.Tensor4D;
  const filter = tf.randomNormal([K, K, C, C]) as tf.Tensor4D;
  const dy = tf.randomNormal([batch, H, W, C]) as tf.Tensor4D;
  const timed = (op: string, run: () => tf.TensorInfo, e = engine): Row => ({
    op, engine: e, batch, ms: medianMs(() => tf.tidy(() => { run(); }), reps, reps > 1 ? 2 : 0),
  });
  const convAttrs = { strides: [1, 1], pad: 'same', dataFormat: 'NHWC', dimRoundingMode: undefined } as unknown as tf.NamedAttrMap;
  const rows = [
    timed('forward Conv2D', () => tf.conv2d(x, filter, 1, 'same')),
    timed('filter grad', () => tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, { ...convAttrs, filterShape: filter.shape }) as tf.Tensor),
    timed('input grad', () => tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter }, { ...convAttrs, inputShape: x.shape }) as tf.Tensor),
  ];
  if (nativeInputGrad) {
    rows.push(timed('input grad', () => {
      const out = nativeInputGrad.kernelFunc({ inputs: { dy, filter }, attrs: { ...convAttrs, inputShape: x.shape }, backend: tf.backend() }) as tf.TensorInfo;
      tf.backend().disposeData(out.dataId);
      return out;
    }, 'wasm (tfjs native)'));
  }
  tf.dispose([x, filter, dy]);
  return rows;
}

const threads = await startWasmBackend(requestedThreads);
// tfjs's own Conv2DBackpropInput, kept before ours replaces it (wasm has no filter gradient).
const nativeInputGrad = tf.getKernel(tf.Conv2DBackpropInput, 'wasm');
registerWasmTrainingKernels();
const wasmRows = convBench(N, `wasm+tilevec (${threads}t)`, 20, nativeInputGrad);

await tf.setBackend('cpu');
const cpuRows = convBench(CPU_BATCH, 'cpu', 1).map((row) => ({ ...row, engine: `cpu (x${N / CPU_BATCH} scaled)`, batch: N, ms: row.ms * (N / CPU_BATCH) }));

const rows = [...wasmRows, ...cpuRows];
console.log(`3x3 conv ${C}->${C}, input ${N}x${H}x${W}x${C}, NHWC`);
console.log('op               engine                     ms');
for (const row of rows) console.log(`${row.op.padEnd(16)} ${row.engine.padEnd(26)} ${row.ms.toFixed(2).padStart(9)}`);

const ms = (op: string, engine: (e: string) => boolean) => {
  const row = rows.find((r) => r.op === op && engine(r.engine));
  return row ? Number(row.ms.toFixed(3)) : null;
};
const ours = (e: string) => e.startsWith('wasm+tilevec');
const cpu = (e: string) => e.startsWith('cpu');
console.log(JSON.stringify({
  bench: 'kernels', case: `conv3x3 ${C}->${C} ${N}x${H}x${W}`, wasmThreads: threads,
  wasm: { forward: ms('forward Conv2D', ours), filterGrad: ms('filter grad', ours), inputGrad: ms('input grad', ours) },
  wasmNative: { forward: ms('forward Conv2D', ours), filterGrad: null, inputGrad: ms('input grad', (e) => e.includes('native')) },
  cpuScaled: { forward: ms('forward Conv2D', cpu), filterGrad: ms('filter grad', cpu), inputGrad: ms('input grad', cpu) },
}));
