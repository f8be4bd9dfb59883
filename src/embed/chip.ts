import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError, errorMessage } from '../errors.ts';
import { BandStatsAccumulator, openRaster, type Raster } from '../ingest/index.ts';
import type { ModelRecord, Store } from '../store/index.ts';
import { IDENTITY, IngestRasterSource, TripletDataset, type Normalization, type StatsOfRaster } from '../sampling/index.ts';
import { ensureModelOnnx, readOnnx, resolveModel } from './model-ref.ts';
import { EmbeddingSession } from './session.ts';
import { centreWindow, checkChip, chipReference, type ChipReference } from './chip-checks.ts';

/** The largest decoded block of a chip: the 16 MiB upload limit, so an uncompressed chip always fits. */
const CHIP_BLOCK_BYTES = 16 * 2 ** 20;

/** A chip is centre-cropped to one tile: it may be a few tiles wide (4, and at least 512 px), not more. */
export function chipMaxSide(tileSize: number): number {
  return Math.max(4 * tileSize, 512);
}

/** A chip's vector, with what the client should know about how it was made (a centre crop, a far pixel size). */
export interface ChipEmbedding {
  vector: Float32Array;
  warnings: string[];
}

/**
 * Embeds uploaded GeoTIFF chips with a model's ONNX session, read and normalised exactly as catalog tiles are.
 * A chip larger than the model's tile is centre-cropped; sessions are kept per model.
 */
export class ChipEmbedder {
  private readonly sessions = new Map<number, Promise<{ session: EmbeddingSession; normalization: Normalization; reference: ChipReference }>>();

  constructor(private readonly store: Store) {}

  /** An aborted `signal` (the request was abandoned) stops the work at the next step. */
  async embed(tiff: Uint8Array, model: ModelRecord, signal?: AbortSignal): Promise<ChipEmbedding> {
    const { session, normalization, reference } = await this.sessionFor(model);
    const { tileSize, bands } = session.info;
    // The ingest reader takes paths and URLs; a private temp file lets chips use the same decoders and limits.
    const dir = mkdtempSync(join(tmpdir(), 'tilevec-chip-'));
    const path = join(dir, 'chip.tif');
    try {
      writeFileSync(path, tiff);
      let raster;
      try {
        // A chip needs no coordinates, and its blocks no more than an upload can hold.
        raster = await openRaster(path, { allowUngeoreferenced: true, maxBlockBytes: CHIP_BLOCK_BYTES });
      } catch (err) {
        throw new UserError(`the chip is not a readable GeoTIFF: ${errorMessage(err).replace(path, 'chip')}`, { status: 422 });
      }
      const source = new IngestRasterSource(0, 'chip', raster);
      try {
        const maxSide = chipMaxSide(tileSize);
        if (raster.width > maxSide || raster.height > maxSide) {
          throw new UserError(`the chip is ${raster.width}x${raster.height} px; model '${model.name}' takes chips of at most ${maxSide}x${maxSide}`, { status: 422 });
        }
        if (raster.width < tileSize || raster.height < tileSize) {
          throw new UserError(`the chip is ${raster.width}x${raster.height} px; model '${model.name}' needs at least ${tileSize}x${tileSize}`, { status: 422 });
        }
        if (Math.max(...bands) > raster.bandCount) {
          throw new UserError(`the chip has ${raster.bandCount} bands; model '${model.name}' reads bands ${bands.join(',')}`, { status: 422 });
        }
        const warnings = checkChip(raster, reference);
        const window = centreWindow(raster, tileSize);
        signal?.throwIfAborted();
        // A block that decodes badly (a bomb, a corrupt stream) is the chip's fault, as an unreadable header is.
        const unreadable = (err: unknown): never => {
          throw new UserError(`the chip is not a readable GeoTIFF: ${errorMessage(err).replace(path, 'chip')}`, { status: 422 });
        };
        // A per-raster model normalizes a chip by the chip's own statistics, as it normalized each training raster.
        const stats = normalization.scope === 'raster' ? [await chipStats(raster, bands).catch(unreadable)] : [];
        if (stats[0]?.bandStats.some((b) => b.count === 0)) {
          throw new UserError(`the chip has a band with no valid pixels; model '${model.name}' normalizes each chip by its own statistics`, { status: 422 });
        }
        const dataset = new TripletDataset([source], normalization, stats);
        const input = await dataset.readTile({ rasterId: 0, window, augment: IDENTITY }).catch(unreadable);
        signal?.throwIfAborted();
        return { vector: await session.embed(input, 1), warnings };
      } finally {
        await source.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  private sessionFor(model: ModelRecord) {
    let entry = this.sessions.get(model.id);
    if (!entry) {
      entry = (async () => {
        const { dir, card } = await resolveModel(this.store, model.name);
        const session = await EmbeddingSession.create(readOnnx(ensureModelOnnx(dir)));
        const reference = await chipReference(this.store, card);
        return { session, normalization: card.normalization, reference };
      })();
      entry.catch(() => this.sessions.delete(model.id));
      this.sessions.set(model.id, entry);
    }
    return entry;
  }

  async close(): Promise<void> {
    for (const entry of this.sessions.values()) await entry.then((e) => e.session.release(), () => {});
    this.sessions.clear();
  }
}

/** Band statistics of every pixel of a chip (a chip is at most `chipMaxSide` square, so one read holds it). */
async function chipStats(raster: Raster, bands: number[]): Promise<StatsOfRaster> {
  const { data } = await raster.readWindow({ x: 0, y: 0, w: raster.width, h: raster.height }, bands);
  const bandStats = bands.map((band, i) => {
    const acc = new BandStatsAccumulator(band, raster.dtype, raster.nodata);
    acc.add(data[i]);
    return acc.result();
  });
  return { id: 0, label: 'chip', bandStats };
}
