import type { Geotransform } from './georef.ts';
import type { PixelWindow } from './raster.ts';

export interface TileGrid {
  size: number;
  stride: number;
  /** Tile columns and rows that fit wholly inside the raster. */
  cols: number;
  rows: number;
  /** Grid positions whose tile would reach past the right or bottom edge; they are skipped. */
  edgeSkipped: number;
}

/**
 * The regular grid of `size` x `size` windows at `stride`, from the top-left corner. Every position whose
 * top-left pixel lies in the raster is a grid cell; those that do not fit wholly are partial edge tiles.
 */
export function tileGrid(width: number, height: number, size: number, stride: number): TileGrid {
  const fit = (n: number) => (n >= size ? Math.floor((n - size) / stride) + 1 : 0);
  const cols = fit(width);
  const rows = fit(height);
  const positions = Math.ceil(width / stride) * Math.ceil(height / stride);
  return { size, stride, cols, rows, edgeSkipped: positions - cols * rows };
}

export function gridWindow(grid: TileGrid, col: number, row: number): PixelWindow {
  return { x: col * grid.stride, y: row * grid.stride, w: grid.size, h: grid.size };
}

/**
 * The geotransform of a raster at tile resolution: one pixel per stride step, centred on its tile (with stride =
 * tile size a pixel is exactly a tile), the first pixel on the tile whose top-left pixel is (x0, y0). North-up only.
 */
export function tileResolutionGeotransform(gt: readonly number[], grid: Pick<TileGrid, 'size' | 'stride'>, x0 = 0, y0 = 0): Geotransform {
  const [gx, pw, , gy, , ph] = gt;
  const inset = (grid.size - grid.stride) / 2;
  return [gx + (x0 + inset) * pw, grid.stride * pw, 0, gy + (y0 + inset) * ph, 0, grid.stride * ph];
}
