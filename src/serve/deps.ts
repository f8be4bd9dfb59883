import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { ChipEmbedding } from '../embed/index.ts';
import type { ModelRecord, Store, TileRecord } from '../store/index.ts';
import type { Resampling } from './map-tiles.ts';

/** What the service is built from: the store, the config, and the renderers and embedder a deployment provides. */
export interface ServeDeps {
  store: Store;
  config: Config;
  logger?: Logger;
  /** The model routes use when a request names none; the latest registered model when absent. */
  model?: string;
  /**
   * Renders a tile as PNG bytes. Absent: the thumbnail route answers 501. Throw a UserError/NotFoundError for
   * problems the client caused; anything else is a 500.
   */
  renderThumbnail?: (tile: TileRecord) => Promise<Uint8Array>;
  /** Renders a Web Mercator XYZ tile of a raster as PNG bytes. Absent: the map tile route answers 501. */
  renderMapTile?: (rasterId: number, tile: { z: number; x: number; y: number }, opts: { bands?: number[]; resampling: Resampling }) => Promise<Uint8Array>;
  /**
   * Embeds an uploaded GeoTIFF chip with the model, returning a vector of `model.dim` numbers and the warnings the
   * answer carries. Absent: chip search answers 501. It must throw a UserError (status 400, or e.g. 422) for chips
   * it cannot use: not a GeoTIFF it can decode, wrong band count, size or sample type; anything else it throws is a
   * 500. The signal aborts when the request's deadline passes: the work should stop then.
   */
  embedChip?: (tiff: Uint8Array, model: ModelRecord, signal: AbortSignal) => Promise<ChipEmbedding>;
  limits?: Partial<ServeLimits>;
}

export interface ServeLimits {
  /** Largest JSON body. A 2000-dimension vector is about 40 KB as JSON. */
  jsonBytes: number;
  /** Largest multipart chip upload. */
  chipBytes: number;
}

export const DEFAULT_LIMITS: ServeLimits = { jsonBytes: 256 * 1024, chipBytes: 16 * 1024 * 1024 };
