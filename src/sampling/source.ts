import type { PixelWindow } from '../ingest/index.ts';

export type { PixelWindow };

/**
 * The small read interface the sampling dataset needs from a raster. Samplers never read pixels; datasets read
 * windows through this, whatever decodes the file underneath (src/ingest for GeoTIFFs, memory for tests).
 */
export interface RasterSource {
  /** The catalog's raster id (any stable number for rasters outside a store). */
  readonly id: number;
  /** Shown in messages: a URI or a name. */
  readonly label: string;
  readonly width: number;
  readonly height: number;
  readonly bandCount: number;
  /** A pixel is nodata when every selected band holds this value (or NaN), as in GDAL's dataset mask. */
  readonly nodata: number | null;
  /**
   * Raw values of `bands` (1-based) inside the window, pixel-interleaved: index ((row * w) + col) * bands.length + b.
   * The window lies inside the raster.
   */
  readWindow(window: PixelWindow, bands: number[]): Promise<Float32Array>;
}

/** Whether the pixel at `base` of a pixel-interleaved array is nodata: every one of its `bands` samples is. */
export function pixelIsNodata(values: ArrayLike<number>, base: number, bands: number, nodata: number | null): boolean {
  for (let b = 0; b < bands; b++) {
    const v = values[base + b];
    if (v === v && v !== nodata) return false;
  }
  return true;
}

/** A raster held in memory, pixel-interleaved over all its bands: synthetic tests, benches, small inputs. */
export class MemoryRaster implements RasterSource {
  constructor(
    readonly id: number,
    readonly width: number,
    readonly height: number,
    readonly bandCount: number,
    /** width * height * bandCount values, pixel-interleaved. */
    readonly data: Float32Array,
    readonly nodata: number | null = null,
    readonly label = `memory raster ${id}`,
  ) {
    if (data.length !== width * height * bandCount) throw new RangeError(`memory raster ${id}: ${data.length} values for ${width}x${height}x${bandCount}`);
  }

  async readWindow(window: PixelWindow, bands: number[]): Promise<Float32Array> {
    return this.readWindowSync(window, bands);
  }

  readWindowSync({ x, y, w, h }: PixelWindow, bands: number[]): Float32Array {
    if (x < 0 || y < 0 || x + w > this.width || y + h > this.height) throw new RangeError(`window ${x},${y} ${w}x${h} is outside ${this.label} (${this.width}x${this.height})`);
    const nb = bands.length;
    const out = new Float32Array(w * h * nb);
    for (let r = 0; r < h; r++) {
      for (let c = 0; c < w; c++) {
        const src = ((y + r) * this.width + (x + c)) * this.bandCount;
        const dst = (r * w + c) * nb;
        for (let b = 0; b < nb; b++) out[dst + b] = this.data[src + bands[b] - 1];
      }
    }
    return out;
  }
}
