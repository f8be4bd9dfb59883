/**
 * A problem the user can fix: bad input, a bad flag, an unreachable database. The CLI prints its message as one
 * line with no stack trace; the HTTP service maps it to a 4xx problem response.
 */
export class UserError extends Error {
  /** HTTP status the service answers with; the CLI ignores it. */
  readonly status: number;

  constructor(message: string, options: { status?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'UserError';
    this.status = options.status ?? 400;
  }
}

export class NotFoundError extends UserError {
  constructor(message: string) {
    super(message, { status: 404 });
    this.name = 'NotFoundError';
  }
}

/** SQLSTATE 25006: a write reached a read-only server, such as a hot standby serving as a read replica. */
export function isReadOnlyServerError(err: unknown): boolean {
  return (err as { code?: unknown })?.code === '25006';
}

export const READ_ONLY_SERVER = 'the database is a read-only standby (a read replica): writes go to its primary';

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
