// The WASM training kernels against the cpu backend: every gradient is computed on both
// backends from the same data and must agree to a relative error of 1e-4 (max-abs, relative to
// the largest cpu value).
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import {
  BackendNotInstalledError, findMissingTrainingKernels, initBackend, registerWasmTrainingKernels,
  trainingOpSuite, wasmTrainingKernels,
} from '../src/train/engine/index.ts';
import { caseInputs, seededValues } from '../src/train/engine/training-op-suite.ts';

const TOLERANCE = 1e-4;
type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];

function relativeError(actual: Float32Array, expected: Float32Array): number {
  assert.equal(actual.length, expected.length, 'gradient sizes differ');
  let diff = 0;
  let scale = 1e-12;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return diff / scale;
}

function assertClose(actual: Float32Array[], expected: Float32Array[], label: string) {
  assert.equal(actual.length, expected.length);
  actual.forEach((a, i) => {
    const error = relativeError(a, expected[i]);
    assert.ok(error <= TOLERANCE, `${label}, gradient ${i}: relative error ${error.toExponential(2)} > ${TOLERANCE}`);
  });
}

async function on(backend: 'cpu' | 'wasm', compute: () => tf.Tensor[]): Promise<Float32Array[]> {
  assert.ok(await tf.setBackend(backend));
  return tf.tidy(() => compute().map((t) => t.dataSync() as Float32Array).map((values) => values.slice()));
}

/** Both backends' gradients of `loss` with respect to seeded inputs of `shapes`. */
async function gradsOnBoth(shapes: number[][], loss: (...inputs: tf.Tensor[]) => tf.Tensor) {
  const compute = () => tf.grads(loss)(caseInputs({ name: '', inputShapes: shapes, loss }));
  return { wasm: await on('wasm', compute), cpu: await on('cpu', compute) };
}

// Distinct upstream gradient per output element.
const upstream = (shape: number[]) => tf.sin(tf.reshape(tf.range(0, shape.reduce((a, b) => a * b, 1)), shape));
const weighted = (y: tf.Tensor) => tf.sum(tf.mul(y, upstream(y.shape)));
const seeded = (shape: number[], seed: number) => tf.tensor(seededValues(shape.reduce((a, b) => a * b, 1), seed), shape);

before(async () => {
  await initBackend('wasm');
});

describe('conv2d gradients on wasm match cpu', () => {
  const cases: { x: number[]; k: [number, number]; out: number; stride: number | [number, number]; pad: Pad }[] = [
    { x: [2, 5, 5, 3], k: [1, 1], out: 4, stride: 1, pad: 'valid' },
    { x: [2, 8, 8, 3], k: [3, 3], out: 4, stride: 1, pad: 'same' },
    { x: [2, 9, 7, 3], k: [3, 3], out: 5, stride: 2, pad: 'same' },
    { x: [2, 9, 9, 2], k: [3, 3], out: 3, stride: 2, pad: 'valid' },
    { x: [1, 10, 10, 2], k: [3, 3], out: 3, stride: 4, pad: 'valid' },
    { x: [2, 17, 13, 3], k: [7, 7], out: 4, stride: 4, pad: 'same' },
    { x: [1, 16, 16, 2], k: [15, 15], out: 3, stride: 1, pad: 'same' },
    { x: [1, 12, 11, 3], k: [1, 7], out: 2, stride: [1, 2], pad: 'same' },
    { x: [2, 9, 9, 3], k: [3, 3], out: 4, stride: 2, pad: [[0, 0], [2, 1], [0, 3], [0, 0]] },
    { x: [1, 6, 6, 2], k: [3, 3], out: 2, stride: 1, pad: [[0, 0], [3, 0], [0, 4], [0, 0]] },
  ];
  for (const c of cases) {
    test(`k${c.k.join('x')} stride ${c.stride} pad ${JSON.stringify(c.pad)}`, async () => {
      const { wasm, cpu } = await gradsOnBoth([c.x, [...c.k, c.x[3], c.out]], (x, f) =>
        weighted(tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, c.stride, c.pad)));
      assertClose(wasm, cpu, 'conv2d');
    });
  }
});

describe('depthwiseConv2d gradients on wasm match cpu', () => {
  const cases: { x: number[]; k: number; multiplier: number; stride: number; pad: Pad }[] = [
    { x: [2, 6, 6, 3], k: 1, multiplier: 1, stride: 1, pad: 'valid' },
    { x: [2, 8, 8, 4], k: 3, multiplier: 1, stride: 1, pad: 'same' },
    { x: [2, 9, 8, 4], k: 3, multiplier: 1, stride: 2, pad: 'same' },
    { x: [2, 16, 16, 3], k: 7, multiplier: 1, stride: 4, pad: 'same' },
    { x: [1, 20, 20, 2], k: 15, multiplier: 1, stride: 1, pad: 'same' },
    { x: [1, 32, 32, 2], k: 15, multiplier: 1, stride: 4, pad: 'valid' },
    { x: [2, 9, 9, 3], k: 3, multiplier: 2, stride: 2, pad: [[0, 0], [1, 2], [2, 0], [0, 0]] },
    { x: [1, 7, 7, 2], k: 3, multiplier: 3, stride: 1, pad: 'valid' },
  ];
  for (const c of cases) {
    test(`k${c.k} stride ${c.stride} multiplier ${c.multiplier} pad ${JSON.stringify(c.pad)}`, async () => {
      const { wasm, cpu } = await gradsOnBoth([c.x, [c.k, c.k, c.x[3], c.multiplier]], (x, f) =>
        weighted(tf.depthwiseConv2d(x as tf.Tensor4D, f as tf.Tensor4D, c.stride, c.pad)));
      assertClose(wasm, cpu, 'depthwiseConv2d');
    });
  }
});

// tfjs-core's conv gradients reject dilation, so the dilated kernels are called directly. The
// cpu backend's own dilated depthwise backprop kernels are wrong, so the oracle is cpu's
// gradient through an undilated conv with a zero-inserted filter.
describe('dilated convolution gradient kernels on wasm match cpu', () => {
  const dilateFilter = (f: tf.Tensor, d: number) => {
    const [kh, kw, ci, co] = f.shape;
    const spread = tf.pad(tf.reshape(f, [kh, 1, kw, 1, ci, co]), [[0, 0], [0, d - 1], [0, 0], [0, d - 1], [0, 0], [0, 0]]);
    return tf.slice(tf.reshape(spread, [kh * d, kw * d, ci, co]), 0, [(kh - 1) * d + 1, (kw - 1) * d + 1]) as tf.Tensor4D;
  };
  const cases = [
    { depthwise: false, d: 2, pad: 'same', xShape: [2, 10, 9, 3], filterShape: [3, 3, 3, 4] },
    { depthwise: false, d: 3, pad: 'valid', xShape: [1, 12, 12, 2], filterShape: [3, 3, 2, 3] },
    { depthwise: true, d: 2, pad: 'same', xShape: [2, 11, 10, 3], filterShape: [3, 3, 3, 2] },
    { depthwise: true, d: 3, pad: 'valid', xShape: [1, 12, 13, 2], filterShape: [3, 3, 2, 1] },
  ] as const;
  for (const { depthwise, d, pad, xShape, filterShape } of cases) {
    test(`${depthwise ? 'depthwise' : 'conv2d'} dilation ${d} pad ${pad}`, async () => {
      const forward = (x: tf.Tensor, f: tf.Tensor, dilation: number) => depthwise
        ? tf.depthwiseConv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, pad, 'NHWC', dilation)
        : tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, pad, 'NHWC', dilation);
      const cpu = await on('cpu', () => tf.grads((x, f) => weighted(forward(x, dilateFilter(f, d), 1)))([seeded([...xShape], 1), seeded([...filterShape], 2)]));
      const wasm = await on('wasm', () => {
        const x = seeded([...xShape], 1);
        const filter = seeded([...filterShape], 2);
        const dy = upstream(forward(x, filter, d).shape);
        const attrs = { strides: [1, 1], dilations: [d, d], pad, dataFormat: 'NHWC' };
        const [inputKernel, filterKernel] = depthwise
          ? [tf.DepthwiseConv2dNativeBackpropInput, tf.DepthwiseConv2dNativeBackpropFilter]
          : [tf.Conv2DBackpropInput, tf.Conv2DBackpropFilter];
        return [
          tf.engine().runKernel(inputKernel, { dy, filter }, { ...attrs, inputShape: xShape } as unknown as tf.NamedAttrMap) as tf.Tensor,
          tf.engine().runKernel(filterKernel, { x, dy }, { ...attrs, filterShape } as unknown as tf.NamedAttrMap) as tf.Tensor,
        ];
      });
      assertClose(wasm, cpu, `dilation ${d}`);
    });
  }
});

describe('the training op suite on wasm', () => {
  test('needs no kernel or gradient that wasm lacks', async () => {
    assert.ok(await tf.setBackend('wasm'));
    assert.deepEqual(findMissingTrainingKernels(), []);
  });

  for (const testCase of trainingOpSuite) {
    test(`${testCase.name}: gradients match cpu`, async () => {
      const { wasm, cpu } = await gradsOnBoth(testCase.inputShapes, testCase.loss);
      assertClose(wasm, cpu, testCase.name);
    });
  }

  // resizeBilinear is linear in its input, so its exact gradient is the transpose of the map the
  // forward pass applies to one-hot images (cpu's own gradient is wrong for non-square images).
  for (const alignCorners of [false, true]) {
    test(`resizeBilinear gradient, non-square, alignCorners ${alignCorners}`, async () => {
      const [n, h, w, c] = [2, 3, 5, 2];
      const size: [number, number] = [4 * h, 4 * w];
      const wasm = await on('wasm', () => tf.grads((x) => weighted(tf.image.resizeBilinear(x as tf.Tensor4D, size, alignCorners)))([seeded([n, h, w, c], 1)]));
      const oracle = await on('cpu', () => {
        const basis = tf.reshape(tf.eye(h * w), [h * w, h, w, 1]) as tf.Tensor4D;
        const map = tf.reshape(tf.image.resizeBilinear(basis, size, alignCorners), [h * w, size[0] * size[1]]);
        const dy = tf.reshape(tf.transpose(upstream([n, ...size, c]), [1, 2, 0, 3]), [size[0] * size[1], n * c]);
        return [tf.transpose(tf.reshape(tf.matMul(map, dy), [h, w, n, c]), [2, 0, 1, 3])];
      });
      assertClose(wasm, oracle, 'resizeBilinear');
    });
  }
});

describe('registration', () => {
  test('is idempotent and replaces the slow native Conv2DBackpropInput', () => {
    registerWasmTrainingKernels();
    registerWasmTrainingKernels();
    for (const config of wasmTrainingKernels) {
      assert.equal(tf.getKernel(config.kernelName, 'wasm')?.kernelFunc, config.kernelFunc, config.kernelName);
    }
  });

  test('the kernels leave no intermediate tensors behind', async () => {
    assert.ok(await tf.setBackend('wasm'));
    const x = seeded([2, 8, 8, 3], 1);
    const f = seeded([3, 3, 3, 1], 2);
    const before = tf.memory().numTensors;
    const [dx, df] = tf.grads((a, b) => tf.sum(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same')))([x, f]);
    assert.equal(tf.memory().numTensors, before + 2);
    tf.dispose([x, f, dx, df]);
  });
});

describe('initBackend', () => {
  const tfjsNodeInstalled = (() => {
    try {
      createRequire(import.meta.url).resolve('@tensorflow/tfjs-node');
      return true;
    } catch {
      return false;
    }
  })();

  test('a requested backend that is not installed names the package to install', { skip: tfjsNodeInstalled && 'tfjs-node is installed' }, async () => {
    await assert.rejects(initBackend('tensorflow'), (error: unknown) => {
      assert.ok(error instanceof BackendNotInstalledError);
      assert.match(error.message, /npm install @tensorflow\/tfjs-node\b/);
      return true;
    });
  });

  test('wasm reports the backend and threads in use', async () => {
    const active = await initBackend('wasm');
    assert.equal(active.name, 'wasm');
    assert.equal(tf.getBackend(), 'wasm');
    assert.ok(active.threads !== null && active.threads >= 1);
  });
});
