import { defaultRenderBands, openRaster, renderWindowPng, type Raster } from '../ingest/index.ts';
import { NotFoundError, errorMessage } from '../errors.ts';
import type { RasterRecord, Store, TileRecord } from '../store/index.ts';

interface OpenRaster {
  ready: Promise<{ raster: Raster; record: RasterRecord }>;
  users: number;
  evicted: boolean;
}

/** Block cache per open raster: enough for the neighbouring tiles a map view asks for together. */
const CACHE_BYTES = 16 * 1024 * 1024;

/**
 * Tile thumbnails rendered from the source rasters with the ingest renderer (2-98 % stretch from the stored band
 * statistics). The most recently used rasters stay open, since opening one reads its header and its block cache
 * makes the next tile from the same raster cheap; an evicted raster closes once no render is using it.
 */
export class RasterThumbnails {
  private readonly open = new Map<number, OpenRaster>();

  constructor(private readonly store: Store, private readonly maxOpen = 4) {}

  async render(tile: TileRecord): Promise<Uint8Array> {
    const entry = this.acquire(tile.rasterId);
    try {
      const { raster, record } = await entry.ready;
      return await renderWindowPng(raster, { x: tile.x, y: tile.y, w: tile.size, h: tile.size }, {
        bands: defaultRenderBands(record.bandCount), stats: record.bandStats,
      });
    } catch (err) {
      if (err instanceof NotFoundError) throw err;
      // An unreadable source raster is this deployment's fault, not the client's: a 500, whatever the reader said.
      throw new Error(`cannot render tile ${tile.id} from raster ${tile.rasterId}: ${errorMessage(err)}`, { cause: err });
    } finally {
      this.release(entry);
    }
  }

  async close(): Promise<void> {
    const entries = [...this.open.values()];
    this.open.clear();
    await Promise.all(entries.map((e) => e.ready.then(({ raster }) => raster.close()).catch(() => {})));
  }

  private acquire(rasterId: number): OpenRaster {
    let entry = this.open.get(rasterId);
    if (entry) {
      this.open.delete(rasterId); // re-inserted below: Map order is the recency order
    } else {
      const ready = this.store.raster(rasterId).then(async (record) => ({ record, raster: await openRaster(record.uri, { cacheBytes: CACHE_BYTES }) }));
      entry = { ready, users: 0, evicted: false };
      // A raster that failed to open is retried next time rather than cached broken.
      ready.catch(() => { if (this.open.get(rasterId) === entry) this.open.delete(rasterId); });
    }
    this.open.set(rasterId, entry);
    entry.users++;
    for (const [id, old] of this.open) {
      if (this.open.size <= this.maxOpen) break;
      this.open.delete(id);
      old.evicted = true;
      if (old.users === 0) this.closeEntry(old);
    }
    return entry;
  }

  private release(entry: OpenRaster): void {
    entry.users--;
    if (entry.evicted && entry.users === 0) this.closeEntry(entry);
  }

  private closeEntry(entry: OpenRaster): void {
    entry.ready.then(({ raster }) => raster.close()).catch(() => {});
  }
}
