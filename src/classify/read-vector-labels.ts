import { existsSync, readFileSync } from 'node:fs';
import { extname } from 'node:path';
import proj4 from 'proj4';
import { coordEach } from '@turf/turf';
import * as shapefile from 'shapefile';
import type { FeatureCollection } from 'geojson';
import { UserError, errorMessage } from '../errors.ts';
import { WGS84, crsFromEpsg } from '../ingest/index.ts';

/**
 * Reads label polygons or points from GeoJSON or a shapefile, in WGS84 lon/lat: a shapefile's .prj names its CRS,
 * a GeoJSON `crs` member (old-style, as GDAL writes it) names one by EPSG code; plain GeoJSON is already WGS84.
 */
export async function readVectorLabels(path: string): Promise<FeatureCollection> {
  const ext = extname(path).toLowerCase();
  if (ext === '.shp') return readShapefile(path);
  if (ext === '.geojson' || ext === '.json') return readGeoJson(path);
  throw new UserError(`cannot read labels from ${path}: expected a GeoTIFF label raster, a GeoJSON file or a shapefile (.shp)`);
}

async function readShapefile(path: string): Promise<FeatureCollection> {
  const base = path.slice(0, -4);
  const dbf = existsSync(`${base}.dbf`) ? `${base}.dbf` : undefined;
  let fc: FeatureCollection;
  try {
    const encoding = existsSync(`${base}.cpg`) ? dbfEncoding(readFileSync(`${base}.cpg`, 'utf8')) : undefined;
    fc = (await shapefile.read(path, dbf, encoding ? { encoding } : undefined)) as FeatureCollection;
  } catch (err) {
    throw new UserError(`cannot read shapefile ${path}: ${errorMessage(err)}`);
  }
  if (!existsSync(`${base}.prj`)) {
    throw new UserError(`shapefile ${path} has no .prj file, so its coordinate system is unknown; add one (or convert it to GeoJSON in lon/lat)`);
  }
  return reprojected(fc, readFileSync(`${base}.prj`, 'utf8'), `${base}.prj`);
}

/** A .cpg code page as TextDecoder names it: ESRI writes things like "ISO 88591" or "UTF-8". */
function dbfEncoding(cpg: string): string | undefined {
  const code = cpg.trim().toLowerCase().replace(/[\s_-]/g, '');
  if (code === 'utf8') return 'utf-8';
  if (/^(iso)?88591$|^latin1$/.test(code)) return 'iso-8859-1';
  return /^\d+$/.test(code) ? `windows-${code}` : undefined;
}

function readGeoJson(path: string): FeatureCollection {
  let doc: FeatureCollection & { crs?: { properties?: { name?: string } } };
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UserError(`cannot read GeoJSON ${path}: ${errorMessage(err)}`);
  }
  if (doc.type !== 'FeatureCollection' || !Array.isArray(doc.features)) throw new UserError(`${path} is not a GeoJSON FeatureCollection`);
  const crsName = doc.crs?.properties?.name ?? '';
  const epsg = /EPSG:+(\d+)/i.exec(crsName)?.[1];
  return epsg && epsg !== '4326' ? reprojected(doc, crsFromEpsg(Number(epsg)).proj4, path) : doc;
}

function reprojected(fc: FeatureCollection, definition: string, source: string): FeatureCollection {
  let forward: (xy: number[]) => number[];
  try {
    forward = proj4(definition, WGS84).forward;
  } catch (err) {
    throw new UserError(`cannot understand the coordinate system in ${source}: ${errorMessage(err)}`);
  }
  coordEach(fc, (coord) => {
    const [lon, lat] = forward([coord[0], coord[1]]);
    coord[0] = lon;
    coord[1] = lat;
  });
  return fc;
}
