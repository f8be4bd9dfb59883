import { UserError } from '../errors.ts';
import type { Raster } from '../ingest/index.ts';
import type { BBox, RasterRecord, TileRecord } from '../store/index.ts';
import { applyGeotransform, crsToPixel, WGS84 } from '../ingest/index.ts';
import { proj4ForRaster, transformer } from './crs.ts';
import { bboxesOverlap, formatBbox, projectedPixelBbox } from './extent.ts';
import { acceptLabel, majorityLabel, type LabelThresholds } from './majority-label.ts';
import type { TileLabel } from './labels-types.ts';

/** An ingested image raster with the tiles to label. */
export interface RasterTiles {
  raster: Pick<RasterRecord, 'id' | 'uri' | 'geotransform' | 'epsg' | 'crsDef' | 'footprint'>;
  tiles: Pick<TileRecord, 'id' | 'x' | 'y' | 'size'>[];
}

export interface RasterLabelOptions extends LabelThresholds {
  /** Class ids to keep; other values count as invalid like nodata. All values but nodata when absent. */
  classIds?: ReadonlySet<number>;
  /** Samples per tile side at most (default 128); beyond that tiles are sampled on a regular sub-grid. */
  maxSamplesPerSide?: number;
}

/**
 * Labels tiles from a label raster: each tile takes the majority class of the valid label pixels under its
 * footprint. Image pixel centres are carried into the label raster's CRS and read there (nearest pixel), so
 * label rasters on another grid or in another CRS work the same as ones on the image grid.
 */
export async function labelTilesFromRaster(labels: Raster, sets: RasterTiles[], opts: RasterLabelOptions = {}): Promise<TileLabel[]> {
  if (!labels.crs) throw new UserError(`label raster ${labels.uri} names no coordinate reference system, so it cannot be matched to the imagery`);
  const labelProj = labels.crs.proj4;
  const labelToWgs = transformer(labelProj, WGS84);
  const labelExtent = projectedPixelBbox(labels.width, labels.height, (c, r) => labelToWgs(...applyGeotransform(labels.geotransform, c, r)));
  const overlapping = sets.filter((s) => bboxesOverlap(footprintBbox(s.raster.footprint.coordinates[0]), labelExtent));
  if (overlapping.length === 0) {
    const imagery = sets.map((s) => `${s.raster.uri} ${formatBbox(footprintBbox(s.raster.footprint.coordinates[0]))}`).join('; ');
    throw new UserError(
      `label raster ${labels.uri} covers ${formatBbox(labelExtent)} (lon/lat) and overlaps none of the ingested rasters: ${imagery || 'none are ingested'}`,
    );
  }
  const nodata = labels.nodata;
  const isValid = (v: number) => v !== nodata && !Number.isNaN(v) && (!opts.classIds || opts.classIds.has(v));
  const out: TileLabel[] = [];
  for (const { raster, tiles } of overlapping) {
    const imageProj = proj4ForRaster(raster);
    if (!imageProj) throw new UserError(`raster ${raster.uri} has no CRS, so labels cannot be placed on it`);
    const toLabel = transformer(imageProj, labelProj);
    const labelPixel = (col: number, row: number) => crsToPixel(labels.geotransform, ...toLabel(...applyGeotransform(raster.geotransform, col, row)));
    // Sample as densely as the finer of the two grids, so a finer label raster has every pixel counted.
    const [c0, r0] = labelPixel(0, 0);
    const [c1, r1] = labelPixel(1, 0);
    const density = Math.max(1, Math.round(Math.hypot(c1 - c0, r1 - r0)));
    const perTile = tiles.map((t) => samplePositions(t, labelPixel, Math.min(opts.maxSamplesPerSide ?? 128, t.size * density)));
    const win = clampedWindow(perTile, labels.width, labels.height);
    if (!win) continue;
    const [band] = (await labels.readWindow(win, [1])).data;
    tiles.forEach((t, i) => {
      const positions = perTile[i];
      const values = new Float64Array(positions.length / 2);
      for (let s = 0; s < values.length; s++) {
        const col = positions[2 * s] - win.x;
        const row = positions[2 * s + 1] - win.y;
        values[s] = col >= 0 && row >= 0 && col < win.w && row < win.h ? band[row * win.w + col] : NaN;
      }
      const label = majorityLabel(values, isValid);
      if (acceptLabel(label, opts)) out.push({ tileId: t.id, classId: label.classId, purity: label.purity });
    });
  }
  return out;
}

/** Label-raster pixel (col,row) under each point of a side×side grid of cell centres over the tile, flattened. */
function samplePositions(t: RasterTiles['tiles'][number], labelPixel: (c: number, r: number) => [number, number], side: number): Int32Array {
  const step = t.size / side;
  const out = new Int32Array(side * side * 2);
  let k = 0;
  for (let j = 0; j < side; j++) {
    for (let i = 0; i < side; i++) {
      const [c, r] = labelPixel(t.x + (i + 0.5) * step, t.y + (j + 0.5) * step);
      out[k++] = Math.floor(c);
      out[k++] = Math.floor(r);
    }
  }
  return out;
}

function clampedWindow(perTile: Int32Array[], width: number, height: number) {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const p of perTile) {
    for (let k = 0; k < p.length; k += 2) {
      x0 = Math.min(x0, p[k]);
      x1 = Math.max(x1, p[k]);
      y0 = Math.min(y0, p[k + 1]);
      y1 = Math.max(y1, p[k + 1]);
    }
  }
  x0 = Math.max(0, x0);
  y0 = Math.max(0, y0);
  x1 = Math.min(width - 1, x1);
  y1 = Math.min(height - 1, y1);
  return x1 < x0 || y1 < y0 ? null : { x: x0, y: y0, w: x1 - x0 + 1, h: y1 - y0 + 1 };
}

export function footprintBbox(ring: number[][]): BBox {
  const xs = ring.map((p) => p[0]);
  const ys = ring.map((p) => p[1]);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}
