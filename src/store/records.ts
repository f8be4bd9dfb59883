import type { Polygon } from 'geojson';

/** Statistics of one band's valid pixels; training and inference normalize with them. */
export interface BandStats {
  /** 1-based band index in the source raster. */
  band: number;
  count: number;
  min: number;
  max: number;
  mean: number;
  std: number;
  p2: number;
  p98: number;
}

/** [minLon, minLat, maxLon, maxLat] in WGS84. */
export type BBox = [number, number, number, number];

export interface RasterRecord {
  id: number;
  uri: string;
  contentHash: string;
  sizeBytes: number;
  width: number;
  height: number;
  bandCount: number;
  dtype: string;
  nodata: number | null;
  epsg: number | null;
  crsDef: string | null;
  /** GDAL order: x0, pixel width, row rotation, y0, column rotation, pixel height. */
  geotransform: number[];
  /** False for rasters ingested with --allow-ungeoreferenced: their footprints are in pixel space. */
  georeferenced: boolean;
  footprint: Polygon;
  bandStats: BandStats[];
  tileSize: number;
  stride: number;
  ingestedAt: string;
  /** ISO date of acquisition, where GDAL metadata, the file name or the TIFF DateTime tag gave one. */
  acquiredOn: string | null;
  acquiredFrom: 'gdal-metadata' | 'file-name' | 'tiff-datetime' | null;
  /** The level of the file that was tiled: 0 for full resolution, n for its n-th largest overview. */
  overview: number;
}
export type NewRaster = Omit<RasterRecord, 'id' | 'ingestedAt' | 'acquiredOn' | 'acquiredFrom' | 'overview'> & Partial<Pick<RasterRecord, 'acquiredOn' | 'acquiredFrom' | 'overview'>>;

export interface TileRecord {
  id: number;
  rasterId: number;
  /** Pixel window: top-left column and row, and the side length. */
  x: number;
  y: number;
  size: number;
  footprint: Polygon;
  centerLon: number;
  centerLat: number;
  bbox: BBox;
  validFraction: number;
}
export type NewTile = Omit<TileRecord, 'id' | 'rasterId'>;

export interface ModelRecord {
  id: number;
  name: string;
  backbone: Record<string, unknown>;
  dim: number;
  /** 1-based source bands, in the order the model reads them. */
  bands: number[];
  tileSize: number;
  normalization: Record<string, unknown>;
  metrics: Record<string, unknown>;
  artifactPath: string;
  /** How the model's HNSW index holds its vectors (the table keeps float32 either way). */
  vectorType: VectorType;
  createdAt: string;
}
export type NewModel = Omit<ModelRecord, 'id' | 'createdAt' | 'vectorType'>;

/** pgvector's float32 `vector`, or `halfvec` (float16): half the index's size and memory. */
export type VectorType = 'vector' | 'halfvec';
export const VECTOR_TYPES: readonly VectorType[] = ['vector', 'halfvec'];

export interface StoreStatus {
  engine: 'pglite' | 'postgres';
  location: string;
  postgresVersion: string;
  pgvectorVersion: string;
  migrationLevel: number;
  pendingMigrations: string[];
  /** A hot standby: a read replica that takes no writes. */
  standby: boolean;
  counts: { rasters: number; tiles: number; models: number; embeddings: number; labelSets: number; labels: number; jobs: number };
}

/** A named set of tile labels; `classes` maps the stored class ids to names. */
export interface LabelSetRecord {
  id: number;
  name: string;
  /** Where the labels came from: the imported file's path. */
  source: string;
  classes: { id: number; name: string }[];
  createdAt: string;
}
export type NewLabelSet = Omit<LabelSetRecord, 'id' | 'createdAt'>;

export interface LabelRecord {
  tileId: number;
  classId: number;
  /** Share of the tile's labelled area that carries classId. */
  purity: number;
}
