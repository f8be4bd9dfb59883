import { UserError } from '../errors.ts';

/** A neighborhood radius as the user gave it: pixels (`12`, `12px`) or metres (`100m`). */
export type Radius = { unit: 'px'; value: number } | { unit: 'm'; value: number };

export function parseRadius(text: string | number): Radius {
  if (typeof text === 'number') return checked({ unit: 'px', value: text }, String(text));
  const m = /^\s*(\d+(?:\.\d+)?)\s*(px|m)?\s*$/i.exec(text);
  if (!m) throw new UserError(`neighborhood '${text}' is not a radius: give pixels (32, 32px) or metres (100m)`);
  return checked({ unit: (m[2]?.toLowerCase() ?? 'px') as 'px' | 'm', value: Number(m[1]) }, text);
}

function checked(r: Radius, text: string): Radius {
  if (!Number.isFinite(r.value) || r.value < 0) throw new UserError(`neighborhood '${text}' must be a non-negative number of pixels or metres`);
  if (r.unit === 'px' && !Number.isInteger(r.value)) throw new UserError(`neighborhood '${text}' in pixels must be a whole number`);
  return r;
}

export function formatRadius(r: Radius): string {
  return `${r.value}${r.unit}`;
}

/** Ground size of one pixel along x and y, in metres. */
export interface PixelSizeMetres {
  x: number;
  y: number;
}

/** Metres per degree of longitude and latitude near `lat`, for rasters in geographic coordinates. */
function metresPerDegree(lat: number): { lon: number; lat: number } {
  const phi = (lat * Math.PI) / 180;
  return {
    lon: 111412.84 * Math.cos(phi) - 93.5 * Math.cos(3 * phi),
    lat: 111132.92 - 559.82 * Math.cos(2 * phi) + 1.175 * Math.cos(4 * phi),
  };
}

/**
 * Pixel size in metres from a GDAL geotransform. Geographic rasters (degrees) convert at the raster's centre
 * latitude, which is close enough for a sampling radius.
 */
export function pixelSizeMetres(geotransform: number[], opts: { geographic: boolean; height: number }): PixelSizeMetres {
  const [, dx, rx, y0, ry, dy] = geotransform;
  const sx = Math.hypot(dx, ry);
  const sy = Math.hypot(rx, dy);
  if (!opts.geographic) return { x: sx, y: sy };
  const m = metresPerDegree(y0 + (dy * opts.height) / 2);
  return { x: sx * m.lon, y: sy * m.lat };
}

/**
 * The radius in whole pixels along each axis: metres divide by the pixel size and round down, so a neighbor is
 * never farther than the metres asked for. Below one pixel the neighbor would be the anchor itself: an error.
 */
export function radiusPixels(r: Radius, pixelSize: PixelSizeMetres | null, rasterLabel: string): { x: number; y: number } {
  if (r.unit === 'px') {
    if (r.value < 1) throw new UserError(`neighborhood ${formatRadius(r)} is too small for any neighbor: it must be at least 1 pixel`);
    return { x: r.value, y: r.value };
  }
  if (!pixelSize) throw new UserError(`neighborhood ${formatRadius(r)} is in metres but ${rasterLabel} is not georeferenced; give it in pixels`);
  const px = { x: Math.floor(r.value / pixelSize.x + 1e-9), y: Math.floor(r.value / pixelSize.y + 1e-9) };
  if (px.x < 1 || px.y < 1) {
    throw new UserError(
      `neighborhood ${formatRadius(r)} is too small for any neighbor in ${rasterLabel}: its pixels are ` +
        `${round(pixelSize.x)} x ${round(pixelSize.y)} m, so the radius is under 1 pixel; give at least ${Math.ceil(Math.max(pixelSize.x, pixelSize.y))}m`,
    );
  }
  return px;
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}
