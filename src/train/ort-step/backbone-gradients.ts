import { visitLayer, type BodyUnit, type EmbeddingHead, type ReversibleBlock, type RevSilo } from '../../model/index.ts';
import { chain, must, type LayerGradients, type Traced } from './layer-gradients.ts';
import type { Ops, Value } from './ops.ts';

/** A unit's reconstructed inputs and, when asked for, their gradients. */
export interface UnitBackward {
  inputs: Value[];
  dInputs?: Value[];
}

/**
 * Forward and reversible backward of the RevBiFPN body and its head. The backward of a unit starts from the unit's
 * outputs only: it rebuilds the inputs with the exact inverse (as training.ts does) and differentiates the F/G, D/U
 * maps at the very points the inverse evaluated them, so no forward intermediate of the body is ever read again and
 * ORT frees each one after the forward pass.
 */
export class BackboneGradients {
  constructor(private readonly ops: Ops, private readonly layers: LayerGradients) {}

  /** Train-mode forward of a body unit, recording its batch statistics; nothing is kept for backward. */
  forward(unit: BodyUnit, streams: Value[]): Value[] {
    return this.forwardKeeping(unit, streams).outputs;
  }

  /**
   * The same forward, with a backward that differentiates it at its own intermediates instead of rebuilding them:
   * what a conventional graph does, so ORT must keep every one alive until the backward reaches it. The graph that
   * measures what reversibility saves; training uses `backward`.
   */
  forwardKeeping(unit: BodyUnit, streams: Value[]): { outputs: Value[]; backward: (dys: Value[], wantDx: boolean) => Value[] | undefined } {
    return visitLayer<BodyUnit, ReturnType<BackboneGradients['forwardKeeping']>>(unit, {
      ReversibleBlock: (block) => {
        const { outputs, f, g } = this.blockForward(block, streams);
        return { outputs, backward: (dys, wantDx) => this.blockGradients(block, f, g, dys, wantDx) };
      },
      RevSilo: (silo) => {
        const { outputs, down, up } = this.siloForward(silo, streams);
        return { outputs, backward: (dys, wantDx) => this.siloGradients(silo, down, up, dys, wantDx) };
      },
    });
  }

  /** Backward of a body unit from its outputs `ys` and their gradients `dys`. */
  backward(unit: BodyUnit, ys: Value[], dys: Value[], wantDx: boolean): UnitBackward {
    return visitLayer<BodyUnit, UnitBackward>(unit, {
      ReversibleBlock: (block) => this.blockBackward(block, ys, dys, wantDx),
      RevSilo: (silo) => this.siloBackward(silo, ys, dys, wantDx),
    });
  }

  private halves(block: ReversibleBlock, x: Value, hint: string): Value[] {
    return this.ops.split(x, [block.channels / 2, block.channels / 2], 1, `${block.name}.${hint}`);
  }

  private blockForward(block: ReversibleBlock, streams: Value[]): { outputs: Value[]; f: Traced; g: Traced } {
    const { ops, layers } = this;
    const [a, b] = this.halves(block, streams[block.stream], 'split');
    const f = layers.mbconv(block.F, a, true);
    const bOut = ops.add(b, f.y, `${block.name}.b`);
    const g = layers.mbconv(block.G, bOut, true);
    const aOut = ops.add(a, g.y, `${block.name}.a`);
    return { outputs: replaceStream(streams, block.stream, ops.concat([aOut, bOut], 1, `${block.name}.out`)), f, g };
  }

  /** b' = b + F(a), a' = a + G(b'): a = a' − G(b'), b = b' − F(a). */
  private blockBackward(block: ReversibleBlock, ys: Value[], dys: Value[], wantDx: boolean): UnitBackward {
    const { ops, layers } = this;
    const [aOut, bOut] = this.halves(block, ys[block.stream], 'inv');
    const g = layers.mbconv(block.G, bOut, false);
    const a = ops.sub(aOut, g.y, `${block.name}.a_rec`);
    const f = layers.mbconv(block.F, a, false);
    const b = ops.sub(bOut, f.y, `${block.name}.b_rec`);
    const inputs = replaceStream(ys, block.stream, ops.concat([a, b], 1, `${block.name}.in_rec`));
    const dInputs = this.blockGradients(block, f, g, dys, wantDx);
    return dInputs ? { inputs, dInputs } : { inputs };
  }

  /** da = da' + Fᵀ(db), db = db' + Gᵀ(da'), with F and G traced at a and b'. */
  private blockGradients(block: ReversibleBlock, f: Traced, g: Traced, dys: Value[], wantDx: boolean): Value[] | undefined {
    const { ops } = this;
    const [daOut, dbOut] = this.halves(block, dys[block.stream], 'dsplit');
    const db = ops.add(dbOut, must(g.back(daOut, true)), `${block.name}.db`);
    const daFromF = f.back(db, wantDx);
    if (!wantDx) return undefined;
    const da = ops.add(daOut, must(daFromF), `${block.name}.da`);
    return replaceStream(dys, block.stream, ops.concat([da, db], 1, `${block.name}.dx`));
  }

  private siloForward(silo: RevSilo, xs: Value[]): { outputs: Value[]; down: Traced[][]; up: Traced[][] } {
    const { ops, layers } = this;
    const zs: Value[] = [];
    const down: Traced[][] = [];
    for (let j = 0; j < silo.outStreams; j++) {
      down.push(silo.down[j].map((d, i) => layers.mbconv(d, xs[i], true)));
      const terms = down[j].map((t) => t.y);
      zs.push(ops.sum(j < silo.inStreams ? [xs[j], ...terms] : terms, `${silo.name}.z${j}`));
    }
    const ys: Value[] = new Array(silo.outStreams);
    const up: Traced[][] = new Array(silo.outStreams);
    for (let i = silo.outStreams - 1; i >= 0; i--) {
      up[i] = silo.up[i].map((u, k) => layers.tensorLayer(u, zs[i + 1 + k], true));
      ys[i] = ops.sum([zs[i], ...up[i].map((t) => t.y)], `${silo.name}.y${i}`);
    }
    return { outputs: ys, down, up };
  }

  /** Inverse: z_i = y_i − Σ_{j>i} U_{j→i}(z_j) coarsest first, x_j = z_j − Σ_{i<j} D_{i→j}(x_i) finest first. */
  private siloBackward(silo: RevSilo, ys: Value[], dys: Value[], wantDx: boolean): UnitBackward {
    const { ops, layers } = this;
    const zs: Value[] = new Array(silo.outStreams);
    const up: Traced[][] = new Array(silo.outStreams);
    for (let i = silo.outStreams - 1; i >= 0; i--) {
      up[i] = silo.up[i].map((u, k) => layers.tensorLayer(u, zs[i + 1 + k], false));
      zs[i] = up[i].length === 0 ? ys[i] : ops.sub(ys[i], ops.sum(up[i].map((t) => t.y)), `${silo.name}.z${i}_rec`);
    }
    const xs: Value[] = [];
    const down: Traced[][] = [];
    for (let j = 0; j < silo.outStreams; j++) {
      // The added stream's D maps are traced too: they have gradients even though the inverse drops that stream.
      down.push(silo.down[j].map((d, i) => layers.mbconv(d, xs[i], false)));
      if (j < silo.inStreams) xs.push(down[j].length === 0 ? zs[j] : ops.sub(zs[j], ops.sum(down[j].map((t) => t.y)), `${silo.name}.x${j}_rec`));
    }
    const dInputs = this.siloGradients(silo, down, up, dys, wantDx);
    return dInputs ? { inputs: xs, dInputs } : { inputs: xs };
  }

  /** dz_j = dy_j + Σ_{i<j} U_{j→i}ᵀ(dy_i), dx_i = dz_i + Σ_{j>i} D_{i→j}ᵀ(dz_j), with D and U traced where the forward evaluated them. */
  private siloGradients(silo: RevSilo, down: Traced[][], up: Traced[][], dys: Value[], wantDx: boolean): Value[] | undefined {
    const { ops } = this;
    const dzs = Array.from({ length: silo.outStreams }, (_, j) => {
      const terms = Array.from({ length: j }, (_, i) => must(up[i][j - i - 1].back(dys[i], true)));
      return ops.sum([dys[j], ...terms], `${silo.name}.dz${j}`);
    });
    const dxs: Value[] = [];
    for (let i = 0; i < silo.inStreams; i++) {
      const terms: Value[] = [];
      for (let j = i + 1; j < silo.outStreams; j++) {
        const d = down[j][i].back(dzs[j], wantDx);
        if (d) terms.push(d);
      }
      if (wantDx) dxs.push(ops.sum([dzs[i], ...terms], `${silo.name}.dx${i}`));
    }
    return wantDx ? dxs : undefined;
  }

  /**
   * The head in train mode, traced: necks, the top-down merge out = neck_{h+1} + merge_h(out), the 1x1 projection
   * and the global average pool. Returns the embeddings [batch, dim] and the gradient of each input stream.
   */
  head(head: EmbeddingHead, streams: Value[]): { embeddings: Value; back: (dEmbeddings: Value) => Value[] } {
    const { ops, layers } = this;
    const necks = streams.map((s, h) => layers.mbconv(head.neck[h], s, true));
    const levels = [necks[0].y];
    const merges: Traced[] = [];
    for (let h = 0; h < head.merge.length; h++) {
      merges.push(layers.mbconv(head.merge[h], levels[h], true));
      levels.push(ops.add(necks[h + 1].y, merges[h].y, `${head.name}.merge${h}.sum`));
    }
    const projected = layers.conv(head.project, levels[head.merge.length]);
    const [n, dim, ph, pw] = projected.y.shape;
    const finer = head.pyramid.map((project, h) => layers.conv(project, ops.reduceMean(levels[h], [2, 3], true, `${head.name}.pool${h}`)));
    const coarsest = ops.reduceMean(projected.y, [2, 3], false, finer.length === 0 ? 'embeddings' : `${head.name}.pool`);
    const embeddings = finer.length === 0 ? coarsest : ops.sum([coarsest, ...finer.map((f) => ops.reshape(f.y, [n, dim]))], 'embeddings');
    /** The mean's gradient: dy / (h w) spread over every position of `shape`. */
    const unpool = (dy: Value, shape: number[], hint: string) =>
      ops.op('Expand', [ops.reshape(ops.mul(dy, 1 / (shape[2] * shape[3])), [shape[0], shape[1], 1, 1]).name, ops.ints(shape)], shape, {}, hint);
    return {
      embeddings,
      back: (dEmbeddings) => {
        let dOut = must(projected.back(unpool(dEmbeddings, [n, dim, ph, pw], 'head.dpool'), true));
        const dPooled = finer.map((f) => must(f.back(ops.reshape(dEmbeddings, [n, dim, 1, 1]), true)));
        const dFeatures: Value[] = new Array(necks.length);
        for (let h = head.merge.length - 1; h >= 0; h--) {
          dFeatures[h + 1] = dOut;
          dOut = must(merges[h].back(dOut, true));
          if (dPooled[h]) dOut = ops.add(dOut, unpool(dPooled[h], levels[h].shape, `head.dpool${h}`), `${head.name}.dlevel${h}`);
        }
        dFeatures[0] = dOut;
        return necks.map((t, h) => must(t.back(dFeatures[h], true)));
      },
    };
  }
}

/** The head's training-only projector after the embedding, as EmbeddingHead.trainingOutput; the identity without one. */
export function projectorGradients(ops: Ops, layers: LayerGradients, head: EmbeddingHead, embeddings: Value): Traced {
  if (!head.projector) return { y: embeddings, back: (dy) => dy };
  const [n, dim] = embeddings.shape;
  const [hidden, out] = head.projector;
  const traced = chain(ops.reshape(embeddings, [n, dim, 1, 1]), [(v) => layers.convBN(hidden, v, true), (v) => layers.conv(out, v)]);
  return {
    y: ops.reshape(traced.y, [n, dim], 'projected'),
    back: (dy) => ops.reshape(must(traced.back(ops.reshape(dy, [n, dim, 1, 1]), true)), [n, dim]),
  };
}

function replaceStream(streams: Value[], stream: number, replacement: Value): Value[] {
  return streams.map((s, h) => (h === stream ? replacement : s));
}
