import { MemoryRaster, ValidityMask, type CatalogRecord, type SamplerRaster } from '../src/sampling/index.ts';
import type { BandStats } from '../src/store/records.ts';

export const NODATA = 0;

export interface Hole {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** A synthetic raster whose pixel values encode their position, with nodata rectangles. */
export function syntheticRaster(id: number, width: number, height: number, bands = 3, holes: Hole[] = []): MemoryRaster {
  const data = new Float32Array(width * height * bands);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const hole = holes.some((h) => x >= h.x && x < h.x + h.w && y >= h.y && y < h.y + h.h);
      for (let b = 0; b < bands; b++) data[(y * width + x) * bands + b] = hole ? NODATA : 1 + ((x * 7 + y * 13 + b * 101) % 250);
    }
  }
  return new MemoryRaster(id, width, height, bands, data, NODATA);
}

/** Per-pixel nodata flags, computed straight from the data (independent of ValidityMask). */
export function nodataFlags(r: MemoryRaster): Uint8Array {
  const flags = new Uint8Array(r.width * r.height);
  for (let p = 0; p < flags.length; p++) {
    let all = true;
    for (let b = 0; b < r.bandCount; b++) if (r.data[p * r.bandCount + b] !== r.nodata) all = false;
    flags[p] = all ? 1 : 0;
  }
  return flags;
}

/** Counts nodata pixels of a window by brute force. */
export function nodataShare(flags: Uint8Array, width: number, win: { x: number; y: number; w: number; h: number }): number {
  let n = 0;
  for (let y = win.y; y < win.y + win.h; y++) for (let x = win.x; x < win.x + win.w; x++) n += flags[y * width + x];
  return n / (win.w * win.h);
}

export function samplerRaster(r: MemoryRaster, radius: number | { x: number; y: number }): SamplerRaster {
  return {
    id: r.id,
    label: r.label,
    width: r.width,
    height: r.height,
    validity: ValidityMask.fromFlags(r.width, r.height, nodataFlags(r)),
    radius: typeof radius === 'number' ? { x: radius, y: radius } : radius,
  };
}

/** Exact band statistics of a memory raster's valid pixels (percentiles by nearest rank). */
export function exactStats(r: MemoryRaster): BandStats[] {
  const flags = nodataFlags(r);
  return Array.from({ length: r.bandCount }, (_, b) => {
    const values: number[] = [];
    for (let p = 0; p < flags.length; p++) if (!flags[p]) values.push(r.data[p * r.bandCount + b]);
    values.sort((a, c) => a - c);
    const mean = values.reduce((s, v) => s + v, 0) / values.length;
    const std = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length);
    const rank = (q: number) => values[Math.min(values.length - 1, Math.floor(q * values.length))];
    return { band: b + 1, count: values.length, min: values[0], max: values[values.length - 1], mean, std, p2: rank(0.02), p98: rank(0.98) };
  });
}

/** A catalog record for a memory raster: 30 m UTM pixels unless told otherwise. */
export function recordOf(r: MemoryRaster, opts: { pixel?: number; geographic?: boolean; georeferenced?: boolean; dtype?: string } = {}): CatalogRecord {
  const pixel = opts.pixel ?? 30;
  return {
    id: r.id,
    uri: `memory://${r.id}`,
    width: r.width,
    height: r.height,
    bandCount: r.bandCount,
    dtype: opts.dtype ?? 'uint8',
    geotransform: opts.geographic ? [-76.7, pixel, 0, 34.7, 0, -pixel] : [300000, pixel, 0, 4200000, 0, -pixel],
    georeferenced: opts.georeferenced ?? true,
    crsDef: opts.geographic ? '+proj=longlat +datum=WGS84 +no_defs' : '+proj=utm +zone=12 +datum=WGS84 +units=m +no_defs',
    bandStats: exactStats(r),
  };
}
