import type { Feature, Polygon } from 'geojson';
import { dateFromFileName } from '../ingest/index.ts';
import { NotFoundError } from '../errors.ts';
import type { BBox, RasterRecord, Store } from '../store/index.ts';
import { MAP_TILE_SIZE, MAX_SOURCE_PIXELS, mercatorResolution } from './map-tiles.ts';
import { roundCoordinates, roundBbox } from './geojson.ts';

/** A catalogued raster as the API shows it. */
export interface RasterSummary {
  id: number;
  name: string;
  uri: string;
  /** ISO acquisition date, or null. */
  date: string | null;
  dateSource: RasterRecord['acquiredFrom'];
  width: number;
  height: number;
  bandCount: number;
  dtype: string;
  nodata: number | null;
  epsg: number | null;
  crs: string | null;
  /** The file's level that was tiled: 0 for full resolution, n for its n-th largest overview. */
  overview: number;
  tileSize: number;
  stride: number;
  tileCount: number;
  /** The XYZ zooms the raster renders at: from where one map tile reads at most MAX_SOURCE_PIXELS to about one source pixel per map pixel. */
  zoom: { min: number; max: number } | null;
  /** The XYZ tile template, for a map's imagery layer. */
  tiles: string | null;
}

export type RasterFeature = Feature<Polygon, RasterSummary>;

/** The file name of a path or URL. */
export function rasterName(uri: string): string {
  return decodeURIComponent(uri.split('?')[0].split(/[/\\]/).pop() || uri);
}

/**
 * The zooms worth rendering a raster at. Its resolution in Web Mercator metres comes from its footprint's
 * longitude span, which is exact on the equator and scales with latitude as the map's own metres do.
 */
export function zoomRange(r: Pick<RasterRecord, 'georeferenced' | 'footprint' | 'width' | 'height'>): { min: number; max: number } | null {
  if (!r.georeferenced) return null;
  const lons = r.footprint.coordinates[0].map((p) => p[0]);
  const metres = ((Math.max(...lons) - Math.min(...lons)) / 360) * mercatorResolution(0) * MAP_TILE_SIZE;
  const res = metres / r.width;
  const max = Math.max(0, Math.min(24, Math.ceil(Math.log2(mercatorResolution(0) / res))));
  let min = max;
  while (min > 0) {
    const side = (MAP_TILE_SIZE * mercatorResolution(min - 1)) / res + 3;
    if (Math.min(r.width, side) * Math.min(r.height, side) > MAX_SOURCE_PIXELS) break;
    min--;
  }
  return { min, max };
}

export function rasterSummary(r: RasterRecord, tileCount: number): RasterSummary {
  // Rasters catalogued before dates were recorded still have the one in their file name.
  const fallback = r.acquiredOn ? null : dateFromFileName(r.uri);
  return {
    id: r.id, name: rasterName(r.uri), uri: r.uri,
    date: r.acquiredOn ?? fallback, dateSource: r.acquiredFrom ?? (fallback ? 'file-name' : null),
    width: r.width, height: r.height, bandCount: r.bandCount, dtype: r.dtype, nodata: r.nodata, epsg: r.epsg, crs: r.crsDef,
    overview: r.overview, tileSize: r.tileSize, stride: r.stride, tileCount,
    zoom: zoomRange(r),
    tiles: r.georeferenced ? `/v1/rasters/${r.id}/tiles/{z}/{x}/{y}.png` : null,
  };
}

export function rasterFeature(r: RasterRecord, tileCount: number): RasterFeature {
  const footprint = roundCoordinates(r.footprint);
  const lons = footprint.coordinates[0].map((p) => p[0]);
  const lats = footprint.coordinates[0].map((p) => p[1]);
  return {
    type: 'Feature', id: r.id,
    bbox: roundBbox([Math.min(...lons), Math.min(...lats), Math.max(...lons), Math.max(...lats)]),
    geometry: footprint,
    properties: rasterSummary(r, tileCount),
  };
}

/** How long the catalogue is reused: rasters change only on ingest, and tile features need it on every request. */
const CATALOG_TTL_MS = 2000;

/** The catalogue's records and tile counts, cached briefly; what tile features and raster routes read. */
export class RasterCatalog {
  private cached?: { rasters: Promise<Map<number, { record: RasterRecord; tileCount: number }>>; expires: number };

  constructor(private readonly store: Store) {}

  all(): Promise<Map<number, { record: RasterRecord; tileCount: number }>> {
    if (this.cached && this.cached.expires > Date.now()) return this.cached.rasters;
    const rasters = Promise.all([this.store.listRasters(), this.store.tileCounts()])
      .then(([records, counts]) => new Map(records.map((record) => [record.id, { record, tileCount: counts.get(record.id) ?? 0 }])));
    const entry = { rasters, expires: Date.now() + CATALOG_TTL_MS };
    this.cached = entry;
    rasters.catch(() => { if (this.cached === entry) this.cached = undefined; });
    return rasters;
  }

  async get(id: number): Promise<{ record: RasterRecord; tileCount: number }> {
    let hit = (await this.all()).get(id);
    // Just ingested: look again rather than wait out the cache.
    if (!hit) {
      this.cached = undefined;
      hit = (await this.all()).get(id);
    }
    if (!hit) throw new NotFoundError(`raster ${id} does not exist`);
    return hit;
  }

  /** Rasters whose footprint's bbox overlaps `bbox` (all when absent), in acquisition order, undated last, then by id. */
  async features(bbox?: BBox): Promise<RasterFeature[]> {
    const features = [...(await this.all()).values()].map(({ record, tileCount }) => rasterFeature(record, tileCount))
      .filter((f) => !bbox || (f.bbox![0] <= bbox[2] && f.bbox![2] >= bbox[0] && f.bbox![1] <= bbox[3] && f.bbox![3] >= bbox[1]));
    return features.sort((a, b) => (a.properties.date ?? '9999').localeCompare(b.properties.date ?? '9999') || a.properties.id - b.properties.id);
  }
}
