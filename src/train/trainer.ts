import { resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors.ts';
import { logger } from '../log.ts';
import type { Store, ModelRecord, RasterRecord } from '../store/index.ts';
import { openTripletSampling, Rng, type NormalizationMethod, type NormalizationScope, type TripletSampling } from '../sampling/index.ts';
import { initBackend, type BackendName } from './engine/index.ts';
import { createBackbone, resolveBackboneConfig, scaledWidths, type BackboneConfig, type BackbonePresetName, type HeadPooling, type Projector, type RevBiFPN } from '../model/index.ts';
import { DEFAULT_TRIPLET_LOSS, TRIPLET_OBJECTIVES, defaultL2, unitEmbeddings, type TripletLossOptions } from './loss.ts';
import type { TestTimeAugmentation } from '../onnx/index.ts';
import { DEFAULT_ADAM } from './adam.ts';
import { checkpointPath, loadCheckpoint, saveCheckpoint, type TrainingState } from './checkpoint.ts';
import { createStepEngine, type StepEngine, type TrainingEngineName } from './step-engine.ts';
import { ensureDir, MODEL_FILES, saveWeights, writeCard, type ModelCard } from './model-dir.ts';
import { lossCurveSvg } from './loss-curve.ts';
import { writeFileAtomic } from '../paths.ts';
import { recalibrateBatchNorm } from './recalibrate.ts';

/** Batches of train-mode statistics that replace the running averages at the end of a run. */
const RECALIBRATION_BATCHES = 8;

export interface TrainOptions {
  /** Backbone preset (tiny, s0). */
  backbone: BackbonePresetName;
  tileSize: number;
  /** 1-based bands (default: all bands of the rasters). */
  bands?: number[];
  dim: number;
  /** Layers after the three stream-adding ones (the preset's when absent). */
  depth?: number;
  /** Multiplies the preset's stream and neck widths, as the reference scales S0 into S1-S6 (scaleWidths). */
  width?: number;
  /** What the embedding pools (default: the preset's, the coarsest level). */
  headPooling?: HeadPooling;
  /** What the loss sees: the embedding (`none`) or a training-only projection of it (`mlp`); default defaultProjector's. */
  projector?: Projector;
  /** Test-time augmentation of the model's inference graph (default none: d4 costs eight inferences per tile). */
  tta?: TestTimeAugmentation;
  /** Space-to-depth factor of the stem (default TRAIN_DEFAULTS.stemBlock; the presets' reference stem is x4). */
  stemBlock?: number;
  /** Triplets drawn per epoch; every epoch draws fresh ones (the sampler is an endless stream). */
  triplets: number;
  epochs: number;
  batch: number;
  neighborhood?: string;
  normalization: NormalizationMethod;
  /** pooled statistics for all rasters, or each raster by its own (default: raster on a stack of dates). */
  normalizationScope?: NormalizationScope;
  crossRasterProbability?: number;
  temporalProbability?: number;
  pairedTemporalAugment?: boolean;
  radiometricJitter?: number;
  adjacentNegatives?: boolean;
  maxNodataFraction?: number;
  rasterIds?: number[];
  /** The loss; without a temperature, defaultTemperature's for the projector. */
  loss: TrainLoss;
  lr: number;
  /** `cosine` decays the rate from `lr` to 0 over the run (half a cosine); `constant` keeps it. */
  schedule: LearningRateSchedule;
  seed: number;
  backend: BackendName;
  /** `ort` runs each step as one ONNX Runtime graph; `tfjs` uses tfjs autodiff on `backend`. */
  engine: TrainingEngineName;
  reversible: boolean;
  name: string;
  /** Model directory. */
  out: string;
  resume: boolean;
  checkpointEvery: number;
}

/**
 * The projector unless one is asked for: `mlp` on single dates, `none` on a stack of dates. The projection lets the
 * embedding keep what the loss is invariant to (SimCLR's argument): on Zion that is +1.4 to +1.8 points of land
 * cover and +0.5 of search, but on the NAIP stack the date is what the loss must forget, and recall@10 of the same
 * window across dates falls 0.330 -> 0.276 (README, Embedding quality).
 */
export function defaultProjector(temporalPositives: number): Projector {
  return temporalPositives > 0 ? 'none' : 'mlp';
}

/** The loss options of a run, where the temperature may be left to the recipe. */
export type TrainLoss = Omit<TripletLossOptions, 'temperature'> & { temperature?: number };

/**
 * InfoNCE's temperature unless one is asked for: 0.2 where the loss sees the embedding, 0.1 with the projector.
 * Without a projector 0.2 is better everywhere measured (Zion land cover 0.912 -> 0.919 with rf, search 0.870 ->
 * 0.871; NAIP recall@10 across dates 0.330 -> 0.352); with it, 0.1 is (Zion rf 0.930 against 0.918 at 0.2).
 */
export function defaultTemperature(projector: Projector): number {
  return projector === 'mlp' ? 0.1 : 0.2;
}

export const TRAIN_DEFAULTS = {
  backbone: 'tiny' as BackbonePresetName,
  tileSize: 32,
  dim: 128,
  // No space-to-depth (the reference folds 4x4): stream 0 at the tile's full resolution sees the structure a coarser
  // stem folds away (NAIP across dates recall@10: x4 0.124, x2 0.156, x1 0.191 with the hinge; README, Embedding quality).
  stemBlock: 1,
  triplets: 2000,
  epochs: 1,
  batch: 16,
  // z-score keeps the tails that a clipped 2-98 % stretch throws away (+0.7 to +1.2 points of spatial-CV land cover on Zion, measured with tilevec evaluate).
  normalization: 'zscore' as NormalizationMethod,
  // InfoNCE against the batch's tiles rather than Tile2Vec's one-negative hinge: NAIP across dates recall@10
  // 0.191 -> 0.327 (median rank 106 -> 35.5) at x1; Zion land cover level (0.912), search 0.866 -> 0.870.
  loss: { objective: 'infonce', margin: DEFAULT_TRIPLET_LOSS.margin, l2: defaultL2('infonce') } as TrainLoss,
  lr: DEFAULT_ADAM.lr,
  schedule: 'constant' as LearningRateSchedule,
  seed: 0,
  backend: 'auto' as BackendName,
  engine: 'ort' as TrainingEngineName,
  reversible: true,
  checkpointEvery: 50,
};

export type LearningRateSchedule = 'constant' | 'cosine';
export const LEARNING_RATE_SCHEDULES: readonly LearningRateSchedule[] = ['constant', 'cosine'];

/** The learning rate of 1-based step `step` of `steps`. */
export function learningRateAt(schedule: LearningRateSchedule, lr: number, step: number, steps: number): number {
  return schedule === 'cosine' ? 0.5 * lr * (1 + Math.cos((Math.PI * (step - 1)) / Math.max(1, steps))) : lr;
}

export interface TrainProgress {
  step: number;
  steps: number;
  loss: number;
  tripletsPerSecond: number;
  etaSeconds: number;
}

export interface TrainSummary {
  name: string;
  dir: string;
  modelId: number;
  backend: string;
  steps: number;
  resumedFrom: number;
  triplets: number;
  firstLoss: number;
  lastLoss: number;
  /** Mean loss over the first and the last tenth of the steps: the honest measure of progress. */
  meanLossStart: number;
  meanLossEnd: number;
  tripletsPerSecond: number;
  seconds: number;
}

function packageVersion(name: string): string {
  try {
    const path = resolve(import.meta.dirname, '../../node_modules', name, 'package.json');
    return JSON.parse(readFileSync(path, 'utf8')).version as string;
  } catch {
    return 'unknown';
  }
}

function mean(values: number[]): number {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : NaN;
}

/** What must be equal for a checkpoint to continue the same run. */
function runFingerprint(options: TrainOptions, loss: TripletLossOptions, config: BackboneConfig, sampling: TripletSampling): Record<string, unknown> {
  return {
    backbone: config,
    sampling: { ...sampling.params, rasterIds: sampling.params.rasterIds },
    normalization: sampling.normalization,
    loss,
    lr: options.lr,
    schedule: options.schedule,
    batch: options.batch,
    seed: options.seed,
    steps: Math.ceil((options.triplets * options.epochs) / options.batch),
    engine: options.engine,
  };
}

function checkOptions(o: TrainOptions): void {
  const positiveInt = (v: number, flag: string) => {
    if (!Number.isInteger(v) || v < 1) throw new UserError(`${flag} must be an integer >= 1, got ${v}`);
  };
  positiveInt(o.triplets, '--triplets');
  positiveInt(o.epochs, '--epochs');
  positiveInt(o.batch, '--batch');
  positiveInt(o.checkpointEvery, '--checkpoint-every');
  if (!(o.lr > 0)) throw new UserError(`--lr must be > 0, got ${o.lr}`);
  if (!LEARNING_RATE_SCHEDULES.includes(o.schedule)) throw new UserError(`--schedule must be one of ${LEARNING_RATE_SCHEDULES.join(', ')}, got '${o.schedule}'`);
  if (!TRIPLET_OBJECTIVES.includes(o.loss.objective)) throw new UserError(`--objective must be one of ${TRIPLET_OBJECTIVES.join(', ')}, got '${o.loss.objective}'`);
  if (!(o.loss.margin >= 0)) throw new UserError(`--margin must be >= 0, got ${o.loss.margin}`);
  if (o.loss.temperature !== undefined && !(o.loss.temperature > 0)) throw new UserError(`--temperature must be > 0, got ${o.loss.temperature}`);
  if (!(o.loss.l2 >= 0)) throw new UserError(`--l2 must be >= 0, got ${o.loss.l2}`);
}

/**
 * Trains a RevBiFPN on Tile2Vec triplets from the catalog, checkpointing every `checkpointEvery` steps so a killed
 * run resumes exactly, then writes the model directory (weights, card, loss curve) and registers the model.
 */
export async function train(store: Store, options: TrainOptions, onProgress?: (p: TrainProgress) => void): Promise<TrainSummary> {
  checkOptions(options);
  const backend = await initBackend(options.backend);
  const dir = ensureDir(resolve(options.out));
  const log = logger();

  // Sampling first: the band count decides the architecture.
  let sampling = await openTripletSampling(store, {
    tileSize: options.tileSize,
    bands: options.bands,
    neighborhood: options.neighborhood,
    normalization: options.normalization,
    normalizationScope: options.normalizationScope,
    crossRasterProbability: options.crossRasterProbability,
    temporalProbability: options.temporalProbability,
    pairedTemporalAugment: options.pairedTemporalAugment,
    radiometricJitter: options.radiometricJitter,
    adjacentNegatives: options.adjacentNegatives,
    maxNodataFraction: options.maxNodataFraction,
    rasterIds: options.rasterIds,
    seed: options.seed,
  });
  let config: BackboneConfig;
  try {
    config = resolveBackboneConfig(options.backbone, {
      tileSize: options.tileSize,
      bands: sampling.params.bands.length,
      dim: options.dim,
      reversible: options.reversible,
      ...(options.depth !== undefined ? { extraLayers: options.depth } : {}),
      ...(options.width !== undefined ? scaledWidths(options.backbone, options.width) : {}),
      stemBlock: options.stemBlock ?? TRAIN_DEFAULTS.stemBlock,
      ...(options.headPooling !== undefined ? { headPooling: options.headPooling } : {}),
      projector: options.projector ?? defaultProjector(sampling.params.temporalProbability),
    });
  } catch (err) {
    await sampling.close();
    throw new UserError((err as Error).message.replace(/\n\s*/g, ' '));
  }

  const model = createBackbone(config, { seed: options.seed });
  const totalSteps = Math.ceil((options.triplets * options.epochs) / options.batch);
  const loss: TripletLossOptions = { ...options.loss, temperature: options.loss.temperature ?? defaultTemperature(config.projector) };
  const fingerprint = runFingerprint(options, loss, config, sampling);
  let state: TrainingState = { step: 0, rngState: sampling.sampler.getState(), losses: [], seconds: 0 };
  let engine: StepEngine | undefined;
  try {
    engine = await createStepEngine(options.engine, model, { loss, adam: { ...DEFAULT_ADAM, lr: options.lr } });
    if (options.resume) {
      const checkpoint = loadCheckpoint(dir, fingerprint);
      engine.restore(checkpoint.weights, checkpoint.adam, checkpointPath(dir));
      state = checkpoint.state;
      sampling.sampler.setState(state.rngState);
      log.info({ step: state.step, dir }, 'resuming');
    }
    const resumedFrom = state.step;
    const segmentStart = performance.now();
    const loader = sampling.loader({ batchSize: options.batch, batches: totalSteps - state.step });
    const stepEngine = engine;
    const checkpoint = () =>
      saveCheckpoint(dir, { state: { ...state, seconds: state.seconds + (performance.now() - segmentStart) / 1000 }, weights: stepEngine.weights(), adam: stepEngine.adamState() }, fingerprint);

    for await (const batch of loader) {
      const [b, h, w, c] = batch.shape;
      const lr = learningRateAt(options.schedule, options.lr, state.step + 1, totalSteps);
      const loss = await engine.step(concatBatches(batch.anchor, batch.neighbor, batch.distant), [3 * b, h, w, c], lr);
      if (!Number.isFinite(loss)) throw new UserError(`the loss became ${loss} at step ${state.step + 1}; lower --lr or check the input statistics`);
      // The history grows in place: copying it every step made a long run quadratic. Checkpoints write it at once.
      state.losses.push(loss);
      state = { ...state, step: state.step + 1, rngState: batch.rngState };
      if (state.step % options.checkpointEvery === 0 && state.step < totalSteps) checkpoint();
      const elapsed = (performance.now() - segmentStart) / 1000;
      const rate = ((state.step - resumedFrom) * options.batch) / Math.max(elapsed, 1e-9);
      onProgress?.({ step: state.step, steps: totalSteps, loss, tripletsPerSecond: rate, etaSeconds: ((totalSteps - state.step) * options.batch) / Math.max(rate, 1e-9) });
    }
    checkpoint();
    engine.syncModel();
    // Running statistics from the final weights (the checkpoint keeps the momentum ones, so a resume stays exact).
    await recalibrateFromSampler(model, sampling, options.batch);
    const seconds = state.seconds + (performance.now() - segmentStart) / 1000;

    const backendName = engine.name === 'ort' ? 'onnxruntime-node' : backend.name;
    const rasters = await Promise.all(sampling.params.rasterIds.map((id) => store.raster(id)));
    const { card, metrics } = writeModelDir(dir, {
      options, loss, config, model, sampling, rasters, losses: state.losses, steps: state.step, totalSteps, seconds,
      engine: engine.name, backend: backendName, threads: backend.threads,
    });
    const record: ModelRecord = await store.registerModel({
      name: options.name,
      backbone: config as unknown as Record<string, unknown>,
      dim: config.dim,
      bands: card.bands,
      tileSize: config.tileSize,
      normalization: card.normalization as unknown as Record<string, unknown>,
      metrics,
      artifactPath: dir,
    });
    return {
      name: options.name,
      dir,
      modelId: record.id,
      backend: backendName,
      steps: state.step,
      resumedFrom,
      triplets: metrics.triplets,
      firstLoss: metrics.firstLoss,
      lastLoss: metrics.lastLoss as number,
      meanLossStart: metrics.meanLossStart,
      meanLossEnd: metrics.meanLossEnd,
      tripletsPerSecond: metrics.tripletsPerSecond,
      seconds,
    };
  } finally {
    await engine?.dispose();
    model.dispose();
    await sampling.close();
  }
}

interface ModelDirRun {
  options: TrainOptions;
  /** The loss as trained: the options' with the temperature resolved. */
  loss: TripletLossOptions;
  config: BackboneConfig;
  model: RevBiFPN;
  sampling: TripletSampling;
  rasters: RasterRecord[];
  losses: number[];
  steps: number;
  totalSteps: number;
  seconds: number;
  engine: string;
  /** What ran the steps: onnxruntime-node, or the tfjs backend. */
  backend: string;
  threads: number | null;
}

type TrainMetrics = {
  steps: number;
  triplets: number;
  firstLoss: number;
  lastLoss: number | undefined;
  meanLossStart: number;
  meanLossEnd: number;
  tripletsPerSecond: number;
};

/** The model directory's artifacts: the weights with their normalization, the loss curve, and the card. */
function writeModelDir(dir: string, run: ModelDirRun): { card: ModelCard; metrics: TrainMetrics } {
  const { options, loss, config, model, sampling, rasters, losses, steps, totalSteps, seconds } = run;
  saveWeights(resolve(dir, MODEL_FILES.weights), model, sampling.normalization);
  writeFileAtomic(resolve(dir, MODEL_FILES.lossCurve), [Buffer.from(lossCurveSvg(losses, `${options.name}: ${loss.objective === 'infonce' ? 'InfoNCE' : 'Tile2Vec triplet'} loss`))]);
  const tenth = Math.max(1, Math.floor(losses.length / 10));
  const metrics: TrainMetrics = {
    steps,
    triplets: steps * options.batch,
    firstLoss: losses[0],
    lastLoss: losses.at(-1),
    meanLossStart: mean(losses.slice(0, tenth)),
    meanLossEnd: mean(losses.slice(-tenth)),
    tripletsPerSecond: (steps * options.batch) / seconds,
  };
  const card: ModelCard = {
    format: 'tilevec-model-card/1',
    name: options.name,
    backbone: config,
    bands: sampling.params.bands,
    normalization: sampling.normalization,
    tileSize: config.tileSize,
    dim: config.dim,
    embedding: { ...(unitEmbeddings(loss) ? { unitLength: true, distance: 'cosine' } : { unitLength: false, distance: 'l2' }), tta: options.tta ?? 'none' },
    training: {
      sampling: sampling.params,
      loss,
      optimizer: { kind: 'adam', ...DEFAULT_ADAM, lr: options.lr, schedule: options.schedule },
      batch: options.batch,
      triplets: options.triplets,
      epochs: options.epochs,
      steps: totalSteps,
      engine: run.engine,
      backend: run.backend,
      threads: run.threads,
      reversible: config.reversible,
    },
    rasters: rasters.map((r) => ({ id: r.id, uri: r.uri, contentHash: r.contentHash })),
    metrics,
    seed: options.seed,
    versions: {
      tilevec: packageVersion('..'),
      node: process.versions.node,
      '@tensorflow/tfjs': packageVersion('@tensorflow/tfjs'),
      '@tensorflow/tfjs-backend-wasm': packageVersion('@tensorflow/tfjs-backend-wasm'),
      'onnxruntime-node': packageVersion('onnxruntime-node'),
    },
    wallSeconds: seconds,
    createdAt: new Date().toISOString(),
  };
  writeCard(dir, card);
  return { card, metrics };
}

/** Draws recalibration batches from a generator of its own, so the training sequence is untouched. */
async function recalibrateFromSampler(model: ReturnType<typeof createBackbone>, sampling: TripletSampling, batch: number): Promise<void> {
  const saved = sampling.sampler.getState();
  sampling.sampler.setState(new Rng('batchnorm-recalibration').getState());
  const loader = sampling.loader({ batchSize: Math.max(batch, 8), batches: RECALIBRATION_BATCHES });
  const inputs: tf.Tensor4D[] = [];
  try {
    for await (const b of loader) {
      const [n, h, w, c] = b.shape;
      inputs.push(tf.tensor4d(concatBatches(b.anchor, b.neighbor, b.distant), [3 * n, h, w, c]));
    }
    recalibrateBatchNorm(model, inputs);
  } finally {
    tf.dispose(inputs);
    sampling.sampler.setState(saved);
  }
}

function concatBatches(a: Float32Array, b: Float32Array, c: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length + c.length);
  out.set(a, 0);
  out.set(b, a.length);
  out.set(c, a.length + b.length);
  return out;
}

export { checkpointPath };
