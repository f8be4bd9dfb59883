// Registers, for the `wasm` backend, the kernels training needs that tfjs-backend-wasm 4.22
// lacks (conv filter gradient, both depthwise gradients) or runs slowly (conv input gradient,
// ~10x slower than its Conv2D). All are rewritten as fast XNNPACK forward convolutions.
// Also supplies the gradient tfjs-core lacks for DepthToSpace (for every backend).
import * as tf from '@tensorflow/tfjs';
import { asPair, asTensor4D, type PadArg, type RoundingMode } from './conv-geometry.ts';
import {
  conv2dFilterGradient, conv2dInputGradient, depthwiseFilterGradient, depthwiseInputGradient,
  type ConvGradientParams,
} from './conv-gradients.ts';

function gradientParams(attrs: tf.NamedAttrMap): ConvGradientParams {
  // The tfjs-core Conv2D gradient never passes dilations; accept them anyway for direct callers.
  return {
    strides: asPair(attrs.strides as number | number[]),
    dilations: asPair(attrs.dilations as number | number[] | undefined),
    pad: attrs.pad as PadArg,
    dimRoundingMode: attrs.dimRoundingMode as RoundingMode,
  };
}

function assertNHWC(attrs: tf.NamedAttrMap, kernel: string) {
  if (attrs.dataFormat != null && attrs.dataFormat !== 'NHWC') {
    throw new Error(`${kernel} on wasm supports only NHWC, got ${String(attrs.dataFormat)}`);
  }
}

export const wasmTrainingKernels: tf.KernelConfig[] = [
  {
    kernelName: tf.Conv2DBackpropFilter,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs = {} }) => {
      assertNHWC(attrs, tf.Conv2DBackpropFilter);
      return conv2dFilterGradient(asTensor4D(inputs.x, 'x'), asTensor4D(inputs.dy, 'dy'), attrs.filterShape as number[], gradientParams(attrs));
    },
  },
  {
    kernelName: tf.Conv2DBackpropInput,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs = {} }) => {
      assertNHWC(attrs, tf.Conv2DBackpropInput);
      return conv2dInputGradient(attrs.inputShape as number[], asTensor4D(inputs.dy, 'dy'), asTensor4D(inputs.filter, 'filter'), gradientParams(attrs));
    },
  },
  {
    kernelName: tf.DepthwiseConv2dNativeBackpropFilter,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs = {} }) =>
      depthwiseFilterGradient(asTensor4D(inputs.x, 'x'), asTensor4D(inputs.dy, 'dy'), attrs.filterShape as number[], gradientParams(attrs)),
  },
  {
    kernelName: tf.DepthwiseConv2dNativeBackpropInput,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs = {} }) =>
      depthwiseInputGradient(attrs.inputShape as number[], asTensor4D(inputs.dy, 'dy'), asTensor4D(inputs.filter, 'filter'), gradientParams(attrs)),
  },
  {
    // tf.gather's gradient; the backbone's bilinear upsampling is built from gathers.
    kernelName: tf.UnsortedSegmentSum,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs = {} }) => unsortedSegmentSumByMatMul(inputs.x as tf.Tensor, inputs.segmentIds as tf.Tensor, attrs.numSegments as number),
  },
];

/** out[s] = Σ_{i: ids[i] = s} x[i], as one-hot(ids)ᵀ · x: one fast matmul instead of a scatter wasm lacks. */
function unsortedSegmentSumByMatMul(x: tf.Tensor, segmentIds: tf.Tensor, numSegments: number): tf.Tensor {
  return tf.tidy(() => {
    const ids = tf.reshape(segmentIds, [-1]) as tf.Tensor1D;
    const rows = ids.shape[0];
    // equal() against a range rather than tf.oneHot, which refuses a single segment.
    const oneHot = tf.cast(tf.equal(tf.expandDims(tf.cast(ids, 'int32'), 1), tf.range(0, numSegments, 1, 'int32')), x.dtype) as tf.Tensor2D;
    const flat = tf.reshape(x, [rows, -1]) as tf.Tensor2D;
    return tf.reshape(tf.matMul(oneHot, flat, true, false), [numSegments, ...x.shape.slice(segmentIds.rank)]);
  });
}

/** depthToSpace's gradient is its inverse, spaceToDepth, which tfjs has no op for. */
const depthToSpaceGradient: tf.GradConfig = {
  kernelName: tf.DepthToSpace,
  gradFunc: (dy, _saved, attrs) => {
    const { blockSize: b, dataFormat } = attrs as { blockSize: number; dataFormat: string };
    if (dataFormat !== 'NHWC') throw new Error(`the DepthToSpace gradient supports only NHWC, got ${dataFormat}`);
    const [n, h, w, c] = (dy as tf.Tensor4D).shape;
    const toSpace = () => tf.reshape(tf.transpose(tf.reshape(dy as tf.Tensor, [n, h / b, b, w / b, b, c]), [0, 1, 3, 2, 4, 5]), [n, h / b, w / b, b * b * c]);
    return { x: toSpace };
  },
};

/**
 * Installs the training kernels for `wasm`, replacing tfjs's own where one exists. Safe to call
 * any number of times and before or after the backend is initialised (kernels are looked up
 * per call).
 */
export function registerWasmTrainingKernels(): void {
  for (const config of wasmTrainingKernels) {
    const current = tf.getKernel(config.kernelName, 'wasm');
    if (current?.kernelFunc === config.kernelFunc) continue;
    if (current) tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel(config);
  }
  // Defer to tfjs if it ever ships its own.
  if (!tf.getGradient(tf.DepthToSpace)) tf.registerGradient(depthToSpaceGradient);
}
