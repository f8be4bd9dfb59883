import { UserError } from '../errors.ts';
import { checkRasterFitsModel, ensureModelOnnx, loadOutgrowsIndex, resolveModel } from '../embed/index.ts';
import { canonicalUri, expandInputs, type IngestOptions } from '../ingest/index.ts';
import type { Store, VectorType } from '../store/index.ts';

/** The ingest options a unit carries: plain JSON, nothing process-bound such as a decode pool. */
export type IngestUnitOptions = Pick<IngestOptions, 'tileSize' | 'stride' | 'maxNodata' | 'bands' | 'force' | 'allowUngeoreferenced' | 'overview' | 'resolution' | 'maxPixels' | 'maxTiles' | 'timeoutMs'>;

/** One raster to ingest. Local paths are absolute; workers on other machines need them at the same place. */
export interface IngestUnit {
  kind: 'ingest';
  uri: string;
  options: IngestUnitOptions;
}

/** One block of a raster's tiles (ids firstTileId..lastTileId) to embed with a model. */
export interface EmbedUnit {
  kind: 'embed';
  model: string;
  rasterId: number;
  firstTileId: number;
  lastTileId: number;
  tiles: number;
  batch: number;
}

export type Unit = IngestUnit | EmbedUnit;

export const DEFAULT_BLOCK_TILES = 2048;

/** One unit per raster the inputs name; inputs that name nothing come back as failures, as ingest reports them. */
export async function planIngest(inputs: string[], options: IngestUnitOptions): Promise<{ units: IngestUnit[]; failed: { uri: string; error: string }[] }> {
  const units: IngestUnit[] = [];
  const failed: { uri: string; error: string }[] = [];
  for (const input of await expandInputs(inputs)) {
    if ('error' in input) failed.push({ uri: input.uri, error: input.error });
    else units.push({ kind: 'ingest', uri: canonicalUri(input.uri), options });
  }
  return { units, failed };
}

/**
 * Blocks of at most `blockTiles` tiles of each raster that still has tiles without a vector for the model. The
 * model's ONNX file is written here, once, so that workers never race to create it. As `tilevec embed` does, a load
 * at least as big as what is indexed drops the HNSW index; the worker that finishes the last unit builds it again.
 */
export async function planEmbed(
  store: Store,
  opts: { model?: string; rasterIds?: number[]; batch?: number; blockTiles?: number; vectorType?: VectorType },
): Promise<{ model: string; units: EmbedUnit[]; tilesAlreadyDone: number }> {
  const blockTiles = opts.blockTiles ?? DEFAULT_BLOCK_TILES;
  const batch = opts.batch ?? 64;
  if (!Number.isInteger(blockTiles) || blockTiles < 1) throw new UserError(`--block-tiles must be an integer >= 1, got ${blockTiles}`);
  const resolved = await resolveModel(store, opts.model);
  const { dir, card } = resolved;
  const record = opts.vectorType ? await store.setVectorType(resolved.record, opts.vectorType) : resolved.record;
  ensureModelOnnx(dir);
  const rasters = opts.rasterIds ? await Promise.all(opts.rasterIds.map((id) => store.raster(id))) : await store.listRasters();
  for (const raster of rasters) checkRasterFitsModel(raster, card);
  const done = await store.embeddedTileIds(record.id);
  const units: EmbedUnit[] = [];
  let tilesAlreadyDone = 0;
  let tilesToEmbed = 0;
  for (const raster of rasters) {
    const ids = await store.tileIdsOfRaster(raster.id);
    for (let i = 0; i < ids.length; i += blockTiles) {
      const block = ids.slice(i, i + blockTiles);
      const todo = block.filter((id) => !done.has(id)).length;
      tilesAlreadyDone += block.length - todo;
      tilesToEmbed += todo;
      if (todo > 0) units.push({ kind: 'embed', model: record.name, rasterId: raster.id, firstTileId: block[0], lastTileId: block[block.length - 1], tiles: block.length, batch });
    }
  }
  if (units.length === 0) await store.ensureEmbeddingIndex(record);
  else if (loadOutgrowsIndex(tilesToEmbed, done.size)) await store.dropEmbeddingIndex(record);
  return { model: record.name, units, tilesAlreadyDone };
}
