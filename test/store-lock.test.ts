import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Store } from '../src/store/index.ts';
import { CLI, ROOT, runCli, tempDir } from './helpers.ts';

/** A database folder made and closed, so only the lock file's state differs between cases. */
async function emptyDb(): Promise<{ db: string; cleanup: () => void }> {
  const dir = tempDir();
  const db = join(dir.path, 'db');
  await (await Store.open(db)).close();
  return { db, cleanup: dir.cleanup };
}

for (const [what, make] of [
  ['a symbolic link', (lock: string) => symlinkSync('/nonexistent/tilevec-lock', lock)],
  ['a directory', (lock: string) => mkdirSync(lock)],
] as const) {
  test(`${what === 'a symbolic link' ? 'a dangling symbolic link' : what} at db.lock: one line naming it, exit 1, at once`, async () => {
    const { db, cleanup } = await emptyDb();
    try {
      make(`${db}.lock`);
      const started = performance.now();
      const r = await runCli(['db', 'status', '--db', db], { timeoutMs: 30_000 });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`^tilevec: ${db}\\.lock is not a lock file tilevec wrote \\(it is ${what}\\); remove it`));
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.ok(performance.now() - started < 20_000);
    } finally {
      cleanup();
    }
  });
}

test('a second process says at once that it waits, for which pid and how long; drafts of killed waiters are removed', async () => {
  const { db, cleanup } = await emptyDb();
  const holder = await Store.open(db);
  try {
    const waiter = spawn(process.execPath, [CLI, 'db', 'status', '--db', db], { cwd: ROOT });
    let stderr = '';
    waiter.stderr.on('data', (d) => (stderr += d));
    const started = performance.now();
    while (!/waiting/.test(stderr) && performance.now() - started < 20_000) await new Promise((r) => setTimeout(r, 50));
    // The holder is this test runner: its command line, and how long it has held the lock.
    assert.match(stderr, new RegExp(`^tilevec: the database ${db} is in use by process ${process.pid} \\(\\S*node .+, for \\d+ s\\); waiting up to 60 s for it to finish \\(a PostgreSQL server, --db postgres://\\.\\.\\., serves several processes at once\\)\\n$`));
    const closed = new Promise((r) => waiter.once('close', r));
    waiter.kill('SIGKILL');
    await closed;
  } finally {
    await holder.close();
  }
  try {
    // A waiter killed between writing its draft and removing it leaves db.lock.<pid>; the next open removes it.
    writeFileSync(`${db}.lock.2147483646`, '2147483646');
    const store = await Store.open(db);
    await store.close();
    assert.deepEqual(readdirSync(join(db, '..')).filter((f) => f.startsWith('db.lock')), []);
    assert.ok(!existsSync(`${db}.lock`));
  } finally {
    cleanup();
  }
});
