import PgBoss from 'pg-boss';
import type { Config } from '../config.ts';
import { UserError, errorMessage } from '../errors.ts';
import type { Store } from '../store/index.ts';
import type { EmbedUnit, IngestUnit, Unit } from './units.ts';

export const QUEUES = { ingest: 'tilevec-ingest', embed: 'tilevec-embed', dead: 'tilevec-dead' } as const;
export type WorkQueue = typeof QUEUES.ingest | typeof QUEUES.embed;

/** pg-boss's own schema on the catalog's server; it creates and migrates it itself. */
const BOSS_SCHEMA = 'pgboss';

export type QueueSettings = Config['queue'];

export interface FetchedJob {
  id: string;
  queue: WorkQueue;
  unit: Unit;
  retryCount: number;
}

export function requireQueueServer(store: Store): void {
  if (store.engine.kind !== 'postgres') {
    throw new UserError(
      `the job queue needs a PostgreSQL server (--db postgres://...); the embedded PGlite engine at ${store.engine.location} has none. ` +
        'Run the work in this process (drop --queue), or point --db at a server',
    );
  }
}

/**
 * The pg-boss work queue on the catalog's own PostgreSQL server, sharing the store's connection pool. Units are
 * idempotent (a raster's rows land in one transaction, vectors are upserted by (model, tile)), so a unit that runs
 * twice after a worker died changes nothing.
 */
export class JobQueue {
  private constructor(private readonly boss: PgBoss, private readonly store: Store, private readonly settings: QueueSettings) {}

  /** `supervise` makes this process one of those that retry expired units: workers do, enqueuers need not. */
  static async open(store: Store, settings: QueueSettings, opts: { supervise?: boolean } = {}): Promise<JobQueue> {
    requireQueueServer(store);
    const db = { executeSql: async (text: string, values?: unknown[]) => ({ rows: await store.engine.query(text, values) }) };
    const boss = new PgBoss({
      db, schema: BOSS_SCHEMA, migrate: true, schedule: false, supervise: opts.supervise ?? false,
      maintenanceIntervalSeconds: settings.superviseSeconds,
    });
    // Maintenance errors (a lost connection) are retried on the next interval; they must not crash a worker.
    boss.on('error', () => {});
    try {
      await boss.start();
      for (const name of [QUEUES.dead, QUEUES.ingest, QUEUES.embed]) await ensureQueue(boss, name);
    } catch (err) {
      await boss.stop({ graceful: false, close: false }).catch(() => {});
      if (err instanceof UserError) throw err;
      throw new UserError(`cannot set up the job queue on ${store.engine.location}: ${errorMessage(err)}`);
    }
    return new JobQueue(boss, store, settings);
  }

  /** Queues units with retries, exponential back-off and a dead letter once retries run out. */
  async enqueue(units: Unit[]): Promise<string[]> {
    const ids: string[] = [];
    for (const unit of units) {
      const id = await this.boss.send(unit.kind === 'ingest' ? QUEUES.ingest : QUEUES.embed, unit, {
        retryLimit: this.settings.retryLimit,
        retryDelay: this.settings.retryDelaySeconds,
        retryBackoff: true,
        expireInSeconds: this.settings.expireSeconds,
        deadLetter: QUEUES.dead,
      });
      if (id) ids.push(id);
    }
    return ids;
  }

  /** The next unit to run: ingest first, since embedding needs the catalog's tiles. */
  async fetch(): Promise<FetchedJob | undefined> {
    for (const queue of [QUEUES.ingest, QUEUES.embed] as const) {
      const [job] = await this.boss.fetch<IngestUnit | EmbedUnit>(queue, { batchSize: 1, includeMetadata: true });
      if (job) return { id: job.id, queue, unit: job.data, retryCount: job.retryCount };
    }
    return undefined;
  }

  async complete(job: FetchedJob, output: object): Promise<void> {
    await this.boss.complete(job.queue, job.id, output);
  }

  /**
   * Records the error on the job: it is retried later, or becomes a dead letter that carries the error. A permanent
   * error would fail every retry the same way, so its job's retries are used up first and it dead-letters at once.
   */
  async fail(job: FetchedJob, err: unknown, opts: { permanent?: boolean } = {}): Promise<void> {
    if (opts.permanent) await this.store.engine.query(`update ${BOSS_SCHEMA}.job set retry_limit = retry_count where name = $1 and id = $2`, [job.queue, job.id]);
    await this.boss.fail(job.queue, job.id, { message: errorMessage(err) });
  }

  /** Embed units of the model still queued, waiting for a retry, or running. */
  async pendingEmbedUnits(model: string): Promise<number> {
    const [{ n }] = await this.store.engine.query<{ n: number }>(
      `select count(*)::int as n from ${BOSS_SCHEMA}.job where name = $1 and state in ('created', 'retry', 'active') and data->>'model' = $2`,
      [QUEUES.embed, model],
    );
    return n;
  }

  async close(): Promise<void> {
    await this.boss.stop({ graceful: false, close: false, wait: true });
  }
}

async function ensureQueue(boss: PgBoss, name: string): Promise<void> {
  if (await boss.getQueue(name)) return;
  try {
    await boss.createQueue(name);
  } catch (err) {
    // Another process created it at the same moment.
    if (!(await boss.getQueue(name))) throw err;
  }
}

export interface QueueCounts {
  queue: string;
  queued: number;
  active: number;
  failed: number;
  done: number;
}

export interface DeadLetter {
  id: string;
  createdOn: string;
  unit: Unit;
  error: string;
}

/** Jobs by queue and state, done ones counted in pg-boss's archive too, plus the latest dead letters. */
export async function jobsReport(store: Store, opts: { deadLimit?: number } = {}): Promise<{ queues: QueueCounts[]; dead: DeadLetter[]; deadTotal: number }> {
  requireQueueServer(store);
  const queues: QueueCounts[] = [QUEUES.ingest, QUEUES.embed].map((queue) => ({ queue, queued: 0, active: 0, failed: 0, done: 0 }));
  const [{ installed }] = await store.engine.query<{ installed: boolean }>(`select to_regclass('${BOSS_SCHEMA}.job') is not null as installed`);
  if (!installed) return { queues, dead: [], deadTotal: 0 };
  const rows = await store.engine.query<{ name: string; state: string; n: number }>(
    `select name, state::text, count(*)::int as n from ${BOSS_SCHEMA}.job where name = any($1) group by 1, 2
     union all
     select name, state::text, count(*)::int from ${BOSS_SCHEMA}.archive where name = any($1) group by 1, 2`,
    [[QUEUES.ingest, QUEUES.embed]],
  );
  for (const r of rows) {
    const q = queues.find((c) => c.queue === r.name)!;
    if (r.state === 'created' || r.state === 'retry') q.queued += r.n;
    else if (r.state === 'active') q.active += r.n;
    else if (r.state === 'failed') q.failed += r.n;
    else if (r.state === 'completed') q.done += r.n;
  }
  const [{ total }] = await store.engine.query<{ total: number }>(`select count(*)::int as total from ${BOSS_SCHEMA}.job where name = $1`, [QUEUES.dead]);
  const dead = await store.engine.query<DeadLetter>(
    `select id::text, created_on::text as "createdOn", data as unit, coalesce(output->>'message', output::text, '') as error
     from ${BOSS_SCHEMA}.job where name = $1 order by created_on desc limit $2`,
    [QUEUES.dead, opts.deadLimit ?? 10],
  );
  return { queues, dead, deadTotal: total };
}
