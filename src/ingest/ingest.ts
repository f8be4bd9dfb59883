import { INFLATE_ENGINE } from './codecs.ts';
import { DEFAULT_INGEST_LIMITS as DEFAULT_LIMITS } from '../config.ts';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { UserError, errorMessage } from '../errors.ts';
import { logger } from '../log.ts';
import type { Store } from '../store/index.ts';
import type { NewRaster, NewTile } from '../store/records.ts';
import { polygonBbox } from './georef.ts';
import { gridWindow, tileGrid, type TileGrid } from './grid.ts';
import { expandInputs } from './inputs.ts';
import { newSampleArray, openRaster, type Raster, type RasterOptions, type WindowData } from './raster.ts';
import { canonicalUri } from './source.ts';
import { BandStatsAccumulator } from './stats.ts';

export interface IngestOptions extends RasterOptions {
  /** Tile side in pixels (default 32). */
  tileSize?: number;
  /** Grid step in pixels (default: the tile size). */
  stride?: number;
  /** Skip tiles whose nodata fraction is above this (default 0.1). */
  maxNodata?: number;
  /** 1-based bands that count for statistics and nodata (default all). */
  bands?: number[];
  /** Re-ingest rasters whose content is unchanged. */
  force?: boolean;
  /** The most pixels and grid tiles one raster may have (the config's ingest.maxPixels, ingest.maxTiles). */
  maxPixels?: number;
  maxTiles?: number;
}

export type RasterOutcome =
  | { uri: string; status: 'ingested'; rasterId: number; tiles: number; skippedNodata: number; skippedEdge: number; bytesRead: number; seconds: number }
  | { uri: string; status: 'unchanged'; rasterId: number }
  | { uri: string; status: 'failed'; error: string };

export interface IngestSummary {
  ingested: number;
  unchanged: number;
  failed: number;
  tilesWritten: number;
  tilesSkippedNodata: number;
  tilesSkippedEdge: number;
  seconds: number;
  /** What inflated DEFLATE blocks: libdeflate (the native codecs) or, where they are not built, Node's zlib. */
  inflate: typeof INFLATE_ENGINE;
  rasters: RasterOutcome[];
}

export type IngestProgress =
  | { kind: 'raster'; uri: string; index: number; count: number; tiles: number }
  | { kind: 'tiles'; uri: string; done: number; tiles: number }
  | { kind: 'outcome'; outcome: RasterOutcome };

/**
 * Ingests rasters into the catalog, one after another. Each input that fails is reported in the summary (one
 * line naming it) and the rest go on. A raster's rows are written in one transaction at its end, so a failure or
 * an interruption leaves nothing of it behind.
 */
export async function ingest(store: Store, inputs: string[], opts: IngestOptions = {}, onProgress?: (p: IngestProgress) => void): Promise<IngestSummary> {
  const started = performance.now();
  const tileSize = opts.tileSize ?? 32;
  const stride = opts.stride ?? tileSize;
  const maxNodata = opts.maxNodata ?? 0.1;
  if (!Number.isInteger(tileSize) || tileSize < 1) throw new UserError(`--tile-size must be a positive integer, got ${tileSize}`);
  if (!Number.isInteger(stride) || stride < 1) throw new UserError(`--stride must be a positive integer, got ${stride}`);
  if (!(maxNodata >= 0 && maxNodata <= 1)) throw new UserError(`--max-nodata must be between 0 and 1, got ${maxNodata}`);

  const expanded = await expandInputs(inputs);
  const outcomes: RasterOutcome[] = [];
  for (const [index, input] of expanded.entries()) {
    const uri = 'error' in input ? input.uri : canonicalUri(input.uri);
    let outcome: RasterOutcome;
    if ('error' in input) outcome = { uri, status: 'failed', error: input.error };
    else {
      try {
        outcome = await ingestOne(store, uri, { ...opts, tileSize, stride, maxNodata }, (p) => onProgress?.(p), index, expanded.length);
      } catch (err) {
        if (!(err instanceof UserError)) logger().debug({ err, uri }, 'ingest failed');
        outcome = { uri, status: 'failed', error: err instanceof UserError ? err.message : `internal error: ${errorMessage(err)}` };
      }
    }
    outcomes.push(outcome);
    onProgress?.({ kind: 'outcome', outcome });
  }
  const sum = (f: (o: RasterOutcome & { status: 'ingested' }) => number) =>
    outcomes.reduce((s, o) => s + (o.status === 'ingested' ? f(o) : 0), 0);
  return {
    ingested: outcomes.filter((o) => o.status === 'ingested').length,
    unchanged: outcomes.filter((o) => o.status === 'unchanged').length,
    failed: outcomes.filter((o) => o.status === 'failed').length,
    tilesWritten: sum((o) => o.tiles),
    tilesSkippedNodata: sum((o) => o.skippedNodata),
    tilesSkippedEdge: sum((o) => o.skippedEdge),
    seconds: (performance.now() - started) / 1000,
    inflate: INFLATE_ENGINE,
    rasters: outcomes,
  };
}

type ResolvedOptions = IngestOptions & { tileSize: number; stride: number; maxNodata: number };

async function ingestOne(store: Store, uri: string, opts: ResolvedOptions, onProgress: (p: IngestProgress) => void, index: number, count: number): Promise<RasterOutcome> {
  const started = performance.now();
  // A full pass reads every block once: caching decoded blocks would only churn memory.
  const raster = await openRaster(uri, { ...opts, cacheBytes: 0 });
  try {
    if (!raster.georeferenced && !opts.allowUngeoreferenced) {
      throw new UserError('not georeferenced (no ModelTiepoint/ModelPixelScale or ModelTransformation, or no CRS in the GeoKeys); pass --allow-ungeoreferenced to ingest it with pixel-space footprints');
    }
    const bands = opts.bands ?? Array.from({ length: raster.bandCount }, (_, i) => i + 1);
    for (const b of bands) if (b < 1 || b > raster.bandCount) throw new UserError(`band ${b} does not exist (the raster has ${raster.bandCount})`);

    const known = await store.rasterByUri(uri, raster.overview);
    const hash = raster.validator ? `sha256:${sha256(raster.validator)}` : uri.startsWith('http') ? null : await fileHash(uri);
    if (known && hash && known.contentHash === hash && known.tileSize === opts.tileSize && known.stride === opts.stride && !opts.force) {
      return { uri, status: 'unchanged', rasterId: known.id };
    }

    const grid = tileGrid(raster.width, raster.height, opts.tileSize, opts.stride);
    const maxPixels = opts.maxPixels ?? DEFAULT_LIMITS.maxPixels;
    const maxTiles = opts.maxTiles ?? DEFAULT_LIMITS.maxTiles;
    if (raster.width * raster.height > maxPixels) throw new UserError(`${raster.width} x ${raster.height} pixels is more than ingest.maxPixels (${maxPixels}, TILEVEC_MAX_PIXELS)`);
    if (grid.cols * grid.rows > maxTiles) throw new UserError(`${grid.cols * grid.rows} tiles is more than ingest.maxTiles (${maxTiles}, TILEVEC_MAX_TILES)`);
    onProgress({ kind: 'raster', uri, index, count, tiles: grid.cols * grid.rows });
    const pass = await scan(raster, bands, grid, (done) => onProgress({ kind: 'tiles', uri, done, tiles: grid.cols * grid.rows }));

    // The tiles are made as the store writes them, a chunk at a time, so that memory does not grow with the raster.
    let kept = 0;
    const area = opts.tileSize * opts.tileSize;
    function* tiles(): Generator<NewTile> {
      for (let row = 0; row < grid.rows; row++) {
        for (let col = 0; col < grid.cols; col++) {
          const validFraction = pass.validCounts[row * grid.cols + col] / area;
          if (1 - validFraction > opts.maxNodata + 1e-12) continue;
          const win = gridWindow(grid, col, row);
          const footprint = raster.footprint(win);
          const [centerLon, centerLat] = raster.georeferenced ? raster.pixelToLonLat(win.x + win.w / 2, win.y + win.h / 2) : raster.pixelToCrs(win.x + win.w / 2, win.y + win.h / 2);
          kept++;
          yield { x: win.x, y: win.y, size: opts.tileSize, footprint, centerLon, centerLat, bbox: polygonBbox(footprint), validFraction };
        }
      }
    }
    const record: NewRaster = {
      uri,
      contentHash: hash ?? `sha256:${pass.blockHash}`,
      sizeBytes: raster.sizeBytes,
      width: raster.width,
      height: raster.height,
      bandCount: raster.bandCount,
      dtype: raster.dtype,
      nodata: raster.nodata,
      epsg: raster.epsg,
      crsDef: raster.crs?.proj4 ?? null,
      geotransform: raster.geotransform,
      georeferenced: raster.georeferenced,
      footprint: raster.footprint(undefined, 16),
      bandStats: pass.stats,
      tileSize: opts.tileSize,
      stride: opts.stride,
      acquiredOn: raster.acquired?.date ?? null,
      acquiredFrom: raster.acquired?.source ?? null,
      overview: raster.overview,
    };
    if (known && !hash && known.contentHash === record.contentHash && known.tileSize === opts.tileSize && known.stride === opts.stride && !opts.force) {
      return { uri, status: 'unchanged', rasterId: known.id };
    }
    const rasterId = await store.replaceRaster(record, tiles());
    return {
      uri,
      status: 'ingested',
      rasterId,
      tiles: kept,
      skippedNodata: grid.cols * grid.rows - kept,
      skippedEdge: grid.edgeSkipped,
      bytesRead: raster.bytesRead,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await raster.close();
  }
}

const MAX_STRIP_BYTES = 2 ** 30;

interface ScanResult {
  stats: ReturnType<BandStatsAccumulator['result']>[];
  /** Valid pixels per full tile, row-major over the grid. */
  validCounts: Float64Array;
  /** Hash of the decoded samples, the content identity of remote rasters that have no ETag. */
  blockHash: string;
}

/**
 * One pass over the raster in full-width strips of whole blocks: band statistics from every valid pixel, and
 * each tile's valid-pixel count from per-row prefix sums of the nodata mask. The next strip is read while this
 * one is counted, so decoding on the pool overlaps the counting here.
 */
async function scan(raster: Raster, bands: number[], grid: TileGrid, onTiles: (done: number) => void): Promise<ScanResult> {
  const accumulators = bands.map((b) => new BandStatsAccumulator(b, raster.dtype, raster.nodata));
  const validCounts = new Float64Array(grid.cols * grid.rows);
  const hash = createHash('sha256');
  const stripRows = raster.blockHeight * Math.max(1, Math.floor(512 / raster.blockHeight));
  // The width comes from the header: a corrupt one must not make a strip larger than memory.
  const stripBytes = raster.width * Math.min(stripRows, raster.height) * (bands.length * newSampleArray(raster.dtype, 0).BYTES_PER_ELEMENT + 1);
  if (stripBytes > MAX_STRIP_BYTES) throw new UserError(`too wide to ingest: ${raster.width} pixels per row need ${(stripBytes / 2 ** 30).toFixed(1)} GiB per strip (limit ${MAX_STRIP_BYTES / 2 ** 30} GiB); is the header corrupt?`);
  const prefix = new Float64Array(raster.width + 1);
  const read = (y: number) => raster.readWindow({ x: 0, y, w: raster.width, h: Math.min(stripRows, raster.height - y) }, bands);

  let next: Promise<WindowData> | null = read(0);
  for (let y = 0; next; y += stripRows) {
    const strip: WindowData = await next;
    next = y + stripRows < raster.height ? read(y + stripRows) : null;
    next?.catch(() => {}); // surfaced when awaited
    accumulators.forEach((acc, i) => acc.add(strip.data[i]));
    for (const d of strip.data) hash.update(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
    const w = raster.width;
    for (let r = 0; r < strip.window.h; r++) {
      const row = y + r;
      // Tile rows whose span [ty * stride, ty * stride + size) holds this pixel row.
      const first = Math.max(0, Math.ceil((row - grid.size + 1) / grid.stride));
      const last = Math.min(grid.rows - 1, Math.floor(row / grid.stride));
      if (first > last) continue;
      const mask = strip.valid;
      for (let c = 0; c < w; c++) prefix[c + 1] = prefix[c] + mask[r * w + c];
      for (let ty = first; ty <= last; ty++) {
        for (let tx = 0; tx < grid.cols; tx++) {
          const x = tx * grid.stride;
          validCounts[ty * grid.cols + tx] += prefix[x + grid.size] - prefix[x];
        }
      }
    }
    const rowsDone = grid.rows === 0 ? 0 : Math.min(grid.rows, Math.max(0, Math.floor((y + strip.window.h - grid.size) / grid.stride) + 1));
    onTiles(rowsDone * grid.cols);
  }
  return { stats: accumulators.map((a) => a.result()), validCounts, blockHash: hash.digest('hex') };
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function fileHash(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => h.update(chunk))
      .on('error', (err) => reject(new UserError(`cannot read it (${errorMessage(err)})`)))
      .on('end', () => resolve(`sha256:${h.digest('hex')}`));
  });
}
