import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { normalizationFromStats, type NormalizationScope } from '../src/sampling/index.ts';
import type { Store } from '../src/store/index.ts';
import { createBackbone, saveWeights, MODEL_FILES, type ModelCard } from '../src/train/index.ts';
import { writeCard } from '../src/train/model-dir.ts';

/**
 * A model directory as training writes it, from a seeded backbone with non-trivial BatchNorm statistics; `shape`
 * overrides the small default network (benchmarks use the tiny preset's real widths).
 */
export async function makeModelDir(
  store: Store, dir: string, name: string, rasterId: number, bands: number[], scope: NormalizationScope = 'pooled',
  shape: { extraLayers: number; dim: number } = { extraLayers: 0, dim: 24 },
): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const raster = await store.raster(rasterId);
  const normalization = normalizationFromStats([{ id: raster.id, label: raster.uri, bandStats: raster.bandStats }], bands, 'percentile', scope);
  const model = createBackbone({ name: 'tiny', tileSize: 32, bands: bands.length, ...shape }, { seed: 11 });
  for (const [n, v] of model.params.entries()) {
    if (n.endsWith('movingMean')) v.assign(tf.randomNormal(v.shape, 0, 0.2, 'float32', 1));
    if (n.endsWith('movingVariance')) v.assign(tf.randomUniform(v.shape, 0.5, 1.5, 'float32', 2));
  }
  saveWeights(join(dir, MODEL_FILES.weights), model, normalization);
  const card: ModelCard = {
    format: 'tilevec-model-card/1', name, backbone: model.config, bands, normalization, tileSize: 32, dim: shape.dim, training: {},
    rasters: [{ id: raster.id, uri: raster.uri, contentHash: raster.contentHash }], metrics: {}, seed: 11, versions: { tilevec: 'test' },
    wallSeconds: 0, createdAt: new Date().toISOString(),
  };
  writeCard(dir, card);
  model.dispose();
}
