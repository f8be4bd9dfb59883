import { openStoredRaster, type Raster } from '../ingest/index.ts';
import type { RasterRecord, Store } from '../store/index.ts';

interface Entry {
  ready: Promise<{ raster: Raster; record: RasterRecord }>;
  users: number;
  evicted: boolean;
}

/** Block cache per open raster: enough for the neighbouring tiles a map view asks for together. */
const CACHE_BYTES = 16 * 1024 * 1024;

/**
 * The most recently used source rasters, kept open: opening one reads its header, and its block cache makes the
 * next read from the same raster cheap. Thumbnails and map tiles share one pool. An evicted raster closes once no
 * read is using it; one that failed to open is retried next time rather than kept broken.
 */
export class OpenRasters {
  private readonly open = new Map<number, Entry>();

  constructor(private readonly store: Store, private readonly maxOpen = 4) {}

  async use<T>(rasterId: number, read: (raster: Raster, record: RasterRecord) => Promise<T>): Promise<T> {
    const entry = this.acquire(rasterId);
    try {
      const { raster, record } = await entry.ready;
      return await read(raster, record);
    } finally {
      this.release(entry);
    }
  }

  async close(): Promise<void> {
    const entries = [...this.open.values()];
    this.open.clear();
    await Promise.all(entries.map((e) => e.ready.then(({ raster }) => raster.close()).catch(() => {})));
  }

  private acquire(rasterId: number): Entry {
    let entry = this.open.get(rasterId);
    if (entry) {
      this.open.delete(rasterId); // re-inserted below: Map order is the recency order
    } else {
      const ready = this.store.raster(rasterId).then(async (record) => ({ record, raster: await openStoredRaster(record, { cacheBytes: CACHE_BYTES }) }));
      const created: Entry = { ready, users: 0, evicted: false };
      ready.catch(() => { if (this.open.get(rasterId) === created) this.open.delete(rasterId); });
      entry = created;
    }
    this.open.set(rasterId, entry);
    entry.users++;
    for (const [id, old] of this.open) {
      if (this.open.size <= this.maxOpen) break;
      this.open.delete(id);
      old.evicted = true;
      if (old.users === 0) closeEntry(old);
    }
    return entry;
  }

  private release(entry: Entry): void {
    entry.users--;
    if (entry.evicted && entry.users === 0) closeEntry(entry);
  }
}

function closeEntry(entry: Entry): void {
  entry.ready.then(({ raster }) => raster.close()).catch(() => {});
}
