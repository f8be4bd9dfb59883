import { mkdirSync, accessSync, constants, writeFileSync, readFileSync, unlinkSync, linkSync, lstatSync, readdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { PGlite, types } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { UserError, errorMessage } from '../errors.ts';
import type { Engine, Sql } from './engine.ts';

// int8 ids and counts come back as JS numbers on both engines (ids stay far below 2^53).
const parsers = { [types.INT8]: (v: string) => Number(v) };

/**
 * PGlite is one Postgres backend inside this process, so two processes must never open the same data directory.
 * A lock file next to it makes a second process wait for the first, or fail with a clear message. The file names
 * its holder by pid and start time, so a lock left by a killed process is taken over even once its pid is reused.
 */
function acquireDirLock(dir: string, waitMs: number): () => void {
  const lockPath = `${dir}.lock`;
  const mine = `${process.pid} ${startTime(process.pid) ?? ''}`.trim();
  const deadline = Date.now() + waitMs;
  removeDeadDrafts(lockPath);
  let told = false;
  for (;;) {
    // Written aside and linked into place, so a lock is never seen half-written (link fails if one exists).
    const draft = `${lockPath}.${process.pid}`;
    writeFileSync(draft, mine);
    try {
      linkSync(draft, lockPath);
      return () => { try { unlinkSync(lockPath); } catch { /* already gone */ } };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      unlinkSync(draft);
    }
    const holder = readHolder(lockPath);
    if (holder === undefined) continue; // released in between
    if (!holderAlive(holder)) {
      takeOverStale(lockPath, holder.text);
      continue;
    }
    if (!told) {
      // A wait of up to a minute must not look like a hang.
      process.stderr.write(`tilevec: the database ${dir} is in use by process ${holder.pid}; waiting up to ${Math.round(waitMs / 1000)} s for it\n`);
      told = true;
    }
    if (Date.now() > deadline) {
      throw new UserError(`the database ${dir} is in use by process ${holder.pid}; stop it, or use a PostgreSQL server (--db postgres://...) for concurrent access`);
    }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
  }
}

interface LockHolder {
  text: string;
  pid: number;
  /** Absent where the platform has no /proc (the pid alone is checked there). */
  startTime?: string;
}

function readHolder(lockPath: string): LockHolder | undefined {
  let stat;
  try {
    stat = lstatSync(lockPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  // Only a plain file can be a lock this code wrote; anything else (a dangling symlink, a directory) would make
  // every attempt fail the same way, forever.
  if (!stat.isFile()) {
    throw new UserError(`${lockPath} is not a lock file tilevec wrote (it is ${stat.isDirectory() ? 'a directory' : stat.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}); remove it once no process uses the database`);
  }
  try {
    const text = readFileSync(lockPath, 'utf8');
    const [pid, start] = text.trim().split(/\s+/);
    return { text, pid: Number(pid), startTime: start };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Drafts (`db.lock.<pid>`) left by processes killed between writing and removing them. */
function removeDeadDrafts(lockPath: string): void {
  const prefix = `${basename(lockPath)}.`;
  for (const name of readdirSync(dirname(lockPath))) {
    const pid = name.startsWith(prefix) ? name.slice(prefix.length) : '';
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid || holderAlive({ text: '', pid: Number(pid) })) continue;
    try { unlinkSync(join(dirname(lockPath), name)); } catch { /* another process removed it */ }
  }
}

function holderAlive({ pid, startTime: recorded }: LockHolder): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // A live pid may belong to another process by now: the start time tells them apart.
  const current = recorded === undefined ? undefined : startTime(pid);
  return current === undefined || current === recorded;
}

/** Removes a stale lock unless another waiter has already replaced it. */
function takeOverStale(lockPath: string, staleText: string): void {
  try {
    if (readFileSync(lockPath, 'utf8') === staleText) unlinkSync(lockPath);
  } catch { /* gone already */ }
}

/** The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat), where /proc exists. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

class PgliteSql implements Sql {
  constructor(private readonly db: Pick<PGlite, 'query' | 'exec'>) {}
  async query<T>(text: string, params: unknown[] = []): Promise<T[]> {
    return (await this.db.query<T>(text, params)).rows;
  }
  async exec(text: string): Promise<void> {
    await this.db.exec(text);
  }
}

export class PgliteEngine implements Engine {
  readonly kind = 'pglite' as const;
  private readonly sql: PgliteSql;

  private constructor(private readonly db: PGlite, readonly location: string, private readonly release: () => void) {
    this.sql = new PgliteSql(db);
  }

  /** Opens (creating if needed) the database in `dir`; `memory://` keeps it in memory. */
  static async open(dir: string, opts: { lockWaitMs?: number } = {}): Promise<PgliteEngine> {
    if (dir === 'memory://') {
      const db = await PGlite.create({ extensions: { vector }, parsers });
      return new PgliteEngine(db, dir, () => {});
    }
    const path = resolve(dir);
    try {
      mkdirSync(path, { recursive: true });
      accessSync(path, constants.W_OK);
    } catch (err) {
      throw new UserError(`cannot use ${path} as the database directory: ${errorMessage(err)}; pass --db with a writable directory or a postgres:// URL`);
    }
    const release = acquireDirLock(path, opts.lockWaitMs ?? 60_000);
    try {
      const db = await PGlite.create({ dataDir: path, extensions: { vector }, parsers });
      return new PgliteEngine(db, path, release);
    } catch (err) {
      release();
      throw new UserError(`cannot open the embedded database in ${path}: ${errorMessage(err)}`);
    }
  }

  query<T>(text: string, params?: unknown[]): Promise<T[]> {
    return this.sql.query<T>(text, params);
  }

  exec(text: string): Promise<void> {
    return this.sql.exec(text);
  }

  transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
    return this.db.transaction((tx) => fn(new PgliteSql(tx)));
  }

  // PGlite has a single session, so the engine itself is that session.
  session<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    return fn(this.sql);
  }

  async close(): Promise<void> {
    try { await this.db.close(); } finally { this.release(); }
  }
}
