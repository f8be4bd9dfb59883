import type { Rng } from '../rng.ts';

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
 * Applies `a` to a square pixel-interleaved tile [size, size, bands] through a cached map from each output pixel
 * to its source pixel, so flips and rotation cost one gather.
 */
export function augmentTile(tile: Float32Array, size: number, bands: number, a: Augmentation): Float32Array {
  if (isIdentity(a)) return tile;
  const from = sourcePixels(size, a);
  const out = new Float32Array(tile.length);
  for (let p = 0; p < from.length; p++) {
    const src = from[p] * bands;
    const dst = p * bands;
    for (let b = 0; b < bands; b++) out[dst + b] = tile[src + b];
  }
  return out;
}

const maps = new Map<string, Int32Array>();

/** For each output pixel, the index of the input pixel it shows. */
function sourcePixels(size: number, a: Augmentation): Int32Array {
  const key = `${size}:${Number(a.flipH)}${Number(a.flipV)}${a.rot90}`;
  let map = maps.get(key);
  if (map) return map;
  map = new Int32Array(size * size);
  const last = size - 1;
  for (let r = 0; r < size; r++) {
    for (let c = 0; c < size; c++) {
      // Undo the rotation: a counter-clockwise quarter turn sends source (r, c) to (last - c, r).
      let sr = r;
      let sc = c;
      for (let k = 0; k < a.rot90; k++) {
        const t = sr;
        sr = sc;
        sc = last - t;
      }
      if (a.flipV) sr = last - sr;
      if (a.flipH) sc = last - sc;
      map[r * size + c] = sr * size + sc;
    }
  }
  maps.set(key, map);
  return map;
}
