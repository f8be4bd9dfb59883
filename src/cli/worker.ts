import type { Command } from 'commander';
import { UserError } from '../errors.ts';
import { logger } from '../log.ts';
import { isServerUrl, type VectorType } from '../store/index.ts';
import { JobQueue, jobsReport, planEmbed, planIngest, runWorker, type DeadLetter, type IngestUnitOptions, type QueueCounts } from '../queue/index.ts';
import { initBackend } from '../train/index.ts';
import type { Config } from '../config.ts';
import { configFrom, emit, intOption, withStore } from './context.ts';

/** `--queue` and `worker` need a server; say so before touching an embedded database. */
export function requireServerDb(config: Config, what: string): void {
  if (!isServerUrl(config.db)) {
    throw new UserError(`${what} needs a PostgreSQL server (--db postgres://...): the embedded PGlite engine has no job queue`);
  }
}

/** Enqueues one unit per raster the inputs name (the `--queue` side of `tilevec ingest`). */
export async function enqueueIngest(config: Config, inputs: string[], options: IngestUnitOptions) {
  requireServerDb(config, 'ingest --queue');
  const { units, failed } = await planIngest(inputs, options);
  const jobs = await withStore(config, async (store) => {
    const queue = await JobQueue.open(store, config.queue);
    try { return await queue.enqueue(units); } finally { await queue.close(); }
  });
  return { queued: jobs.length, jobs, failed };
}

/** Enqueues blocks of tiles still missing a vector for the model (the `--queue` side of `tilevec embed`). */
export async function enqueueEmbed(config: Config, opts: { model?: string; rasterIds?: number[]; batch?: number; blockTiles?: number; vectorType?: VectorType }) {
  requireServerDb(config, 'embed --queue');
  await initBackend('cpu'); // a model without an ONNX file yet is exported from its tfjs weights
  return withStore(config, async (store) => {
    const plan = await planEmbed(store, opts);
    const queue = await JobQueue.open(store, config.queue);
    try {
      const jobs = await queue.enqueue(plan.units);
      return { model: plan.model, queued: jobs.length, tiles: plan.units.reduce((s, u) => s + u.tiles, 0), tilesAlreadyDone: plan.tilesAlreadyDone, jobs };
    } finally {
      await queue.close();
    }
  });
}

function formatJobs(r: { queues: QueueCounts[]; dead: DeadLetter[]; deadTotal: number }): string {
  const lines = ['queue            queued  active  failed    done'];
  for (const q of r.queues) lines.push(`${q.queue.padEnd(15)} ${[q.queued, q.active, q.failed, q.done].map((n) => String(n).padStart(7)).join(' ')}`);
  lines.push(`${r.deadTotal} dead letter(s)${r.dead.length ? ', latest:' : ''}`);
  for (const d of r.dead) {
    const unit = d.unit.kind === 'ingest' ? d.unit.uri : `model ${d.unit.model} raster ${d.unit.rasterId} tiles ${d.unit.firstTileId}-${d.unit.lastTileId}`;
    lines.push(`  ${d.createdOn}  ${d.unit.kind} ${unit}: ${d.error}`);
  }
  return lines.join('\n');
}

export function registerWorkerCommands(program: Command): void {
  program.command('worker')
    .description('take ingest and embed units from the job queue on the PostgreSQL server until stopped (SIGINT/SIGTERM)')
    .option('--concurrency <n>', 'units in progress at once', intOption('--concurrency', 1), 1)
    .option('--exit-when-idle', 'stop once both queues are empty (batch runs, tests)')
    .action(async (o: { concurrency: number; exitWhenIdle?: boolean }, cmd: Command) => {
      const config = configFrom(cmd);
      requireServerDb(config, 'worker');
      if (o.concurrency > 64) throw new UserError(`--concurrency must be at most 64, got ${o.concurrency}`);
      await initBackend('cpu');
      const summary = await withStore(config, async (store) => {
        const queue = await JobQueue.open(store, config.queue, { supervise: true });
        const stop = new AbortController();
        const onSignal = () => stop.abort();
        process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
        const idle = o.exitWhenIdle ? setInterval(() => {
          jobsReport(store).then((r) => { if (r.queues.every((q) => q.queued + q.active === 0)) stop.abort(); }, () => {});
        }, config.queue.pollSeconds * 1000) : undefined;
        try {
          process.stderr.write(`tilevec: worker ${process.pid} taking jobs (concurrency ${o.concurrency})\n`);
          return await runWorker(store, queue, {
            concurrency: o.concurrency, pollSeconds: config.queue.pollSeconds, signal: stop.signal,
            onJob: (e) => logger().info({ job: e.job.id, kind: e.job.unit.kind, status: e.status, seconds: e.seconds, output: e.output }, 'job finished'),
          });
        } finally {
          clearInterval(idle);
          process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
          await queue.close();
        }
      });
      emit(cmd, summary, (s) => `worker stopped: ${s.done} done, ${s.failed} failed`);
    });

  program.command('jobs')
    .description('queued, active, failed and done units of the job queue, and the latest dead letters with their errors')
    .option('--dead <n>', 'dead letters to list', intOption('--dead', 0), 10)
    .action(async (o: { dead: number }, cmd: Command) => {
      const config = configFrom(cmd);
      requireServerDb(config, 'jobs');
      const report = await withStore(config, (store) => jobsReport(store, { deadLimit: o.dead }));
      emit(cmd, report, formatJobs);
    });
}
