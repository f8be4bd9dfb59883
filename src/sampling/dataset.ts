import { augmentTile } from './augment.ts';
import { normalizeTile, type Normalization } from './normalize.ts';
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

  constructor(sources: RasterSource[], readonly normalization: Normalization) {
    this.sources = new Map(sources.map((s) => [s.id, s]));
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
    const normalized = normalizeTile(raw, this.normalization, source.nodata, raw);
    return augmentTile(normalized, draw.window.w, this.bandCount, draw.augment);
  }

  async readTriplet(t: Triplet): Promise<TripletTensors> {
    const [anchor, neighbor, distant] = await Promise.all([this.readTile(t.anchor), this.readTile(t.neighbor), this.readTile(t.distant)]);
    return { anchor, neighbor, distant };
  }
}
