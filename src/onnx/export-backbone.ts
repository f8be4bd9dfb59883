import {
  BilinearUpsample, ConvBN, Conv2D, DepthwiseConv2D, MBConv, SqueezeExcite, ReversibleBlock, RevSilo, Stem, visitLayer,
  type BodyUnit, type RevBiFPN, type SiloMapLayer,
} from '../model/index.ts';
import { GraphBuilder } from './graph-builder.ts';

/** ONNX opset of exported models (HardSwish needs 14; ≥ 17 as promised to other tools). */
export const EXPORT_OPSET = 17;

/** Graph input: NHWC float32 tiles, normalised as the model card says. Output: embeddings [batch, dim]. */
export const ONNX_INPUT = 'tiles';
export const ONNX_OUTPUT = 'embedding';

/** Reads a weight's current values by its ParamStore name. */
type WeightValues = (name: string) => Float32Array;

/** tfjs conv kernel [k, k, in, out] → ONNX [out, in, k, k]. */
function convKernelToOnnx(kernel: Float32Array, k: number, inC: number, outC: number): Float32Array {
  const out = new Float32Array(kernel.length);
  for (let ky = 0; ky < k; ky++)
    for (let kx = 0; kx < k; kx++)
      for (let i = 0; i < inC; i++)
        for (let o = 0; o < outC; o++) out[((o * inC + i) * k + ky) * k + kx] = kernel[((ky * k + kx) * inC + i) * outC + o];
  return out;
}

/** tfjs depthwise kernel [k, k, C, 1] → ONNX grouped-conv weight [C, 1, k, k]. */
function depthwiseKernelToOnnx(kernel: Float32Array, k: number, channels: number): Float32Array {
  const out = new Float32Array(kernel.length);
  for (let ky = 0; ky < k; ky++)
    for (let kx = 0; kx < k; kx++)
      for (let c = 0; c < channels; c++) out[(c * k + ky) * k + kx] = kernel[(ky * k + kx) * channels + c];
  return out;
}

/**
 * Emits a RevBiFPN's inference graph from its layer tree, NCHW inside. BatchNorm uses its running statistics and
 * is folded into the preceding convolution, so the graph holds no training ops.
 */
class BackboneEmitter {
  constructor(private readonly g: GraphBuilder, private readonly values: WeightValues) {}

  /** Plain conv with optional bias (the SE convs and the head projection have no BatchNorm). */
  conv(layer: Conv2D, x: string): string {
    const k = layer.kernelSize;
    const w = this.g.weight(`${layer.name}.w`, convKernelToOnnx(this.values(`${layer.name}.kernel`), k, layer.inChannels, layer.filters), [layer.filters, layer.inChannels, k, k]);
    const inputs = [x, w];
    if (layer.useBias) inputs.push(this.g.weight(`${layer.name}.b`, this.values(`${layer.name}.bias`), [layer.filters]));
    const pad = Math.floor(k / 2);
    return this.g.op('Conv', inputs, { kernel_shape: [k, k], strides: [layer.strides, layer.strides], pads: [pad, pad, pad, pad] }, layer.name);
  }

  /** Conv or depthwise conv with its BatchNorm folded in: W' = W·γ/σ, b' = β − μ·γ/σ; then the activation. */
  convBN(layer: ConvBN, x: string): string {
    const { conv, norm } = layer;
    const gamma = this.values(`${norm.name}.gamma`);
    const beta = this.values(`${norm.name}.beta`);
    const mean = this.values(`${norm.name}.movingMean`);
    const variance = this.values(`${norm.name}.movingVariance`);
    const scale = gamma.map((gm, c) => gm / Math.sqrt(variance[c] + norm.epsilon));
    const bias = beta.map((b, c) => b - mean[c] * scale[c]);
    const k = conv.kernelSize;
    const raw = this.values(`${conv.name}.kernel`);
    const depthwise = conv instanceof DepthwiseConv2D;
    const weight = depthwise ? depthwiseKernelToOnnx(raw, k, conv.channels) : convKernelToOnnx(raw, k, conv.inChannels, conv.filters);
    const outChannels = depthwise ? conv.channels : conv.filters;
    const dims = depthwise ? [conv.channels, 1, k, k] : [conv.filters, conv.inChannels, k, k];
    const perOut = weight.length / outChannels;
    for (let o = 0; o < outChannels; o++) for (let j = 0; j < perOut; j++) weight[o * perOut + j] *= scale[o];
    const pad = Math.floor(k / 2);
    const y = this.g.op(
      'Conv',
      [x, this.g.weight(`${conv.name}.w`, weight, dims), this.g.weight(`${conv.name}.b`, bias, [outChannels])],
      { kernel_shape: [k, k], strides: [conv.strides, conv.strides], pads: [pad, pad, pad, pad], group: depthwise ? conv.channels : 1 },
      conv.name,
    );
    return layer.activation === 'hardSwish' ? this.g.op('HardSwish', [y], {}, `${layer.name}.act`) : y;
  }

  squeezeExcite(layer: SqueezeExcite, x: string): string {
    const pooled = this.g.op('GlobalAveragePool', [x], {}, `${layer.name}.pool`);
    const reduced = this.g.op('HardSwish', [this.conv(layer.reduce, pooled)], {}, `${layer.name}.act`);
    // relu6(x + 3) / 6 is HardSigmoid with α = 1/6, β = 1/2 (ONNX's defaults differ).
    const gate = this.g.op('HardSigmoid', [this.conv(layer.expand, reduced)], { alpha: { float: 1 / 6 }, beta: { float: 0.5 } }, `${layer.name}.gate`);
    return this.g.op('Mul', [x, gate], {}, `${layer.name}.scale`);
  }

  mbconv(layer: MBConv, x: string): string {
    let h = layer.expand ? this.convBN(layer.expand, x) : x;
    h = this.convBN(layer.depthwise, h);
    if (layer.se) h = this.squeezeExcite(layer.se, h);
    return this.convBN(layer.project, h);
  }

  upsample(layer: BilinearUpsample, x: string): string {
    if (layer.factor === 1) return x;
    const scales = this.g.weight(`${layer.name}.scales`, Float32Array.from([1, 1, layer.factor, layer.factor]), [4]);
    return this.g.op('Resize', [x, '', scales], { mode: 'linear', coordinate_transformation_mode: 'half_pixel' }, layer.name);
  }

  tensorLayer(layer: SiloMapLayer, x: string): string {
    return visitLayer<SiloMapLayer, string>(layer, {
      MBConv: (l) => this.mbconv(l, x),
      BilinearUpsample: (l) => this.upsample(l, x),
      Sequential: (l) => l.layers.reduce((h, inner) => this.tensorLayer(inner, h), x),
    });
  }

  sum(terms: string[], hint: string): string {
    return terms.length === 1 ? terms[0] : this.g.op('Sum', terms, {}, hint);
  }

  block(layer: ReversibleBlock, streams: string[]): string[] {
    const half = layer.channels / 2;
    const [a, b] = this.g.node('Split', [streams[layer.stream], this.g.ints(`${layer.name}.halves`, [half, half])], { axis: 1 }, `${layer.name}.split`, 2);
    const bOut = this.g.op('Add', [b, this.mbconv(layer.F, a)], {}, `${layer.name}.b`);
    const aOut = this.g.op('Add', [a, this.mbconv(layer.G, bOut)], {}, `${layer.name}.a`);
    const joined = this.g.op('Concat', [aOut, bOut], { axis: 1 }, `${layer.name}.out`);
    return streams.map((s, h) => (h === layer.stream ? joined : s));
  }

  silo(layer: RevSilo, xs: string[]): string[] {
    const zs: string[] = [];
    for (let j = 0; j < layer.outStreams; j++) {
      const terms = layer.down[j].map((d, i) => this.mbconv(d, xs[i]));
      zs.push(this.sum(j < layer.inStreams ? [xs[j], ...terms] : terms, `${layer.name}.z${j}`));
    }
    const ys: string[] = new Array(layer.outStreams);
    for (let i = layer.outStreams - 1; i >= 0; i--) {
      const terms = layer.up[i].map((u, k) => this.tensorLayer(u, zs[i + 1 + k]));
      ys[i] = this.sum([zs[i], ...terms], `${layer.name}.y${i}`);
    }
    return ys;
  }

  backbone(model: RevBiFPN, input: string, output = ONNX_OUTPUT): string {
    let streams = [emitStem(this.g, model.stem, input)];
    for (const unit of model.body) {
      const inputs = streams;
      streams = visitLayer<BodyUnit, string[]>(unit, { ReversibleBlock: (b) => this.block(b, inputs), RevSilo: (s) => this.silo(s, inputs) });
    }
    const head = model.head;
    const features = streams.map((s, h) => this.mbconv(head.neck[h], s));
    const levels = [features[0]];
    for (let h = 0; h < head.merge.length; h++) levels.push(this.g.op('Add', [features[h + 1], this.mbconv(head.merge[h], levels[h])], {}, `head.merge${h}.sum`));
    const projected = this.conv(head.project, levels[head.merge.length]);
    let pooled = this.g.op('GlobalAveragePool', [projected], {}, 'head.pool');
    head.pyramid.forEach((project, h) => {
      const finer = this.conv(project, this.g.op('GlobalAveragePool', [levels[h]], {}, `head.pool${h}`));
      pooled = this.g.op('Add', [pooled, finer], {}, `head.pool${h}.sum`);
    });
    return this.g.op('Flatten', [pooled], { axis: 1 }, output);
  }

  /** z / sqrt(Σz² + ε), the same ε as the training loss, so a zero embedding stays finite. */
  unit(z: string, output = ONNX_OUTPUT): string {
    const squares = this.g.op('ReduceSum', [this.g.op('Mul', [z, z], {}, 'unit.square'), this.g.ints('unit.axes', [1])], { keepdims: 1 }, 'unit.sum');
    const norm = this.g.op('Sqrt', [this.g.op('Add', [squares, this.g.weight('unit.epsilon', Float32Array.of(1e-12), [])], {}, 'unit.eps')], {}, 'unit.norm');
    return this.g.op('Div', [z, norm], {}, output);
  }
}

export interface OnnxExportOptions {
  /** Key/value pairs stored as ONNX metadata_props (the model card's normalization and bands go here). */
  metadata?: Record<string, string>;
  producerVersion?: string;
  /** Emit unit-length embeddings (models trained on cosine similarity), so that the store's L2 search ranks by angle. */
  unitEmbeddings?: boolean;
  /**
   * Test-time augmentation: `d4` embeds each tile in its eight orientations (four rotations, each also mirrored)
   * and averages them, so a tile's vector does not depend on which way the sensor happened to face.
   */
  tta?: TestTimeAugmentation;
}

export type TestTimeAugmentation = 'none' | 'd4';
export const TEST_TIME_AUGMENTATIONS: readonly TestTimeAugmentation[] = ['none', 'd4'];

/**
 * The dihedral group D4 of NCHW tiles stacked on the batch axis: the identity, the three mirrors (width, height,
 * both = half turn) and the same four after swapping height and width (the transpose, the two quarter turns and the
 * anti-transpose). Orientation-major, so [8·N, ...] reshapes to [8, N, ...].
 */
function d4Orientations(g: GraphBuilder, x: string): string {
  // A negative step reads the axis backwards; the end clamps to "before index 0" (ONNX Slice).
  const mirror = (t: string, axis: number, hint: string) =>
    g.op('Slice', [t, g.ints('tta.start', [-1]), g.ints('tta.end', [-(2 ** 31)]), g.ints('tta.axis', [axis]), g.ints('tta.step', [-1])], {}, hint);
  const upright = [x, mirror(x, 3, 'tta.flipw'), mirror(x, 2, 'tta.fliph')];
  upright.push(mirror(upright[1], 2, 'tta.turn2'));
  const swapped = upright.map((t, i) => g.op('Transpose', [t], { perm: [0, 1, 3, 2] }, `tta.swap${i}`));
  return g.op('Concat', [...upright, ...swapped], { axis: 0 }, 'tta.stack');
}

/** The mean over the orientations of d4Orientations' embeddings [8·N, dim] → [N, dim]. */
function meanOverOrientations(g: GraphBuilder, z: string, dim: number, output: string): string {
  const grouped = g.op('Reshape', [z, g.ints('tta.groups', [8, -1, dim])], {}, 'tta.grouped');
  return g.op('ReduceMean', [grouped], { axes: [0], keepdims: 0 }, output);
}

/** Serialises the backbone's inference graph as an ONNX model: NHWC tiles in, embeddings out. */
export function exportBackboneOnnx(model: RevBiFPN, options: OnnxExportOptions = {}): Uint8Array {
  const { tileSize, bands, dim } = model.config;
  const params = new Map(model.params.entries());
  const values: WeightValues = (name) => {
    const v = params.get(name);
    if (!v) throw new Error(`the model has no weight ${name}`);
    return Float32Array.from(v.dataSync() as Float32Array);
  };
  const g = new GraphBuilder();
  const input = g.input(ONNX_INPUT, ['batch', tileSize, tileSize, bands]);
  const nchw = g.op('Transpose', [input], { perm: [0, 3, 1, 2] }, 'nchw');
  const emitter = new BackboneEmitter(g, values);
  const d4 = options.tta === 'd4';
  const unit = options.unitEmbeddings === true;
  let z = emitter.backbone(model, d4 ? d4Orientations(g, nchw) : nchw, d4 || unit ? 'head.flatten' : ONNX_OUTPUT);
  if (d4) z = meanOverOrientations(g, z, dim, unit ? 'tta.mean' : ONNX_OUTPUT);
  const output = unit ? emitter.unit(z) : z;
  g.output(output, ['batch', dim]);
  return g.encode({
    opset: EXPORT_OPSET,
    graphName: `tilevec-revbifpn-${model.config.name}`,
    metadata: { backbone: JSON.stringify(model.config), ...options.metadata },
    producerVersion: options.producerVersion,
    doc: 'RevBiFPN backbone exported by tilevec: NHWC float32 tiles, normalised per the metadata, to embeddings.',
  });
}

/**
 * The parameter-free stem: repeat bands up to the stem width, then space-to-depth (DCR order, as ONNX SpaceToDepth
 * defines it). Shared with the training step's graph, which starts the same way.
 */
export function emitStem(g: GraphBuilder, layer: Stem, x: string): string {
  const copies = Math.ceil(layer.repeatedChannels / layer.bands);
  let h = copies === 1 ? x : g.op('Tile', [x, g.ints('stem.repeats', [1, copies, 1, 1])], {}, 'stem.tile');
  if (copies * layer.bands !== layer.repeatedChannels) {
    h = g.op('Slice', [h, g.ints('stem.start', [0]), g.ints('stem.end', [layer.repeatedChannels]), g.ints('stem.axes', [1])], {}, 'stem.slice');
  }
  return layer.block === 1 ? h : g.op('SpaceToDepth', [h], { blocksize: layer.block }, 'stem.s2d');
}
