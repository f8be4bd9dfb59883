// Forward+backward cases covering every op a MobileNet-style Tile2Vec network trains with.
// Used twice: to list kernels a backend lacks (`findMissingTrainingKernels`) and, in the tests,
// to compare each case's gradients on wasm against the cpu backend.
import * as tf from '@tensorflow/tfjs';

export interface TrainingOpCase {
  name: string;
  /** Shapes of the differentiable inputs, filled with seeded random values. */
  inputShapes: number[][];
  /** A scalar to differentiate with respect to every input. */
  loss: (...inputs: tf.Tensor[]) => tf.Tensor;
}

const hardSigmoid = (x: tf.Tensor) => tf.clipByValue(tf.add(tf.div(x, 6), 0.5), 0, 1);
const hardSwish = (x: tf.Tensor) => tf.mul(x, tf.div(tf.relu6(tf.add(x, 3)), 6));
// A fixed, non-uniform weighting so every output element gets a distinct upstream gradient.
const weighted = (y: tf.Tensor): tf.Scalar => tf.sum(tf.mul(y, tf.sin(tf.reshape(tf.range(0, y.size), y.shape))));

function spaceToDepth(x: tf.Tensor4D, b: number): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const blocks = tf.reshape(x, [n, h / b, b, w / b, b, c]);
  return tf.reshape(tf.transpose(blocks, [0, 1, 3, 2, 4, 5]), [n, h / b, w / b, b * b * c]);
}

function depthwiseCase(k: number, stride: number, pad: 'same' | 'valid' = 'same', multiplier = 1): TrainingOpCase {
  return {
    name: `depthwiseConv2d k${k} s${stride} ${pad} m${multiplier}`,
    inputShapes: [[2, 16, 16, 4], [k, k, 4, multiplier]],
    loss: (x, f) => weighted(tf.depthwiseConv2d(x as tf.Tensor4D, f as tf.Tensor4D, stride, pad)),
  };
}

export const trainingOpSuite: TrainingOpCase[] = [
  {
    name: 'conv2d k3 s2 same',
    inputShapes: [[2, 9, 9, 3], [3, 3, 3, 5]],
    loss: (x, f) => weighted(tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 2, 'same')),
  },
  {
    name: 'fused conv2d + bias + relu6',
    inputShapes: [[2, 8, 8, 4], [3, 3, 4, 6], [6]],
    loss: (x, f, b) => weighted(tf.fused.conv2d({ x: x as tf.Tensor4D, filter: f as tf.Tensor4D, strides: 1, pad: 'same', bias: b, activation: 'relu6' })),
  },
  ...[3, 7, 15].flatMap((k) => [1, 2, 4, 8].map((s) => depthwiseCase(k, s))),
  depthwiseCase(3, 1, 'valid', 2),
  {
    name: 'batchNorm (train mode, moments) + hard-swish',
    inputShapes: [[2, 4, 4, 6], [6], [6]],
    loss: (x, gamma, beta) => {
      const { mean, variance } = tf.moments(x, [0, 1, 2]);
      return weighted(hardSwish(tf.batchNorm(x, mean, variance, beta, gamma, 1e-3)));
    },
  },
  {
    name: 'squeeze-excitation (mean, matMul, 1x1 conv, hard-sigmoid)',
    inputShapes: [[2, 4, 4, 8], [8, 2], [1, 1, 2, 8]],
    loss: (x, w1, w2) => {
      const squeezed = tf.mean(x, [1, 2]);
      const hidden = tf.relu(tf.matMul(squeezed as tf.Tensor2D, w1 as tf.Tensor2D));
      const gate = hardSigmoid(tf.conv2d(tf.reshape(hidden, [2, 1, 1, 2]) as tf.Tensor4D, w2 as tf.Tensor4D, 1, 'valid'));
      return weighted(tf.mul(x, gate));
    },
  },
  ...[2, 4, 8].flatMap((scale) => [false, true].map((halfPixel): TrainingOpCase => ({
    name: `resizeBilinear x${scale}${halfPixel ? ' halfPixelCenters' : ''}`,
    // Square: tfjs's cpu ResizeBilinearGrad swaps H and W for non-square images (the tests check
    // non-square on wasm separately).
    inputShapes: [[2, 4, 4, 3]],
    loss: (x) => weighted(tf.image.resizeBilinear(x as tf.Tensor4D, [4 * scale, 4 * scale], false, halfPixel)),
  }))),
  {
    name: 'depthToSpace / spaceToDepth reshapes',
    inputShapes: [[1, 4, 4, 8]],
    loss: (x) => weighted(spaceToDepth(tf.depthToSpace(x as tf.Tensor4D, 2), 2)),
  },
  {
    name: 'tile, concat, slice, add, sub',
    inputShapes: [[2, 3, 4], [2, 3, 4]],
    loss: (a, b) => {
      const joined = tf.concat([tf.tile(a, [1, 2, 1]), tf.sub(b, a)], 1);
      return weighted(tf.add(tf.slice(joined, [0, 1, 1], [2, 6, 3]), 1));
    },
  },
  {
    // The backbone's half-pixel bilinear upsampling gathers rows and columns; repeats sum in the gradient.
    name: 'gather along H and W with repeated indices',
    inputShapes: [[2, 3, 4, 5]],
    loss: (x) => tf.add(
      weighted(tf.gather(tf.gather(x, tf.tensor1d([0, 0, 1, 2, 2, 2], 'int32'), 1), tf.tensor1d([3, 1, 1, 0], 'int32'), 2)),
      weighted(tf.gather(tf.slice(x, [0, 0, 0, 0], [2, 1, 4, 5]), tf.tensor1d([0, 0, 0], 'int32'), 1)),
    ),
  },
  {
    name: 'triplet distances (sqrt, norm, relu) and pooling',
    inputShapes: [[4, 8], [4, 8], [4, 8], [2, 6, 6, 3]],
    loss: (za, zn, zd, x) => {
      const distance = (p: tf.Tensor, q: tf.Tensor) => tf.sqrt(tf.sum(tf.square(tf.sub(p, q)), 1));
      const triplet = tf.mean(tf.relu(tf.add(tf.sub(distance(za, zn), distance(za, zd)), 1)));
      const pooled = tf.add(weighted(tf.avgPool(x as tf.Tensor4D, 2, 2, 'same')), weighted(tf.maxPool(x as tf.Tensor4D, 3, 2, 'same')));
      return tf.add(tf.add(triplet, tf.mul(0.01, tf.norm(za))), pooled);
    },
  },
];

/** A deterministic pseudo-random fill, identical on every backend. */
export function seededValues(size: number, seed: number): Float32Array {
  const values = new Float32Array(size);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    state ^= state << 13; state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5; state >>>= 0;
    values[i] = (state / 0xffffffff) * 2 - 1;
  }
  return values;
}

export function caseInputs(testCase: TrainingOpCase): tf.Tensor[] {
  return testCase.inputShapes.map((shape, i) => tf.tensor(seededValues(shape.reduce((a, b) => a * b, 1), 7919 * (i + 1)), shape));
}

/** Runs every case's forward+backward (and one Adam step) on the active backend; returns the failures. */
export function findMissingTrainingKernels(): { name: string; error: string }[] {
  const failures: { name: string; error: string }[] = [];
  const attempt = (name: string, run: () => void) => {
    try {
      tf.tidy(run);
    } catch (error) {
      failures.push({ name, error: error instanceof Error ? error.message : String(error) });
    }
  };
  for (const testCase of trainingOpSuite) {
    attempt(testCase.name, () => {
      const grads = tf.grads(testCase.loss)(caseInputs(testCase));
      grads.forEach((g) => g.dataSync());
    });
  }
  attempt('adam step', () => {
    const weight = tf.variable(tf.tensor(seededValues(12, 3), [3, 4]));
    const optimizer = tf.train.adam(1e-3, 0.5, 0.999);
    optimizer.minimize(() => tf.sum(tf.square(weight)));
    weight.dataSync();
    optimizer.dispose();
    weight.dispose();
  });
  return failures;
}
