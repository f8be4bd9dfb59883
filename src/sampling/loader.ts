import type { TripletDataset } from './dataset.ts';
import type { RngState } from '../rng.ts';
import type { Triplet, TripletSampler } from './sampler.ts';

export interface TripletBatch {
  /** Each [batch, tile, tile, bands], pixel-interleaved, ready for tf.tensor4d(data, shape). */
  anchor: Float32Array;
  neighbor: Float32Array;
  distant: Float32Array;
  shape: [number, number, number, number];
  triplets: Triplet[];
  /** The sampler's RNG state right after this batch was drawn: checkpoint it to resume with the next batch. */
  rngState: RngState;
}

export interface LoaderOptions {
  batchSize: number;
  /** Batches read ahead of the consumer (default 4). */
  prefetch?: number;
  /** Stop after this many batches (default: never). */
  batches?: number;
}

/**
 * An async iterator over batches that reads `prefetch` batches ahead, so window reads overlap training steps.
 * Windows are drawn synchronously in batch order before any read starts, so the batches and their RNG states
 * do not depend on read timing. To resume from a checkpoint, `sampler.setState(batch.rngState)` before making
 * a new loader.
 */
export class TripletLoader implements AsyncIterableIterator<TripletBatch, undefined> {
  private readonly queue: Promise<TripletBatch>[] = [];
  private drawn = 0;
  private delivered = 0;
  private lastState: RngState;
  private readonly prefetch: number;

  constructor(private readonly sampler: TripletSampler, private readonly dataset: TripletDataset, private readonly options: LoaderOptions) {
    if (!Number.isInteger(options.batchSize) || options.batchSize < 1) throw new RangeError(`batch size must be an integer >= 1, got ${options.batchSize}`);
    this.prefetch = Math.max(0, Math.trunc(options.prefetch ?? 4));
    this.lastState = sampler.getState();
  }

  /** The RNG state after the last batch handed out: where a resumed run continues. */
  getState(): RngState {
    return this.lastState;
  }

  async next(): Promise<IteratorResult<TripletBatch, undefined>> {
    if (this.options.batches !== undefined && this.delivered >= this.options.batches) return { done: true, value: undefined };
    this.fill();
    const batch = await this.queue.shift()!;
    this.delivered++;
    this.lastState = batch.rngState;
    this.fill();
    return { done: false, value: batch };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private fill(): void {
    const limit = this.options.batches ?? Infinity;
    while (this.queue.length < this.prefetch + 1 && this.drawn < limit) {
      const triplets = this.sampler.take(this.options.batchSize);
      const promise = this.read(triplets, this.sampler.getState());
      // A failed read surfaces when its batch is awaited; until then it must not count as unhandled.
      promise.catch(() => {});
      this.queue.push(promise);
      this.drawn++;
    }
  }

  private async read(triplets: Triplet[], rngState: RngState): Promise<TripletBatch> {
    const tiles = await Promise.all(triplets.map((t) => this.dataset.readTriplet(t)));
    const tileLength = tiles[0].anchor.length;
    const size = triplets[0].anchor.window.w;
    const batch: TripletBatch = {
      anchor: new Float32Array(tileLength * tiles.length),
      neighbor: new Float32Array(tileLength * tiles.length),
      distant: new Float32Array(tileLength * tiles.length),
      shape: [tiles.length, size, size, this.dataset.bandCount],
      triplets,
      rngState,
    };
    tiles.forEach((t, i) => {
      batch.anchor.set(t.anchor, i * tileLength);
      batch.neighbor.set(t.neighbor, i * tileLength);
      batch.distant.set(t.distant, i * tileLength);
    });
    return batch;
  }
}
