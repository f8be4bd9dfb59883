import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors.ts';
import { DEFAULT_HEAD_POOLING, DEFAULT_PROJECTOR, DEFAULT_STEM_BLOCK, createBackbone, validateBackboneConfig, type BackboneConfig, type RevBiFPN } from '../model/index.ts';
import type { TestTimeAugmentation } from '../onnx/index.ts';
import { parseNormalization, type Normalization } from '../sampling/index.ts';
import { writeFileAtomic } from '../paths.ts';
import { readTensorFile, writeTensorFile, type NamedTensor } from './tensor-file.ts';
import { makeDirectory } from '../paths.ts';

/** Files of a model directory. */
export const MODEL_FILES = {
  weights: 'weights.bin',
  card: 'card.json',
  lossCurve: 'loss.svg',
  checkpoint: 'checkpoint.bin',
  onnx: 'model.onnx',
} as const;

/**
 * The model card: everything needed to rebuild, reproduce and trust a model. The same normalization also sits in
 * the weights file, so weights can never be used with other numbers than the ones they were trained with.
 */
export interface ModelCard {
  format: 'tilevec-model-card/1';
  name: string;
  backbone: BackboneConfig;
  bands: number[];
  normalization: Normalization;
  tileSize: number;
  dim: number;
  /**
   * How embeddings compare: unit length (trained on cosine similarity, so L2 search ranks by angle) or as they come;
   * and whether a tile's vector is the mean over its eight orientations (tta d4). Absent on cards before InfoNCE,
   * tta absent on cards before it (none).
   */
  embedding?: { unitLength: boolean; distance: 'cosine' | 'l2'; tta?: TestTimeAugmentation };
  training: Record<string, unknown>;
  rasters: { id: number; uri: string; contentHash: string }[];
  metrics: Record<string, unknown>;
  seed: number;
  versions: Record<string, string>;
  wallSeconds: number;
  createdAt: string;
}

interface WeightsHeader {
  format: 'tilevec-weights/1';
  backbone: BackboneConfig;
  normalization: Normalization;
}

export function modelTensors(model: RevBiFPN): Map<string, NamedTensor> {
  return new Map(model.params.entries().map(([name, v]) => [name, { shape: v.shape, data: v.dataSync() as Float32Array }]));
}

export function saveWeights(path: string, model: RevBiFPN, normalization: Normalization): void {
  writeTensorFile<WeightsHeader>(path, { format: 'tilevec-weights/1', backbone: model.config, normalization }, modelTensors(model));
}

/** Assigns named tensors to a model, refusing any that do not belong to its architecture. */
export function loadTensorsInto(model: RevBiFPN, tensors: Map<string, NamedTensor>, source: string): void {
  const names = new Set(model.params.entries().map(([n]) => n));
  for (const name of names) if (!tensors.has(name)) throw new UserError(`${source} lacks weight ${name}: it comes from an incompatible model config`);
  tf.tidy(() => {
    for (const [name, t] of tensors) {
      if (!names.has(name)) continue;
      const v = model.params.get(name);
      if (!tf.util.arraysEqual(v.shape, t.shape)) {
        throw new UserError(`${source}: weight ${name} has shape [${t.shape}] but the model config needs [${v.shape}]; it comes from an incompatible config`);
      }
      v.assign(tf.tensor(t.data, t.shape));
    }
  });
}

/** Models trained before the stem block, head pooling and projector were configurable used x4, the coarsest level and none, unrecorded. */
function withArchitectureDefaults(config: BackboneConfig): BackboneConfig {
  return { ...config, stemBlock: config.stemBlock ?? DEFAULT_STEM_BLOCK, headPooling: config.headPooling ?? DEFAULT_HEAD_POOLING, projector: config.projector ?? DEFAULT_PROJECTOR };
}

export function writeCard(dir: string, card: ModelCard): void {
  writeFileAtomic(join(dir, MODEL_FILES.card), [Buffer.from(`${JSON.stringify(card, null, 2)}\n`)]);
}

export function readCard(dir: string): ModelCard {
  const path = join(dir, MODEL_FILES.card);
  if (!existsSync(path)) throw new UserError(`${resolve(dir)} is not a tilevec model directory (no ${MODEL_FILES.card}); train one with tilevec train`);
  let card: ModelCard;
  try {
    card = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UserError(`${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (card.format !== 'tilevec-model-card/1') throw new UserError(`${path} is not a tilevec model card (format ${String(card.format)})`);
  card.normalization = parseNormalization(card.normalization);
  card.backbone = withArchitectureDefaults(card.backbone);
  try {
    validateBackboneConfig(card.backbone);
  } catch (err) {
    throw new UserError(`${path}: ${(err as Error).message}`);
  }
  return card;
}

export interface LoadedModel {
  card: ModelCard;
  backbone: RevBiFPN;
  normalization: Normalization;
}

/** Rebuilds a trained backbone from its directory: architecture from the weights, numbers checked against the card. */
export function loadModel(dir: string): LoadedModel {
  const card = readCard(dir);
  const { header, tensors } = readTensorFile<WeightsHeader>(join(dir, MODEL_FILES.weights));
  if (header.format !== 'tilevec-weights/1') throw new UserError(`${join(dir, MODEL_FILES.weights)} is not a tilevec weights file`);
  const normalization = parseNormalization(header.normalization);
  header.backbone = withArchitectureDefaults(header.backbone);
  if (JSON.stringify(header.backbone) !== JSON.stringify(card.backbone)) {
    throw new UserError(`${dir}: the card's backbone config differs from the weights'; the weights come from an incompatible config`);
  }
  if (JSON.stringify(normalization) !== JSON.stringify(card.normalization)) {
    throw new UserError(`${dir}: the card's normalization differs from the one stored with the weights; the directory was edited or mixed`);
  }
  const backbone = createBackbone(header.backbone);
  try {
    loadTensorsInto(backbone, tensors, join(dir, MODEL_FILES.weights));
  } catch (err) {
    backbone.dispose();
    throw err;
  }
  return { card, backbone, normalization };
}

export function ensureDir(dir: string): string {
  makeDirectory(dir, 'the model directory');
  return dir;
}
