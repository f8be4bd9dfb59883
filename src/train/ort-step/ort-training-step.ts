import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { DEFAULT_ADAM, type AdamOptions } from '../adam.ts';
import { DEFAULT_TRIPLET_LOSS, type TripletLossOptions } from '../loss.ts';
import type { ParamStore, RevBiFPN } from '../../model/index.ts';
import type { NamedTensor } from '../tensor-file.ts';
import { FlatLayout } from './param-layout.ts';
import { STEP_IO, buildStepGraph, type StepGraphMode } from './step-graph.ts';

export interface OrtTrainingStepOptions {
  lossOptions?: TripletLossOptions;
  adamOptions?: AdamOptions;
  /** ORT intra-op threads; default: every core. */
  threads?: number;
  /** The step graph's backward (StepGraphOptions.backward); training's is the default, `reversible`. */
  backward?: 'reversible' | 'stored';
  /** Whether idle intra-op threads spin waiting for work (ORT's default, true) or sleep; bench:train measures both. */
  spinning?: boolean;
}

/** NHWC batch shape [3B, tile, tile, bands] (anchors; neighbors; distants). */
export type BatchShape = readonly [number, number, number, number];

export interface StepGradients {
  loss: number;
  /** Gradient per trainable parameter name, tfjs layout. */
  grads: Map<string, Float32Array>;
}

/**
 * Trains a RevBiFPN with onnxruntime-node: each step is one `session.run` of a generated graph holding forward,
 * triplet loss, reversible backward, Adam and the BatchNorm running-statistics update. Weights, moments and running
 * statistics stay in ORT tensors between steps (each step's outputs feed the next); the ParamStore is only touched by
 * `loadWeights`/`writeWeights`.
 */
export class OrtTrainingStep {
  /** Adam steps taken (PyTorch's `step`, for the bias corrections). */
  private steps = 0;
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();
  private params: ort.Tensor;
  private running: ort.Tensor;
  private m: ort.Tensor;
  private v: ort.Tensor;

  private constructor(
    readonly model: RevBiFPN,
    readonly lossOptions: TripletLossOptions,
    readonly adamOptions: AdamOptions,
    readonly threads: number,
    readonly backward: 'reversible' | 'stored',
    readonly spinning: boolean,
    readonly trainable: FlatLayout,
    readonly runningLayout: FlatLayout,
  ) {
    this.params = flatTensor(trainable.gather(model.params));
    this.running = flatTensor(runningLayout.gather(model.params));
    this.m = flatTensor(new Float32Array(trainable.size));
    this.v = flatTensor(new Float32Array(trainable.size));
  }

  /** Starts from the model's current weights and running statistics, with fresh Adam moments. */
  static async create(model: RevBiFPN, options: OrtTrainingStepOptions = {}): Promise<OrtTrainingStep> {
    return new OrtTrainingStep(
      model,
      options.lossOptions ?? DEFAULT_TRIPLET_LOSS,
      options.adamOptions ?? DEFAULT_ADAM,
      options.threads ?? availableParallelism(),
      options.backward ?? 'reversible',
      options.spinning ?? true,
      FlatLayout.trainable(model.params),
      FlatLayout.runningStats(model.params),
    );
  }

  get stepCount(): number {
    return this.steps;
  }

  /** One training step on NHWC tiles [3B, tile, tile, bands] at learning rate `lr`; resolves to the loss before the update. */
  async step(batch: Float32Array, shape: BatchShape, lr = this.adamOptions.lr): Promise<number> {
    const tiles = this.tiles(batch, shape);
    const session = await this.session('step', shape);
    const t = this.steps + 1;
    const { beta1, beta2 } = this.adamOptions;
    const out = await session.run({
      [STEP_IO.tiles]: tiles,
      [STEP_IO.params]: this.params,
      [STEP_IO.running]: this.running,
      [STEP_IO.m]: this.m,
      [STEP_IO.v]: this.v,
      [STEP_IO.lrOverCorrection1]: new ort.Tensor('float32', Float32Array.of(lr / (1 - beta1 ** t)), []),
      [STEP_IO.sqrtCorrection2]: new ort.Tensor('float32', Float32Array.of(Math.sqrt(1 - beta2 ** t)), []),
    });
    this.params = out[STEP_IO.paramsOut];
    this.running = out[STEP_IO.runningOut];
    this.m = out[STEP_IO.mOut];
    this.v = out[STEP_IO.vOut];
    this.steps = t;
    return (out[STEP_IO.loss].data as Float32Array)[0];
  }

  /** Builds the step session for this batch shape now, instead of in the first step. */
  async prepare(shape: BatchShape): Promise<void> {
    await this.session('step', shape);
  }

  /** Loss and gradients at the current weights, without updating anything (a separate graph; for checking). */
  async gradients(batch: Float32Array, shape: BatchShape): Promise<StepGradients> {
    const tiles = this.tiles(batch, shape);
    const session = await this.session('gradients', shape);
    const out = await session.run({ [STEP_IO.tiles]: tiles, [STEP_IO.params]: this.params, [STEP_IO.running]: this.running });
    const flat = out[STEP_IO.grads].data as Float32Array;
    const grads = new Map(this.trainable.entries.map(({ name }) => [name, this.trainable.view(flat, name).slice()]));
    return { loss: (out[STEP_IO.loss].data as Float32Array)[0], grads };
  }

  /** Current weights and running statistics by ParamStore name (copies). */
  readWeights(): Map<string, NamedTensor> {
    const out = new Map<string, NamedTensor>();
    for (const [layout, tensor] of [[this.trainable, this.params], [this.runningLayout, this.running]] as const) {
      const flat = tensor.data as Float32Array;
      for (const { name, shape } of layout.entries) out.set(name, { shape, data: layout.view(flat, name).slice() });
    }
    return out;
  }

  /** Copies the ORT-side weights and running statistics into a ParamStore (default: the model's). */
  writeWeights(store: ParamStore = this.model.params): void {
    for (const [name, { shape, data }] of this.readWeights()) {
      const value = tf.tensor(data, shape);
      store.get(name).assign(value);
      value.dispose();
    }
  }

  /** Replaces the ORT-side weights and running statistics with a ParamStore's (default: the model's). */
  loadWeights(store: ParamStore = this.model.params): void {
    this.params = flatTensor(this.trainable.gather(store));
    this.running = flatTensor(this.runningLayout.gather(store));
  }

  /** Adam moments named as Adam.state() names them: `m/<param>`, `v/<param>`. */
  adamState(): Map<string, NamedTensor> {
    const out = new Map<string, NamedTensor>();
    for (const [prefix, tensor] of [['m', this.m], ['v', this.v]] as const) {
      const flat = tensor.data as Float32Array;
      for (const { name, shape } of this.trainable.entries) out.set(`${prefix}/${name}`, { shape, data: this.trainable.view(flat, name).slice() });
    }
    return out;
  }

  /** As Adam.restore: the step count and moments by `m/<param>`, `v/<param>` (missing moments start at zero). */
  restoreAdam(step: number, tensors: Map<string, NamedTensor>): void {
    const m = new Float32Array(this.trainable.size);
    const v = new Float32Array(this.trainable.size);
    for (const [key, { data }] of tensors) {
      const slash = key.indexOf('/');
      const target = key.slice(0, slash) === 'm' ? m : key.slice(0, slash) === 'v' ? v : undefined;
      const entry = target && this.trainable.entry(key.slice(slash + 1));
      if (!target || !entry) continue;
      if (data.length !== entry.size) throw new Error(`Adam moment ${key} has ${data.length} values, the parameter ${entry.size}`);
      target.set(data, entry.offset);
    }
    this.m = flatTensor(m);
    this.v = flatTensor(v);
    this.steps = step;
  }

  async dispose(): Promise<void> {
    const sessions = await Promise.all(this.sessions.values());
    this.sessions.clear();
    await Promise.all(sessions.map((s) => s.release()));
  }

  private tiles(batch: Float32Array, shape: BatchShape): ort.Tensor {
    const { tileSize, bands } = this.model.config;
    if (shape[1] !== tileSize || shape[2] !== tileSize || shape[3] !== bands || shape[0] % 3 !== 0) {
      throw new Error(`expected NHWC triplet tiles [3B, ${tileSize}, ${tileSize}, ${bands}], got [${shape.join(', ')}]`);
    }
    if (batch.length !== shape[0] * shape[1] * shape[2] * shape[3]) throw new Error(`batch has ${batch.length} values for shape [${shape.join(', ')}]`);
    return new ort.Tensor('float32', batch, [...shape]);
  }

  /** One session per graph kind and batch size (the graph's shapes are static), built on first use. */
  private session(mode: StepGraphMode, shape: BatchShape): Promise<ort.InferenceSession> {
    const key = `${mode}:${shape[0]}`;
    let session = this.sessions.get(key);
    if (!session) {
      const graph = buildStepGraph(this.model, { tiles: shape[0], loss: this.lossOptions, adam: this.adamOptions, mode, backward: this.backward });
      // No watchdog here, and none is needed for the hang of issue 20 §5: onnxruntime-node builds the session (and
      // runs each step) synchronously on this thread, inside a setImmediate, so a JS timer could never fire while it
      // works, and a build that stalled would show this thread busy or blocked in ORT, not asleep in epoll_wait.
      session = ort.InferenceSession.create(graph.model, {
        intraOpNumThreads: this.threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        // The graph is already lean; ORT's rewrites found nothing to speed up here but took seconds on ~10k nodes.
        graphOptimizationLevel: 'disabled',
        ...(this.spinning ? {} : { extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } } }),
      });
      this.sessions.set(key, session);
    }
    return session;
  }
}

function flatTensor(data: Float32Array): ort.Tensor {
  return new ort.Tensor('float32', data, [data.length]);
}
