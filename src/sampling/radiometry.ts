import { Rng } from '../rng.ts';
import type { Normalization } from './normalize.ts';

/**
 * Per-tile, per-band radiometric jitter: what differs between two looks at the same ground (sun, haze, sensor
 * calibration, season). `strength` s draws, per band, log gamma ~ N(0, s/2), log gain ~ N(0, s) and offset ~ N(0, s)
 * in normalized units; the seed makes the draw reproducible from the triplet alone.
 */
export interface RadiometricJitter {
  strength: number;
  seed: number;
}

interface BandJitter {
  gamma: number;
  gain: number;
  offset: number;
}

function standardNormal(rng: Rng): number {
  // Box-Muller; 1 - u keeps the logarithm finite.
  return Math.sqrt(-2 * Math.log(1 - rng.float())) * Math.cos(2 * Math.PI * rng.float());
}

function drawBands(j: RadiometricJitter, bands: number): BandJitter[] {
  const rng = new Rng(j.seed);
  return Array.from({ length: bands }, () => ({
    gamma: Math.exp((j.strength / 2) * standardNormal(rng)),
    gain: Math.exp(j.strength * standardNormal(rng)),
    offset: j.strength * standardNormal(rng),
  }));
}

/**
 * Applies `j` to a normalized pixel-interleaved tile in place. Gamma bends each band's values inside the
 * normalization's own range (offset .. offset + scale in raw terms is 0..1 for percentile; for z-score the range
 * is taken as ±2 standard deviations), then gain and offset shift it. Pixels equal to `fill` in every band are
 * nodata and stay as they are.
 */
export function jitterTile(tile: Float32Array, normalization: Normalization, j: RadiometricJitter): Float32Array {
  const nb = normalization.bands.length;
  const per = drawBands(j, nb);
  // The band's normalized range [lo, hi] that gamma maps onto itself.
  const [lo, hi] = normalization.method === 'percentile' ? [0, 1] : [-2, 2];
  const span = hi - lo;
  const { fill } = normalization;
  for (let p = 0; p < tile.length; p += nb) {
    let nodata = true;
    for (let b = 0; b < nb && nodata; b++) nodata = tile[p + b] === fill;
    if (nodata) continue;
    for (let b = 0; b < nb; b++) {
      const { gamma, gain, offset } = per[b];
      const u = (tile[p + b] - lo) / span;
      // Outside the range gamma continues linearly, so z-score tails keep their order and stay finite.
      const bent = u <= 0 ? u * gamma : u >= 1 ? 1 + (u - 1) * gamma : u ** gamma;
      tile[p + b] = (lo + bent * span) * gain + offset;
    }
  }
  return tile;
}
