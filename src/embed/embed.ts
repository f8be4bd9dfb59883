import { UserError } from '../errors.ts';
import { logger } from '../log.ts';
import type { RasterRecord, Store, TileRecord, VectorType } from '../store/index.ts';
import { IDENTITY, IngestRasterSource, statsOfRaster, TripletDataset } from '../sampling/index.ts';
import { ensureModelOnnx, readOnnx, resolveModel, type ResolvedModel } from './model-ref.ts';
import { embedTiles } from './embed-tiles.ts';
import { EmbeddingSession } from './session.ts';

export interface EmbedOptions {
  /** Model name or directory; the latest model when absent. */
  model?: string;
  /** Catalog rasters to embed (default all). */
  rasterIds?: number[];
  /** Tiles per ONNX Runtime call (default 64). */
  batch?: number;
  /** Intra-op threads (default: one per core). */
  threads?: number;
  /** How the model's HNSW index holds vectors (default: as the model has it, vector for a new one). */
  vectorType?: VectorType;
}

export interface EmbedProgress {
  rasterId: number;
  done: number;
  total: number;
  tilesPerSecond: number;
}

export interface EmbedSummary {
  model: string;
  modelId: number;
  rasters: number;
  tilesEmbedded: number;
  /** Tiles that already had a vector for this model (an interrupted run resumed). */
  tilesAlreadyDone: number;
  seconds: number;
  tilesPerSecond: number;
}

/** Raster bands the model reads must exist, and the catalog's tiles must be the model's size. */
export function checkRasterFitsModel(raster: RasterRecord, model: { name: string; bands: number[]; tileSize: number }): void {
  const missing = model.bands.filter((b) => b > raster.bandCount);
  if (missing.length > 0) {
    throw new UserError(`model '${model.name}' reads bands ${model.bands.join(',')} but raster ${raster.id} (${raster.uri}) has ${raster.bandCount}; embed rasters of the sensor the model was trained on`);
  }
  if (raster.tileSize !== model.tileSize) {
    throw new UserError(`raster ${raster.id} (${raster.uri}) was tiled at ${raster.tileSize} px but model '${model.name}' takes ${model.tileSize} px tiles; re-ingest it with --tile-size ${model.tileSize} --force`);
  }
}

/**
 * Maintaining an HNSW graph row by row costs far more per vector than one build after the load, so a load at least
 * as big as what is already indexed drops the index and builds it at the end; a small top-up keeps it, and with it
 * fast searches meanwhile.
 */
export function loadOutgrowsIndex(toEmbed: number, indexed: number): boolean {
  return toEmbed > 0 && toEmbed >= indexed;
}

/**
 * Embeds every catalog tile that has no vector for the model yet: windows are read and normalised as the model
 * card says, run through ONNX Runtime, and upserted batch by batch (reads, inference and writes overlapping), so an
 * interrupted run resumes where it stopped. Finishes by building the model's HNSW index if it is missing.
 */
export async function embed(store: Store, opts: EmbedOptions = {}, onProgress?: (p: EmbedProgress) => void): Promise<EmbedSummary> {
  const batchSize = opts.batch ?? 64;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new UserError(`--batch must be an integer >= 1, got ${batchSize}`);
  const resolved = await resolveModel(store, opts.model);
  const { dir, card } = resolved;
  const record = opts.vectorType ? await store.setVectorType(resolved.record, opts.vectorType) : resolved.record;
  const onnxPath = ensureModelOnnx(dir);
  const session = await EmbeddingSession.create(readOnnx(onnxPath), { threads: opts.threads, source: onnxPath });
  const started = performance.now();
  let embedded = 0;
  let alreadyDone = 0;
  try {
    const rasters = opts.rasterIds ? await Promise.all(opts.rasterIds.map((id) => store.raster(id))) : await store.listRasters();
    for (const raster of rasters) checkRasterFitsModel(raster, card);
    const done = await store.embeddedTileIds(record.id);
    const plans = await Promise.all(rasters.map(async (raster) => {
      const all = await store.tilesOfRaster(raster.id);
      return { raster, todo: all.filter((t) => !done.has(t.id)), already: all.length };
    }));
    const todoTotal = plans.reduce((n, p) => n + p.todo.length, 0);
    if (loadOutgrowsIndex(todoTotal, done.size) && (await store.dropEmbeddingIndex(record))) {
      logger().info({ model: record.name, indexed: done.size, toEmbed: todoTotal }, 'dropped the HNSW index for the load; it is rebuilt at the end');
    }
    for (const { raster, todo, already } of plans) {
      alreadyDone += already - todo.length;
      if (todo.length === 0) continue;
      const rasterStart = performance.now();
      let doneHere = 0;
      await embedRasterTiles(store, session, { record, card }, raster, todo, batchSize, (tiles) => {
        embedded += tiles.length;
        doneHere += tiles.length;
        logger().debug({ rasterId: raster.id, tiles: embedded }, 'embedded batch');
        onProgress?.({ rasterId: raster.id, done: doneHere, total: todo.length, tilesPerSecond: doneHere / ((performance.now() - rasterStart) / 1000) });
      });
    }
    await store.ensureEmbeddingIndex(record);
    const seconds = (performance.now() - started) / 1000;
    return { model: record.name, modelId: record.id, rasters: rasters.length, tilesEmbedded: embedded, tilesAlreadyDone: alreadyDone, seconds, tilesPerSecond: embedded / seconds };
  } finally {
    await session.release();
  }
}

/**
 * Embeds tiles of one raster and upserts their vectors, reads, inference and writes overlapping (`embedTiles`);
 * `onWritten` hears of each batch once its rows are stored. `embed` and the queue worker both run this.
 */
export async function embedRasterTiles(
  store: Store,
  session: EmbeddingSession,
  model: Pick<ResolvedModel, 'record' | 'card'>,
  raster: RasterRecord,
  tiles: TileRecord[],
  batch: number,
  onWritten?: (tiles: TileRecord[]) => void,
): Promise<void> {
  const source = await IngestRasterSource.open(raster);
  try {
    const dataset = new TripletDataset([source], model.card.normalization, [statsOfRaster(raster)]);
    const { dim } = model.card;
    await embedTiles(session, tiles, {
      batch,
      read: (batch) => readBatch(dataset, raster.id, batch),
      write: (batch, vectors) => store.upsertEmbeddings(model.record, batch.map((t, k) => ({ tileId: t.id, vector: vectors.subarray(k * dim, (k + 1) * dim) }))),
      onWritten,
    });
  } finally {
    await source.close();
  }
}

/** Reads a batch of tiles exactly as training reads them (same dataset code, no augmentation) into [n, tile, tile, bands]. */
export async function readBatch(dataset: TripletDataset, rasterId: number, tiles: Pick<TileRecord, 'x' | 'y' | 'size'>[]): Promise<Float32Array> {
  const per = tiles.length ? tiles[0].size * tiles[0].size * dataset.bandCount : 0;
  const out = new Float32Array(tiles.length * per);
  await Promise.all(
    tiles.map(async (t, k) => out.set(await dataset.readTile({ rasterId, window: { x: t.x, y: t.y, w: t.size, h: t.size }, augment: IDENTITY }), k * per)),
  );
  return out;
}
