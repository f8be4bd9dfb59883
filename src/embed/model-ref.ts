import { existsSync, statSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.ts';
import type { ModelRecord, Store } from '../store/index.ts';
import { loadModel, readCard, MODEL_FILES, type ModelCard } from '../train/index.ts';
import { writeFileAtomic } from '../paths.ts';
import { exportBackboneOnnx } from '../onnx/index.ts';

export interface ResolvedModel {
  record: ModelRecord;
  dir: string;
  card: ModelCard;
}

/**
 * A model named in the store, or given as a model directory (registered on the fly, so vectors always belong to
 * a model row). No name means the latest model.
 */
export async function resolveModel(store: Store, ref?: string): Promise<ResolvedModel> {
  if (ref && existsSync(join(ref, MODEL_FILES.card))) {
    const dir = resolve(ref);
    const card = readCard(dir);
    const known = (await store.listModels()).find((m) => m.artifactPath === dir);
    const record = known ?? (await store.registerModel({
      name: card.name, backbone: card.backbone as unknown as Record<string, unknown>, dim: card.dim, bands: card.bands,
      tileSize: card.tileSize, normalization: card.normalization as unknown as Record<string, unknown>, metrics: card.metrics, artifactPath: dir,
    }));
    return { record, dir, card };
  }
  const record = await store.model(ref);
  if (!existsSync(join(record.artifactPath, MODEL_FILES.card))) {
    throw new UserError(`model '${record.name}' is registered but its directory ${record.artifactPath} is gone; retrain it or remove it (tilevec models rm ${record.name})`);
  }
  return { record, dir: record.artifactPath, card: readCard(record.artifactPath) };
}

/** The ONNX metadata every export carries: inference needs nothing else to prepare tiles. */
export function onnxMetadata(card: ModelCard): Record<string, string> {
  return {
    'tilevec.name': card.name,
    'tilevec.bands': JSON.stringify(card.bands),
    'tilevec.normalization': JSON.stringify(card.normalization),
    'tilevec.tileSize': String(card.tileSize),
    'tilevec.dim': String(card.dim),
    'tilevec.distance': card.embedding?.distance ?? 'l2',
    'tilevec.tta': card.embedding?.tta ?? 'none',
    'tilevec.layout': 'NHWC float32, normalised',
  };
}

/** Writes the model's inference graph as ONNX to `out`. */
export function exportModelOnnx(dir: string, out: string): { path: string; bytes: number; card: ModelCard } {
  const { backbone, card } = loadModel(dir);
  try {
    const bytes = exportBackboneOnnx(backbone, { metadata: onnxMetadata(card), producerVersion: card.versions.tilevec, unitEmbeddings: card.embedding?.unitLength === true, tta: card.embedding?.tta });
    writeFileAtomic(out, [bytes]);
    return { path: resolve(out), bytes: bytes.length, card };
  } finally {
    backbone.dispose();
  }
}

/** The model directory's ONNX file, exported again whenever the weights are newer. */
export function ensureModelOnnx(dir: string): string {
  const onnx = join(dir, MODEL_FILES.onnx);
  const weights = join(dir, MODEL_FILES.weights);
  if (!existsSync(onnx) || statSync(onnx).mtimeMs < statSync(weights).mtimeMs) exportModelOnnx(dir, onnx);
  return onnx;
}

export function readOnnx(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UserError(`cannot read the ONNX model ${path}: ${(err as Error).message}`);
  }
}
