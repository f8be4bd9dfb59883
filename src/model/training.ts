import * as tf from '@tensorflow/tfjs';
import { disposeUnlessKept, type RevBiFPN } from './backbone.ts';
import { BatchStatsRecorder, type ForwardContext } from './params.ts';
import type { ReversibleLayer } from './reversible.ts';

/** Maps the embeddings [batch, dim] of one batch to a scalar loss. */
export type EmbeddingLoss = (embeddings: tf.Tensor2D) => tf.Scalar;

export interface TrainStepGradients {
  /** Loss value; caller disposes. */
  value: tf.Scalar;
  /** Gradient per trainable parameter name (ParamStore order); caller disposes. */
  grads: Map<string, tf.Tensor>;
}

export interface GradientFunctionOptions {
  /** Defaults to `model.config.reversible`. */
  reversible?: boolean;
  /** Apply the BatchNorm running-statistics update (exactly once) at the end of each call. Default true. */
  updateRunningStats?: boolean;
  /**
   * Streams gradients out as soon as they are final (reversible: head first, then each unit from
   * last to first; conventional: all at once) instead of returning them. The callback owns the
   * tensors; an optimizer can apply them in place so gradient memory does not grow with depth.
   * The returned `grads` map is then empty.
   */
  onGradients?: (grads: Map<string, tf.Tensor>) => void;
}

export type GradientFunction = (x: tf.Tensor4D) => TrainStepGradients;

/**
 * Returns `(x) => {value, grads}` for one training step. Reversible mode keeps only the current
 * streams during forward and rebuilds each unit's inputs with its inverse during backward;
 * conventional mode is plain tfjs autodiff over the same layers. Both record each BatchNorm's
 * batch statistics once and apply the running-statistics update once per call.
 */
export function createGradientFunction(model: RevBiFPN, loss: EmbeddingLoss, options: GradientFunctionOptions = {}): GradientFunction {
  const reversible = options.reversible ?? model.config.reversible;
  const updateRunningStats = options.updateRunningStats ?? true;
  return (x) => {
    const recorder = new BatchStatsRecorder();
    const collected = new Map<string, tf.Tensor>();
    const emit = options.onGradients ?? ((grads: Map<string, tf.Tensor>) => grads.forEach((g, n) => collected.set(n, g)));
    try {
      const value = reversible ? reversibleGradients(model, loss, x, recorder, emit) : conventionalGradients(model, loss, x, recorder, emit);
      // Same order as ParamStore.trainableNames(), whatever order the engine produced them in.
      const grads = new Map(model.params.trainableNames().flatMap((n) => (collected.has(n) ? [[n, collected.get(n)!] as const] : [])));
      if (updateRunningStats) model.applyBatchStats(recorder);
      return { value, grads };
    } finally {
      recorder.dispose();
    }
  };
}

type GradientSink = (grads: Map<string, tf.Tensor>) => void;

function conventionalGradients(model: RevBiFPN, loss: EmbeddingLoss, x: tf.Tensor4D, recorder: BatchStatsRecorder, emit: GradientSink): tf.Scalar {
  const names = model.params.trainableNames();
  const ctx: ForwardContext = { training: true, recorder };
  const { value, grads } = tf.engine().gradients(
    () => loss(model.head.trainingOutput(model.forwardStreams(x, ctx), ctx)),
    names.map((n) => model.params.get(n)),
    undefined,
    true,
  );
  emit(new Map(names.map((n, i) => [n, grads[i] ?? tf.zerosLike(model.params.get(n))])));
  return value;
}

/**
 * Vector-Jacobian product of `f` at `wrt` with output cotangents `dys`, via the scalar
 * surrogate sum_k <y_k, dy_k>. Outputs that are inputs passed through unchanged carry their
 * cotangent straight back. Returns one gradient per `wrt` entry.
 */
function vjp(f: () => tf.Tensor4D[], inputs: tf.Tensor4D[], weights: tf.Tensor[], dys: tf.Tensor4D[]): { dxs: tf.Tensor4D[]; dws: tf.Tensor[] } {
  let passThrough: boolean[] = [];
  const wrt = [...inputs, ...weights];
  const { grads } = tf.engine().gradients(
    () => {
      const ys = f();
      passThrough = ys.map((y, k) => y === inputs[k]);
      const terms = ys.flatMap((y, k) => (passThrough[k] ? [] : [tf.sum(tf.mul(y, dys[k]))]));
      return terms.length === 1 ? terms[0] : tf.addN(terms);
    },
    wrt,
    undefined,
    true,
  );
  const dxs = inputs.map((x, k) => {
    const through = passThrough[k] ? dys[k] : undefined;
    const local = grads[k] as tf.Tensor4D | null;
    if (local && through) return tf.add<tf.Tensor4D>(local, through);
    return local ?? through ?? tf.zerosLike(x);
  });
  const dws = weights.map((w, i) => grads[inputs.length + i] ?? tf.zerosLike(w));
  return { dxs, dws };
}

function reversibleGradients(model: RevBiFPN, loss: EmbeddingLoss, x: tf.Tensor4D, recorder: BatchStatsRecorder, emit: GradientSink): tf.Scalar {
  const record: ForwardContext = { training: true, recorder };
  // Recompute passes normalise with (recomputed) batch statistics but never record them again.
  const replay: ForwardContext = { training: true };

  // Forward: only the current streams stay alive.
  let streams = model.forwardStreams(x, record);

  // Head and loss under one tape, so their activations exist only while their gradients are taken.
  const headNames = trainableNames(model, model.head.weightNames());
  const head = tf.tidy(() => {
    const { value, grads } = tf.engine().gradients(
      () => loss(model.head.trainingOutput(streams, record)),
      [...streams, ...headNames.map((n) => model.params.get(n))],
      undefined,
      true,
    );
    const dys = streams.map((s, k) => (grads[k] as tf.Tensor4D | null) ?? tf.zerosLike(s));
    return { value, dys, dws: grads.slice(streams.length).map((g, i) => g ?? tf.zerosLike(model.params.get(headNames[i]))) };
  });
  emit(new Map(headNames.map((n, i) => [n, head.dws[i]])));
  let dys = head.dys;

  // Backward through the body, coarsest unit last in, first out. The stem has no weights, so stop above it.
  const units = model.units;
  for (let u = units.length - 1; u >= 1; u--) {
    const unit: ReversibleLayer = units[u];
    const names = trainableNames(model, unit.weightNames());
    const weights = names.map((n) => model.params.get(n));
    const outputs = streams;
    const cotangents = dys;
    const step = tf.tidy(() => {
      const inputs = unit.inverse(outputs, replay);
      return { inputs, ...vjp(() => unit.forward(inputs, replay), inputs, weights, cotangents) };
    });
    emit(new Map(names.map((n, i) => [n, step.dws[i]])));
    disposeUnlessKept(outputs, new Set(step.inputs));
    disposeUnlessKept(cotangents, new Set(step.dxs));
    streams = step.inputs;
    dys = step.dxs;
  }
  tf.dispose([...streams, ...dys]);
  return head.value;
}

function trainableNames(model: RevBiFPN, names: string[]): string[] {
  return names.filter((n) => model.params.spec(n).trainable);
}
