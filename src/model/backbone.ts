import * as tf from '@tensorflow/tfjs';
import {
  STREAM_COUNT,
  resolveBackboneConfig,
  stemRepeatedChannels,
  streamWidths,
  validateBackboneConfig,
  type BackboneConfig,
  type BackbonePresetName,
} from './config.ts';
import { Conv2D, ConvBN, Layer, MBConv, type LayerDescription } from './layers.ts';
import { BatchStatsRecorder, ParamStore, type ForwardContext } from './params.ts';
import { ReversibleBlock, RevSilo, Stem, type ReversibleLayer } from './reversible.ts';
import type { BodyUnit } from './kinds.ts';

/**
 * Non-reversible neck and head: one MBConv per stream, top-down merge
 * out = neck_{h+1} + MBConv_stride2(out), 1x1 conv to `dim`, global average pool. With `pyramid` pooling every finer
 * level of the merge is also pooled and projected (no bias) into the sum, as a 1x1 conv commutes with the pool.
 */
export class EmbeddingHead extends Layer {
  readonly className = 'EmbeddingHead';
  readonly neck: MBConv[] = [];
  readonly merge: MBConv[] = [];
  readonly project: Conv2D;
  /** Projections of the pooled finer levels 0..2 (`pyramid` pooling only). */
  readonly pyramid: Conv2D[] = [];
  /** What training feeds the loss instead of the embedding (`mlp` projector only; never exported). */
  readonly projector: [ConvBN, Conv2D] | null = null;

  constructor(name: string, readonly config: BackboneConfig) {
    super(name);
    const widths = streamWidths(config);
    const bn = { epsilon: config.batchNormEpsilon, momentum: config.batchNormMomentum };
    const { neckWidths, neckExpandRatios, neckSeRatios, neckKernel } = config;
    for (let h = 0; h < STREAM_COUNT; h++) {
      this.neck.push(
        new MBConv(`${name}.neck${h}`, {
          inChannels: widths[h],
          outChannels: neckWidths[h],
          kernelSize: neckKernel,
          strides: 1,
          expandRatio: neckExpandRatios[h],
          seRatio: neckSeRatios[h],
          bn,
        }),
      );
    }
    for (let h = 0; h + 1 < STREAM_COUNT; h++) {
      this.merge.push(
        new MBConv(`${name}.merge${h}to${h + 1}`, {
          inChannels: neckWidths[h],
          outChannels: neckWidths[h + 1],
          kernelSize: neckKernel,
          strides: 2,
          expandRatio: neckExpandRatios[h],
          seRatio: neckSeRatios[h],
          bn,
        }),
      );
    }
    this.project = new Conv2D(`${name}.project`, neckWidths[STREAM_COUNT - 1], config.dim, 1, 1, true);
    if (config.headPooling === 'pyramid') {
      for (let h = 0; h + 1 < STREAM_COUNT; h++) this.pyramid.push(new Conv2D(`${name}.pool${h}.project`, neckWidths[h], config.dim, 1, 1, false));
    }
    if (config.projector === 'mlp') {
      const hidden = new ConvBN(`${name}.projector0`, new Conv2D(`${name}.projector0.conv`, config.dim, config.dim, 1, 1, false), config.dim, 'hardSwish', bn);
      this.projector = [hidden, new Conv2D(`${name}.projector1`, config.dim, config.dim, 1, 1, true)];
    }
  }

  /** Execution order: necks, then merges fine to coarse, then the projections. */
  override sublayers(): Layer[] {
    return [...this.neck, ...this.merge, this.project, ...this.pyramid, ...(this.projector ?? [])];
  }

  call(streams: tf.Tensor4D[], ctx: ForwardContext): tf.Tensor2D {
    const features = streams.map((s, h) => this.neck[h].call(s, ctx));
    const levels = [features[0]];
    for (let h = 0; h < this.merge.length; h++) levels.push(tf.add(features[h + 1], this.merge[h].call(levels[h], ctx)));
    const embedding = tf.mean(this.project.call(levels[this.merge.length]), [1, 2]) as tf.Tensor2D;
    const finer = this.pyramid.map((project, h) => tf.reshape(project.call(tf.mean(levels[h], [1, 2], true) as tf.Tensor4D), [-1, this.config.dim]));
    return (finer.length === 0 ? embedding : tf.addN([embedding, ...finer])) as tf.Tensor2D;
  }

  /** What the training loss sees: the embedding, or its projection where the head has a projector. */
  trainingOutput(streams: tf.Tensor4D[], ctx: ForwardContext): tf.Tensor2D {
    const embedding = this.call(streams, ctx);
    if (!this.projector) return embedding;
    const [hidden, out] = this.projector;
    const dim = this.config.dim;
    return tf.reshape(out.call(hidden.call(tf.reshape(embedding, [-1, 1, 1, dim]) as tf.Tensor4D, ctx)), [-1, dim]) as tf.Tensor2D;
  }

  getConfig() {
    return { streams: STREAM_COUNT, dim: this.config.dim, pooling: 'globalAverage', levels: this.config.headPooling, projector: this.config.projector };
  }
}

export interface BackboneDescription {
  config: BackboneConfig;
  /** Reversible units in execution order: stem, then per layer the blocks and the silo. */
  units: LayerDescription[];
  head: LayerDescription;
}

export interface BackboneOptions {
  /** Seed for deterministic weight init (default 0). */
  seed?: number;
}

/**
 * RevBiFPN backbone producing one embedding per tile. The reversible part is a flat list of
 * units (stem, blocks, silos); the head is recomputed rather than stored during training.
 */
export class RevBiFPN {
  readonly config: BackboneConfig;
  readonly params: ParamStore;
  readonly stem: Stem;
  /** Reversible units after the stem, in execution order. */
  readonly body: BodyUnit[] = [];
  readonly head: EmbeddingHead;

  constructor(config: BackboneConfig, options: BackboneOptions = {}) {
    this.config = validateBackboneConfig(structuredClone(config));
    this.params = new ParamStore(options.seed ?? 0);
    const widths = streamWidths(this.config);
    const bn = { epsilon: this.config.batchNormEpsilon, momentum: this.config.batchNormMomentum };
    const { expandRatios, seRatios, blockKernels, kernelExtra, blocksPerLayer } = this.config;

    this.stem = new Stem('stem', this.config.bands, stemRepeatedChannels(this.config), this.config.stemBlock);
    const layerCount = STREAM_COUNT - 1 + this.config.extraLayers;
    for (let layer = 0; layer < layerCount; layer++) {
      const streams = Math.min(layer + 1, STREAM_COUNT);
      for (let block = 0; block < blocksPerLayer; block++) {
        for (let h = 0; h < streams; h++) {
          this.body.push(
            new ReversibleBlock(`layer${layer}.stream${h}.block${block}`, h, widths[h], {
              kernelSize: blockKernels[h],
              expandRatio: expandRatios[h],
              seRatio: seRatios[h],
              bn,
            }),
          );
        }
      }
      this.body.push(new RevSilo(`layer${layer}.silo`, streams, streams < STREAM_COUNT, { widths, expandRatios, seRatios, kernelExtra, bn }));
    }
    this.head = new EmbeddingHead('head', this.config);

    for (const layer of [this.stem, ...this.body, this.head]) layer.build(this.params);
  }

  /** Stem followed by the body: every reversible unit in execution order. */
  get units(): ReversibleLayer[] {
    return [this.stem, ...this.body];
  }

  /** Embeddings [batch, dim] for NHWC float32 tiles [batch, tile, tile, bands]. */
  apply(x: tf.Tensor4D, options: { training?: boolean } = {}): tf.Tensor2D {
    this.checkInput(x);
    const ctx: ForwardContext = { training: options.training ?? false };
    return tf.tidy(() => this.head.call(this.forwardStreams(x, ctx), ctx));
  }

  /** Output streams of the reversible part (finest first). Intermediates are disposed as it goes. */
  forwardStreams(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D[] {
    this.checkInput(x);
    return runUnits(this.units, [x], (unit, streams) => unit.forward(streams, ctx));
  }

  /** Reconstructs the input tiles from the output streams with the exact inverse. */
  inverseStreams(streams: tf.Tensor4D[], ctx: ForwardContext): tf.Tensor4D {
    const [image] = runUnits([...this.units].reverse(), streams, (unit, ys) => unit.inverse(ys, ctx));
    return image;
  }

  /** Moves every BatchNorm's running statistics one momentum step toward the recorded batch statistics. */
  applyBatchStats(recorder: BatchStatsRecorder): void {
    const momentum = this.config.batchNormMomentum;
    tf.tidy(() => {
      for (const [name, { mean, variance, count }] of recorder.entries()) {
        const movingMean = this.params.get(`${name}.movingMean`);
        const movingVariance = this.params.get(`${name}.movingVariance`);
        // PyTorch convention: the running variance is the unbiased estimate.
        const unbiased = count > 1 ? tf.mul(variance, count / (count - 1)) : variance;
        movingMean.assign(tf.add(tf.mul(movingMean, 1 - momentum), tf.mul(mean, momentum)));
        movingVariance.assign(tf.add(tf.mul(movingVariance, 1 - momentum), tf.mul(unbiased, momentum)));
      }
    });
  }

  /** Names of all BatchNorm layers (each owns `.gamma/.beta/.movingMean/.movingVariance`). */
  batchNormNames(): string[] {
    return this.params
      .entries()
      .map(([name]) => name)
      .filter((name) => name.endsWith('.movingMean'))
      .map((name) => name.slice(0, -'.movingMean'.length));
  }

  describe(): BackboneDescription {
    return {
      config: structuredClone(this.config),
      units: this.units.map((u) => u.describe()),
      head: this.head.describe(),
    };
  }

  dispose(): void {
    this.params.dispose();
  }

  private checkInput(x: tf.Tensor4D): void {
    const { tileSize, bands } = this.config;
    const [, h, w, c] = x.shape;
    if (x.rank !== 4 || h !== tileSize || w !== tileSize || c !== bands) {
      throw new Error(`expected NHWC input [batch, ${tileSize}, ${tileSize}, ${bands}], got [${x.shape.join(', ')}]`);
    }
  }
}

/**
 * Runs units in order, keeping only the current streams alive. Tensors passed in by the caller
 * are never disposed; pass-through streams (same object in and out) are kept.
 */
function runUnits(
  units: ReversibleLayer[],
  inputs: tf.Tensor4D[],
  step: (unit: ReversibleLayer, streams: tf.Tensor4D[]) => tf.Tensor4D[],
): tf.Tensor4D[] {
  const callerOwned = new Set(inputs);
  let streams = inputs;
  for (const unit of units) {
    const next = tf.tidy(() => step(unit, streams));
    disposeUnlessKept(streams, new Set([...next, ...callerOwned]));
    streams = next;
  }
  return streams;
}

export function disposeUnlessKept(tensors: tf.Tensor[], keep: Set<tf.Tensor>): void {
  for (const t of tensors) if (!keep.has(t) && !t.isDisposed) t.dispose();
}

/** Builds a backbone from a preset name, a partial config or a full config. */
export function createBackbone(
  config: BackbonePresetName | Partial<BackboneConfig> | BackboneConfig = 'tiny',
  options: BackboneOptions = {},
): RevBiFPN {
  return new RevBiFPN(resolveBackboneConfig(config), options);
}
