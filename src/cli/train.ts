import { resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import cliProgress from 'cli-progress';
import { DEFAULT_TEMPORAL_POSITIVES } from '../sampling/index.ts';
import { configFrom, emit, intListOption, intOption, numberOption, withStore } from './context.ts';
import { train, defaultL2, DEFAULT_TRIPLET_LOSS, TRAIN_DEFAULTS, TRIPLET_OBJECTIVES, backboneConfigs, HEAD_POOLINGS, PROJECTORS, TEST_TIME_AUGMENTATIONS, type TestTimeAugmentation, type HeadPooling, type Projector, type BackbonePresetName, type BackendName, type TrainProgress, type TrainSummary, type TripletObjective } from '../train/index.ts';

const BACKENDS = ['auto', 'wasm', 'cpu', 'tensorflow', 'tensorflow-gpu'];

function choice<T extends string>(name: string, allowed: readonly string[]) {
  return (value: string): T => {
    if (!allowed.includes(value)) throw new InvalidArgumentError(`${name} must be one of ${allowed.join(', ')}, got '${value}'`);
    return value as T;
  };
}

function defaultName(backbone: string): string {
  return `${backbone}-${new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15)}`;
}

/** A cli-progress bar with loss, triplets/s and ETA; only on a TTY. */
export function progressBar(): { update: (p: TrainProgress) => void; stop: () => void } {
  if (!process.stderr.isTTY) return { update: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    { format: 'train [{bar}] {value}/{total} steps | loss {loss} | {rate} triplets/s | ETA {eta}s', stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(p) {
      if (!started) bar.start(p.steps, 0, { loss: '-', rate: '-', eta: '-' });
      started = true;
      bar.update(p.step, { loss: p.loss.toFixed(4), rate: p.tripletsPerSecond.toFixed(1), eta: Math.round(p.etaSeconds) });
    },
    stop: () => started && bar.stop(),
  };
}

export function formatTrainSummary(s: TrainSummary): string {
  return [
    `trained ${s.name} (model ${s.modelId}) in ${s.dir}`,
    `${s.steps} steps${s.resumedFrom ? ` (resumed at ${s.resumedFrom})` : ''}, ${s.triplets} triplets on ${s.backend}, ${s.tripletsPerSecond.toFixed(1)} triplets/s, ${s.seconds.toFixed(1)} s`,
    `loss ${s.meanLossStart.toFixed(4)} (first tenth) -> ${s.meanLossEnd.toFixed(4)} (last tenth)`,
  ].join('\n');
}

export function registerTrainCommand(program: Command): void {
  program.command('train')
    .description('train a RevBiFPN backbone on Tile2Vec triplets from the catalog; writes a model directory and registers the model')
    .option('--backbone <name>', `backbone preset: ${Object.keys(backboneConfigs).join('|')}`, choice<BackbonePresetName>('--backbone', Object.keys(backboneConfigs)), TRAIN_DEFAULTS.backbone)
    .option('--tile-size <px>', 'tile side in pixels (a multiple of 32)', intOption('--tile-size', 32), TRAIN_DEFAULTS.tileSize)
    .option('--bands <list>', '1-based bands, e.g. 4,3,2 (default: all)', intListOption('--bands'))
    .option('--dim <n>', 'embedding dimension', intOption('--dim', 1), TRAIN_DEFAULTS.dim)
    .option('--stem-block <n>', 'the stem folds n x n pixels into channels: 1 (stream 0 at the tile\'s full resolution, slowest), 2 (half) or 4 (the reference, fastest)', choice<string>('--stem-block', ['1', '2', '4']), String(TRAIN_DEFAULTS.stemBlock))
    .option('--head-pooling <p>', 'coarsest (pool the last level of the top-down merge; default, as the preset) | pyramid (also project every finer level\'s pooled features into the embedding)', choice<HeadPooling>('--head-pooling', HEAD_POOLINGS))
    .option('--projector <p>', 'none (the loss sees the embedding) | mlp (the loss sees a two-layer projection of it that only training uses, as SimCLR); default mlp, none on a stack of dates', choice<Projector>('--projector', PROJECTORS))
    .option('--tta <t>', 'test-time augmentation at inference: none | d4 (a tile\'s vector is the mean over its eight orientations; eight inferences per tile)', choice<TestTimeAugmentation>('--tta', TEST_TIME_AUGMENTATIONS), 'none')
    .option('--depth <n>', 'RevSilo layers after the three that add streams (default: the preset)', intOption('--depth', 0))
    .option('--width <m>', 'multiplies the preset\'s channel widths (rounded down to multiples of 16, as the reference scales its models)', numberOption('--width', 0))
    .option('--triplets <n>', 'triplets per epoch (each epoch draws fresh ones)', intOption('--triplets', 1), TRAIN_DEFAULTS.triplets)
    .option('--epochs <n>', 'epochs', intOption('--epochs', 1), TRAIN_DEFAULTS.epochs)
    .option('--batch <n>', 'triplets per step', intOption('--batch', 1), TRAIN_DEFAULTS.batch)
    .option('--neighborhood <r>', 'neighborhood radius: pixels (32) or metres (100m); default the tile size')
    .option('--temporal-positives <p>', `probability that the neighbor is the same window on another date of co-registered rasters (default ${DEFAULT_TEMPORAL_POSITIVES} where they form a stack; distant tiles then share the anchor's date)`, numberOption('--temporal-positives', 0, 1))
    .option('--no-paired-augment', 'a temporal positive gets its own flips and quarter turns (default: its anchor\'s)')
    .option('--adjacent-negatives', 'with a temporal positive, the distant tile lies next to the anchor on its date (within two tiles)')
    .option('--jitter <s>', 'per-tile, per-band radiometric jitter strength (gain, offset, gamma; 0 = none)', numberOption('--jitter', 0, 2))
    .option('--cross-raster <p>', 'probability that the distant tile comes from another raster (default 0.5; 0 with temporal positives)', numberOption('--cross-raster', 0, 1))
    .option('--normalization <m>', 'zscore|percentile', choice('--normalization', ['zscore', 'percentile']), TRAIN_DEFAULTS.normalization)
    .option('--normalization-scope <s>', 'pooled (one set of statistics for all rasters) | raster (each raster by its own, also at inference; default on a stack of dates, else pooled)', choice('--normalization-scope', ['pooled', 'raster']))
    .option('--rasters <ids>', 'catalog raster ids to train on (default all)', intListOption('--rasters'))
    .option('--objective <o>', 'margin (Tile2Vec\'s hinge on distances) | infonce (each anchor picks its neighbor among the batch\'s tiles by cosine; unit embeddings)', choice<TripletObjective>('--objective', TRIPLET_OBJECTIVES), TRAIN_DEFAULTS.loss.objective)
    .option('--margin <m>', 'triplet loss margin m (margin objective)', numberOption('--margin', 0), TRAIN_DEFAULTS.loss.margin)
    .option('--temperature <τ>', 'temperature of the cosine logits (infonce objective); default 0.2, or 0.1 with the projector', numberOption('--temperature', 0))
    .option('--l2 <λ>', `embedding-norm regulariser λ (default ${DEFAULT_TRIPLET_LOSS.l2} with the margin objective, 0 with infonce)`, numberOption('--l2', 0))
    .option('--lr <rate>', 'Adam learning rate (betas 0.5, 0.999 as Tile2Vec)', numberOption('--lr', 0), TRAIN_DEFAULTS.lr)
    .option('--schedule <s>', 'learning-rate schedule: cosine (decay to 0 over the run) | constant', choice('--schedule', ['cosine', 'constant']), TRAIN_DEFAULTS.schedule)
    .option('--seed <n>', 'seed for weights and sampling', intOption('--seed', 0), TRAIN_DEFAULTS.seed)
    .option('--backend <name>', `tfjs backend: ${BACKENDS.join('|')} (auto prefers an installed tfjs-node-gpu, then tfjs-node, then wasm)`, choice<BackendName>('--backend', BACKENDS), TRAIN_DEFAULTS.backend)
    .option('--engine <name>', 'ort (each step one ONNX Runtime graph, fast) | tfjs (autodiff on --backend)', choice('--engine', ['ort', 'tfjs']), TRAIN_DEFAULTS.engine)
    .option('--no-reversible', 'store activations (plain autodiff) instead of recomputing them')
    .option('--name <name>', 'model name (default <backbone>-<time>)')
    .option('--out <dir>', 'model directory (default .tilevec/models/<name>)')
    .option('--checkpoint-every <steps>', 'steps between checkpoints', intOption('--checkpoint-every', 1), TRAIN_DEFAULTS.checkpointEvery)
    .option('--resume', 'continue the run in --out from its last checkpoint')
    .action(async (o, cmd: Command) => {
      const config = configFrom(cmd);
      const name: string = o.name ?? (o.out ? resolve(o.out).split('/').pop()! : defaultName(o.backbone));
      const bar = progressBar();
      const summary = await withStore(config, (store) =>
        train(store, {
          backbone: o.backbone, tileSize: o.tileSize, bands: o.bands, dim: o.dim, depth: o.depth, width: o.width, stemBlock: Number(o.stemBlock), headPooling: o.headPooling, projector: o.projector, tta: o.tta, triplets: o.triplets, epochs: o.epochs,
          batch: o.batch, neighborhood: o.neighborhood, normalization: o.normalization, normalizationScope: o.normalizationScope, rasterIds: o.rasters,
          temporalProbability: o.temporalPositives, crossRasterProbability: o.crossRaster, pairedTemporalAugment: o.pairedAugment, radiometricJitter: o.jitter, adjacentNegatives: o.adjacentNegatives,
          loss: { objective: o.objective, margin: o.margin, l2: o.l2 ?? defaultL2(o.objective), temperature: o.temperature }, lr: o.lr, schedule: o.schedule, seed: o.seed, backend: o.backend, engine: o.engine, reversible: o.reversible, name,
          out: o.out ?? resolve(config.modelsDir, name), resume: Boolean(o.resume), checkpointEvery: o.checkpointEvery,
        }, bar.update),
      ).finally(bar.stop);
      emit(cmd, summary, formatTrainSummary);
    });
}
