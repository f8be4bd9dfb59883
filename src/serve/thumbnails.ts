import { defaultRenderBands, renderWindowPng } from '../ingest/index.ts';
import { NotFoundError, errorMessage } from '../errors.ts';
import type { Store, TileRecord } from '../store/index.ts';
import { OpenRasters } from './open-rasters.ts';

/** Tile thumbnails rendered from the source rasters with the ingest renderer (2-98 % stretch from the stored band statistics). */
export class RasterThumbnails {
  readonly rasters: OpenRasters;
  private readonly ownsRasters: boolean;

  constructor(store: Store, maxOpenOrPool: number | OpenRasters = 4) {
    this.ownsRasters = typeof maxOpenOrPool === 'number';
    this.rasters = typeof maxOpenOrPool === 'number' ? new OpenRasters(store, maxOpenOrPool) : maxOpenOrPool;
  }

  async render(tile: TileRecord): Promise<Uint8Array> {
    try {
      return await this.rasters.use(tile.rasterId, (raster, record) => renderWindowPng(raster, { x: tile.x, y: tile.y, w: tile.size, h: tile.size }, {
        bands: defaultRenderBands(record.bandCount), stats: record.bandStats,
      }));
    } catch (err) {
      if (err instanceof NotFoundError) throw err;
      // An unreadable source raster is this deployment's fault, not the client's: a 500, whatever the reader said.
      throw new Error(`cannot render tile ${tile.id} from raster ${tile.rasterId}: ${errorMessage(err)}`, { cause: err });
    }
  }

  async close(): Promise<void> {
    if (this.ownsRasters) await this.rasters.close();
  }
}
