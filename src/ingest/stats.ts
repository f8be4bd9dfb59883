import { Rng } from '../rng.ts';
import type { BandStats } from '../store/records.ts';
import type { Dtype, SampleArray } from './raster.ts';

/** Values kept for the percentiles of 32-bit and float bands; integer bands up to 16 bits are counted exactly. */
const RESERVOIR = 200_000;

/**
 * Streaming statistics of one band's valid pixels: feed it windows in any order, then `result()`. Percentiles
 * interpolate between ranks like numpy's default; they are exact for 8- and 16-bit bands (a full histogram) and
 * estimated from a fixed-size uniform reservoir sample otherwise. Mean and std (population) are exact.
 */
export class BandStatsAccumulator {
  private readonly histogram: Float64Array | null;
  private readonly offset: number;
  private readonly reservoir: Float64Array | null;
  private count = 0;
  private seen = 0;
  private shift = NaN;
  private sum = 0;
  private sumSq = 0;
  private min = Infinity;
  private max = -Infinity;
  // Seeded, so the same file always gives the same estimate.
  private readonly rng = new Rng('band statistics');

  constructor(readonly band: number, dtype: Dtype, private readonly nodata: number | null) {
    const bins = { uint8: 256, int8: 256, uint16: 65536, int16: 65536 }[dtype as string];
    this.histogram = bins ? new Float64Array(bins) : null;
    this.offset = dtype === 'int8' ? 128 : dtype === 'int16' ? 32768 : 0;
    this.reservoir = bins ? null : new Float64Array(RESERVOIR);
  }

  /** Adds the samples of `values` whose `mask` entry is non-zero (all when no mask) and that are not nodata. */
  add(values: SampleArray, mask?: Uint8Array): void {
    const nd = this.nodata;
    const hist = this.histogram;
    for (let i = 0; i < values.length; i++) {
      if (mask && !mask[i]) continue;
      const v = values[i];
      if (v === nd || v !== v) continue; // nodata, NaN
      if (hist) {
        hist[v + this.offset]++;
        continue;
      }
      if (this.count === 0) this.shift = v;
      this.count++;
      const d = v - this.shift;
      this.sum += d;
      this.sumSq += d * d;
      if (v < this.min) this.min = v;
      if (v > this.max) this.max = v;
      this.sample(v);
    }
  }

  private sample(v: number): void {
    const r = this.reservoir!;
    if (this.seen < r.length) r[this.seen] = v;
    else {
      const j = this.rng.int(this.seen + 1);
      if (j < r.length) r[j] = v;
    }
    this.seen++;
  }

  result(): BandStats {
    return this.histogram ? this.fromHistogram(this.histogram) : this.fromReservoir();
  }

  private fromHistogram(h: Float64Array): BandStats {
    let n = 0;
    let sum = 0;
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < h.length; i++) {
      if (!h[i]) continue;
      const v = i - this.offset;
      n += h[i];
      sum += h[i] * v;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    if (n === 0) return empty(this.band);
    const mean = sum / n;
    let ss = 0;
    for (let i = 0; i < h.length; i++) if (h[i]) ss += h[i] * (i - this.offset - mean) ** 2;
    const valueAtRank = (rank: number) => {
      let acc = 0;
      for (let i = 0; i < h.length; i++) {
        acc += h[i];
        if (acc > rank) return i - this.offset;
      }
      return max;
    };
    const pct = (q: number) => {
      const rank = q * (n - 1);
      const lo = Math.floor(rank);
      const a = valueAtRank(lo);
      const b = valueAtRank(Math.min(lo + 1, n - 1));
      return a + (b - a) * (rank - lo);
    };
    return { band: this.band, count: n, min, max, mean, std: Math.sqrt(ss / n), p2: pct(0.02), p98: pct(0.98) };
  }

  private fromReservoir(): BandStats {
    const n = this.count;
    if (n === 0) return empty(this.band);
    const meanD = this.sum / n;
    const variance = Math.max(0, this.sumSq / n - meanD * meanD);
    const sample = this.reservoir!.slice(0, Math.min(this.seen, RESERVOIR)).sort();
    const pct = (q: number) => {
      const rank = q * (sample.length - 1);
      const lo = Math.floor(rank);
      const hi = Math.min(lo + 1, sample.length - 1);
      return sample[lo] + (sample[hi] - sample[lo]) * (rank - lo);
    };
    return { band: this.band, count: n, min: this.min, max: this.max, mean: this.shift + meanD, std: Math.sqrt(variance), p2: pct(0.02), p98: pct(0.98) };
  }
}

function empty(band: number): BandStats {
  return { band, count: 0, min: 0, max: 0, mean: 0, std: 0, p2: 0, p98: 0 };
}
