import { openStoredRaster, type Raster, type SampleArray } from '../ingest/index.ts';
import type { RasterRecord, TileRecord } from '../store/index.ts';

/** A tile's pixels, band-major (`bands[b][row * size + col]`), standardised per band; nodata becomes 0 (the mean). */
export interface TilePixels {
  size: number;
  bands: Float32Array[];
  valid: Uint8Array;
}

/** Reads one tile's pixels; `close` releases the rasters it opened. */
export interface TilePixelReader {
  (tile: TileRecord): Promise<TilePixels>;
  close(): Promise<void>;
}

/**
 * Reads tiles' pixels from their rasters, opening each raster once. Tiles usually come row by row, so it reads a
 * full-width strip of rows and keeps the last one: one read per tile row, not one per tile. Bands are
 * standardised with the raster's stored band statistics so features from UInt16 and Byte imagery share a scale.
 */
export function tilePixelReader(rasterOf: (id: number) => Promise<RasterRecord>): TilePixelReader {
  const open = new Map<number, Promise<{ record: RasterRecord; file: Raster }>>();
  const source = (id: number) => {
    let entry = open.get(id);
    if (!entry) {
      entry = rasterOf(id).then(async (record) => ({ record, file: await openStoredRaster(record) }));
      open.set(id, entry);
    }
    return entry;
  };
  let strip: { key: string; rows: SampleArray[]; width: number } | undefined;
  const read = async (tile: TileRecord): Promise<TilePixels> => {
    const { record, file } = await source(tile.rasterId);
    const w = Math.min(tile.size, file.width - tile.x);
    const h = Math.min(tile.size, file.height - tile.y);
    const key = `${tile.rasterId}:${tile.y}:${h}`;
    if (strip?.key !== key) strip = { key, rows: (await file.readWindow({ x: 0, y: tile.y, w: file.width, h })).data, width: file.width };
    const { rows: stripRows, width: stripWidth } = strip;
    const n = tile.size * tile.size;
    const valid = new Uint8Array(n);
    const bands = stripRows.map(() => new Float32Array(n));
    for (let r = 0; r < h; r++) {
      for (let c = 0; c < w; c++) {
        const p = r * tile.size + c;
        const q = r * stripWidth + tile.x + c;
        valid[p] = stripRows.every((band) => band[q] !== record.nodata && !Number.isNaN(band[q])) ? 1 : 0;
        if (!valid[p]) continue;
        stripRows.forEach((band, b) => {
          const stats = record.bandStats[b];
          bands[b][p] = stats ? (band[q] - stats.mean) / (stats.std || 1) : band[q];
        });
      }
    }
    return { size: tile.size, bands, valid };
  };
  const close = async () => {
    const entries = [...open.values()];
    open.clear();
    await Promise.all(entries.map(async (e) => (await e).file.close()));
  };
  return Object.assign(read, { close });
}
