import proj4 from 'proj4';
import { PNG } from 'pngjs';
import { UserError } from '../errors.ts';
import { crsToPixel, defaultRenderBands, encodePng, stretchRanges, type Raster, type WindowData } from '../ingest/index.ts';
import type { OpenRasters } from './open-rasters.ts';

/** Half the width of the Web Mercator world in metres (EPSG:3857). */
const HALF_WORLD = 20037508.342789244;
export const MAP_TILE_SIZE = 256;
/** The most source pixels one map tile may read; below the zoom where a tile needs more, tiles are refused. */
export const MAX_SOURCE_PIXELS = 4096 * 4096;
/** The largest error, in source pixels, allowed when source positions are interpolated between exact ones (GDAL's default). */
const MAX_APPROX_ERROR = 0.125;
/** Exact source positions every GRID_STEP output pixels; the rest interpolated when that stays within MAX_APPROX_ERROR. */
const GRID_STEP = 8;

export type Resampling = 'nearest' | 'bilinear';

/** EPSG:3857 bounds [minX, minY, maxX, maxY] of XYZ tile (z, x, y); y counts down from the north. */
export function mercatorTileBounds(z: number, x: number, y: number): [number, number, number, number] {
  const span = (2 * HALF_WORLD) / 2 ** z;
  return [-HALF_WORLD + x * span, HALF_WORLD - (y + 1) * span, -HALF_WORLD + (x + 1) * span, HALF_WORLD - y * span];
}

/** Metres of Web Mercator per pixel of a 256-px tile at zoom z. */
export function mercatorResolution(z: number): number {
  return (2 * HALF_WORLD) / MAP_TILE_SIZE / 2 ** z;
}

/** proj4 of Web Mercator (spherical, as EPSG:3857 is defined). */
const WEB_MERCATOR = '+proj=merc +a=6378137 +b=6378137 +lat_ts=0 +lon_0=0 +x_0=0 +y_0=0 +k=1 +units=m +nadgrids=@null +no_defs';

/** A function from Web Mercator metres to the raster's fractional pixel position. */
export function mercatorToPixel(raster: Pick<Raster, 'crs' | 'geotransform'>): (mx: number, my: number) => [number, number] {
  if (!raster.crs) throw new UserError('the raster is not georeferenced, so it has no place on the map');
  const toSource = proj4(WEB_MERCATOR, raster.crs.proj4);
  return (mx, my) => {
    const [x, y] = toSource.forward([mx, my]);
    return crsToPixel(raster.geotransform, x, y);
  };
}

/**
 * The source position of every output pixel's centre: exact at a grid of control points, interpolated in between
 * when the interpolation is within MAX_APPROX_ERROR at every cell centre (GDAL's approximate transformer does the
 * same), else exact everywhere. Positions that do not project are NaN.
 */
export function sourcePositions(toPixel: (mx: number, my: number) => [number, number], bounds: [number, number, number, number], size: number): { cols: Float64Array; rows: Float64Array } {
  const [minX, , maxX, maxY] = bounds;
  const res = (maxX - minX) / size;
  const at = (i: number, j: number): [number, number] => {
    const p = toPixel(minX + (i + 0.5) * res, maxY - (j + 0.5) * res);
    return Number.isFinite(p[0]) && Number.isFinite(p[1]) ? p : [NaN, NaN];
  };
  const cols = new Float64Array(size * size);
  const rows = new Float64Array(size * size);
  const n = Math.ceil(size / GRID_STEP) + 1;
  const grid = Array.from({ length: n * n }, (_, k) => at((k % n) * GRID_STEP, Math.floor(k / n) * GRID_STEP));
  const interpolate = (i: number, j: number): [number, number] => {
    const gi = Math.min(Math.floor(i / GRID_STEP), n - 2);
    const gj = Math.min(Math.floor(j / GRID_STEP), n - 2);
    const u = i / GRID_STEP - gi;
    const v = j / GRID_STEP - gj;
    const [a, b, c, d] = [grid[gj * n + gi], grid[gj * n + gi + 1], grid[(gj + 1) * n + gi], grid[(gj + 1) * n + gi + 1]];
    const mix = (k: 0 | 1) => (1 - v) * ((1 - u) * a[k] + u * b[k]) + v * ((1 - u) * c[k] + u * d[k]);
    return [mix(0), mix(1)];
  };
  let approximate = true;
  for (let gj = 0; gj < n - 1 && approximate; gj++) {
    for (let gi = 0; gi < n - 1; gi++) {
      const i = gi * GRID_STEP + GRID_STEP / 2;
      const j = gj * GRID_STEP + GRID_STEP / 2;
      const exact = at(i, j);
      const approx = interpolate(i, j);
      // NaN anywhere (a tile reaching past where the projection is defined) also lands here: exact is then needed.
      if (!(Math.abs(exact[0] - approx[0]) <= MAX_APPROX_ERROR && Math.abs(exact[1] - approx[1]) <= MAX_APPROX_ERROR)) {
        approximate = false;
        break;
      }
    }
  }
  for (let j = 0; j < size; j++) {
    for (let i = 0; i < size; i++) {
      const [c, r] = approximate ? interpolate(i, j) : at(i, j);
      cols[j * size + i] = c;
      rows[j * size + i] = r;
    }
  }
  return { cols, rows };
}

/**
 * Renders XYZ tile (z, x, y) of a raster's bands into Web Mercator, reading through the raster's block cache:
 * float samples per band and a validity mask, with pixels outside the raster or without data invalid (they become
 * transparent). Null when the tile does not touch the raster. Nearest takes the source pixel under each output
 * pixel's centre; bilinear weighs the four nearest source pixel centres, over the valid ones only.
 */
export async function warpToMercator(raster: Raster, tile: { z: number; x: number; y: number }, opts: { bands: number[]; resampling: Resampling; size?: number }): Promise<WindowData | null> {
  const size = opts.size ?? MAP_TILE_SIZE;
  const { cols, rows } = sourcePositions(mercatorToPixel(raster), mercatorTileBounds(tile.z, tile.x, tile.y), size);
  const { width: W, height: H } = raster;
  const inside = (c: number, r: number) => c >= 0 && c < W && r >= 0 && r < H;
  // The source window every inside output pixel needs, one pixel wider for bilinear's neighbours.
  let c0 = Infinity, r0 = Infinity, c1 = -Infinity, r1 = -Infinity;
  for (let p = 0; p < cols.length; p++) {
    if (!inside(cols[p], rows[p])) continue;
    c0 = Math.min(c0, cols[p]); c1 = Math.max(c1, cols[p]);
    r0 = Math.min(r0, rows[p]); r1 = Math.max(r1, rows[p]);
  }
  if (c0 === Infinity) return null;
  const x0 = Math.max(0, Math.floor(c0) - 1);
  const y0 = Math.max(0, Math.floor(r0) - 1);
  const x1 = Math.min(W, Math.floor(c1) + 2);
  const y1 = Math.min(H, Math.floor(r1) + 2);
  const w = x1 - x0;
  const h = y1 - y0;
  if (w * h > MAX_SOURCE_PIXELS) {
    throw new UserError(`zoom ${tile.z} is too far out for this raster: one tile would read ${w} x ${h} source pixels (at most ${MAX_SOURCE_PIXELS}); zoom in`, { status: 422 });
  }
  const src = await raster.readWindow({ x: x0, y: y0, w, h }, opts.bands);
  const out = opts.bands.map(() => new Float32Array(size * size));
  const valid = new Uint8Array(size * size);
  const acc = new Float64Array(out.length);
  let validCount = 0;
  const srcValid = (c: number, r: number) => c >= x0 && c < x1 && r >= y0 && r < y1 && src.valid[(r - y0) * w + (c - x0)] === 1;
  for (let p = 0; p < cols.length; p++) {
    const col = cols[p];
    const row = rows[p];
    if (!inside(col, row)) continue;
    if (opts.resampling === 'nearest') {
      const c = Math.floor(col);
      const r = Math.floor(row);
      if (!srcValid(c, r)) continue;
      const q = (r - y0) * w + (c - x0);
      for (let b = 0; b < out.length; b++) out[b][p] = src.data[b][q];
    } else {
      const u = col - 0.5;
      const v = row - 0.5;
      const ci = Math.floor(u);
      const ri = Math.floor(v);
      const fu = u - ci;
      const fv = v - ri;
      let total = 0;
      acc.fill(0);
      for (const [dc, dr, weight] of [[0, 0, (1 - fu) * (1 - fv)], [1, 0, fu * (1 - fv)], [0, 1, (1 - fu) * fv], [1, 1, fu * fv]] as const) {
        if (weight === 0 || !srcValid(ci + dc, ri + dr)) continue;
        const q = (ri + dr - y0) * w + (ci + dc - x0);
        for (let b = 0; b < out.length; b++) acc[b] += weight * src.data[b][q];
        total += weight;
      }
      if (total === 0) continue;
      for (let b = 0; b < out.length; b++) out[b][p] = acc[b] / total;
    }
    valid[p] = 1;
    validCount++;
  }
  return { window: { x: 0, y: 0, w: size, h: size }, bands: opts.bands, data: out, valid, validCount };
}

/** A fully transparent tile: the answer for tiles that do not touch the raster. */
let emptyTile: Buffer | undefined;
export function transparentTile(): Buffer {
  emptyTile ??= PNG.sync.write(new PNG({ width: MAP_TILE_SIZE, height: MAP_TILE_SIZE }));
  return emptyTile;
}

/** Web Mercator map tiles of catalogued rasters, read through the shared pool of open rasters and their block caches. */
export class RasterMapTiles {
  constructor(private readonly rasters: OpenRasters) {}

  /** A PNG with the 2-98 % stretch of the stored band statistics, so that every tile of a raster shares one stretch. */
  async render(rasterId: number, tile: { z: number; x: number; y: number }, opts: { bands?: number[]; resampling: Resampling }): Promise<Uint8Array> {
    return this.rasters.use(rasterId, async (raster, record) => {
      const bands = opts.bands ?? defaultRenderBands(record.bandCount);
      const data = await warpToMercator(raster, tile, { bands, resampling: opts.resampling });
      return data ? encodePng(data, stretchRanges(data, record.bandStats)) : transparentTile();
    });
  }
}
