import { readdirSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import type { Engine, Sql } from './engine.ts';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d+_.+\.sql$/.test(f))
    .sort()
    .map((file) => {
      const sql = readFileSync(join(dir, file), 'utf8');
      return {
        version: Number(file.split('_')[0]),
        name: file.replace(/\.sql$/, ''),
        sql,
        checksum: createHash('sha256').update(sql).digest('hex'),
      };
    });
}

// Any fixed 64-bit key shared by every tilevec process; it only has to differ from other apps' advisory locks.
const MIGRATION_LOCK_KEY = 7_391_824_017;

async function appliedMigrations(sql: Sql): Promise<Map<number, string>> {
  await sql.query(`create table if not exists schema_migrations (
    version integer primary key, name text not null, checksum text not null, applied_at timestamptz not null default now())`);
  const rows = await sql.query<{ version: number; checksum: string }>('select version, checksum from schema_migrations');
  return new Map(rows.map((r) => [r.version, r.checksum]));
}

export interface MigrateResult {
  applied: string[];
  level: number;
}

/**
 * Applies the pending migrations in order, each in its own transaction, under an advisory lock so that two
 * processes migrating at once take turns and the second finds nothing left to do.
 */
export async function migrate(engine: Engine, migrations = loadMigrations()): Promise<MigrateResult> {
  const [{ standby }] = await engine.query<{ standby: boolean }>('select pg_is_in_recovery() as standby');
  if (standby) return checkStandbyLevel(engine, migrations);
  return engine.session(async (sql) => {
    await sql.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      const applied = await appliedMigrations(sql);
      const ran: string[] = [];
      for (const m of migrations) {
        const checksum = applied.get(m.version);
        if (checksum !== undefined) {
          if (checksum !== m.checksum) {
            throw new UserError(`migration ${m.name} was changed after it was applied to this database; restore it and add a new migration instead`);
          }
          continue;
        }
        await sql.query('begin');
        try {
          await sql.exec(m.sql);
          await sql.query('insert into schema_migrations (version, name, checksum) values ($1, $2, $3)', [m.version, m.name, m.checksum]);
          await sql.query('commit');
        } catch (err) {
          await sql.query('rollback');
          throw err;
        }
        ran.push(m.name);
      }
      return { applied: ran, level: Math.max(0, ...migrations.map((m) => m.version)) };
    } finally {
      await sql.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  });
}

/**
 * A hot standby (a streaming replica) takes no writes: it is usable, read-only, once its primary carries every
 * migration this build knows; then it has them too, give or take the replication lag.
 */
async function checkStandbyLevel(engine: Engine, migrations: Migration[]): Promise<MigrateResult> {
  const { level, pending } = await migrationLevel(engine, migrations);
  if (pending.length > 0) {
    throw new UserError(
      `the PostgreSQL server at ${engine.location} is a read-only standby without migrations ${pending.join(', ')}; ` +
        'run tilevec db migrate against its primary, then wait for the standby to replay it',
    );
  }
  return { applied: [], level };
}

/** The highest applied version, and the versions known to this build but not yet applied. */
export async function migrationLevel(sql: Sql, migrations = loadMigrations()): Promise<{ level: number; pending: string[] }> {
  const [{ exists }] = await sql.query<{ exists: boolean }>(`select to_regclass('schema_migrations') is not null as exists`);
  const applied = exists ? new Set((await sql.query<{ version: number }>('select version from schema_migrations')).map((r) => r.version)) : new Set<number>();
  return {
    level: Math.max(0, ...applied),
    pending: migrations.filter((m) => !applied.has(m.version)).map((m) => m.name),
  };
}
