import { UserError } from '../errors.ts';
import { coRegistered } from '../sampling/index.ts';
import type { ModelRecord, RasterRecord, Store, TileRecord } from '../store/index.ts';
import { initBackend } from '../train/index.ts';
import { randomBackboneFeatures } from './backbone-features.ts';
import { bandStatsFeatures, embeddingFeatures, rawPixelPcaFeatures, type FeatureProvider, type FeatureSet } from './feature-providers.ts';
import { standardizeColumns } from './retrieval.ts';
import type { TilePixelReader } from './tile-pixels.ts';

/**
 * The model's embeddings and the baselines on the same tiles. With `perDate` (a co-registered stack), band
 * statistics come twice: standardised over the whole stack and within each date.
 */
export async function evaluationFeatureSets(store: Store, model: ModelRecord | undefined, read: TilePixelReader, pcaDim: number, perDate?: Map<number, RasterRecord>): Promise<FeatureSet[]> {
  const sets: FeatureSet[] = [];
  if (model) {
    await initBackend('cpu'); // the random backbone's weights are tfjs variables until exported to ONNX
    sets.push({ name: `tilevec:${model.name}`, provide: embeddingFeatures(store, model), model, searchAsIs: true });
    // The weights training started from: what the architecture gives before any learning.
    sets.push({ name: 'random-init-backbone', provide: randomBackboneFeatures(store, model), searchAsIs: true });
  }
  if (perDate) {
    sets.push({ name: 'band-mean-std', provide: rawBandStatsFeatures(read, perDate) });
    sets.push({ name: 'band-mean-std-per-date', provide: perGroup(bandStatsFeatures(read), (t) => t.rasterId), searchAsIs: true });
    // Pooled 2x2 so the covariance of a 64-px, 4-band stack stays small enough to factor.
    sets.push({ name: 'raw-pixel-pca', provide: rawPixelPcaFeatures(read, pcaDim, { pool: 2 }) });
  } else {
    sets.push({ name: 'band-mean-std', provide: bandStatsFeatures(read) });
    sets.push({ name: 'raw-pixel-pca', provide: rawPixelPcaFeatures(read, pcaDim) });
  }
  return sets;
}

/**
 * Band mean and std in the raster's own units, so standardising them over the stack keeps the differences
 * between dates (the pixel reader standardises each raster by its own statistics).
 */
function rawBandStatsFeatures(read: TilePixelReader, rasters: Map<number, RasterRecord>): FeatureProvider {
  const perRaster = bandStatsFeatures(read);
  return async (tiles) => (await perRaster(tiles)).map((row, i) => {
    const stats = rasters.get(tiles[i].rasterId)!.bandStats;
    return row.map((v, j) => {
      const s = stats[j >> 1];
      return j % 2 === 0 ? v * (s.std || 1) + s.mean : v * (s.std || 1);
    });
  });
}

/** Features standardised per column within each group of tiles (a date). */
function perGroup(provide: FeatureProvider, groupOf: (t: TileRecord) => number): FeatureProvider {
  return async (tiles) => standardizeColumns(await provide(tiles), (i) => groupOf(tiles[i]));
}

/** The rasters of a co-registered stack (see `coRegistered`); anything else is a clear error. */
export async function coRegisteredRasters(store: Store, ids: number[] | undefined): Promise<RasterRecord[]> {
  const all = await store.listRasters();
  const rasters = ids ? ids.map((id) => all.find((r) => r.id === id) ?? (() => { throw new UserError(`raster ${id} is not in the catalog`); })()) : all;
  if (rasters.length < 2) throw new UserError(`--temporal needs at least two co-registered rasters (dates of one place); the selection has ${rasters.length}`);
  const [first] = rasters;
  const odd = rasters.find((r) => !coRegistered(first, r));
  if (odd) {
    throw new UserError(`--temporal needs co-registered rasters: raster ${odd.id} (${odd.uri}) does not line up with raster ${first.id} ` +
      `(CRS or pixel size differ, or the grid origins lie a pixel or more apart); choose a stack with --rasters`);
  }
  return rasters;
}
