import { PNG } from 'pngjs';
import type { BandStats } from '../store/records.ts';
import type { PixelWindow, Raster, WindowData } from './raster.ts';

export interface RenderOptions {
  /**
   * 1-based source bands for red, green and blue (false colour, e.g. [4, 3, 2]); one band renders grey.
   * Default: 1, 2, 3 when the raster has three or more bands, else band 1.
   */
  bands?: number[];
  /**
   * The raster's stored band statistics: each band stretches from its p2 to its p98, so that every tile of a
   * raster shares one stretch. Bands without stored statistics stretch by the window's own 2nd-98th percentiles.
   */
  stats?: BandStats[];
}

export function defaultRenderBands(bandCount: number): number[] {
  return bandCount >= 3 ? [1, 2, 3] : [1];
}

/** Reads a window of a raster and renders it as an 8-bit RGBA PNG with a 2-98 % stretch. */
export async function renderWindowPng(raster: Raster, win: PixelWindow, opts: RenderOptions = {}): Promise<Buffer> {
  const bands = opts.bands ?? defaultRenderBands(raster.bandCount);
  if (bands.length !== 1 && bands.length !== 3) throw new Error(`render takes 1 or 3 bands, got ${bands.length}`);
  const data = await raster.readWindow(win, bands);
  return encodePng(data, stretchRanges(data, opts.stats));
}

/** Each band's [p2, p98] from the stored statistics, or from the samples themselves where a band has none. */
export function stretchRanges(data: WindowData, stats?: BandStats[]): [number, number][] {
  return data.bands.map((b, i) => {
    const s = stats?.find((st) => st.band === b);
    return s && s.count > 0 ? ([s.p2, s.p98] as [number, number]) : windowPercentiles(data, i);
  });
}

/**
 * Encodes already-read samples (1 or 3 bands) as a PNG, mapping each band's [lo, hi] linearly to 0-255.
 * Pixels that hold no data are transparent.
 */
export function encodePng(data: WindowData, ranges: [number, number][]): Buffer {
  const { w, h } = data.window;
  const png = new PNG({ width: w, height: h });
  const channels = data.data.length === 1 ? [0, 0, 0] : [0, 1, 2];
  for (let p = 0; p < w * h; p++) {
    for (let c = 0; c < 3; c++) {
      const k = channels[c];
      const [lo, hi] = ranges[k];
      const t = hi > lo ? (data.data[k][p] - lo) / (hi - lo) : 0;
      png.data[p * 4 + c] = Math.round(255 * Math.min(1, Math.max(0, t)));
    }
    png.data[p * 4 + 3] = data.valid[p] ? 255 : 0;
  }
  return PNG.sync.write(png);
}

function windowPercentiles(data: WindowData, i: number): [number, number] {
  const values: number[] = [];
  const band = data.data[i];
  for (let p = 0; p < band.length; p++) if (data.valid[p]) values.push(band[p]);
  if (values.length === 0) return [0, 1];
  values.sort((a, b) => a - b);
  const at = (q: number) => values[Math.min(values.length - 1, Math.round(q * (values.length - 1)))];
  return [at(0.02), at(0.98)];
}
