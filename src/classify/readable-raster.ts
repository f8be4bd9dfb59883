import { fromFile, type GeoTIFFImage } from 'geotiff';
import { UserError, errorMessage } from '../errors.ts';
import { proj4ForEpsg } from './crs.ts';

/**
 * The part of a raster this module reads: shape, georeferencing and windows of samples. It is the subset of
 * `src/ingest`'s `Raster` that classification needs; until ingest exports `openRaster` from its index, this
 * reads files with geotiff.js.
 */
export interface ReadableRaster {
  uri: string;
  width: number;
  height: number;
  bandCount: number;
  nodata: number | null;
  /** GDAL order: x0, pixel width, row rotation, y0, column rotation, pixel height. */
  geotransform: number[];
  epsg: number | null;
  /** proj4 definition of the CRS, or null when the file names none. */
  proj4: string | null;
  /** One row-major array of w*h samples per requested band (1-based); the window must lie inside the raster. */
  readWindow(win: { x: number; y: number; w: number; h: number }, bands?: number[]): Promise<ArrayLike<number>[]>;
}

export async function openReadableRaster(path: string): Promise<ReadableRaster> {
  let image: GeoTIFFImage;
  try {
    image = await (await fromFile(path)).getImage();
  } catch (err) {
    throw new UserError(`cannot read raster ${path}: ${errorMessage(err)}`);
  }
  const [x0, y0] = image.getOrigin();
  const [pw, ph] = image.getResolution();
  const keys = (image.getGeoKeys() ?? {}) as Record<string, unknown>;
  const epsg = epsgOf(keys);
  return {
    uri: path,
    width: image.getWidth(),
    height: image.getHeight(),
    bandCount: image.getSamplesPerPixel(),
    nodata: image.getGDALNoData(),
    geotransform: [x0, pw, 0, y0, 0, ph],
    epsg,
    proj4: epsg ? proj4ForEpsg(epsg) : esriWktOf(keys),
    async readWindow(win, bands) {
      const samples = (bands ?? Array.from({ length: image.getSamplesPerPixel() }, (_, i) => i + 1)).map((b) => b - 1);
      const data = await image.readRasters({ window: [win.x, win.y, win.x + win.w, win.y + win.h], samples, interleave: false });
      return Array.from(data as unknown as ArrayLike<number>[]);
    },
  };
}

function epsgOf(keys: Record<string, unknown>): number | null {
  for (const name of ['ProjectedCSTypeGeoKey', 'GeographicTypeGeoKey']) {
    const code = keys[name];
    if (typeof code === 'number' && code > 0 && code !== 32767) return code;
    if (name === 'ProjectedCSTypeGeoKey' && code === 32767) return null; // user-defined projection: not the datum's code
  }
  return null;
}

/** ESRI exports a user-defined CRS as WKT in the citation key ("ESRI PE String = PROJCS[...]"), which proj4 parses. */
function esriWktOf(keys: Record<string, unknown>): string | null {
  for (const name of ['PCSCitationGeoKey', 'GTCitationGeoKey']) {
    const text = keys[name];
    if (typeof text === 'string' && text.includes('PROJCS[')) return text.slice(text.indexOf('PROJCS['));
  }
  return null;
}
