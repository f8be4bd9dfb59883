import type { ParamStore } from '../../model/index.ts';

export interface LayoutEntry {
  name: string;
  /** tfjs shape, as the ParamStore holds it. */
  shape: number[];
  offset: number;
  size: number;
}

/**
 * Where each named tensor lives in one flat float32 vector. The step graph takes all trainable weights as one
 * vector (and the Adam moments and BatchNorm running statistics likewise), so the optimiser runs as a handful of
 * element-wise nodes and state moves between steps as a few tensors rather than hundreds.
 */
export class FlatLayout {
  readonly entries: LayoutEntry[] = [];
  readonly size: number;
  private readonly byName = new Map<string, LayoutEntry>();

  constructor(tensors: Array<{ name: string; shape: number[] }>) {
    let offset = 0;
    for (const { name, shape } of tensors) {
      const size = shape.reduce((p, d) => p * d, 1);
      const entry = { name, shape: [...shape], offset, size };
      this.entries.push(entry);
      this.byName.set(name, entry);
      offset += size;
    }
    this.size = offset;
  }

  /** Trainable weights in ParamStore order. */
  static trainable(params: ParamStore): FlatLayout {
    return new FlatLayout(params.trainableNames().map((name) => ({ name, shape: params.spec(name).shape })));
  }

  /** BatchNorm running statistics (every non-trainable tensor) in ParamStore order. */
  static runningStats(params: ParamStore): FlatLayout {
    return new FlatLayout(params.entries().filter(([name]) => !params.spec(name).trainable).map(([name, v]) => ({ name, shape: v.shape })));
  }

  entry(name: string): LayoutEntry {
    const entry = this.byName.get(name);
    if (!entry) throw new Error(`no tensor "${name}" in the flat layout`);
    return entry;
  }

  /** Packs the store's current values into one vector. */
  gather(params: ParamStore): Float32Array {
    const flat = new Float32Array(this.size);
    for (const { name, offset } of this.entries) flat.set(params.get(name).dataSync() as Float32Array, offset);
    return flat;
  }

  /** A view (no copy) of one tensor's values inside a flat vector. */
  view(flat: Float32Array, name: string): Float32Array {
    const { offset, size } = this.entry(name);
    return flat.subarray(offset, offset + size);
  }
}
