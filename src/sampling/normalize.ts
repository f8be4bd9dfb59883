import { UserError } from '../errors.ts';
import type { BandStats } from '../store/records.ts';
import { pixelIsNodata } from './source.ts';

export type NormalizationMethod = 'zscore' | 'percentile';
/** pooled: one set of numbers for every raster; raster: each raster by its own statistics. */
export type NormalizationScope = 'pooled' | 'raster';

/**
 * How raw band values become model inputs. Training writes this object into the model card and inference reads
 * it back, so both apply the same numbers: per band, out = (raw - offset[b]) / scale[b], then clipped to
 * [clip[0], clip[1]] when `clip` is set. Nodata pixels (nodata in every band) become `fill` in every band, and so
 * does a lone NaN sample, which no network input may hold.
 *
 * - zscore: offset = mean, scale = std; no clip.
 * - percentile: offset = p2, scale = p98 - p2, clip [0, 1] (the 2-98 % range stretched to 0..1).
 *
 * With several rasters the numbers pool their stored statistics, weighted by valid pixel count: mean and std
 * exactly (law of total variance), p2 and p98 as count-weighted means (exact for one raster, an approximation
 * across rasters).
 */
export interface Normalization {
  version: 1;
  method: NormalizationMethod;
  /** 1-based source bands, in tensor channel order. */
  bands: number[];
  offset: number[];
  scale: number[];
  clip: [number, number] | null;
  fill: number;
  /** The rasters whose statistics produced the numbers. */
  rasterIds: number[];
  /**
   * 'raster': every raster, in training and at inference, is normalized by its own band statistics (see
   * `normalizationForRaster`), which takes out differences of date, sensor gain and sample type; `offset` and
   * `scale` then record the pooled numbers of the training rasters. Absent: pooled.
   */
  scope?: 'raster';
}

/** The smallest scale used, so a constant band maps to 0 instead of dividing by zero. */
const MIN_SCALE = 1e-6;

export interface StatsOfRaster {
  id: number;
  label: string;
  bandStats: BandStats[];
}

export function normalizationFromStats(rasters: StatsOfRaster[], bands: number[], method: NormalizationMethod, scope: NormalizationScope = 'pooled'): Normalization {
  if (rasters.length === 0) throw new UserError('normalization needs at least one raster');
  const offset: number[] = [];
  const scale: number[] = [];
  for (const band of bands) {
    const stats = rasters.map((r) => {
      const s = r.bandStats.find((b) => b.band === band);
      if (!s) throw new UserError(`${r.label} has no stored statistics for band ${band}; re-ingest it`);
      return s;
    });
    const n = stats.reduce((sum, s) => sum + s.count, 0);
    if (n === 0) throw new UserError(`band ${band} has no valid pixels in the selected rasters`);
    const weighted = (f: (s: BandStats) => number) => stats.reduce((sum, s) => sum + s.count * f(s), 0) / n;
    if (method === 'zscore') {
      const mean = weighted((s) => s.mean);
      const variance = weighted((s) => s.std * s.std + (s.mean - mean) ** 2);
      offset.push(mean);
      scale.push(Math.max(Math.sqrt(variance), MIN_SCALE));
    } else {
      const low = weighted((s) => s.p2);
      const high = weighted((s) => s.p98);
      offset.push(low);
      scale.push(Math.max(high - low, MIN_SCALE));
    }
  }
  return {
    version: 1,
    method,
    bands: [...bands],
    offset,
    scale,
    clip: method === 'percentile' ? [0, 1] : null,
    fill: 0,
    rasterIds: rasters.map((r) => r.id),
    ...(scope === 'raster' ? { scope } : {}),
  };
}

/** The numbers that apply to one raster: its own statistics under per-raster scope, the model's otherwise. */
export function normalizationForRaster(n: Normalization, raster: StatsOfRaster): Normalization {
  return n.scope === 'raster' ? { ...normalizationFromStats([raster], n.bands, n.method, 'raster'), fill: n.fill } : n;
}

/** Checks a normalization read back from a model card, so inference fails clearly on a damaged one. */
export function parseNormalization(value: unknown): Normalization {
  const n = value as Normalization;
  const numbers = (a: unknown, len: number) => Array.isArray(a) && a.length === len && a.every((v) => typeof v === 'number' && Number.isFinite(v));
  if (
    !n || n.version !== 1 || (n.method !== 'zscore' && n.method !== 'percentile') || !Array.isArray(n.bands) || n.bands.length === 0 ||
    !numbers(n.bands, n.bands.length) || !numbers(n.offset, n.bands.length) || !numbers(n.scale, n.bands.length) ||
    !(n.clip === null || numbers(n.clip, 2)) || typeof n.fill !== 'number' || !(n.scope === undefined || n.scope === 'raster')
  ) {
    throw new UserError('the model card has no valid normalization (expected {version: 1, method, bands, offset, scale, clip, fill})');
  }
  return n;
}

/**
 * Normalizes a raw pixel-interleaved tile [.., .., bands] whose channels are `normalization.bands` in order.
 * A pixel that is nodata in every band becomes `fill` in every band; a NaN sample becomes `fill` on its own.
 */
export function normalizeTile(raw: Float32Array, normalization: Normalization, nodata: number | null, out: Float32Array = new Float32Array(raw.length)): Float32Array {
  const { offset, scale, clip, fill } = normalization;
  const nb = offset.length;
  if (raw.length % nb !== 0) throw new RangeError(`tile of ${raw.length} values is not a whole number of ${nb}-band pixels`);
  const shift = Float64Array.from(offset);
  const inverse = Float64Array.from(scale, (s) => 1 / s);
  const lo = clip ? clip[0] : -Infinity;
  const hi = clip ? clip[1] : Infinity;
  for (let p = 0; p < raw.length; p += nb) {
    if (pixelIsNodata(raw, p, nb, nodata)) {
      for (let b = 0; b < nb; b++) out[p + b] = fill;
      continue;
    }
    for (let b = 0; b < nb; b++) {
      const v = (raw[p + b] - shift[b]) * inverse[b];
      out[p + b] = v !== v ? fill : v < lo ? lo : v > hi ? hi : v;
    }
  }
  return out;
}
