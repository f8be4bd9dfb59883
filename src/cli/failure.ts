import { CommanderError } from 'commander';
import { NotFoundError, READ_ONLY_SERVER, UserError, errorMessage, isReadOnlyServerError } from '../errors.ts';

/** How a failed command ends: the one line on stderr, a stable code for scripts (`--json`), and the exit code. */
export interface Failure {
  message: string;
  code: 'usage' | 'invalid_input' | 'not_found' | 'file_error' | 'internal_error';
  exitCode: number;
}

/** File-system errors on a path are the user's to fix (a folder that is missing, read-only or a file). */
const PATH_ERRORS: Record<string, string> = {
  ENOENT: 'no such file or directory', EACCES: 'permission denied', EPERM: 'operation not permitted', EROFS: 'read-only file system',
  EISDIR: 'is a directory', ENOTDIR: 'a part of the path is not a directory', ENOSPC: 'no space left on the device',
  ENAMETOOLONG: 'the name is too long', EEXIST: 'already exists',
};

/** `help` is the help command of the command that failed, for usage errors to point to. */
export function describeFailure(err: unknown, help: string): Failure {
  if (err instanceof CommanderError) {
    return { message: `${err.message.replace(/^error: /, '')} (run ${help} for usage)`, code: 'usage', exitCode: err.exitCode };
  }
  if (err instanceof NotFoundError) return { message: err.message, code: 'not_found', exitCode: 1 };
  if (err instanceof UserError) return { message: err.message, code: 'invalid_input', exitCode: 1 };
  if (isReadOnlyServerError(err)) return { message: `${READ_ONLY_SERVER}; run this command with --db pointing at the primary`, code: 'invalid_input', exitCode: 1 };
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.path === 'string' && e.code && PATH_ERRORS[e.code]) {
    return { message: `cannot ${e.syscall ?? 'use'} ${e.path}: ${PATH_ERRORS[e.code]}`, code: 'file_error', exitCode: 1 };
  }
  return { message: `internal error: ${errorMessage(err)} (rerun with --log-level debug for details)`, code: 'internal_error', exitCode: 2 };
}

/** Writes the failure: the line on stderr, and under --json also `{"error", "code"}` as the last line of stdout. */
export function reportFailure(failure: Failure, json: boolean): void {
  process.stderr.write(`tilevec: ${failure.message}\n`);
  if (json) process.stdout.write(`${JSON.stringify({ error: failure.message, code: failure.code })}\n`);
}
