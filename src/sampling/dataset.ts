import { augmentTile } from './augment.ts';
import { normalizationForRaster, normalizeTile, type Normalization, type StatsOfRaster } from './normalize.ts';
import { jitterTile } from './radiometry.ts';
import type { TileDraw, Triplet } from './sampler.ts';
import type { RasterSource } from './source.ts';

export interface TripletTensors {
  /** Each [tile, tile, bands], pixel-interleaved, normalized and augmented. */
  anchor: Float32Array;
  neighbor: Float32Array;
  distant: Float32Array;
}

/** Reads the sampler's windows through the sources, then normalizes and augments them into model inputs. */
export class TripletDataset {
  private readonly sources: Map<number, RasterSource>;
  private readonly perRaster = new Map<number, Normalization>();

  /** Under per-raster normalization `rasterStats` gives each source's own statistics (by raster id). */
  constructor(sources: RasterSource[], readonly normalization: Normalization, rasterStats: StatsOfRaster[] = []) {
    this.sources = new Map(sources.map((s) => [s.id, s]));
    if (normalization.scope === 'raster') {
      for (const s of sources) {
        const stats = rasterStats.find((r) => r.id === s.id);
        if (!stats) throw new RangeError(`per-raster normalization needs the statistics of raster ${s.id}`);
        this.perRaster.set(s.id, normalizationForRaster(normalization, stats));
      }
    }
  }

  /** The numbers that normalize one raster's tiles. */
  normalizationOf(rasterId: number): Normalization {
    return this.perRaster.get(rasterId) ?? this.normalization;
  }

  get bandCount(): number {
    return this.normalization.bands.length;
  }

  source(rasterId: number): RasterSource {
    const source = this.sources.get(rasterId);
    if (!source) throw new RangeError(`the dataset has no raster ${rasterId}`);
    return source;
  }

  /** Raw values of the window, before normalization and augmentation. */
  readRaw(draw: TileDraw): Promise<Float32Array> {
    return this.source(draw.rasterId).readWindow(draw.window, this.normalization.bands);
  }

  async readTile(draw: TileDraw): Promise<Float32Array> {
    const source = this.source(draw.rasterId);
    const raw = await source.readWindow(draw.window, this.normalization.bands);
    const normalization = this.normalizationOf(draw.rasterId);
    const normalized = normalizeTile(raw, normalization, source.nodata, raw);
    if (draw.jitter) jitterTile(normalized, normalization, draw.jitter);
    return augmentTile(normalized, draw.window.w, this.bandCount, draw.augment);
  }

  async readTriplet(t: Triplet): Promise<TripletTensors> {
    const [anchor, neighbor, distant] = await Promise.all([this.readTile(t.anchor), this.readTile(t.neighbor), this.readTile(t.distant)]);
    return { anchor, neighbor, distant };
  }
}
