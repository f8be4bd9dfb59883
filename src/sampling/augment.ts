import type { Rng } from './rng.ts';

/** What happens to one tile: flips first, then `rot90` quarter turns counter-clockwise. */
export interface Augmentation {
  flipH: boolean;
  flipV: boolean;
  rot90: 0 | 1 | 2 | 3;
}

export const IDENTITY: Augmentation = { flipH: false, flipV: false, rot90: 0 };

export function drawAugmentation(rng: Rng): Augmentation {
  return { flipH: rng.bool(), flipV: rng.bool(), rot90: rng.int(4) as Augmentation['rot90'] };
}

export function isIdentity(a: Augmentation): boolean {
  return !a.flipH && !a.flipV && a.rot90 === 0;
}

/**
 * Applies `a` to a square pixel-interleaved tile [size, size, bands]. Each output pixel looks up its source
 * pixel, so one pass does flips and rotation together.
 */
export function augmentTile(tile: Float32Array, size: number, bands: number, a: Augmentation): Float32Array {
  if (isIdentity(a)) return tile;
  const out = new Float32Array(tile.length);
  const last = size - 1;
  for (let r = 0; r < size; r++) {
    for (let c = 0; c < size; c++) {
      // Undo the rotation: a counter-clockwise quarter turn sends source (r, c) to (last - c, r).
      let sr = r;
      let sc = c;
      for (let k = 0; k < a.rot90; k++) [sr, sc] = [sc, last - sr];
      if (a.flipV) sr = last - sr;
      if (a.flipH) sc = last - sc;
      const src = (sr * size + sc) * bands;
      const dst = (r * size + c) * bands;
      for (let b = 0; b < bands; b++) out[dst + b] = tile[src + b];
    }
  }
  return out;
}
