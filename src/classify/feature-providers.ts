import { UserError } from '../errors.ts';
import type { ModelRecord, Store, TileRecord } from '../store/index.ts';
import { fitPca, pcaTransform } from './pca.ts';
import type { TilePixelReader } from './tile-pixels.ts';

/**
 * Turns tiles into feature rows, one per tile in the same order. Evaluation and training take providers rather
 * than features, so embedding models, baselines and future backbones plug in alike.
 */
export type FeatureProvider = (tiles: TileRecord[]) => Promise<Float32Array[]> | Float32Array[];

/** A named provider; `model` is set when the features are a registered model's embeddings. */
export interface FeatureSet {
  name: string;
  provide: FeatureProvider;
  model?: Pick<ModelRecord, 'id' | 'name'>;
  /** Searched as they are (embeddings, or features already standardised); others are standardised per column first. */
  searchAsIs?: boolean;
}

/** The model's stored embeddings. */
export function embeddingFeatures(store: Store, model: Pick<ModelRecord, 'id' | 'name'>): FeatureProvider {
  return async (tiles) => {
    const vectors = await store.embeddingsOf(model.id, tiles.map((t) => t.id));
    const missing = tiles.filter((t) => !vectors.has(t.id));
    if (missing.length) {
      throw new UserError(`${missing.length} of ${tiles.length} tiles have no embedding for model '${model.name}' (first: tile ${missing[0].id}); run tilevec embed --model ${model.name}`);
    }
    return tiles.map((t) => vectors.get(t.id)!);
  };
}

/** Mean and standard deviation of each band over the tile's valid pixels: the classic per-tile baseline. */
export function bandStatsFeatures(read: TilePixelReader): FeatureProvider {
  return async (tiles) => {
    const out: Float32Array[] = [];
    for (const t of tiles) {
      const { bands, valid } = await read(t);
      const row = new Float32Array(bands.length * 2);
      bands.forEach((band, b) => {
        let n = 0, sum = 0, sq = 0;
        for (let p = 0; p < band.length; p++) {
          if (!valid[p]) continue;
          n++;
          sum += band[p];
          sq += band[p] * band[p];
        }
        const mean = n ? sum / n : 0;
        row[2 * b] = mean;
        row[2 * b + 1] = n ? Math.sqrt(Math.max(0, sq / n - mean * mean)) : 0;
      });
      out.push(row);
    }
    return out;
  };
}

/**
 * PCA of the raw (standardised) tile pixels down to `dim` components, fitted on the tiles given. PCA sees no
 * labels, so fitting it on test tiles too leaks nothing about classes.
 */
export function rawPixelPcaFeatures(read: TilePixelReader, dim: number, opts: { pool?: number } = {}): FeatureProvider {
  return async (tiles) => {
    const rows: Float32Array[] = [];
    for (const t of tiles) rows.push(flattenPooled(await read(t), opts.pool ?? 1));
    const pca = fitPca(rows, dim);
    return rows.map((r) => pcaTransform(pca, r));
  };
}

/** All bands' pixels in one row, averaged over pool×pool blocks (pool 1 keeps every pixel). */
function flattenPooled(px: { size: number; bands: Float32Array[] }, pool: number): Float32Array {
  const side = Math.floor(px.size / pool);
  const out = new Float32Array(px.bands.length * side * side);
  px.bands.forEach((band, b) => {
    for (let r = 0; r < side * pool; r++) {
      for (let c = 0; c < side * pool; c++) out[b * side * side + Math.floor(r / pool) * side + Math.floor(c / pool)] += band[r * px.size + c] / (pool * pool);
    }
  });
  return out;
}
