import { PNG } from 'pngjs';
import type { Normalization } from './normalize.ts';

export interface SheetTriplet {
  anchor: Float32Array;
  neighbor: Float32Array;
  distant: Float32Array;
}

export interface ContactSheetOptions {
  tileSize: number;
  normalization: Normalization;
  /** Tensor channels (0-based) shown as red, green and blue. */
  rgb: [number, number, number];
}

const GAP = 4;
const MIN_DISPLAY = 96;
const BACKGROUND = 40;

/**
 * A PNG with one triplet per row (anchor, neighbor, distant), drawn from the normalized, augmented tensors the
 * model sees. Small tiles are enlarged by an integer factor so a glance shows their content.
 */
export function contactSheet(triplets: SheetTriplet[], opts: ContactSheetOptions): Buffer {
  const { tileSize, normalization, rgb } = opts;
  const zoom = Math.max(1, Math.ceil(MIN_DISPLAY / tileSize));
  const cell = tileSize * zoom;
  const width = GAP + 3 * (cell + GAP);
  const height = GAP + triplets.length * (cell + GAP);
  const png = new PNG({ width, height });
  png.data.fill(BACKGROUND);
  for (let i = 3; i < png.data.length; i += 4) png.data[i] = 255;
  const bands = normalization.bands.length;
  const toByte = displayScale(normalization);
  triplets.forEach((t, row) => {
    [t.anchor, t.neighbor, t.distant].forEach((tile, col) => {
      const left = GAP + col * (cell + GAP);
      const top = GAP + row * (cell + GAP);
      for (let py = 0; py < cell; py++) {
        for (let px = 0; px < cell; px++) {
          const src = (Math.floor(py / zoom) * tileSize + Math.floor(px / zoom)) * bands;
          const dst = ((top + py) * width + left + px) * 4;
          for (let c = 0; c < 3; c++) png.data[dst + c] = toByte(tile[src + rgb[c]]);
        }
      }
    });
  });
  return PNG.sync.write(png);
}

/** Percentile outputs already span 0..1; z-scores show from -2 to +2 standard deviations. */
function displayScale(n: Normalization): (v: number) => number {
  const [lo, hi] = n.clip ?? [-2, 2];
  return (v) => Math.round(255 * Math.min(1, Math.max(0, (v - lo) / (hi - lo))));
}
