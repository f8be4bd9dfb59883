import { existsSync, mkdirSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import type { Polygon } from 'geojson';
import { parquetWriteBuffer, schemaFromColumnData } from 'hyparquet-writer';
import { UserError } from '../errors.ts';
import { encodeGeoTiff, tileGrid, tileResolutionGeotransform } from '../ingest/index.ts';
import { requireOutputFolder, requireParentFolder } from '../paths.ts';
import type { RasterRecord, Store, TileRecord } from '../store/index.ts';
import { writeFileAtomic } from '../paths.ts';
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

/** The name of an embedding band and of its GeoParquet column: emb_000, emb_001, ... */
export const embeddingBandName = (d: number) => `emb_${String(d).padStart(3, '0')}`;

/**
 * GeoParquet 1.1: WKB footprints in WGS84 (OGC:CRS84), tile id, raster URI, the raster's acquisition date (DATE,
 * null where none is known), pixel window, the 1.1 bbox covering column (a struct of xmin, ymin, xmax, ymax, declared
 * under the geometry's `covering`), and the embedding as one FLOAT column per dimension (emb_000, emb_001, ...),
 * which every Parquet reader handles.
 */
export function encodeGeoParquet(rows: EmbeddedTile[], dim: number, modelName: string): ArrayBuffer {
  const bbox = rows.reduce<[number, number, number, number]>(
    (b, r) => [Math.min(b[0], r.tile.bbox[0]), Math.min(b[1], r.tile.bbox[1]), Math.max(b[2], r.tile.bbox[2]), Math.max(b[3], r.tile.bbox[3])],
    [Infinity, Infinity, -Infinity, -Infinity],
  );
  const geo = {
    version: '1.1.0',
    primary_column: 'geometry',
    columns: {
      geometry: {
        encoding: 'WKB',
        geometry_types: ['Polygon'],
        ...(rows.length ? { bbox } : {}),
        covering: { bbox: { xmin: ['bbox', 'xmin'], ymin: ['bbox', 'ymin'], xmax: ['bbox', 'xmax'], ymax: ['bbox', 'ymax'] } },
      },
    },
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
      name: embeddingBandName(d),
      data: Float32Array.from(rows, (r) => r.vector[d]),
      type: 'FLOAT' as const,
      nullable: false,
    })),
  ];
  // The date and the bbox struct need schema elements of their own (a DATE logical type, a group of four DOUBLEs);
  // they follow the raster URI and the geometry.
  const schema = schemaFromColumnData({ columnData });
  const at = (name: string) => schema.findIndex((e) => e.name === name) + 1;
  schema.splice(at('raster_uri'), 0, { name: 'date', type: 'INT32', repetition_type: 'OPTIONAL', converted_type: 'DATE', logical_type: { type: 'DATE' } });
  schema.splice(at('geometry'), 0,
    { name: 'bbox', repetition_type: 'REQUIRED', num_children: 4 },
    ...(['xmin', 'ymin', 'xmax', 'ymax'] as const).map((name) => ({ name, type: 'DOUBLE' as const, repetition_type: 'REQUIRED' as const })));
  schema[0].num_children = columnData.length + 2;
  const dateData = rows.map((r) => (r.raster.acquiredOn ? new Date(`${r.raster.acquiredOn.slice(0, 10)}T00:00:00Z`) : null));
  const bboxData = rows.map((r) => ({ xmin: r.tile.bbox[0], ymin: r.tile.bbox[1], xmax: r.tile.bbox[2], ymax: r.tile.bbox[3] }));
  const uriAt = columnData.findIndex((c) => c.name === 'raster_uri') + 1;
  const withExtras = [
    ...columnData.slice(0, uriAt),
    { name: 'date', data: dateData },
    ...columnData.slice(uriAt, uriAt + 4),
    { name: 'bbox', data: bboxData },
    ...columnData.slice(uriAt + 4),
  ].map(({ name, data }) => ({ name, data }));
  return parquetWriteBuffer({
    schema,
    columnData: withExtras,
    kvMetadata: [{ key: 'geo', value: JSON.stringify(geo) }, { key: 'tilevec.model', value: modelName }],
    createdBy: 'tilevec',
  });
}

/**
 * An embedding raster per source raster, in the spirit of AlphaEarth's embedding COGs: one float32 band per
 * dimension at tile resolution (one pixel per stride step, centred on its tile), in the source raster's CRS,
 * NaN where a tile was skipped.
 */
export function embeddingRaster(raster: RasterRecord, rows: EmbeddedTile[], dim: number, modelName: string, inputBands: number[]) {
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
    bandDescriptions: Array.from({ length: dim }, (_, d) => embeddingBandName(d)),
    metadata: {
      TILEVEC_MODEL: modelName,
      TILEVEC_SOURCE: raster.uri,
      TILEVEC_INPUT_BANDS: inputBands.join(','),
      TILEVEC_TILE_SIZE: String(raster.tileSize),
      TILEVEC_STRIDE: String(raster.stride),
      ...(raster.acquiredOn ? { TILEVEC_ACQUIRED: raster.acquiredOn.slice(0, 10) } : {}),
    },
  };
}

/** A raster's file name without folder or extension: a local path's or a URL's last segment. */
function sourceStem(uri: string): string {
  let name = uri;
  try {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) name = decodeURIComponent(new URL(uri).pathname);
  } catch { /* not a URL after all */ }
  const base = basename(name.replace(/\/+$/, ''));
  return (base.slice(0, base.length - extname(base).length) || base || 'raster').replace(/[^\w.-]+/g, '_');
}

/**
 * The embedding GeoTIFF names: `<source-stem>.<model>.emb.tif`, with `-r<raster id>` after the stem of every source
 * whose stem another exported source shares (the same file name in two folders).
 */
export function embeddingFileNames(rasters: RasterRecord[], modelName: string): Map<number, string> {
  const model = modelName.replace(/[^\w.-]+/g, '_');
  const stems = new Map(rasters.map((r) => [r.id, sourceStem(r.uri)]));
  const counts = new Map<string, number>();
  for (const s of stems.values()) counts.set(s.toLowerCase(), (counts.get(s.toLowerCase()) ?? 0) + 1);
  return new Map(rasters.map((r) => {
    const stem = stems.get(r.id)!;
    return [r.id, `${stem}${counts.get(stem.toLowerCase())! > 1 ? `-r${r.id}` : ''}.${model}.emb.tif`];
  }));
}

/**
 * Writes a model's embeddings as GeoParquet (one file) or as embedding GeoTIFFs (one per raster: `out` itself for
 * a single raster, unless it is a folder, else `out/<source-stem>.<model>.emb.tif`; see embeddingFileNames).
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
    const many = rasters.length > 1 || (existsSync(opts.out) && statSync(opts.out).isDirectory());
    if (many) prepareRasterFolder(opts.out, rasters.length);
    else requireOutputFolder(opts.out, '--out');
    const names = embeddingFileNames(rasters, record.name);
    for (const raster of rasters) {
      const path = many ? join(opts.out, names.get(raster.id)!) : opts.out;
      writeFileAtomic(path, [encodeGeoTiff(embeddingRaster(raster, rows.filter((r) => r.raster.id === raster.id), record.dim, record.name, record.bands))]);
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
