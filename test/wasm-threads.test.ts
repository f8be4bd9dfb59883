import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

// The threaded wasm backend starts a pool of pthread workers from one script file, which Emscripten asks for once
// per worker. Rewriting it each time (truncate, then write) while an earlier worker was reading it gave that worker
// an empty script, now and then on a loaded machine: it exited, and `npm run demo` or `tilevec train` then waited
// for it forever, printing nothing. The race is too rare to provoke on demand; what prevents it is checked instead.
test('the multi-threaded wasm backend starts, writing its workers\' script once for the whole pool', { timeout: 120_000 }, () => {
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures/wasm-start.ts')], { timeout: 100_000, encoding: 'utf8' });
  assert.deepEqual(JSON.parse(out), { name: 'wasm', threads: 2, workerScriptWrites: 1 });
});

test('a pool worker that exits before it reports in fails the start at once, saying so, instead of a wait forever', { timeout: 120_000 }, () => {
  const started = Date.now();
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures/wasm-start-worker-dies.ts')], { timeout: 100_000, encoding: 'utf8' });
  const { failed } = JSON.parse(out.trim().split('\n').at(-1)!) as { failed: string };
  assert.match(failed, /^a WASM pthread worker exited \(code \d+\) before it reported in: \d+ of \d+ pool workers reported in/);
  assert.ok(Date.now() - started < 60_000, 'well before the 120 s watchdog');
});
