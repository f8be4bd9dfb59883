import * as tf from '@tensorflow/tfjs';
import { fnv1a32 } from '../rng.ts';

/** How a weight is initialised; kept as data so weight files and exporters can describe it. */
export type Initializer =
  | { kind: 'zeros' }
  | { kind: 'ones' }
  /** Kaiming normal, fan-out mode, ReLU gain (as the reference RevBiFPN): std = sqrt(2 / fanOut). */
  | { kind: 'heNormalFanOut'; fanOut: number };

export interface ParamSpec {
  name: string;
  shape: number[];
  trainable: boolean;
  init: Initializer;
}

/** 32-bit FNV-1a of the seed and the name, so every weight's init is independent of creation order. */
function nameSeed(seed: number, name: string): number {
  return fnv1a32(name, 0x811c9dc5 ^ (seed >>> 0));
}

/**
 * Flat, ordered collection of every weight and BatchNorm statistic, keyed by stable dotted
 * names such as `layer0.stream0.block1.F.expand.bn.gamma`.
 */
export class ParamStore {
  private readonly variables = new Map<string, tf.Variable>();
  private readonly specs = new Map<string, ParamSpec>();

  constructor(readonly seed: number) {}

  create(spec: ParamSpec): tf.Variable {
    if (this.variables.has(spec.name)) throw new Error(`duplicate parameter name "${spec.name}"`);
    const initial = tf.tidy(() => {
      switch (spec.init.kind) {
        case 'zeros':
          return tf.zeros(spec.shape);
        case 'ones':
          return tf.ones(spec.shape);
        case 'heNormalFanOut':
          return tf.randomNormal(spec.shape, 0, Math.sqrt(2 / spec.init.fanOut), 'float32', nameSeed(this.seed, spec.name));
      }
    });
    // tfjs variable names are global; ours stay local so several models can coexist.
    const variable = tf.variable(initial, spec.trainable);
    initial.dispose();
    this.variables.set(spec.name, variable);
    this.specs.set(spec.name, spec);
    return variable;
  }

  get(name: string): tf.Variable {
    const variable = this.variables.get(name);
    if (variable === undefined) throw new Error(`unknown parameter "${name}"`);
    return variable;
  }

  spec(name: string): ParamSpec {
    const spec = this.specs.get(name);
    if (spec === undefined) throw new Error(`unknown parameter "${name}"`);
    return spec;
  }

  /** All parameters in creation order (deterministic for a given config). */
  entries(): Array<[string, tf.Variable]> {
    return [...this.variables.entries()];
  }

  trainableNames(): string[] {
    return [...this.specs.values()].filter((s) => s.trainable).map((s) => s.name);
  }

  /** Copies of every value by name, e.g. for saving. Caller owns the tensors. */
  snapshot(): Map<string, tf.Tensor> {
    return new Map(this.entries().map(([name, v]) => [name, v.clone()]));
  }

  /** Assigns values by name; every name must exist and shapes must match. */
  load(values: Map<string, tf.Tensor> | Record<string, tf.Tensor>): void {
    const pairs = values instanceof Map ? [...values.entries()] : Object.entries(values);
    for (const [name, value] of pairs) {
      const variable = this.get(name);
      if (!tf.util.arraysEqual(variable.shape, value.shape)) {
        throw new Error(`shape mismatch for "${name}": model ${JSON.stringify(variable.shape)}, given ${JSON.stringify(value.shape)}`);
      }
      variable.assign(value);
    }
  }

  dispose(): void {
    for (const variable of this.variables.values()) variable.dispose();
    this.variables.clear();
    this.specs.clear();
  }
}

export interface BatchStats {
  mean: tf.Tensor1D;
  /** Biased (population) variance, as used for normalisation. */
  variance: tf.Tensor1D;
  /** Values per channel the statistics were computed over (for the unbiased running variance). */
  count: number;
}

/**
 * Collects the batch statistics of one training step. A BatchNorm recording twice in the same
 * step is a bug (it would update the running statistics twice), so it throws.
 */
export class BatchStatsRecorder {
  private readonly stats = new Map<string, BatchStats>();

  record(name: string, stats: BatchStats): void {
    if (this.stats.has(name)) throw new Error(`BatchNorm "${name}" recorded batch statistics twice in one step`);
    this.stats.set(name, { mean: tf.keep(stats.mean.clone()), variance: tf.keep(stats.variance.clone()), count: stats.count });
  }

  get size(): number {
    return this.stats.size;
  }

  entries(): Array<[string, BatchStats]> {
    return [...this.stats.entries()];
  }

  dispose(): void {
    for (const { mean, variance } of this.stats.values()) tf.dispose([mean, variance]);
    this.stats.clear();
  }
}

/** Per-call settings threaded through every layer. */
export interface ForwardContext {
  /** BatchNorm uses batch statistics when true, running statistics when false. */
  training: boolean;
  /** Where BatchNorm reports batch statistics; absent on recompute passes so they never count twice. */
  recorder?: BatchStatsRecorder;
}
