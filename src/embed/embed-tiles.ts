import type { EmbeddingSession } from './session.ts';

export interface EmbedTilesOptions<T> {
  /** Tiles per inference call. */
  batch: number;
  /** Reads and normalises a batch into [n, tile, tile, bands]. */
  read: (tiles: T[]) => Promise<Float32Array>;
  /** Takes a batch's vectors ([n × dim] row-major); may still be running when the next batch is inferred. */
  write: (tiles: T[], vectors: Float32Array) => Promise<void>;
  /** Batches read ahead of the one in inference (default 2). */
  readAhead?: number;
  /** Writes that may be in flight at once (default 2). */
  writesInFlight?: number;
  /** Called once a batch's write has finished. */
  onWritten?: (tiles: T[]) => void;
}

/**
 * Runs tiles through a session as a bounded pipeline: batches are read ahead while the model runs, and each
 * batch's write proceeds while later batches are read and inferred. The first error from a read, the model or a
 * write stops it; it returns (or throws) only once no write is left running, so every batch is either written
 * whole by its own write or not at all.
 */
export async function embedTiles<T>(session: EmbeddingSession, tiles: T[], opts: EmbedTilesOptions<T>): Promise<void> {
  const { batch } = opts;
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`batch must be an integer >= 1, got ${batch}`);
  const readAhead = Math.max(1, opts.readAhead ?? 2);
  const maxWrites = Math.max(1, opts.writesInFlight ?? 2);
  const batches: T[][] = [];
  for (let i = 0; i < tiles.length; i += batch) batches.push(tiles.slice(i, i + batch));

  const reads: Promise<Float32Array>[] = [];
  const startRead = (i: number) => {
    if (i >= batches.length) return;
    reads[i] = opts.read(batches[i]);
    // Awaited in turn below; until then a failure must not count as unhandled.
    reads[i].catch(() => {});
  };
  const writes = new Set<Promise<void>>();
  let writeError: { err: unknown } | undefined;
  try {
    for (let i = 0; i < readAhead; i++) startRead(i);
    for (let i = 0; i < batches.length && !writeError; i++) {
      const input = await reads[i];
      startRead(i + readAhead);
      const vectors = await session.embed(input, batches[i].length);
      if (writeError) break;
      const write: Promise<void> = opts.write(batches[i], vectors).then(
        () => opts.onWritten?.(batches[i]),
        (err) => void (writeError ??= { err }),
      ).finally(() => writes.delete(write));
      writes.add(write);
      while (writes.size >= maxWrites && !writeError) await Promise.race(writes);
    }
  } finally {
    await Promise.all(writes);
  }
  if (writeError) throw writeError.err;
}
