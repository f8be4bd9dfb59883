import { createHash } from 'node:crypto';
import pg from 'pg';
import { UserError, errorMessage } from '../errors.ts';
import type { Engine, QueryOptions, Sql } from './engine.ts';

// int8 ids and counts come back as JS numbers on both engines (ids stay far below 2^53).
pg.types.setTypeParser(pg.types.builtins.INT8, (v: string) => Number(v));

/** Prepared statements are named by their text, so one name never stands for two texts on a connection. */
const statementNames = new Map<string, string>();
function statementName(text: string): string {
  let name = statementNames.get(text);
  if (!name) {
    name = `tilevec_${createHash('sha1').update(text).digest('hex').slice(0, 16)}`;
    statementNames.set(text, name);
  }
  return name;
}

class ClientSql implements Sql {
  constructor(private readonly client: pg.ClientBase | pg.Pool) {}
  async query<T>(text: string, params: unknown[] = [], opts: QueryOptions = {}): Promise<T[]> {
    const result = opts.prepare
      ? await this.client.query({ name: statementName(text), text, values: params })
      : await this.client.query(text, params);
    return result.rows as T[];
  }
  async exec(text: string): Promise<void> {
    await this.client.query(text);
  }
}

export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}

export class PostgresEngine implements Engine {
  readonly kind = 'postgres' as const;
  private readonly sql: ClientSql;

  private constructor(private readonly pool: pg.Pool, readonly location: string) {
    this.sql = new ClientSql(pool);
  }

  static async open(url: string, opts: { max?: number; connectTimeoutMs?: number; statementTimeoutMs?: number } = {}): Promise<PostgresEngine> {
    const pool = new pg.Pool({
      connectionString: url, max: opts.max ?? 10, connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000,
      ...(opts.statementTimeoutMs ? { statement_timeout: Math.trunc(opts.statementTimeoutMs) } : {}),
    });
    // An idle client that loses its server must not crash the process; the next query reports it.
    pool.on('error', () => {});
    const location = redactUrl(url);
    try {
      await pool.query('select 1');
    } catch (err) {
      await pool.end().catch(() => {});
      throw new UserError(`cannot connect to the PostgreSQL server at ${location}: ${errorMessage(err) || (err as { code?: string }).code || 'connection failed'}; check that it is running and reachable`);
    }
    return new PostgresEngine(pool, location);
  }

  query<T>(text: string, params?: unknown[], opts?: QueryOptions): Promise<T[]> {
    return this.sql.query<T>(text, params, opts);
  }

  exec(text: string): Promise<void> {
    return this.sql.exec(text);
  }

  async transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('begin');
      const result = await fn(new ClientSql(client));
      await client.query('commit');
      return result;
    } catch (err) {
      await client.query('rollback').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  async session<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try { return await fn(new ClientSql(client)); } finally { client.release(); }
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}
