import {
  BatchNorm, BilinearUpsample, Conv2D, ConvBN, DepthwiseConv2D, MBConv, SqueezeExcite, visitLayer, type SiloMapLayer,
} from '../../model/index.ts';
import type { GraphWeights } from './graph-weights.ts';
import type { Ops, Value } from './ops.ts';

/**
 * Emits the input gradient for an output gradient `dy` (only when `wantDx`; a unit whose input gradient nobody needs
 * skips that work) and records its weights' gradients. Emitting nothing until called keeps unused backward code
 * out of the graph.
 */
export type Backward = (dy: Value, wantDx: boolean) => Value | undefined;

/** A layer's forward output together with how to differentiate it at the point it was evaluated. */
export interface Traced {
  y: Value;
  back: Backward;
}

export interface BatchStatsValues {
  mean: Value;
  /** Biased variance, as the forward normalises with. */
  variance: Value;
  /** Values per channel (for the unbiased running variance). */
  count: number;
}

const identity = (x: Value): Traced => ({ y: x, back: (dy) => dy });

/** Runs stages in order; the backward runs them in reverse and asks only the first for its input gradient if wanted. */
export function chain(x: Value, stages: Array<(x: Value) => Traced>): Traced {
  const traced: Traced[] = [];
  let y = x;
  for (const stage of stages) {
    const t = stage(y);
    traced.push(t);
    y = t.y;
  }
  return {
    y,
    back: (dy, wantDx) => {
      let d: Value | undefined = dy;
      for (let i = traced.length - 1; i >= 0 && d; i--) d = traced[i].back(d, i > 0 || wantDx);
      return d;
    },
  };
}

/** Requires a gradient that the caller asked for. */
export function must(v: Value | undefined): Value {
  if (!v) throw new Error('internal: an input gradient was requested but not produced');
  return v;
}

/**
 * Train-mode forward and hand-derived backward of every layer kind a RevBiFPN uses, NCHW, mirroring
 * src/model/layers.ts operation for operation (BatchNorm normalises with batch statistics).
 */
export class LayerGradients {
  /** Batch statistics of the BatchNorms evaluated with `record` set: exactly the forward pass. */
  readonly stats = new Map<string, BatchStatsValues>();

  constructor(private readonly ops: Ops, private readonly weights: GraphWeights) {}

  /** RevBiFPN's full convolutions are all 1x1 stride 1 (expand, project, SE, head projection). */
  conv(layer: Conv2D, x: Value): Traced {
    if (layer.kernelSize !== 1 || layer.strides !== 1) throw new Error(`the ORT step supports 1x1 stride-1 convolutions only (${layer.name})`);
    const { ops, weights } = this;
    const kernel = `${layer.name}.kernel`;
    const bias = `${layer.name}.bias`;
    const [n, , h, w] = x.shape;
    const inputs = [x, weights.convKernel(kernel)];
    if (layer.useBias) inputs.push(weights.tfjs(bias));
    const y = ops.op('Conv', inputs, [n, layer.filters, h, w], { kernel_shape: [1, 1] }, layer.name);
    return {
      y,
      back: (dy, wantDx) => {
        // dW[i, o] = Σ_{n,p} x[n, i, p]·dy[n, o, p], already in the tfjs [1, 1, in, out] order.
        const x3 = ops.reshape(x, [n, layer.inChannels, h * w]);
        const dy3 = ops.reshape(dy, [n, layer.filters, h * w]);
        weights.setGradient(kernel, ops.op('Einsum', [x3, dy3], [layer.inChannels, layer.filters], { equation: 'nip,nop->io' }, `${layer.name}.dW`));
        if (layer.useBias) weights.setGradient(bias, ops.reduceSum(dy, [0, 2, 3], false, `${layer.name}.db`));
        if (!wantDx) return undefined;
        return ops.op('Conv', [dy, weights.convKernelTransposed(kernel)], x.shape, { kernel_shape: [1, 1] }, `${layer.name}.dx`);
      },
    };
  }

  depthwise(layer: DepthwiseConv2D, x: Value): Traced {
    const { ops, weights } = this;
    const kernel = `${layer.name}.kernel`;
    const k = layer.kernelSize;
    const s = layer.strides;
    const p = Math.floor(k / 2);
    const [n, c, h, w] = x.shape;
    const ho = Math.floor((h + 2 * p - k) / s) + 1;
    const wo = Math.floor((w + 2 * p - k) / s) + 1;
    const geometry = { kernel_shape: [k, k], strides: [s, s], pads: [p, p, p, p], group: c };
    const y = ops.op('Conv', [x, weights.depthwiseKernel(kernel)], [n, c, ho, wo], geometry, layer.name);
    return {
      y,
      back: (dy, wantDx) => {
        weights.setGradient(kernel, this.depthwiseFilterGradient(layer, x, dy));
        if (!wantDx) return undefined;
        if (s === 1) {
          return ops.op('Conv', [dy, weights.flippedDepthwiseKernel(kernel)], x.shape, { kernel_shape: [k, k], pads: [p, p, p, p], group: c }, `${layer.name}.dx`);
        }
        // Strided: the transposed conv; output_padding restores the rows the stride dropped.
        const outputPadding = [h - (s * (ho - 1) + k - 2 * p), w - (s * (wo - 1) + k - 2 * p)];
        return ops.op('ConvTranspose', [dy, weights.depthwiseKernel(kernel)], x.shape, { ...geometry, output_padding: outputPadding }, `${layer.name}.dx`);
      },
    };
  }

  /**
   * dW[c, ky, kx] = Σ_{n,y,x} dy[n, c, y, x]·x_pad[n, c, s·y + ky, s·x + kx]: each (image, channel) plane of the input
   * correlated with the same plane of the output gradient. Taking the planes as the groups of one conv (input
   * [1, N·C, H, W], filter dy as [N·C, 1, Ho, Wo]), the stride becomes a dilation and no transpose is needed.
   */
  private depthwiseFilterGradient(layer: DepthwiseConv2D, x: Value, dy: Value): Value {
    const { ops } = this;
    const { name, kernelSize: k, strides: stride } = layer;
    const [n, c, h, w] = x.shape;
    const [, , ho, wo] = dy.shape;
    const p = Math.floor(k / 2);
    const spanH = h + 2 * p - stride * (ho - 1);
    const spanW = w + 2 * p - stride * (wo - 1);
    const planes = ops.reshape(x, [1, n * c, h, w]);
    const taps = ops.reshape(dy, [n * c, 1, ho, wo]);
    let corr = ops.op('Conv', [planes, taps], [1, n * c, spanH, spanW], { kernel_shape: [ho, wo], dilations: [stride, stride], pads: [p, p, p, p], group: n * c }, `${name}.dW`);
    if (spanH > k || spanW > k) {
      corr = ops.op('Slice', [corr.name, ops.ints([0, 0]), ops.ints([k, k]), ops.ints([2, 3])], [1, n * c, k, k], {}, `${name}.dWcrop`);
    }
    const perChannel = ops.reduceSum(ops.reshape(corr, [n, c, k, k]), [0], false);
    return ops.transpose(perChannel, [1, 2, 0], `${name}.dWkkc`);
  }

  batchNorm(layer: BatchNorm, x: Value, record: boolean): Traced {
    const { ops, weights } = this;
    const axes = [0, 2, 3];
    const [n, , h, w] = x.shape;
    const count = n * h * w;
    const mean = ops.reduceMean(x, axes, true, `${layer.name}.mean`);
    // Centre first, as the tfjs layer does (reconstruction relies on the precision).
    const centred = ops.sub(x, mean, `${layer.name}.centred`);
    const variance = ops.reduceMean(ops.mul(centred, centred), axes, true, `${layer.name}.variance`);
    const rstd = ops.unary('Reciprocal', ops.unary('Sqrt', ops.add(variance, layer.epsilon)), {}, `${layer.name}.rstd`);
    const gammaName = `${layer.name}.gamma`;
    const betaName = `${layer.name}.beta`;
    const scale = ops.mul(weights.channelwise(gammaName), rstd, `${layer.name}.scale`);
    const y = ops.add(ops.mul(centred, scale), weights.channelwise(betaName), layer.name);
    if (record) {
      if (this.stats.has(layer.name)) throw new Error(`BatchNorm "${layer.name}" recorded batch statistics twice in one step`);
      this.stats.set(layer.name, { mean, variance, count });
    }
    return {
      y,
      back: (dy, wantDx) => {
        const dBeta = ops.reduceSum(dy, axes, true, `${layer.name}.dbeta`);
        const dyDotCentred = ops.reduceSum(ops.mul(dy, centred), axes, true);
        weights.setGradient(gammaName, ops.mul(dyDotCentred, rstd, `${layer.name}.dgamma`));
        weights.setGradient(betaName, dBeta);
        if (!wantDx) return undefined;
        // Batch statistics depend on x: dx = scale·(dy − mean(dy) − centred·rstd²·mean(dy·centred)).
        const alongCentred = ops.mul(scale, ops.mul(ops.mul(rstd, rstd), ops.mul(dyDotCentred, 1 / count)));
        const offset = ops.mul(scale, ops.mul(dBeta, 1 / count));
        return ops.sub(ops.mul(dy, scale), ops.add(ops.mul(centred, alongCentred), offset), `${layer.name}.dx`);
      },
    };
  }

  /** x·relu6(x + 3)/6, derivative (2x + 3)/6 inside (−3, 3) and hard-sigmoid's 0 or 1 outside. */
  hardSwish(x: Value, hint: string): Traced {
    const { ops } = this;
    return {
      y: ops.unary('HardSwish', x, {}, hint),
      back: (dy) => {
        const inside = ops.less(ops.unary('Abs', x), 3);
        const slope = ops.where(inside, ops.add(ops.mul(x, 1 / 3), 0.5), this.hardSigmoidValue(x));
        return ops.mul(dy, slope, `${hint}.dx`);
      },
    };
  }

  /** relu6(x + 3)/6, derivative 1/6 inside (−3, 3). */
  hardSigmoid(x: Value, hint: string): Traced {
    const { ops } = this;
    return {
      y: this.hardSigmoidValue(x, hint),
      back: (dy) => {
        const inside = ops.less(ops.unary('Abs', x), 3);
        return ops.mul(dy, ops.where(inside, ops.scalar(1 / 6), ops.scalar(0)), `${hint}.dx`);
      },
    };
  }

  private hardSigmoidValue(x: Value, hint?: string): Value {
    return this.ops.unary('HardSigmoid', x, { alpha: { float: 1 / 6 }, beta: { float: 0.5 } }, hint);
  }

  convBN(layer: ConvBN, x: Value, record: boolean): Traced {
    const conv = layer.conv;
    return chain(x, [
      (v) => visitLayer<Conv2D | DepthwiseConv2D, Traced>(conv, { Conv2D: (c) => this.conv(c, v), DepthwiseConv2D: (c) => this.depthwise(c, v) }),
      (v) => this.batchNorm(layer.norm, v, record),
      (v) => (layer.activation === 'hardSwish' ? this.hardSwish(v, `${layer.name}.act`) : identity(v)),
    ]);
  }

  squeezeExcite(layer: SqueezeExcite, x: Value): Traced {
    const { ops } = this;
    const [, , h, w] = x.shape;
    const pooled = ops.reduceMean(x, [2, 3], true, `${layer.name}.pool`);
    const squeeze = chain(pooled, [
      (v) => this.conv(layer.reduce, v),
      (v) => this.hardSwish(v, `${layer.name}.act`),
      (v) => this.conv(layer.expand, v),
      (v) => this.hardSigmoid(v, `${layer.name}.gate`),
    ]);
    const gate = squeeze.y;
    return {
      y: ops.mul(x, gate, `${layer.name}.scale`),
      back: (dy, wantDx) => {
        const dGate = ops.reduceSum(ops.mul(dy, x), [2, 3], true);
        const dPooled = squeeze.back(dGate, wantDx);
        if (!dPooled) return undefined;
        return ops.add(ops.mul(dy, gate), ops.mul(dPooled, 1 / (h * w)), `${layer.name}.dx`);
      },
    };
  }

  mbconv(layer: MBConv, x: Value, record: boolean): Traced {
    const stages: Array<(v: Value) => Traced> = [];
    if (layer.expand) stages.push((v) => this.convBN(layer.expand!, v, record));
    stages.push((v) => this.convBN(layer.depthwise, v, record));
    if (layer.se) stages.push((v) => this.squeezeExcite(layer.se!, v));
    stages.push((v) => this.convBN(layer.project, v, record));
    return chain(x, stages);
  }

  /**
   * Bilinear ×f with half-pixel centres as Y = A·X·Aᵀ, A the [out, in] interpolation matrix of
   * BilinearUpsample; the gradient is Aᵀ·dY·A. Exact and two MatMuls each way.
   */
  upsample(layer: BilinearUpsample, x: Value): Traced {
    if (layer.factor === 1) return identity(x);
    const { ops } = this;
    const [n, c, h, w] = x.shape;
    if (h !== w) throw new Error(`${layer.name}: square streams expected, got ${h}x${w}`);
    const { matrix, transposed } = interpolationMatrices(h, layer.factor);
    const a = ops.constant(`${layer.name}.A`, matrix, [h * layer.factor, h]);
    const at = ops.constant(`${layer.name}.At`, transposed, [h, h * layer.factor]);
    const y = ops.matmul(a, ops.matmul(x, at), layer.name);
    if (y.shape.join() !== [n, c, h * layer.factor, w * layer.factor].join()) throw new Error(`${layer.name}: unexpected shape [${y.shape}]`);
    return { y, back: (dy) => ops.matmul(ops.matmul(at, dy), a, `${layer.name}.dx`) };
  }

  tensorLayer(layer: SiloMapLayer, x: Value, record: boolean): Traced {
    return visitLayer<SiloMapLayer, Traced>(layer, {
      MBConv: (l) => this.mbconv(l, x, record),
      BilinearUpsample: (l) => this.upsample(l, x),
      Sequential: (l) => chain(x, l.layers.map((inner) => (v: Value) => this.tensorLayer(inner, v, record))),
    });
  }

}

/** Rows: output positions; the same source indices and weights as BilinearUpsample's gathers. */
function interpolationMatrices(size: number, factor: number): { matrix: Float32Array; transposed: Float32Array } {
  const out = size * factor;
  const matrix = new Float32Array(out * size);
  const transposed = new Float32Array(out * size);
  for (let o = 0; o < out; o++) {
    const source = Math.max(0, (o + 0.5) / factor - 0.5);
    const i0 = Math.min(Math.floor(source), size - 1);
    const i1 = Math.min(i0 + 1, size - 1);
    const t = source - i0;
    matrix[o * size + i0] += 1 - t;
    matrix[o * size + i1] += t;
  }
  for (let o = 0; o < out; o++) for (let i = 0; i < size; i++) transposed[i * out + o] = matrix[o * size + i];
  return { matrix, transposed };
}
