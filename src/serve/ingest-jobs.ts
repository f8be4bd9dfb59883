import { randomUUID } from 'node:crypto';
import { NotFoundError, UserError, errorMessage } from '../errors.ts';

type JobState = { state: 'running' } | { state: 'done'; summary: unknown } | { state: 'failed'; error: string };

/** How many finished jobs are remembered for polling; the oldest are forgotten first. */
const KEEP = 100;

/** Ingests the service runs in-process on the embedded engine, one at a time, polled by id. */
export class IngestJobs {
  private readonly jobs = new Map<string, JobState>();
  private tail: Promise<unknown> = Promise.resolve();

  start(work: () => Promise<unknown>): string {
    const id = randomUUID();
    this.jobs.set(id, { state: 'running' });
    this.tail = this.tail.then(work).then(
      (summary) => this.finish(id, { state: 'done', summary }),
      (err) => this.finish(id, { state: 'failed', error: err instanceof UserError ? err.message : `internal error: ${errorMessage(err)}` }),
    );
    return id;
  }

  get(id: string): { id: string } & JobState {
    const job = this.jobs.get(id);
    if (!job) throw new NotFoundError(`no ingest job ${id} (jobs are kept in memory until the service restarts)`);
    return { id, ...job };
  }

  private finish(id: string, state: JobState): void {
    this.jobs.set(id, state);
    const finished = [...this.jobs].filter(([, j]) => j.state !== 'running');
    for (const [old] of finished.slice(0, Math.max(0, finished.length - KEEP))) this.jobs.delete(old);
  }
}
