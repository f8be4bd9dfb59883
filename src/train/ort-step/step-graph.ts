import { emitStem, GraphBuilder } from '../../onnx/index.ts';
import type { AdamOptions } from '../adam.ts';
import type { TripletLossOptions } from '../loss.ts';
import { streamWidths, type RevBiFPN } from '../../model/index.ts';
import { BackboneGradients, projectorGradients } from './backbone-gradients.ts';
import { GraphWeights } from './graph-weights.ts';
import { LayerGradients, must } from './layer-gradients.ts';
import { tripletLossWithGradient } from './loss-graph.ts';
import { Ops, type Value } from './ops.ts';
import { adamUpdate, runningStatsUpdate } from './optimizer-graph.ts';
import { FlatLayout } from './param-layout.ts';

/** Opset 17: HardSwish (14) and ReduceMean with attribute axes (< 18). */
export const STEP_OPSET = 17;

/** Names of the step graph's inputs and outputs. */
export const STEP_IO = {
  tiles: 'tiles',
  params: 'params',
  running: 'running',
  m: 'adam_m',
  v: 'adam_v',
  lrOverCorrection1: 'lr_over_correction1',
  sqrtCorrection2: 'sqrt_correction2',
  loss: 'loss',
  grads: 'grads',
  paramsOut: 'params_out',
  runningOut: 'running_out',
  mOut: 'adam_m_out',
  vOut: 'adam_v_out',
} as const;

/**
 * `step`: one whole training step (forward, loss, reversible backward, Adam, running statistics).
 * `gradients`: the same forward and backward, returning the flat gradient instead of applying it (for checking).
 */
export type StepGraphMode = 'step' | 'gradients';

export interface StepGraphOptions {
  /** Tiles per step: 3 × triplets. */
  tiles: number;
  loss: TripletLossOptions;
  adam: AdamOptions;
  mode: StepGraphMode;
  /**
   * `reversible` (training's): each unit's inputs are rebuilt from its outputs, so the body's activations die after
   * the forward. `stored`: the backward reads the forward's own activations, as a conventional graph does; only to
   * measure what reversibility saves (bench:memory).
   */
  backward?: 'reversible' | 'stored';
}

export interface StepGraph {
  model: Uint8Array;
  trainable: FlatLayout;
  running: FlatLayout;
  nodeCount: number;
  /** 2 × multiply-adds of the step's convolutions and matrix products (forward, reconstruction and backward). */
  flops: number;
}

/** Generates the ONNX training-step graph of `model`'s architecture (its current weight values are not baked in). */
export function buildStepGraph(model: RevBiFPN, options: StepGraphOptions): StepGraph {
  const { tileSize, bands, batchNormMomentum } = model.config;
  const trainable = FlatLayout.trainable(model.params);
  const running = FlatLayout.runningStats(model.params);
  const g = new GraphBuilder();
  const ops = new Ops(g);
  const input = (name: string, shape: number[]): Value => ({ name: g.input(name, shape), shape });

  const tiles = input(STEP_IO.tiles, [options.tiles, tileSize, tileSize, bands]);
  const params = input(STEP_IO.params, [trainable.size]);
  const weights = new GraphWeights(ops, trainable, params);
  const layers = new LayerGradients(ops, weights);
  const backbone = new BackboneGradients(ops, layers);

  // Forward: the stem as the exporter emits it, then the body keeping only the current streams.
  const nchw = ops.transpose(tiles, [0, 3, 1, 2], 'nchw');
  const stemSize = tileSize / model.stem.block;
  const stemOut = { name: emitStem(g, model.stem, nchw.name), shape: [options.tiles, streamWidths(model.config)[0], stemSize, stemSize] };
  let streams = [stemOut];
  const stored: ((dys: Value[], wantDx: boolean) => Value[] | undefined)[] = [];
  for (const unit of model.body) {
    if (options.backward === 'stored') {
      const kept = backbone.forwardKeeping(unit, streams);
      stored.push(kept.backward);
      streams = kept.outputs;
    } else {
      streams = backbone.forward(unit, streams);
    }
  }

  const head = backbone.head(model.head, streams);
  const projected = projectorGradients(ops, layers, model.head, head.embeddings);
  const { loss, dEmbeddings } = tripletLossWithGradient(ops, projected.y, options.loss);
  let dStreams = head.back(must(projected.back(dEmbeddings, true)));

  // Backward from the body's final streams only; each unit's inputs are rebuilt by its inverse.
  for (let u = model.body.length - 1; u >= 0; u--) {
    if (options.backward === 'stored') {
      dStreams = stored[u](dStreams, u > 0) ?? dStreams;
      continue;
    }
    const { inputs, dInputs } = backbone.backward(model.body[u], streams, dStreams, u > 0);
    streams = inputs;
    if (dInputs) dStreams = dInputs;
  }
  const grad = weights.flatGradient();
  const runningStats = input(STEP_IO.running, [running.size]);
  const runningNext = runningStatsUpdate(ops, runningStats, running, layers.stats, batchNormMomentum);

  const emit = (value: Value, name: string) => {
    const output = ops.op('Identity', [value], value.shape, {}, name);
    if (output.name !== name) throw new Error(`internal: graph output "${name}" collides with a value name`);
    g.output(name, value.shape);
  };
  emit(loss, STEP_IO.loss);
  emit(runningNext, STEP_IO.runningOut);
  if (options.mode === 'gradients') {
    emit(grad, STEP_IO.grads);
  } else {
    const m = input(STEP_IO.m, [trainable.size]);
    const v = input(STEP_IO.v, [trainable.size]);
    const lr = input(STEP_IO.lrOverCorrection1, []);
    const correction2 = input(STEP_IO.sqrtCorrection2, []);
    const next = adamUpdate(ops, { params, m, v }, grad, lr, correction2, options.adam);
    emit(next.params, STEP_IO.paramsOut);
    emit(next.m, STEP_IO.mOut);
    emit(next.v, STEP_IO.vOut);
  }
  const bytes = g.encode({ opset: STEP_OPSET, graphName: `tilevec-train-step-${model.config.name}`, doc: 'tilevec RevBiFPN training step' });
  return { model: bytes, trainable, running, nodeCount: g.nodeCount, flops: ops.flops };
}
