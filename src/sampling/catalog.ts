import { UserError } from '../errors.ts';
import type { Store } from '../store/index.ts';
import type { RasterRecord } from '../store/records.ts';
import { TripletDataset } from './dataset.ts';
import { IngestRasterSource } from './ingest-source.ts';
import { TripletLoader, type LoaderOptions } from './loader.ts';
import { normalizationFromStats, type Normalization, type NormalizationMethod, type NormalizationScope, type StatsOfRaster } from './normalize.ts';
import { formatRadius, parseRadius, pixelSizeMetres, radiusPixels } from './radius.ts';
import type { RngState } from '../rng.ts';
import { TripletSampler } from './sampler.ts';
import type { RasterSource } from './source.ts';
import { ValidityMask } from './validity.ts';

/** What a caller may set; everything has a default. */
export interface SamplingParams {
  /** Tile side in pixels (default 64). */
  tileSize?: number;
  /** Neighborhood radius: pixels (`32`, `32px`) or metres (`100m`); default the tile size in pixels. */
  neighborhood?: string | number;
  /** Chance that the distant tile comes from another raster (default 0.5; 0 with a single raster or with temporal positives). */
  crossRasterProbability?: number;
  /** Chance that the neighbor is the anchor's window on another date of a co-registered stack (default 1 where rasters form one, else 0). */
  temporalProbability?: number;
  /** Largest nodata share of any sampled tile (default 0.1). */
  maxNodataFraction?: number;
  /** 1-based bands, in tensor channel order (default all; the rasters must then have the same band count). */
  bands?: number[];
  /** Default 'percentile' (p2-p98 stretched to 0..1). */
  normalization?: NormalizationMethod;
  /** Pooled statistics for all rasters, or each raster by its own (default: raster on a co-registered stack, else pooled). */
  normalizationScope?: NormalizationScope;
  /** Random flips and quarter turns (default true). */
  augment?: boolean;
  /** A temporal positive takes its anchor's flips and turns (default true: hit@10 across dates 0.237 -> 0.337 on NAIP). */
  pairedTemporalAugment?: boolean;
  /** Per-tile, per-band gain, offset and gamma jitter strength (default 0: none). */
  radiometricJitter?: number;
  /** With a temporal positive, the distant tile lies next to the anchor on its date (default false). */
  adjacentNegatives?: boolean;
  /** Default 0. */
  seed?: number | string;
  /** Catalog rasters to sample (default all). */
  rasterIds?: number[];
  /** Resume the sampler's generator from a checkpoint instead of the seed's start. */
  rngState?: RngState;
}

/** The parameters as applied, for logs, model cards and `triplets.json`. */
export interface ResolvedSamplingParams {
  tileSize: number;
  neighborhood: string;
  /** The neighborhood in each raster's pixels, by raster id. */
  radiusPixels: Record<number, { x: number; y: number }>;
  crossRasterProbability: number;
  temporalProbability: number;
  maxNodataFraction: number;
  bands: number[];
  normalization: NormalizationMethod;
  normalizationScope: NormalizationScope;
  augment: boolean;
  pairedTemporalAugment: boolean;
  radiometricJitter: number;
  adjacentNegatives: boolean;
  seed: number | string;
  rasterIds: number[];
  /** Sampling weight of each raster (its valid pixels), by raster id. */
  weights: Record<number, number>;
}

/** The catalog facts sampling needs about one raster. */
export type CatalogRecord = Pick<RasterRecord, 'id' | 'uri' | 'width' | 'height' | 'bandCount' | 'dtype' | 'geotransform' | 'georeferenced' | 'crsDef' | 'bandStats'>;

export interface TripletSampling {
  sampler: TripletSampler;
  dataset: TripletDataset;
  normalization: Normalization;
  params: ResolvedSamplingParams;
  /** Batches [batch, tile, tile, bands] read ahead of the consumer. */
  loader(options: LoaderOptions): TripletLoader;
  /** Closes the sources this opened. */
  close(): Promise<void>;
}

export const DEFAULT_TILE_SIZE = 64;
export const DEFAULT_MAX_NODATA = 0.1;
export const DEFAULT_CROSS_RASTER = 0.5;
/**
 * Measured on the ten NAIP dates (4k triplets): hit@10 of the same window on another date 0.063 at p = 0, 0.163 at
 * 0.5, 0.237 at 0.9; with paired augmentation 0.337 at 0.9 and 0.360 at 1.
 */
export const DEFAULT_TEMPORAL_POSITIVES = 1;

/**
 * Sampling over the store's catalog: opens each raster through src/ingest (block-cached reads), maps its nodata,
 * and builds the sampler, the dataset and the normalization from the stored band statistics.
 */
export async function openTripletSampling(
  store: Store,
  params: SamplingParams = {},
  openSource: (record: RasterRecord) => Promise<RasterSource & { close(): Promise<void> }> = (r) => IngestRasterSource.open(r),
): Promise<TripletSampling> {
  const all = await store.listRasters();
  const records = params.rasterIds ? params.rasterIds.map((id) => {
    const r = all.find((a) => a.id === id);
    if (!r) throw new UserError(`raster ${id} is not in the catalog (see tilevec rasters)`);
    return r;
  }) : all;
  if (records.length === 0) throw new UserError('the catalog has no rasters to sample from; ingest some first (tilevec ingest)');
  checkBands(records, params.bands);
  checkSampleTypes(records);
  const sources: (RasterSource & { close(): Promise<void> })[] = [];
  const closeAll = () => Promise.all(sources.map((s) => s.close())).then(() => undefined);
  try {
    for (const record of records) sources.push(await openSource(record));
    const sampling = await createTripletSampling(records.map((record, i) => ({ record, source: sources[i] })), params);
    return { ...sampling, close: closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** A catalog raster's stored band statistics, as normalization reads them. */
export function statsOfRaster(r: Pick<RasterRecord, 'id' | 'uri' | 'bandStats'>): StatsOfRaster {
  return { id: r.id, label: `raster ${r.id} (${r.uri})`, bandStats: r.bandStats };
}

/** The same over rasters already open (tests, benches, callers outside a store). */
export async function createTripletSampling(inputs: { record: CatalogRecord; source: RasterSource }[], params: SamplingParams = {}): Promise<TripletSampling> {
  const records = inputs.map((i) => i.record);
  if (records.length === 0) throw new UserError('there are no rasters to sample from; ingest some first (tilevec ingest)');
  const bands = checkBands(records, params.bands);
  checkSampleTypes(records);
  const tileSize = params.tileSize ?? DEFAULT_TILE_SIZE;
  const radius = parseRadius(params.neighborhood ?? tileSize);
  const stacks = coRegisteredStacks(records);
  const hasStack = new Set(stacks.values()).size < stacks.size;
  const temporalProbability = params.temporalProbability ?? (hasStack ? DEFAULT_TEMPORAL_POSITIVES : 0);
  // With temporal positives the distant tile shares the anchor's date by default, so the date cannot separate a triplet.
  const crossRasterProbability = params.crossRasterProbability ?? (records.length > 1 && temporalProbability === 0 ? DEFAULT_CROSS_RASTER : 0);
  const maxNodataFraction = params.maxNodataFraction ?? DEFAULT_MAX_NODATA;
  const method = params.normalization ?? 'percentile';
  if (method !== 'zscore' && method !== 'percentile') throw new UserError(`normalization must be zscore or percentile, got '${method}'`);
  const seed = params.seed ?? 0;

  const masks = await Promise.all(inputs.map((i) => ValidityMask.ofSource(i.source, bands)));
  const samplerRasters = records.map((r, i) => ({
    id: r.id,
    label: `raster ${r.id} (${r.uri})`,
    width: r.width,
    height: r.height,
    validity: masks[i],
    radius: radiusPixels(radius, pixelSizeOf(r), `raster ${r.id} (${r.uri})`),
    stack: stacks.get(r.id),
  }));
  const augmentation = { augment: params.augment ?? true, pairedTemporalAugment: params.pairedTemporalAugment ?? true, radiometricJitter: params.radiometricJitter ?? 0, adjacentNegatives: params.adjacentNegatives ?? false };
  const sampler = new TripletSampler(samplerRasters, { tileSize, crossRasterProbability, temporalProbability, maxNodataFraction, ...augmentation, seed });
  if (params.rngState) sampler.setState(params.rngState);
  // On a stack each date by its own statistics: recall@10 across the NAIP dates 0.103 -> 0.124 (16k triplets).
  const scope = params.normalizationScope ?? (hasStack ? 'raster' : 'pooled');
  if (scope !== 'pooled' && scope !== 'raster') throw new UserError(`normalization scope must be pooled or raster, got '${scope}'`);
  const stats = records.map(statsOfRaster);
  const normalization = normalizationFromStats(stats, bands, method, scope);
  const dataset = new TripletDataset(inputs.map((i) => i.source), normalization, stats);
  const resolved: ResolvedSamplingParams = {
    tileSize,
    neighborhood: formatRadius(radius),
    radiusPixels: Object.fromEntries(samplerRasters.map((r) => [r.id, r.radius])),
    crossRasterProbability,
    temporalProbability,
    maxNodataFraction,
    bands,
    normalization: method,
    normalizationScope: scope,
    ...augmentation,
    seed,
    rasterIds: records.map((r) => r.id),
    weights: Object.fromEntries(sampler.weights()),
  };
  return {
    sampler,
    dataset,
    normalization,
    params: resolved,
    loader: (options) => new TripletLoader(sampler, dataset, options),
    close: async () => {},
  };
}

/**
 * One normalization serves every raster of a set (and inference after it), so rasters of different sample types,
 * such as 8-bit NAIP and 16-bit Landsat, would share numbers that fit neither: a clear error instead.
 */
function checkSampleTypes(records: CatalogRecord[]): void {
  const types = [...new Set(records.map((r) => r.dtype))];
  if (types.length > 1) {
    const example = types.map((t) => `raster ${records.find((r) => r.dtype === t)!.id} is ${t}`).join(', ');
    throw new UserError(`these rasters cannot share one normalization: their sample types differ (${example}); sample rasters of one sensor (--rasters)`);
  }
}

type GridRecord = Pick<CatalogRecord, 'id' | 'georeferenced' | 'crsDef' | 'geotransform'>;

/**
 * Two rasters are co-registered when they share a CRS and a pixel size and their grid origins lie less than a
 * pixel apart on each axis, so a pixel window covers the same ground in both (their sizes may differ at the far
 * edges, as NAIP dates of one quarter-quad do).
 */
export function coRegistered(a: GridRecord, b: GridRecord): boolean {
  if (!a.georeferenced || !b.georeferenced || a.crsDef !== b.crsDef) return false;
  const [ax, apx, arx, ay, ary, apy] = a.geotransform;
  const [bx, bpx, brx, by, bry, bpy] = b.geotransform;
  const same = (p: number, q: number) => Math.abs(p - q) <= 1e-6 * Math.max(Math.abs(p), Math.abs(q));
  return same(apx, bpx) && same(apy, bpy) && arx === brx && ary === bry && Math.abs(ax - bx) < Math.abs(apx) && Math.abs(ay - by) < Math.abs(apy);
}

/** Stacks of co-registered rasters, by raster id: each raster joins the first stack whose first raster it lines up with. */
export function coRegisteredStacks(records: GridRecord[]): Map<number, string> {
  const firsts: GridRecord[] = [];
  const stacks = new Map<number, string>();
  for (const r of records) {
    if (!r.georeferenced) continue;
    let first = firsts.find((f) => coRegistered(f, r));
    if (!first) firsts.push((first = r));
    stacks.set(r.id, `stack of raster ${first.id}`);
  }
  return stacks;
}

function pixelSizeOf(r: CatalogRecord) {
  if (!r.georeferenced) return null;
  return pixelSizeMetres(r.geotransform, { geographic: /\+proj=longlat\b/.test(r.crsDef ?? ''), height: r.height });
}

/**
 * The bands every raster will give: the requested ones when each raster has them, else all bands when the
 * rasters agree on how many they have. Rasters that cannot mix are a clear error.
 */
function checkBands(records: CatalogRecord[], requested: number[] | undefined): number[] {
  const describe = (r: CatalogRecord) => `raster ${r.id} (${r.uri}) has ${r.bandCount}`;
  if (requested) {
    if (requested.length === 0 || requested.some((b) => !Number.isInteger(b) || b < 1)) throw new UserError(`bands must be 1-based band numbers, got ${requested.join(',')}`);
    if (new Set(requested).size !== requested.length) throw new UserError(`bands may not repeat, got ${requested.join(',')}`);
    const highest = Math.max(...requested);
    const short = records.filter((r) => r.bandCount < highest);
    if (short.length) throw new UserError(`band ${highest} does not exist in every raster: ${short.map(describe).join(', ')} bands`);
    return [...requested];
  }
  const counts = new Set(records.map((r) => r.bandCount));
  if (counts.size > 1) {
    const byCount = [...counts].map((c) => describe(records.find((r) => r.bandCount === c)!)).join(', ');
    throw new UserError(
      `these rasters cannot mix in one sample set: their band counts differ (${byCount} bands); choose bands they all have ` +
        `(--bands 1,2,3) or sample rasters of one sensor (--rasters)`,
    );
  }
  return Array.from({ length: records[0].bandCount }, (_, i) => i + 1);
}
