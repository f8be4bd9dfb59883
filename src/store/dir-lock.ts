import { writeFileSync, readFileSync, unlinkSync, linkSync, lstatSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../errors.ts';

/**
 * PGlite is one Postgres backend inside this process, so two processes must never open the same data directory.
 * A lock file next to it makes a second process wait for the first, or fail with a clear message. The file names
 * its holder by pid and start time, so a lock left by a killed process is taken over even once its pid is reused.
 */
export function acquireDirLock(dir: string, waitMs: number): () => void {
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
      // A wait of up to a minute must not look like a hang. PGlite has no read-only open that could share the
      // directory (it is one backend's data, even for reading), so readers wait too.
      process.stderr.write(`tilevec: the database ${dir} is in use by process ${holder.pid} (${describeHolder(holder.pid, lockPath)}); ` +
        `waiting up to ${Math.round(waitMs / 1000)} s for it to finish (a PostgreSQL server, --db postgres://..., serves several processes at once)\n`);
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

/** What the holder runs and for how long it has held the lock, e.g. "tilevec serve --port 0, for 3 min". */
function describeHolder(pid: number, lockPath: string): string {
  let command = 'command unknown';
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    const script = argv.findIndex((a) => /(^|\/)tilevec(\.js)?$/.test(a));
    const shown = script >= 0 ? ['tilevec', ...argv.slice(script + 1)] : [basename(argv[0] ?? '?'), ...argv.slice(1)];
    command = shown.join(' ');
    if (command.length > 80) command = `${command.slice(0, 77)}...`;
  } catch { /* no /proc here, or the process just ended */ }
  let held = '';
  try {
    held = `, for ${formatDuration(Date.now() - lstatSync(lockPath).mtimeMs)}`;
  } catch { /* released in between */ }
  return `${command}${held}`;
}

function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}
