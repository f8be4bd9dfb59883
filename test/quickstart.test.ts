import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { DATA_DIR, ROOT, dataMissing, tempDir } from './helpers.ts';

// The README's first quickstart line, `npm ci && npm run demo`, in a fresh clone of the committed tree. (The
// second line, `npm test`, is what CI itself runs on a clean clone.) The clone sits beside a link to the shared
// imagery, so the demo finds ../shared/data exactly as in a real checkout.
test('a clean clone installs with npm ci, and npm run demo answers a similar-tiles query', { skip: dataMissing(), timeout: 900_000 }, async () => {
  const tmp = tempDir('tilevec-quickstart-');
  try {
    const clone = join(tmp.path, 'main');
    execFileSync('git', ['clone', '--quiet', ROOT, clone]);
    mkdirSync(join(tmp.path, 'shared'));
    symlinkSync(DATA_DIR, join(tmp.path, 'shared', 'data'));
    execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: clone, stdio: 'ignore', timeout: 600_000 });

    // A short training run and a free port keep the test quick and out of the way of anything on 8080.
    const env: NodeJS.ProcessEnv = { ...process.env, TILEVEC_PORT: '0' };
    delete env.TILEVEC_DB;
    delete env.DATABASE_URL;
    const demo = spawn('npm', ['run', 'demo', '--', '--triplets', '256'], { cwd: clone, env, detached: true });
    let stdout = '';
    let stderr = '';
    demo.stderr.on('data', (d) => (stderr += d));
    try {
      const url = await new Promise<string>((resolvePromise, reject) => {
        demo.stdout.on('data', (d) => {
          stdout += d;
          const ready = stdout.match(/tilevec demo is ready after \d+ s: (http:\/\/\S+)/);
          if (ready) resolvePromise(ready[1]);
        });
        demo.on('exit', (code) => reject(new Error(`the demo exited (${code}) before it was ready:\n${stderr.slice(-2000)}`)));
      });
      // The printed example query works as printed.
      const example = stdout.match(/curl '(http:\/\/[^']+\/similar\?k=5)'/)![1];
      const res = await fetch(example);
      assert.equal(res.status, 200);
      const body = (await res.json()) as { features: { properties: { distance: number } }[] };
      assert.equal(body.features.length, 5);
      assert.ok(body.features.every((f, i) => i === 0 || f.properties.distance >= body.features[i - 1].properties.distance));
      assert.match(stderr, /\[1\/5\] ingesting[\s\S]*\[2\/5\] training[\s\S]*\[4\/5\] embedding[\s\S]*\[5\/5\] starting/);
      assert.ok(url.startsWith('http://127.0.0.1:'));
    } finally {
      // npm runs the demo in a child: signal the whole group.
      try { process.kill(-demo.pid!, 'SIGTERM'); } catch { /* already gone */ }
    }
  } finally {
    tmp.cleanup();
  }
});
