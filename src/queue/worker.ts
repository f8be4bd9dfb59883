import { availableParallelism } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { UserError, errorMessage } from '../errors.ts';
import { logger } from '../log.ts';
import { EmbeddingSession, checkRasterFitsModel, embedRasterTiles, ensureModelOnnx, readOnnx, resolveModel, type ResolvedModel } from '../embed/index.ts';
import { ingest } from '../ingest/index.ts';
import type { Store } from '../store/index.ts';
import type { FetchedJob, JobQueue } from './queue.ts';
import { SessionCache } from './session-cache.ts';
import type { EmbedUnit, IngestUnit } from './units.ts';

export interface WorkerOptions {
  concurrency: number;
  pollSeconds: number;
  /** Stops taking new units once aborted; units in hand finish first. */
  signal?: AbortSignal;
  onJob?: (event: { job: FetchedJob; status: 'done' | 'failed'; seconds: number; output: unknown }) => void;
}

export interface WorkerSummary {
  done: number;
  failed: number;
}

/**
 * Takes units from the queue, `concurrency` at a time, until the signal aborts. A unit that throws is failed with
 * its error, which pg-boss retries with back-off and finally moves to the dead-letter queue.
 */
export async function runWorker(store: Store, queue: JobQueue, opts: WorkerOptions): Promise<WorkerSummary> {
  const summary: WorkerSummary = { done: 0, failed: 0 };
  const threads = Math.max(1, Math.floor(availableParallelism() / opts.concurrency));
  // One ONNX Runtime session per model, shared by the slots; a retrained model (new createdAt) loads anew.
  const sessions = new SessionCache<LoadedModel>((name) => store.model(name).then((m) => m.createdAt), async (name) => {
    const model = await resolveModel(store, name);
    const onnx = ensureModelOnnx(model.dir);
    const session = await EmbeddingSession.create(readOnnx(onnx), { threads, source: onnx });
    return { model, session, release: () => session.release() };
  });
  const slot = async () => {
    while (!opts.signal?.aborted) {
      let job: FetchedJob | undefined;
      try {
        job = await queue.fetch();
      } catch (err) {
        logger().warn({ err: errorMessage(err) }, 'fetching a job failed; retrying');
      }
      if (!job) {
        await sleep(opts.pollSeconds * 1000, undefined, { signal: opts.signal }).catch(() => {});
        continue;
      }
      const started = performance.now();
      logger().info({ job: job.id, kind: job.unit.kind, retry: job.retryCount }, 'job started');
      try {
        const output = job.unit.kind === 'ingest' ? await runIngest(store, job.unit) : await runEmbed(store, sessions, job.unit);
        await queue.complete(job, output);
        summary.done++;
        opts.onJob?.({ job, status: 'done', seconds: (performance.now() - started) / 1000, output });
      } catch (err) {
        if (!(err instanceof UserError)) logger().debug({ err, job: job.id }, 'job failed');
        await queue.fail(job, err, { permanent: isPermanent(err) }).catch((e) => logger().warn({ err: errorMessage(e), job: job!.id }, 'could not record the failure; the job expires and is retried'));
        summary.failed++;
        opts.onJob?.({ job, status: 'failed', seconds: (performance.now() - started) / 1000, output: { error: errorMessage(err) } });
      }
      if (job.unit.kind === 'embed') await indexAfterLastUnit(store, queue, job.unit.model);
    }
  };
  try {
    await Promise.all(Array.from({ length: opts.concurrency }, slot));
  } finally {
    await sessions.close();
  }
  return summary;
}

/**
 * Errors worth a retry: network trouble, time-outs, a server's 5xx, 408 or 429, and faults that are not the input's
 * (anything but a UserError). Every other UserError (not a TIFF, a refused redirect, a missing file) fails alike
 * each time. Ingest reports its failures as text, so the text is what tells them apart.
 */
const TRANSIENT = /timed out|time-out|network|connect|reset|host not found|HTTP (5\d\d|408|429)\b|internal error/i;

function isPermanent(err: unknown): boolean {
  return err instanceof UserError && !TRANSIENT.test(err.message);
}

async function runIngest(store: Store, unit: IngestUnit): Promise<object> {
  const summary = await ingest(store, [unit.uri], unit.options);
  const outcome = summary.rasters[0];
  if (!outcome) throw new UserError(`${unit.uri}: nothing to ingest`);
  if (outcome.status === 'failed') throw new UserError(outcome.error);
  return outcome;
}

interface LoadedModel {
  model: ResolvedModel;
  session: EmbeddingSession;
  release(): Promise<void>;
}

/**
 * Builds the model's HNSW index once none of its units is left, which planEmbed dropped for a big load. The check
 * follows the unit's own completion, so of two units finishing together at least one sees the other done. A
 * worker killed during the build leaves no index; the next `tilevec embed` (or plan) builds it, and until then
 * searches are exact.
 */
async function indexAfterLastUnit(store: Store, queue: JobQueue, model: string): Promise<void> {
  try {
    if ((await queue.pendingEmbedUnits(model)) > 0) return;
    const started = performance.now();
    await store.ensureEmbeddingIndex(await store.model(model));
    logger().info({ model, seconds: (performance.now() - started) / 1000 }, 'the model\'s last unit is done; its HNSW index is built');
  } catch (err) {
    logger().warn({ model, err: errorMessage(err) }, 'could not build the HNSW index after the last unit; the next embed builds it');
  }
}

/** Embeds one block of tiles and upserts the vectors; rerunning a block rewrites the same rows. */
async function runEmbed(store: Store, sessions: SessionCache<LoadedModel>, unit: EmbedUnit): Promise<object> {
  const lease = await sessions.acquire(unit.model);
  try {
    return await embedUnit(store, lease.value, unit);
  } finally {
    lease.release();
  }
}

async function embedUnit(store: Store, { model, session }: LoadedModel, unit: EmbedUnit): Promise<object> {
  const raster = await store.raster(unit.rasterId);
  checkRasterFitsModel(raster, model.card);
  const tiles = await store.tilesOfRasterInRange(unit.rasterId, unit.firstTileId, unit.lastTileId);
  await embedRasterTiles(store, session, model, raster, tiles, unit.batch);
  return { model: unit.model, rasterId: unit.rasterId, tiles: tiles.length };
}
