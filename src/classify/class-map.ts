import { writeFileSync } from 'node:fs';
import type { Feature, FeatureCollection, Polygon } from 'geojson';
import { UserError } from '../errors.ts';
import { encodeGeoTiff, tileResolutionGeotransform, type GeoTiffImage } from '../ingest/index.ts';
import type { RasterRecord, TileRecord } from '../store/index.ts';
import { proj4ForRaster } from './crs.ts';
import type { LabelClass } from './labels-types.ts';
import { classColor } from './palette.ts';
import type { TilePrediction } from './classify-tiles.ts';

export const CLASS_MAP_NODATA = 255;

/**
 * Predictions of one raster's tiles as a raster at tile resolution: one pixel per stride step, centred on its
 * tile (so with stride = tile size a pixel is exactly a tile). Class ids 0..254 are written as they are; larger
 * ids (CCAP-style codes) are written as their 1-based position in `classes`.
 */
export function classMapRaster(raster: RasterRecord, tiles: TileRecord[], predictions: TilePrediction[], classes: LabelClass[]): GeoTiffImage & { bands: [Uint8Array] } {
  if (!raster.georeferenced || !raster.epsg) {
    throw new UserError(`raster ${raster.uri} has no EPSG code, so a georeferenced GeoTIFF cannot name its CRS; write GeoJSON instead (--out map.geojson)`);
  }
  if (raster.geotransform[2] !== 0 || raster.geotransform[4] !== 0) throw new UserError(`raster ${raster.uri} is rotated; write GeoJSON instead (--out map.geojson)`);
  const direct = classes.every((c) => c.id >= 0 && c.id < CLASS_MAP_NODATA);
  const valueOf = new Map(classes.map((c, i) => [c.id, direct ? c.id : i + 1]));
  if (tiles.length === 0) throw new UserError(`raster ${raster.uri} has no tiles to map`);
  const stride = raster.stride;
  // One pass, not Math.min(...tiles): spreading an argument per tile overflows the stack past about 100k tiles.
  let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
  for (const t of tiles) {
    x0 = Math.min(x0, t.x);
    y0 = Math.min(y0, t.y);
    x1 = Math.max(x1, t.x);
    y1 = Math.max(y1, t.y);
  }
  const width = (x1 - x0) / stride + 1;
  const height = (y1 - y0) / stride + 1;
  const values = new Uint8Array(width * height).fill(CLASS_MAP_NODATA);
  const tileById = new Map(tiles.map((t) => [t.id, t]));
  for (const p of predictions) {
    const t = tileById.get(p.tileId);
    if (!t) continue;
    values[((t.y - y0) / stride) * width + (t.x - x0) / stride] = valueOf.get(p.classId) ?? CLASS_MAP_NODATA;
  }
  return {
    width,
    height,
    bands: [values],
    geotransform: tileResolutionGeotransform(raster.geotransform, { size: raster.tileSize, stride }, x0, y0),
    epsg: raster.epsg,
    geographic: /\+proj=longlat/.test(proj4ForRaster(raster) ?? ''),
    nodata: CLASS_MAP_NODATA,
    colors: new Map(classes.map((c, i) => [valueOf.get(c.id)!, classColor(i)])),
  };
}

/** Writes a class map as a paletted one-band GeoTIFF that GDAL reads. */
export function writeClassGeoTiff(path: string, map: GeoTiffImage): void {
  writeFileSync(path, encodeGeoTiff(map));
}

/** Predictions as tile footprints with class id, name and probability. */
export function classMapGeoJson(tiles: TileRecord[], predictions: TilePrediction[]): FeatureCollection<Polygon> {
  const tileById = new Map(tiles.map((t) => [t.id, t]));
  const features: Feature<Polygon>[] = predictions.flatMap((p) => {
    const t = tileById.get(p.tileId);
    return t ? [{ type: 'Feature' as const, geometry: t.footprint, properties: { tileId: p.tileId, classId: p.classId, className: p.className, probability: p.probability } }] : [];
  });
  return { type: 'FeatureCollection', features };
}
