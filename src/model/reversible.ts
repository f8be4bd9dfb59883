import * as tf from '@tensorflow/tfjs';
import { BilinearUpsample, Layer, MBConv, Sequential, type MBConvOptions } from './layers.ts';
import type { ForwardContext } from './params.ts';

/**
 * An exactly invertible map between lists of streams (finest first). The reversible engine
 * keeps only a unit's outputs and rebuilds its inputs with `inverse` during backward.
 * A unit may return some input tensors unchanged (same object): those streams pass through.
 */
export abstract class ReversibleLayer extends Layer {
  abstract forward(xs: tf.Tensor4D[], ctx: ForwardContext): tf.Tensor4D[];
  abstract inverse(ys: tf.Tensor4D[], ctx: ForwardContext): tf.Tensor4D[];
}

type BatchNormSettings = MBConvOptions['bn'];

/**
 * Parameter-free stem: repeat the bands cyclically up to `repeatedChannels`, then
 * space-to-depth x`block` (TF/ONNX DCR channel order: row offset, column offset, channel).
 */
export class Stem extends ReversibleLayer {
  readonly className = 'Stem';
  constructor(
    name: string,
    readonly bands: number,
    readonly repeatedChannels: number,
    readonly block: number,
  ) {
    super(name);
  }

  forward([x]: tf.Tensor4D[]): tf.Tensor4D[] {
    const [n, h, w, bands] = x.shape;
    if (bands !== this.bands) throw new Error(`stem expects ${this.bands} bands, got input shape [${x.shape.join(', ')}]`);
    const copies = Math.ceil(this.repeatedChannels / bands);
    const tiled: tf.Tensor4D = copies === 1 ? x : tf.tile(x, [1, 1, 1, copies]);
    const repeated = tiled.shape[3] === this.repeatedChannels ? tiled : tf.slice(tiled, [0, 0, 0, 0], [n, h, w, this.repeatedChannels]);
    const b = this.block;
    const blocks = tf.reshape(repeated, [n, h / b, b, w / b, b, this.repeatedChannels]);
    return [tf.reshape(tf.transpose(blocks, [0, 1, 3, 2, 4, 5]), [n, h / b, w / b, b * b * this.repeatedChannels])];
  }

  inverse([y]: tf.Tensor4D[]): tf.Tensor4D[] {
    const [n, hb, wb] = y.shape;
    const b = this.block;
    const blocks = tf.reshape(y, [n, hb, wb, b, b, this.repeatedChannels]);
    const image: tf.Tensor4D = tf.reshape(tf.transpose(blocks, [0, 1, 3, 2, 4, 5]), [n, hb * b, wb * b, this.repeatedChannels]);
    return [tf.slice(image, [0, 0, 0, 0], [n, hb * b, wb * b, this.bands])];
  }

  getConfig() {
    return { bands: this.bands, repeatedChannels: this.repeatedChannels, block: this.block, channelOrder: 'DCR' };
  }
}

/**
 * Reversible residual block on the channel halves [a, b] of one stream:
 * b' = b + F(a), a' = a + G(b'); inverse a = a' - G(b'), b = b' - F(a).
 */
export class ReversibleBlock extends ReversibleLayer {
  readonly className = 'ReversibleBlock';
  readonly F: MBConv;
  readonly G: MBConv;

  constructor(
    name: string,
    readonly stream: number,
    readonly channels: number,
    block: { kernelSize: number; expandRatio: number; seRatio: number; bn: BatchNormSettings },
  ) {
    super(name);
    const half = channels / 2;
    const options = { inChannels: half, outChannels: half, strides: 1, ...block };
    this.F = new MBConv(`${name}.F`, options);
    this.G = new MBConv(`${name}.G`, options);
  }

  override sublayers(): Layer[] {
    return [this.F, this.G];
  }

  forward(xs: tf.Tensor4D[], ctx: ForwardContext): tf.Tensor4D[] {
    const [a, b] = tf.split(xs[this.stream], 2, 3) as tf.Tensor4D[];
    const bOut: tf.Tensor4D = tf.add(b, this.F.call(a, ctx));
    const aOut: tf.Tensor4D = tf.add(a, this.G.call(bOut, ctx));
    return this.replaceStream(xs, tf.concat([aOut, bOut], 3));
  }

  inverse(ys: tf.Tensor4D[], ctx: ForwardContext): tf.Tensor4D[] {
    const [aOut, bOut] = tf.split(ys[this.stream], 2, 3) as tf.Tensor4D[];
    const a: tf.Tensor4D = tf.sub(aOut, this.G.call(bOut, ctx));
    const b: tf.Tensor4D = tf.sub(bOut, this.F.call(a, ctx));
    return this.replaceStream(ys, tf.concat([a, b], 3));
  }

  private replaceStream(streams: tf.Tensor4D[], replacement: tf.Tensor4D): tf.Tensor4D[] {
    return streams.map((s, h) => (h === this.stream ? replacement : s));
  }

  getConfig() {
    return { stream: this.stream, channels: this.channels, coupling: 'additive' };
  }
}

export interface SiloStreamSettings {
  widths: number[];
  expandRatios: number[];
  seRatios: number[];
  kernelExtra: number[];
  bn: BatchNormSettings;
}

/**
 * RevSilo: reversible bidirectional fusion of `inStreams` streams, optionally adding one
 * coarser stream. F-stage (downward, finest first): z_j = x_j + sum_{i<j} D_{i->j}(x_i), and a
 * new stream is z_N = sum_{i<N} D_{i->N}(x_i). G-stage (upward): y_i = z_i + sum_{j>i} U_{j->i}(z_j).
 */
export class RevSilo extends ReversibleLayer {
  readonly className = 'RevSilo';
  readonly outStreams: number;
  /** down[j][i] = D_{i->j} for i < j. */
  readonly down: MBConv[][] = [];
  /** up[i][j] = U_{j->i} for j > i (stride-1 MBConv then bilinear x2^(j-i)). */
  readonly up: Sequential[][] = [];

  constructor(
    name: string,
    readonly inStreams: number,
    readonly addsStream: boolean,
    settings: SiloStreamSettings,
  ) {
    super(name);
    this.outStreams = inStreams + (addsStream ? 1 : 0);
    const { widths, expandRatios, seRatios, kernelExtra, bn } = settings;
    for (let j = 0; j < this.outStreams; j++) {
      this.down.push([]);
      for (let i = 0; i < j; i++) {
        const strides = 2 ** (j - i);
        this.down[j].push(
          new MBConv(`${name}.down${i}to${j}`, {
            inChannels: widths[i],
            outChannels: widths[j],
            strides,
            // The receptive field grows with the stride: 3, 7, 15 (+ reference extra).
            kernelSize: 2 * strides - 1 + kernelExtra[i],
            expandRatio: expandRatios[i],
            seRatio: seRatios[i],
            bn,
          }),
        );
      }
    }
    for (let i = 0; i < this.outStreams; i++) {
      this.up.push([]);
      for (let j = i + 1; j < this.outStreams; j++) {
        const mb = new MBConv(`${name}.up${j}to${i}.mbconv`, {
          inChannels: widths[j],
          outChannels: widths[i],
          strides: 1,
          kernelSize: 3 + kernelExtra[j],
          expandRatio: expandRatios[i],
          seRatio: seRatios[i],
          bn,
        });
        this.up[i].push(new Sequential(`${name}.up${j}to${i}`, [mb, new BilinearUpsample(`${name}.up${j}to${i}.upsample`, 2 ** (j - i))]));
      }
    }
  }

  /** D maps first (F-stage order), then U maps (G-stage order). */
  override sublayers(): Layer[] {
    return [...this.down.flat(), ...this.up.flat()];
  }

  private downInto(j: number, xs: tf.Tensor4D[], ctx: ForwardContext): tf.Tensor4D[] {
    return this.down[j].map((d, i) => d.call(xs[i], ctx));
  }

  private upInto(i: number, zs: tf.Tensor4D[], ctx: ForwardContext): tf.Tensor4D[] {
    return this.up[i].map((u, k) => u.call(zs[i + 1 + k], ctx));
  }

  forward(xs: tf.Tensor4D[], ctx: ForwardContext): tf.Tensor4D[] {
    this.checkStreams(xs, this.inStreams);
    const zs: tf.Tensor4D[] = [];
    for (let j = 0; j < this.outStreams; j++) {
      const terms = this.downInto(j, xs, ctx);
      zs.push(j < this.inStreams ? sum([xs[j], ...terms]) : sum(terms));
    }
    const ys: tf.Tensor4D[] = new Array(this.outStreams);
    for (let i = this.outStreams - 1; i >= 0; i--) {
      ys[i] = sum([zs[i], ...this.upInto(i, zs, ctx)]);
    }
    return ys;
  }

  inverse(ys: tf.Tensor4D[], ctx: ForwardContext): tf.Tensor4D[] {
    this.checkStreams(ys, this.outStreams);
    // Undo the G-stage coarsest first: every U term reads already-recovered coarser z.
    const zs: tf.Tensor4D[] = new Array(this.outStreams);
    for (let i = this.outStreams - 1; i >= 0; i--) {
      const terms = this.upInto(i, zs, ctx);
      zs[i] = terms.length === 0 ? ys[i] : tf.sub(ys[i], sum(terms));
    }
    // Undo the F-stage finest first; an added stream carries no information and is dropped.
    const xs: tf.Tensor4D[] = [];
    for (let j = 0; j < this.inStreams; j++) {
      const terms = this.downInto(j, xs, ctx);
      xs.push(terms.length === 0 ? zs[j] : tf.sub(zs[j], sum(terms)));
    }
    return xs;
  }

  private checkStreams(streams: tf.Tensor4D[], expected: number): void {
    if (streams.length !== expected) throw new Error(`${this.name} expects ${expected} streams, got ${streams.length}`);
  }

  getConfig() {
    return { inStreams: this.inStreams, outStreams: this.outStreams, addsStream: this.addsStream, coupling: 'additive' };
  }
}

function sum(terms: tf.Tensor4D[]): tf.Tensor4D {
  return terms.length === 1 ? terms[0] : tf.addN(terms);
}

