import { fileURLToPath } from 'node:url';
import type { RasterRecord, TileRecord } from '../store/index.ts';
import { openReadableRaster, type ReadableRaster } from './readable-raster.ts';

/** A tile's pixels, band-major (`bands[b][row * size + col]`), standardised per band; nodata becomes 0 (the mean). */
export interface TilePixels {
  size: number;
  bands: Float32Array[];
  valid: Uint8Array;
}

export type TilePixelReader = (tile: TileRecord) => Promise<TilePixels>;

/**
 * Reads tiles' pixels from their rasters, opening each raster once. Bands are standardised with the raster's
 * stored band statistics so features from UInt16 and Byte imagery are on one scale.
 */
export function tilePixelReader(rasterOf: (id: number) => Promise<RasterRecord>): TilePixelReader {
  const open = new Map<number, Promise<{ record: RasterRecord; file: ReadableRaster }>>();
  const source = (id: number) => {
    let entry = open.get(id);
    if (!entry) {
      entry = rasterOf(id).then(async (record) => ({ record, file: await openReadableRaster(pathOf(record.uri)) }));
      open.set(id, entry);
    }
    return entry;
  };
  return async (tile) => {
    const { record, file } = await source(tile.rasterId);
    const w = Math.min(tile.size, file.width - tile.x);
    const h = Math.min(tile.size, file.height - tile.y);
    const raw = await file.readWindow({ x: tile.x, y: tile.y, w, h });
    const n = tile.size * tile.size;
    const valid = new Uint8Array(n);
    const bands = raw.map(() => new Float32Array(n));
    for (let r = 0; r < h; r++) {
      for (let c = 0; c < w; c++) {
        const p = r * tile.size + c;
        const q = r * w + c;
        valid[p] = raw.every((band) => band[q] !== record.nodata && !Number.isNaN(band[q])) ? 1 : 0;
        if (!valid[p]) continue;
        raw.forEach((band, b) => {
          const stats = record.bandStats[b];
          bands[b][p] = stats ? (band[q] - stats.mean) / (stats.std || 1) : band[q];
        });
      }
    }
    return { size: tile.size, bands, valid };
  };
}

export function pathOf(uri: string): string {
  return uri.startsWith('file:') ? fileURLToPath(uri) : uri;
}
