import * as tf from '@tensorflow/tfjs';
import type { SiloMapLayer } from './kinds.ts';
import type { ForwardContext, Initializer, ParamStore } from './params.ts';

/** Walkable, serialisable view of a layer tree (for exporters and alternative engines). */
export interface LayerDescription {
  name: string;
  className: string;
  config: Record<string, unknown>;
  /** Full names of this layer's own weights in the ParamStore. */
  weights: string[];
  /** Children in execution order. */
  sublayers: LayerDescription[];
}

/**
 * Minimal tfjs-layers-style base: `build` creates weights in a shared ParamStore under the
 * layer's dotted name, `getConfig` returns the hyper-parameters, `describe` walks the tree.
 */
export abstract class Layer {
  abstract readonly className: string;
  private store?: ParamStore;
  private readonly ownWeights: string[] = [];

  constructor(readonly name: string) {}

  abstract getConfig(): Record<string, unknown>;

  /** Children in execution order. */
  sublayers(): Layer[] {
    return [];
  }

  build(store: ParamStore): void {
    this.store = store;
    this.buildWeights();
    for (const layer of this.sublayers()) layer.build(store);
  }

  protected buildWeights(): void {}

  protected addWeight(localName: string, shape: number[], init: Initializer, trainable = true): void {
    const name = `${this.name}.${localName}`;
    this.params.create({ name, shape, init, trainable });
    this.ownWeights.push(name);
  }

  protected weight(localName: string): tf.Variable {
    return this.params.get(`${this.name}.${localName}`);
  }

  protected get params(): ParamStore {
    if (this.store === undefined) throw new Error(`layer "${this.name}" used before build()`);
    return this.store;
  }

  /** Every weight name in this subtree (own first, then children in order). */
  weightNames(): string[] {
    return [...this.ownWeights, ...this.sublayers().flatMap((l) => l.weightNames())];
  }

  /** Trainable variables of this subtree, in weightNames() order. */
  trainableWeights(): tf.Variable[] {
    return this.weightNames()
      .filter((n) => this.params.spec(n).trainable)
      .map((n) => this.params.get(n));
  }

  describe(): LayerDescription {
    return {
      name: this.name,
      className: this.className,
      config: this.getConfig(),
      weights: [...this.ownWeights],
      sublayers: this.sublayers().map((l) => l.describe()),
    };
  }
}

/** A layer mapping one NHWC tensor to one NHWC tensor. */
export abstract class TensorLayer extends Layer {
  abstract call(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D;
}

export type Activation = 'linear' | 'hardSwish';

/** x * relu6(x + 3) / 6 (MobileNetV3). */
export function hardSwish<T extends tf.Tensor>(x: T): T {
  return tf.mul(x, hardSigmoid(x));
}

/** relu6(x + 3) / 6, the SE gate. */
export function hardSigmoid<T extends tf.Tensor>(x: T): T {
  return tf.div(tf.relu6(tf.add(x, 3)), 6);
}

function activate(x: tf.Tensor4D, activation: Activation): tf.Tensor4D {
  return activation === 'hardSwish' ? hardSwish(x) : x;
}

/** Symmetric "same" padding (PyTorch semantics, k // 2 each side) so exporters need no asymmetric pads. */
function symmetricPad(kernelSize: number): number {
  return Math.floor(kernelSize / 2);
}

export class Conv2D extends TensorLayer {
  readonly className = 'Conv2D';
  constructor(
    name: string,
    readonly inChannels: number,
    readonly filters: number,
    readonly kernelSize = 1,
    readonly strides = 1,
    readonly useBias = false,
  ) {
    super(name);
  }

  protected override buildWeights(): void {
    const k = this.kernelSize;
    this.addWeight('kernel', [k, k, this.inChannels, this.filters], { kind: 'heNormalFanOut', fanOut: k * k * this.filters });
    if (this.useBias) this.addWeight('bias', [this.filters], { kind: 'zeros' });
  }

  call(x: tf.Tensor4D): tf.Tensor4D {
    const kernel = this.weight('kernel') as tf.Tensor4D;
    const y = tf.conv2d(x, kernel, this.strides, symmetricPad(this.kernelSize));
    return this.useBias ? tf.add(y, this.weight('bias')) : y;
  }

  getConfig() {
    return { inChannels: this.inChannels, filters: this.filters, kernelSize: this.kernelSize, strides: this.strides, padding: symmetricPad(this.kernelSize), useBias: this.useBias };
  }
}

/** Depthwise conv with channel multiplier 1, no bias (BatchNorm follows). */
export class DepthwiseConv2D extends TensorLayer {
  readonly className = 'DepthwiseConv2D';
  constructor(
    name: string,
    readonly channels: number,
    readonly kernelSize: number,
    readonly strides = 1,
  ) {
    super(name);
  }

  protected override buildWeights(): void {
    const k = this.kernelSize;
    this.addWeight('kernel', [k, k, this.channels, 1], { kind: 'heNormalFanOut', fanOut: k * k * this.channels });
  }

  call(x: tf.Tensor4D): tf.Tensor4D {
    const kernel = this.weight('kernel') as tf.Tensor4D;
    return tf.depthwiseConv2d(x, kernel, this.strides, symmetricPad(this.kernelSize));
  }

  getConfig() {
    return { channels: this.channels, kernelSize: this.kernelSize, strides: this.strides, padding: symmetricPad(this.kernelSize) };
  }
}

/**
 * BatchNorm over N, H, W. Training mode normalises with batch statistics and reports them to
 * `ctx.recorder`; the running statistics are only changed by `applyBatchStats` once per step.
 */
export class BatchNorm extends TensorLayer {
  readonly className = 'BatchNorm';
  constructor(
    name: string,
    readonly channels: number,
    readonly epsilon: number,
    readonly momentum: number,
  ) {
    super(name);
  }

  protected override buildWeights(): void {
    this.addWeight('gamma', [this.channels], { kind: 'ones' });
    this.addWeight('beta', [this.channels], { kind: 'zeros' });
    this.addWeight('movingMean', [this.channels], { kind: 'zeros' }, false);
    this.addWeight('movingVariance', [this.channels], { kind: 'ones' }, false);
  }

  call(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
    let mean: tf.Tensor1D;
    let variance: tf.Tensor1D;
    if (ctx.training) {
      ({ mean, variance } = tf.moments(x, [0, 1, 2]) as { mean: tf.Tensor1D; variance: tf.Tensor1D });
      const [n, h, w] = x.shape;
      ctx.recorder?.record(this.name, { mean, variance, count: n * h * w });
    } else {
      mean = this.weight('movingMean') as tf.Tensor1D;
      variance = this.weight('movingVariance') as tf.Tensor1D;
    }
    const scale = tf.mul(this.weight('gamma'), tf.rsqrt(tf.add(variance, this.epsilon)));
    // Centre first: (x - mean) keeps precision when |mean| >> std, which reconstruction relies on.
    return tf.add(tf.mul(tf.sub(x, mean), scale), this.weight('beta'));
  }

  getConfig() {
    return { channels: this.channels, epsilon: this.epsilon, momentum: this.momentum };
  }
}

/** Conv (or depthwise conv), BatchNorm, optional hard-swish: the reference ConvNormAct. */
export class ConvBN extends TensorLayer {
  readonly className = 'ConvBN';
  readonly norm: BatchNorm;
  constructor(
    name: string,
    readonly conv: Conv2D | DepthwiseConv2D,
    outChannels: number,
    readonly activation: Activation,
    bn: { epsilon: number; momentum: number },
  ) {
    super(name);
    this.norm = new BatchNorm(`${name}.bn`, outChannels, bn.epsilon, bn.momentum);
  }

  override sublayers(): Layer[] {
    return [this.conv, this.norm];
  }

  call(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
    return activate(this.norm.call(this.conv.call(x), ctx), this.activation);
  }

  getConfig() {
    return { activation: this.activation };
  }
}

/** Global pool -> 1x1 reduce (bias) -> hard-swish -> 1x1 expand (bias) -> hard-sigmoid gate. */
export class SqueezeExcite extends TensorLayer {
  readonly className = 'SqueezeExcite';
  readonly reduce: Conv2D;
  readonly expand: Conv2D;
  constructor(name: string, readonly channels: number, readonly squeezeChannels: number) {
    super(name);
    this.reduce = new Conv2D(`${name}.reduce`, channels, squeezeChannels, 1, 1, true);
    this.expand = new Conv2D(`${name}.expand`, squeezeChannels, channels, 1, 1, true);
  }

  override sublayers(): Layer[] {
    return [this.reduce, this.expand];
  }

  call(x: tf.Tensor4D): tf.Tensor4D {
    const pooled = tf.mean(x, [1, 2], true) as tf.Tensor4D;
    const gate = hardSigmoid(this.expand.call(hardSwish(this.reduce.call(pooled))));
    return tf.mul(x, gate);
  }

  getConfig() {
    return { channels: this.channels, squeezeChannels: this.squeezeChannels, gate: 'hardSigmoid' };
  }
}

export interface MBConvOptions {
  inChannels: number;
  outChannels: number;
  kernelSize: number;
  strides: number;
  expandRatio: number;
  seRatio: number;
  bn: { epsilon: number; momentum: number };
}

/**
 * Mobile inverted bottleneck without identity skip: [1x1 expand] -> kxk depthwise (stride) ->
 * [SE] -> 1x1 project (BatchNorm, no activation). Expansion is skipped at ratio 1, SE at ratio 0.
 */
export class MBConv extends TensorLayer {
  readonly className = 'MBConv';
  readonly expand?: ConvBN;
  readonly depthwise: ConvBN;
  readonly se?: SqueezeExcite;
  readonly project: ConvBN;

  constructor(name: string, readonly options: MBConvOptions) {
    super(name);
    const { inChannels, outChannels, kernelSize, strides, expandRatio, seRatio, bn } = options;
    const hidden = Math.floor(inChannels * expandRatio);
    if (expandRatio !== 1) {
      this.expand = new ConvBN(`${name}.expand`, new Conv2D(`${name}.expand.conv`, inChannels, hidden), hidden, 'hardSwish', bn);
    }
    this.depthwise = new ConvBN(`${name}.depthwise`, new DepthwiseConv2D(`${name}.depthwise.conv`, hidden, kernelSize, strides), hidden, 'hardSwish', bn);
    if (seRatio > 0) {
      this.se = new SqueezeExcite(`${name}.se`, hidden, Math.max(1, Math.floor(inChannels * seRatio)));
    }
    this.project = new ConvBN(`${name}.project`, new Conv2D(`${name}.project.conv`, hidden, outChannels), outChannels, 'linear', bn);
  }

  override sublayers(): Layer[] {
    const layers: Array<TensorLayer | undefined> = [this.expand, this.depthwise, this.se, this.project];
    return layers.filter((l): l is TensorLayer => l !== undefined);
  }

  call(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
    let h = this.expand ? this.expand.call(x, ctx) : x;
    h = this.depthwise.call(h, ctx);
    if (this.se) h = this.se.call(h);
    return this.project.call(h, ctx);
  }

  getConfig() {
    const { bn: _bn, ...rest } = this.options;
    return rest;
  }
}

/**
 * Bilinear upsampling by an integer factor with half-pixel centres (PyTorch
 * `align_corners=False`, ONNX Resize `half_pixel`). Built from gathers because the tfjs CPU
 * ResizeBilinear gradient ignores half-pixel centres.
 */
export class BilinearUpsample extends TensorLayer {
  readonly className = 'BilinearUpsample';
  constructor(name: string, readonly factor: number) {
    super(name);
  }

  call(x: tf.Tensor4D): tf.Tensor4D {
    if (this.factor === 1) return x;
    return this.resizeAxis(this.resizeAxis(x, 1), 2);
  }

  private resizeAxis(x: tf.Tensor4D, axis: 1 | 2): tf.Tensor4D {
    const inSize = x.shape[axis];
    const outSize = inSize * this.factor;
    const lower: number[] = [];
    const upper: number[] = [];
    const weights: number[] = [];
    for (let o = 0; o < outSize; o++) {
      const source = Math.max(0, (o + 0.5) / this.factor - 0.5);
      const i0 = Math.min(Math.floor(source), inSize - 1);
      lower.push(i0);
      upper.push(Math.min(i0 + 1, inSize - 1));
      weights.push(source - i0);
    }
    const shape = axis === 1 ? [1, outSize, 1, 1] : [1, 1, outSize, 1];
    const w = tf.tensor(weights, shape);
    const a = tf.gather(x, tf.tensor1d(lower, 'int32'), axis);
    const b = tf.gather(x, tf.tensor1d(upper, 'int32'), axis);
    return tf.add(a, tf.mul(tf.sub(b, a), w));
  }

  getConfig() {
    return { factor: this.factor, mode: 'bilinear', coordinateTransform: 'half_pixel' };
  }
}

/** Sequential composition of tensor layers (used for U maps: MBConv then upsample). */
export class Sequential extends TensorLayer {
  readonly className = 'Sequential';
  constructor(name: string, readonly layers: SiloMapLayer[]) {
    super(name);
  }

  override sublayers(): Layer[] {
    return this.layers;
  }

  call(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
    return this.layers.reduce((h, layer) => layer.call(h, ctx), x);
  }

  getConfig() {
    return {};
  }
}
