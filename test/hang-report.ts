import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Node flags for a child whose hang should be explainable: SIGUSR2 writes a diagnostic report (JavaScript stack,
 * libuv handles, worker threads) into `dir`, as long as the child's event loop still turns.
 */
export function reportFlags(dir: string): string[] {
  return ['--report-on-signal', '--report-signal=SIGUSR2', `--report-directory=${dir}`];
}

/**
 * What a child that ran past its time limit is doing, read before it is killed: the kernel's view of each thread,
 * native stacks from gdb where it can attach, and Node's report where the event loop answered SIGUSR2. A hang on
 * CI is otherwise only "timed out", with nothing to go on.
 */
export async function describeHang(pid: number, reportDir: string): Promise<string> {
  const parts: string[] = [];
  const proc = `/proc/${pid}`;
  parts.push(readOr(`${proc}/status`, '').split('\n').filter((l) => /^(State|VmRSS|VmHWM|Threads):/.test(l)).join('; '));
  try {
    const threads = readdirSync(`${proc}/task`).map((tid) => {
      const stat = readOr(`${proc}/task/${tid}/stat`, '');
      const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
      return `${readOr(`${proc}/task/${tid}/comm`, '?').trim()}:${state}:${readOr(`${proc}/task/${tid}/wchan`, '?')}`;
    });
    parts.push(`threads (name:state:wchan): ${threads.join(', ')}`);
  } catch { /* not Linux, or gone */ }
  parts.push(nativeStacks(pid));
  parts.push(machine(pid));
  // Last: without --report-on-signal (see reportFlags) SIGUSR2 would end the process.
  try {
    process.kill(pid, 'SIGUSR2');
  } catch { /* gone already */ }
  await new Promise((r) => setTimeout(r, 3000)); // the report, if the loop turns
  parts.push(nodeReport(reportDir));
  return parts.filter(Boolean).join('\n');
}

/** Each thread's stack as its function names, innermost first; identical stacks are counted once. */
function nativeStacks(pid: number): string {
  let out: string;
  try {
    out = execFileSync('gdb', ['-p', String(pid), '-batch', '-nx', '-ex', 'thread apply all bt 16'], { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'ignore'] });
  } catch (err) {
    return `native stacks: gdb could not attach (${(err as Error).message.split('\n')[0]})`;
  }
  const stacks = new Map<string, number>();
  for (const thread of out.split(/^Thread /m).slice(1)) {
    const frames = [...thread.matchAll(/^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+?) \(/gm)].map((m) => m[1]);
    const key = frames.join(' < ');
    stacks.set(key, (stacks.get(key) ?? 0) + 1);
  }
  return `native stacks:\n${[...stacks].map(([stack, n]) => `  ${n} × ${stack}`).join('\n')}`;
}

function nodeReport(dir: string): string {
  const file = existsSync(dir) ? readdirSync(dir).find((f) => f.startsWith('report.') && f.endsWith('.json')) : undefined;
  if (!file) return 'node report: none (the event loop did not answer SIGUSR2)';
  try {
    const report = JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
      javascriptStack?: { message?: string; stack?: string[] };
      libuv?: { type: string; is_active?: boolean; is_referenced?: boolean; details?: string }[];
      workers?: unknown[];
    };
    const handles = (report.libuv ?? []).filter((h) => h.is_active && h.is_referenced).map((h) => `${h.type}${h.details ? ` ${h.details}` : ''}`);
    return [
      `node report: JS stack: ${(report.javascriptStack?.stack ?? []).slice(0, 15).join(' | ')}`,
      `active referenced handles: ${handles.join(', ') || 'none'}`,
      `worker threads: ${report.workers?.length ?? 0}`,
    ].join('\n');
  } catch (err) {
    return `node report unreadable: ${(err as Error).message}`;
  }
}

/** Memory, load and the other processes alive: a hang can be a starved machine or a process left over by a test. */
function machine(pid: number): string {
  const meminfo = readOr('/proc/meminfo', '').split('\n').filter((l) => /^(MemAvailable|SwapFree):/.test(l)).join('; ');
  let others = '';
  try {
    others = execFileSync('ps', ['-eo', 'pid,ppid,etimes,stat,rss,args', '--sort=-rss'], { encoding: 'utf8', timeout: 5000 })
      .split('\n').slice(1, 9).map((l) => l.trim().slice(0, 160)).filter((l) => l && !l.startsWith(`${pid} `)).join('\n  ');
  } catch { /* no ps */ }
  return `machine: ${meminfo}; load ${readOr('/proc/loadavg', '?').trim()}\nlargest processes (pid ppid secs stat rss args):\n  ${others}`;
}

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}
