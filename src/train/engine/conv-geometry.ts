// Geometry helpers shared by the convolution gradient kernels. Every gradient here is rewritten
// as a forward convolution, which WASM/XNNPACK runs fast; these helpers describe that forward
// convolution's padding and reshape the operands for it.
import * as tf from '@tensorflow/tfjs';

export type Pair = [number, number];
export type PadArg = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];
export type RoundingMode = 'floor' | 'round' | 'ceil' | undefined;

/** Padding of a forward convolution on each side of the two spatial axes; may be negative (= crop). */
export interface SidePads { top: number; bottom: number; left: number; right: number }

export function asPair(value: number | number[] | undefined, fallback = 1): Pair {
  if (value == null) return [fallback, fallback];
  if (typeof value === 'number') return [value, value];
  return [value[0], value[1] ?? value[0]];
}

/** The forward convolution's geometry (pads, output size) exactly as tfjs computes it. */
export function forwardConvInfo(
  xShape: number[], filterShape: number[], strides: Pair, dilations: Pair, pad: PadArg,
  dimRoundingMode: RoundingMode, depthwise: boolean,
) {
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number], filterShape as [number, number, number, number],
    strides, dilations, pad, dimRoundingMode, depthwise, 'channelsLast');
}

/**
 * Padding after the data that makes a window of `k` taps (dilation `d`) slide over an input of
 * `size` (with `padBefore` in front) exactly as far as the last tap of the forward conv reached.
 * Negative values mean trailing rows the forward conv never read.
 */
export function trailingPad(size: number, padBefore: number, k: number, d: number, outSize: number, s: number): number {
  return (k - 1) * d + (outSize - 1) * s - padBefore - (size - 1);
}

type ConvKernel = 'Conv2D' | 'DepthwiseConv2dNative';

/**
 * Runs a forward WASM convolution with per-side padding. Negative pads crop the input, positive
 * pads go to XNNPACK as explicit padding (no copy). The kernel is called directly because the op
 * layer rejects stride > 1 together with dilation > 1, which XNNPACK itself supports.
 */
export function convolve(kernel: ConvKernel, x: tf.Tensor4D, filter: tf.Tensor4D, strides: Pair, dilations: Pair, pads: SidePads): tf.Tensor4D {
  const [, h, w] = x.shape;
  const cropTop = Math.max(0, -pads.top);
  const cropLeft = Math.max(0, -pads.left);
  const keepH = h - cropTop - Math.max(0, -pads.bottom);
  const keepW = w - cropLeft - Math.max(0, -pads.right);
  const cropped = keepH === h && keepW === w ? x : tf.slice(x, [0, cropTop, cropLeft, 0], [-1, keepH, keepW, -1]);
  const explicit = [[0, 0], [Math.max(0, pads.top), Math.max(0, pads.bottom)], [Math.max(0, pads.left), Math.max(0, pads.right)], [0, 0]];
  const attrs = { strides, dilations, pad: explicit, dataFormat: 'NHWC', dimRoundingMode: undefined };
  return tf.engine().runKernel(kernel, { x: cropped, filter }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

/** Spreads dy [N,Ho,Wo,C] onto the stride grid: [N,Ho*sh,Wo*sw,C] with zeros between samples. */
export function insertStrideZeros(dy: tf.Tensor4D, [sh, sw]: Pair): tf.Tensor4D {
  if (sh === 1 && sw === 1) return dy;
  const [n, ho, wo, c] = dy.shape;
  const spread = tf.pad(tf.reshape(dy, [n, ho, 1, wo, 1, c]), [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]);
  return tf.reshape<tf.Rank.R4>(spread, [n, ho * sh, wo * sw, c]);
}

/** Accepts only real tensors: the gradient ops always pass them, and the kernels need tf ops. */
export function asTensor4D(info: tf.TensorInfo | undefined, name: string): tf.Tensor4D {
  if (!(info instanceof tf.Tensor) || info.rank !== 4) throw new Error(`expected a rank-4 tensor for '${name}'`);
  return info as tf.Tensor4D;
}
