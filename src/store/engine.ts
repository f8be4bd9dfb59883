/** The little SQL surface both engines share. Parameters are positional ($1, $2, ...) on both. */
export interface Sql {
  query<T = Record<string, unknown>>(text: string, params?: unknown[], opts?: QueryOptions): Promise<T[]>;
  /** Runs a script of several statements, without parameters (migrations). */
  exec(text: string): Promise<void>;
}

export interface QueryOptions {
  /**
   * Keep the statement prepared on each connection, so repeated calls skip parsing and, once PostgreSQL settles on
   * a generic plan, planning too. For hot queries of a fixed text; engines that cannot hold statements ignore it.
   */
  prepare?: boolean;
}

export type EngineKind = 'pglite' | 'postgres';

export interface Engine extends Sql {
  readonly kind: EngineKind;
  /** Where the data lives, with any password removed. */
  readonly location: string;
  /** Runs `fn` in one transaction: all of its writes land, or none do. */
  transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T>;
  /** Runs `fn` on one session, for session-scoped state such as advisory locks. */
  session<T>(fn: (sql: Sql) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export function isServerUrl(db: string): boolean {
  return /^postgres(ql)?:\/\//i.test(db);
}
