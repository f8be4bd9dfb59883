import type { Polygon } from 'geojson';
import type { BBox } from '../store/records.ts';

/** GDAL order: x0, pixel width, row rotation, y0, column rotation, pixel height (negative for north-up). */
export type Geotransform = [number, number, number, number, number, number];

/** The identity transform ungeoreferenced rasters get: CRS coordinates are pixel coordinates. */
export const PIXEL_SPACE: Geotransform = [0, 1, 0, 0, 0, 1];

export interface GeorefTags {
  ModelPixelScale?: ArrayLike<number>;
  ModelTiepoint?: ArrayLike<number>;
  ModelTransformation?: ArrayLike<number>;
  /** GTRasterTypeGeoKey: 1 PixelIsArea (default), 2 PixelIsPoint. */
  rasterType?: number;
}

/**
 * The geotransform from ModelTransformation or from a tiepoint plus ModelPixelScale, or null when the file has
 * neither. PixelIsPoint rasters are shifted half a pixel, as GDAL does, so that geotransforms agree with it.
 */
export function geotransformFromTags(tags: GeorefTags): Geotransform | null {
  let gt: Geotransform | null = null;
  const m = tags.ModelTransformation;
  if (m && m.length >= 16) {
    gt = [m[3], m[0], m[1], m[7], m[4], m[5]];
  } else if (tags.ModelTiepoint && tags.ModelTiepoint.length >= 6 && tags.ModelPixelScale && tags.ModelPixelScale.length >= 2) {
    const [i, j, , x, y] = Array.from(tags.ModelTiepoint);
    const [sx, sy] = Array.from(tags.ModelPixelScale);
    gt = [x - i * sx, sx, 0, y + j * sy, 0, -sy];
  }
  if (!gt || !gt.every(Number.isFinite) || gt[1] * gt[5] - gt[2] * gt[4] === 0) return null;
  if (tags.rasterType === 2) {
    gt[0] -= 0.5 * gt[1] + 0.5 * gt[2];
    gt[3] -= 0.5 * gt[4] + 0.5 * gt[5];
  }
  return gt;
}

/**
 * The geotransform of the same extent sampled `sx` times coarser across and `sy` times down (an overview, or a
 * grid of tiles): the origin stays, the column terms scale by sx and the row terms by sy, as GDAL derives an
 * overview's transform from its full image.
 */
export function scaleGeotransform(gt: Readonly<Geotransform>, sx: number, sy: number): Geotransform {
  return [gt[0], gt[1] * sx, gt[2] * sy, gt[3], gt[4] * sx, gt[5] * sy];
}

/** CRS coordinates of a pixel corner (col, row may be fractional; (0, 0) is the raster's top-left corner). */
export function applyGeotransform(gt: Readonly<Geotransform> | readonly number[], col: number, row: number): [number, number] {
  return [gt[0] + col * gt[1] + row * gt[2], gt[3] + col * gt[4] + row * gt[5]];
}

/** The inverse of `applyGeotransform`: fractional pixel (col, row) of CRS (x, y), rotation terms or not. */
export function crsToPixel(gt: Readonly<Geotransform> | readonly number[], x: number, y: number): [number, number] {
  const det = gt[1] * gt[5] - gt[2] * gt[4];
  const dx = x - gt[0];
  const dy = y - gt[3];
  return [(dx * gt[5] - dy * gt[2]) / det, (dy * gt[1] - dx * gt[4]) / det];
}

/** Points along each edge of a footprint: enough that a reprojected rectangle keeps its curved edges. */
const EDGE_POINTS = 4;

/**
 * The footprint of a pixel window as an RFC 7946 polygon: `toLonLat` maps pixel (col, row) to [lon, lat]; the
 * ring is closed and counter-clockwise, whichever way the raster's axes point.
 */
export function windowFootprint(
  win: { x: number; y: number; w: number; h: number },
  toLonLat: (col: number, row: number) => [number, number],
  edgePoints = EDGE_POINTS,
): Polygon {
  const { x, y, w, h } = win;
  const ring: [number, number][] = [];
  const edge = (c0: number, r0: number, c1: number, r1: number) => {
    for (let i = 0; i < edgePoints; i++) {
      const t = i / edgePoints;
      ring.push(toLonLat(c0 + (c1 - c0) * t, r0 + (r1 - r0) * t));
    }
  };
  edge(x, y, x, y + h);
  edge(x, y + h, x + w, y + h);
  edge(x + w, y + h, x + w, y);
  edge(x + w, y, x, y);
  ring.push([...ring[0]] as [number, number]);
  if (signedArea(ring) < 0) ring.reverse();
  return { type: 'Polygon', coordinates: [ring] };
}

/** Twice the signed area (positive for counter-clockwise in lon/lat axes). */
export function signedArea(ring: ArrayLike<ArrayLike<number>>): number {
  let s = 0;
  for (let i = 0; i + 1 < ring.length; i++) s += ring[i][0] * ring[i + 1][1] - ring[i + 1][0] * ring[i][1];
  return s;
}

/** Whether every vertex is a finite WGS84 longitude and latitude (RFC 7946 needs them; proj4 may give NaN or 1e300). */
export function footprintValid(p: Polygon): boolean {
  return p.coordinates[0].every(([lon, lat]) => Number.isFinite(lon) && Number.isFinite(lat) && Math.abs(lon) <= 180 && Math.abs(lat) <= 90);
}

export function polygonBbox(p: Polygon): BBox {
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (const [x, y] of p.coordinates[0]) {
    minX = Math.min(minX, x);
    minY = Math.min(minY, y);
    maxX = Math.max(maxX, x);
    maxY = Math.max(maxY, y);
  }
  return [minX, minY, maxX, maxY];
}
