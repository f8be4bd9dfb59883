import { accessSync, constants, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { PGlite, types } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { UserError, errorMessage } from '../errors.ts';
import { makeDirectory } from '../paths.ts';
import { acquireDirLock } from './dir-lock.ts';
import type { Engine, Sql } from './engine.ts';

// int8 ids and counts come back as JS numbers on both engines (ids stay far below 2^53).
const parsers = { [types.INT8]: (v: string) => Number(v) };

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

  /**
   * Opens the database in `dir`, creating it unless `create` is false (then a missing directory is an error that
   * names it, so a typo in --db never makes an empty store); `memory://` keeps it in memory.
   */
  static async open(dir: string, opts: { lockWaitMs?: number; create?: boolean } = {}): Promise<PgliteEngine> {
    if (dir === 'memory://') {
      const db = await PGlite.create({ extensions: { vector }, parsers });
      return new PgliteEngine(db, dir, () => {});
    }
    const path = resolve(dir);
    if (opts.create === false && !existsSync(path)) {
      throw new UserError(`no database at ${path}: it does not exist; check --db, or make one with tilevec ingest <rasters> or tilevec db migrate`);
    }
    makeDirectory(path, 'the database directory', 'pass --db with a writable directory or a postgres:// URL');
    try {
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
