import { openStoredRaster, type Raster } from '../ingest/index.ts';
import type { RasterRecord } from '../store/records.ts';
import type { PixelWindow, RasterSource } from './source.ts';

/** A catalog raster read through src/ingest, whose LRU of decoded TIFF blocks serves repeated window reads. */
export class IngestRasterSource implements RasterSource {
  constructor(readonly id: number, readonly label: string, private readonly raster: Raster) {}

  static async open(record: Pick<RasterRecord, 'id' | 'uri' | 'overview' | 'georeferenced'>, opts: { cacheBytes?: number } = {}): Promise<IngestRasterSource> {
    return new IngestRasterSource(record.id, record.uri, await openStoredRaster(record, opts));
  }

  get width(): number {
    return this.raster.width;
  }

  get height(): number {
    return this.raster.height;
  }

  get bandCount(): number {
    return this.raster.bandCount;
  }

  get nodata(): number | null {
    return this.raster.nodata;
  }

  async readWindow(window: PixelWindow, bands: number[]): Promise<Float32Array> {
    const { data } = await this.raster.readWindow(window, bands);
    // Band-sequential planes into one pixel-interleaved array: the [tile, tile, bands] layout of the tensors.
    const nb = bands.length;
    const pixels = window.w * window.h;
    const out = new Float32Array(pixels * nb);
    for (let b = 0; b < nb; b++) {
      const plane = data[b];
      for (let p = 0, o = b; p < pixels; p++, o += nb) out[o] = plane[p];
    }
    return out;
  }

  close(): Promise<void> {
    return this.raster.close();
  }
}
