/** The little SQL surface both engines share. Parameters are positional ($1, $2, ...) on both. */
export interface Sql {
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** Runs a script of several statements, without parameters (migrations). */
  exec(text: string): Promise<void>;
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
