// Convolution gradients expressed as forward convolutions (NHWC), so the WASM backend trains
// with XNNPACK's fast Conv2D / DepthwiseConv2dNative instead of slow or missing backprop kernels.
//
// Notation: x [N,H,W,Ci], filter [kh,kw,Ci,Co] (depthwise: [kh,kw,C,M]), dy [N,Ho,Wo,Co],
// forward stride s, dilation d, leading pads pt/pl.
import * as tf from '@tensorflow/tfjs';
import {
  convolve, forwardConvInfo, insertStrideZeros, trailingPad,
  type Pair, type PadArg, type RoundingMode,
} from './conv-geometry.ts';

export interface ConvGradientParams {
  strides: Pair;
  dilations: Pair;
  pad: PadArg;
  dimRoundingMode?: RoundingMode;
}

/**
 * dFilter[kh,kw,ci,co] = Σ_{n,oh,ow} x[n, oh·s − pt + kh·d, …, ci] · dy[n,oh,ow,co]
 * is a conv of x viewed as [Ci,H,W,N] (batch ↔ channels) with dy viewed as a [Ho,Wo,N,Co]
 * filter, where the roles swap: stride d, dilation s.
 */
export function conv2dFilterGradient(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: number[], p: ConvGradientParams): tf.Tensor4D {
  return tf.tidy(() => {
    const info = forwardConvInfo(x.shape, filterShape, p.strides, p.dilations, p.pad, p.dimRoundingMode, false);
    const [kh, kw] = filterShape;
    const xByChannel = tf.transpose(x, [3, 1, 2, 0]);
    const dyAsFilter = tf.transpose(dy, [1, 2, 0, 3]);
    const grad = convolve('Conv2D', xByChannel, dyAsFilter, p.dilations, p.strides, filterGradientPads(info, kh, kw));
    return tf.transpose(tf.slice(grad, [0, 0, 0, 0], [-1, kh, kw, -1]), [1, 2, 0, 3]);
  });
}

/**
 * dx[n,h,w,ci] = Σ dy[n,oh,ow,co] · filter[kh,kw,ci,co] over h = oh·s − pt + kh·d: a stride-1
 * conv of dy spread onto the stride grid with the spatially rotated, in/out-swapped filter.
 */
export function conv2dInputGradient(inputShape: number[], dy: tf.Tensor4D, filter: tf.Tensor4D, p: ConvGradientParams): tf.Tensor4D {
  return tf.tidy(() => {
    const info = forwardConvInfo(inputShape, filter.shape, p.strides, p.dilations, p.pad, p.dimRoundingMode, false);
    const rotated = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]);
    return convolve('Conv2D', insertStrideZeros(dy, p.strides), rotated, [1, 1], p.dilations, inputGradientPads(info, dy.shape, p.strides));
  });
}

/**
 * Depthwise filter gradient: the same batch ↔ channel swap, but each channel keeps its own
 * filter, so batch and channels are folded together into the channels of a depthwise conv
 * over a single image; the batch is summed afterwards.
 */
export function depthwiseFilterGradient(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: number[], p: ConvGradientParams): tf.Tensor4D {
  return tf.tidy(() => {
    const info = forwardConvInfo(x.shape, filterShape, p.strides, p.dilations, p.pad, p.dimRoundingMode, true);
    const [n, h, w, c] = x.shape;
    const [kh, kw, , m] = filterShape;
    const [, ho, wo] = dy.shape;
    const image = tf.reshape<tf.Rank.R4>(tf.transpose(x, [1, 2, 0, 3]), [1, h, w, n * c]);
    const dyAsFilter = tf.reshape<tf.Rank.R4>(tf.transpose(dy, [1, 2, 0, 3]), [ho, wo, n * c, m]);
    const perSample = convolve('DepthwiseConv2dNative', image, dyAsFilter, p.dilations, p.strides, filterGradientPads(info, kh, kw));
    const window = tf.slice(perSample, [0, 0, 0, 0], [1, kh, kw, -1]);
    return tf.reshape<tf.Rank.R4>(tf.sum(tf.reshape(window, [kh, kw, n, c * m]), 2), [kh, kw, c, m]);
  });
}

/** Depthwise input gradient: rotated filter, one output per (channel, multiplier), summed over the multiplier. */
export function depthwiseInputGradient(inputShape: number[], dy: tf.Tensor4D, filter: tf.Tensor4D, p: ConvGradientParams): tf.Tensor4D {
  return tf.tidy(() => {
    const info = forwardConvInfo(inputShape, filter.shape, p.strides, p.dilations, p.pad, p.dimRoundingMode, true);
    const [kh, kw, c, m] = filter.shape;
    const [n, h, w] = inputShape;
    const rotated = tf.reshape<tf.Rank.R4>(tf.reverse(filter, [0, 1]), [kh, kw, c * m, 1]);
    const grad = convolve('DepthwiseConv2dNative', insertStrideZeros(dy, p.strides), rotated, [1, 1], p.dilations, inputGradientPads(info, dy.shape, p.strides));
    return m === 1 ? grad : tf.sum<tf.Tensor4D>(tf.reshape(grad, [n, h, w, c, m]), 4);
  });
}

type ConvInfo = ReturnType<typeof forwardConvInfo>;

function filterGradientPads(info: ConvInfo, kh: number, kw: number) {
  const { padInfo, inHeight, inWidth, outHeight, outWidth, dilationHeight, dilationWidth, strideHeight, strideWidth } = info;
  // Rows the forward conv never read stay unused: the result is sliced to [kh, kw] afterwards.
  return {
    top: padInfo.top,
    left: padInfo.left,
    bottom: Math.max(0, trailingPad(inHeight, padInfo.top, kh, dilationHeight, outHeight, strideHeight)),
    right: Math.max(0, trailingPad(inWidth, padInfo.left, kw, dilationWidth, outWidth, strideWidth)),
  };
}

function inputGradientPads(info: ConvInfo, dyShape: number[], [sh, sw]: Pair) {
  const { padInfo, inHeight, inWidth, effectiveFilterHeight, effectiveFilterWidth } = info;
  const [, ho, wo] = dyShape;
  // The full correlation needs (effective kernel − 1 − forward pad) in front; the tail is
  // whatever makes the output exactly the input size (negative = drop unused dy rows).
  return {
    top: effectiveFilterHeight - 1 - padInfo.top,
    left: effectiveFilterWidth - 1 - padInfo.left,
    bottom: inHeight - ho * sh + padInfo.top,
    right: inWidth - wo * sw + padInfo.left,
  };
}
