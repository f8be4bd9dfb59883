import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Polygon } from 'geojson';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { UserError } from '../errors.ts';
import { encodeGeoTiff, tileGrid, tileResolutionGeotransform } from '../ingest/index.ts';
import { requireOutputFolder, requireParentFolder } from '../paths.ts';
import type { RasterRecord, Store, TileRecord } from '../store/index.ts';
import { writeFileAtomic } from '../train/tensor-file.ts';
import { resolveModel } from './model-ref.ts';

export type ExportFormat = 'geoparquet' | 'geotiff';

export interface ExportSummary {
  model: string;
  format: ExportFormat;
  files: string[];
  tiles: number;
  dim: number;
}

/** A polygon as ISO WKB (little-endian), the encoding GeoParquet's geometry column uses. */
export function polygonWkb(polygon: Polygon): Uint8Array {
  const rings = polygon.coordinates;
  const size = 1 + 4 + 4 + rings.reduce((s, r) => s + 4 + r.length * 16, 0);
  const buf = new Uint8Array(size);
  const view = new DataView(buf.buffer);
  let p = 0;
  view.setUint8(p, 1); p += 1;
  view.setUint32(p, 3, true); p += 4;
  view.setUint32(p, rings.length, true); p += 4;
  for (const ring of rings) {
    view.setUint32(p, ring.length, true); p += 4;
    for (const [x, y] of ring) {
      view.setFloat64(p, x, true); p += 8;
      view.setFloat64(p, y, true); p += 8;
    }
  }
  return buf;
}

interface EmbeddedTile {
  tile: TileRecord;
  raster: RasterRecord;
  vector: Float32Array;
}

async function embeddedTiles(store: Store, modelId: number, rasterIds?: number[]): Promise<EmbeddedTile[]> {
  const rasters = rasterIds ? await Promise.all(rasterIds.map((id) => store.raster(id))) : await store.listRasters();
  const out: EmbeddedTile[] = [];
  for (const raster of rasters) {
    const tiles = await store.tilesOfRaster(raster.id);
    const vectors = await store.embeddingsOf(modelId, tiles.map((t) => t.id));
    for (const tile of tiles) {
      const vector = vectors.get(tile.id);
      if (vector) out.push({ tile, raster, vector });
    }
  }
  return out;
}

/**
 * GeoParquet 1.1: WKB footprints in WGS84 (OGC:CRS84), tile id, raster URI, pixel window, and the embedding as one
 * FLOAT column per dimension (emb_000, emb_001, ...), which every Parquet reader handles.
 */
export function encodeGeoParquet(rows: EmbeddedTile[], dim: number, modelName: string): ArrayBuffer {
  const bbox = rows.reduce<[number, number, number, number]>(
    (b, r) => [Math.min(b[0], r.tile.bbox[0]), Math.min(b[1], r.tile.bbox[1]), Math.max(b[2], r.tile.bbox[2]), Math.max(b[3], r.tile.bbox[3])],
    [Infinity, Infinity, -Infinity, -Infinity],
  );
  const geo = {
    version: '1.1.0',
    primary_column: 'geometry',
    columns: { geometry: { encoding: 'WKB', geometry_types: ['Polygon'], ...(rows.length ? { bbox } : {}) } },
  };
  const columnData = [
    { name: 'tile_id', data: rows.map((r) => BigInt(r.tile.id)), type: 'INT64' as const, nullable: false },
    { name: 'raster_id', data: rows.map((r) => r.raster.id), type: 'INT32' as const, nullable: false },
    { name: 'raster_uri', data: rows.map((r) => r.raster.uri), type: 'STRING' as const, nullable: false },
    { name: 'x', data: rows.map((r) => r.tile.x), type: 'INT32' as const, nullable: false },
    { name: 'y', data: rows.map((r) => r.tile.y), type: 'INT32' as const, nullable: false },
    { name: 'size', data: rows.map((r) => r.tile.size), type: 'INT32' as const, nullable: false },
    { name: 'geometry', data: rows.map((r) => polygonWkb(r.tile.footprint)), type: 'BYTE_ARRAY' as const, nullable: false },
    ...Array.from({ length: dim }, (_, d) => ({
      name: `emb_${String(d).padStart(3, '0')}`,
      data: Float32Array.from(rows, (r) => r.vector[d]),
      type: 'FLOAT' as const,
      nullable: false,
    })),
  ];
  return parquetWriteBuffer({
    columnData,
    kvMetadata: [{ key: 'geo', value: JSON.stringify(geo) }, { key: 'tilevec.model', value: modelName }],
    createdBy: 'tilevec',
  });
}

/**
 * An embedding raster per source raster, in the spirit of AlphaEarth's embedding COGs: one float32 band per
 * dimension at tile resolution (one pixel per stride step, centred on its tile), in the source raster's CRS,
 * NaN where a tile was skipped.
 */
export function embeddingRaster(raster: RasterRecord, rows: EmbeddedTile[], dim: number) {
  if (!raster.georeferenced || !raster.epsg) throw new UserError(`raster ${raster.id} (${raster.uri}) has no EPSG code, so its embedding raster cannot be georeferenced; export geoparquet instead`);
  if (raster.geotransform[2] !== 0 || raster.geotransform[4] !== 0) throw new UserError(`raster ${raster.id} (${raster.uri}) is rotated; export geoparquet instead`);
  const grid = tileGrid(raster.width, raster.height, raster.tileSize, raster.stride);
  const [width, height] = [grid.cols, grid.rows];
  const bands = Array.from({ length: dim }, () => new Float32Array(width * height).fill(NaN));
  for (const { tile, vector } of rows) {
    const at = (tile.y / grid.stride) * width + tile.x / grid.stride;
    for (let d = 0; d < dim; d++) bands[d][at] = vector[d];
  }
  return {
    width,
    height,
    bands,
    geotransform: tileResolutionGeotransform(raster.geotransform, grid),
    epsg: raster.epsg,
    geographic: /\+proj=longlat\b/.test(raster.crsDef ?? ''),
    nodata: NaN,
  };
}

/**
 * Writes a model's embeddings as GeoParquet (one file) or as embedding GeoTIFFs (one per raster: `out` itself for
 * a single raster, else `out/raster-<id>.tif`).
 */
export async function exportEmbeddings(store: Store, opts: { model?: string; format: ExportFormat; out: string; rasterIds?: number[] }): Promise<ExportSummary> {
  requireParentFolder(opts.out, '--out');
  const { record } = await resolveModel(store, opts.model);
  const rows = await embeddedTiles(store, record.id, opts.rasterIds);
  if (rows.length === 0) throw new UserError(`model '${record.name}' has no embeddings for these rasters yet; run tilevec embed --model ${record.name} first`);
  const files: string[] = [];
  if (opts.format === 'geoparquet') {
    writeFileAtomic(requireOutputFolder(opts.out, '--out'), [new Uint8Array(encodeGeoParquet(rows, record.dim, record.name))]);
    files.push(opts.out);
  } else {
    const rasters = [...new Map(rows.map((r) => [r.raster.id, r.raster])).values()];
    const many = rasters.length > 1;
    if (many) prepareRasterFolder(opts.out, rasters.length);
    else requireOutputFolder(opts.out, '--out');
    for (const raster of rasters) {
      const path = many ? join(opts.out, `raster-${raster.id}.tif`) : opts.out;
      writeFileAtomic(path, [encodeGeoTiff(embeddingRaster(raster, rows.filter((r) => r.raster.id === raster.id), record.dim))]);
      files.push(path);
    }
  }
  return { model: record.name, format: opts.format, files, tiles: rows.length, dim: record.dim };
}

/**
 * The folder that takes one embedding GeoTIFF per raster: made if missing (its parent must exist), but never from a
 * name that reads as a file, which would silently become a folder called `all.tif`.
 */
function prepareRasterFolder(out: string, rasters: number): void {
  const advice = `${rasters} rasters make ${rasters} embedding GeoTIFFs: pass a directory for --out, or one raster with --rasters <id>`;
  if (existsSync(out)) {
    if (!statSync(out).isDirectory()) throw new UserError(`--out ${out} is a file, but ${advice}`);
    return;
  }
  if (/\.tiff?$/i.test(out)) throw new UserError(`--out ${out} names a file, but ${advice}`);
  mkdirSync(out);
}
