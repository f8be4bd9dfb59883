import { accessSync, closeSync, constants, existsSync, fsyncSync, mkdirSync, openSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { UserError, errorMessage } from './errors.ts';

/** The deepest folder of `path` (itself included) that exists. */
function nearestExisting(path: string): string {
  let at = resolve(path);
  while (!existsSync(at) && dirname(at) !== at) at = dirname(at);
  return at;
}

/**
 * `mkdir -p` that always returns. Node's recursive mkdir spins forever where a parent refuses new entries with
 * ENOENT (anywhere under /proc), so the nearest existing folder is checked first and each missing one is made in
 * turn. `what` names the folder in the one-line error, e.g. "the database directory".
 */
export function makeDirectory(path: string, what: string, advice = ''): string {
  const target = resolve(path);
  const base = nearestExisting(target);
  const fail = (reason: string): never => {
    throw new UserError(`cannot create ${what} ${target}: ${reason}${advice && `; ${advice}`}`);
  };
  if (!statSync(base).isDirectory()) fail(`${base} is not a directory`);
  try {
    accessSync(base, constants.W_OK);
  } catch {
    fail(`${base} is not writable`);
  }
  const missing: string[] = [];
  for (let at = target; at !== base; at = dirname(at)) missing.unshift(at);
  for (const dir of missing) {
    try {
      mkdirSync(dir);
    } catch (err) {
      // Node's text is "ENOENT: no such file or directory, mkdir '/proc/x'": keep the middle.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') fail(`${dirname(dir)} refuses new folders (${errorMessage(err).replace(/^\w+: /, '').replace(/, mkdir .*$/, '')})`);
    }
  }
  return target;
}

/** Refuses, naming `flag`, an output path whose folder does not exist (it is not made: a typo should not be). */
export function requireParentFolder(path: string, flag: string): string {
  const out = resolve(path);
  const folder = dirname(out);
  if (!existsSync(folder)) throw new UserError(`${flag} ${path}: the folder ${folder} does not exist; create it first or pick another path`);
  if (!statSync(folder).isDirectory()) throw new UserError(`${flag} ${path}: ${folder} is not a directory`);
  return out;
}

/** As `requireParentFolder`, for an output file: a folder of that name is refused too. */
export function requireOutputFolder(file: string, flag: string): string {
  const out = requireParentFolder(file, flag);
  if (existsSync(out) && statSync(out).isDirectory()) throw new UserError(`${flag} ${file} is a directory; give the name of a file to write`);
  return out;
}

/** Writes to a temporary file in the same folder, fsyncs, then renames: a crash leaves the old file intact. */
export function writeFileAtomic(path: string, chunks: Uint8Array[]): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w');
  try {
    for (const chunk of chunks) {
      let written = 0;
      while (written < chunk.byteLength) written += writeSync(fd, chunk, written);
    }
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(tmp);
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, path);
}
