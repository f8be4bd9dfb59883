import { PNG } from 'pngjs';
import { defaultRenderBands, encodePng, stretchRanges } from '../ingest/index.ts';
import { NotFoundError, errorMessage } from '../errors.ts';
import type { Store, TileRecord } from '../store/index.ts';
import { OpenRasters } from './open-rasters.ts';

/** Context on each side of a thumbnail's tile, as a share of the tile's side. */
const CONTEXT = 0.25;
/** The least thumbnail side: the explorer shows results at 128 px. */
export const THUMBNAIL_PX = 128;
const OUTLINE: [number, number, number] = [255, 214, 0];

/** Each pixel repeated `scale` times across and down (nearest neighbour: pixels stay sharp). */
function enlarged(src: PNG, scale: number): PNG {
  if (scale === 1) return src;
  const out = new PNG({ width: src.width * scale, height: src.height * scale });
  for (let y = 0; y < out.height; y++) {
    for (let x = 0; x < out.width; x++) {
      const from = (Math.floor(y / scale) * src.width + Math.floor(x / scale)) * 4;
      src.data.copy(out.data, (y * out.width + x) * 4, from, from + 4);
    }
  }
  return out;
}

/** A 2-px outline just inside the square of side `size` at (`at`, `at`). */
function outlined(png: PNG, at: number, size: number): PNG {
  const paint = (x: number, y: number) => png.data.set([...OUTLINE, 255], (y * png.width + x) * 4);
  for (let i = 0; i < size; i++) {
    for (const d of [0, 1]) {
      paint(at + i, at + d);
      paint(at + i, at + size - 1 - d);
      paint(at + d, at + i);
      paint(at + size - 1 - d, at + i);
    }
  }
  return png;
}

/** Tile thumbnails rendered from the source rasters with the ingest renderer (2-98 % stretch from the stored band statistics). */
export class RasterThumbnails {
  readonly rasters: OpenRasters;
  private readonly ownsRasters: boolean;

  constructor(store: Store, maxOpenOrPool: number | OpenRasters = 4) {
    this.ownsRasters = typeof maxOpenOrPool === 'number';
    this.rasters = typeof maxOpenOrPool === 'number' ? new OpenRasters(store, maxOpenOrPool) : maxOpenOrPool;
  }

  /**
   * The tile with a quarter of its side of context around it (transparent beyond the raster), enlarged by whole
   * pixels to at least THUMBNAIL_PX, with the tile itself outlined: a 32-px tile is seen among its neighbours.
   */
  async render(tile: TileRecord): Promise<Uint8Array> {
    const margin = Math.round(tile.size * CONTEXT);
    const side = tile.size + 2 * margin;
    const scale = Math.max(1, Math.ceil(THUMBNAIL_PX / side));
    try {
      return await this.rasters.use(tile.rasterId, async (raster, record) => {
        const data = await raster.readWindow({ x: tile.x - margin, y: tile.y - margin, w: side, h: side }, defaultRenderBands(record.bandCount));
        const small = PNG.sync.read(encodePng(data, stretchRanges(data, record.bandStats)));
        return PNG.sync.write(outlined(enlarged(small, scale), margin * scale, tile.size * scale));
      });
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
