import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, tempDir } from './helpers.ts';

/** The test copies the committed tree, so it needs the git checkout it runs in. */
function notACheckout(): string | false {
  try {
    execFileSync('git', ['-C', ROOT, 'rev-parse', '--verify', 'HEAD'], { stdio: 'ignore' });
    return false;
  } catch {
    return `${ROOT} is not a git checkout; the quickstart test installs its committed tree; skipping`;
  }
}

/** How long the demo may take to serve, from `npm run demo` to its printed queries (about a minute here). */
const READY_S = 480;

interface Feature { id: number; properties: { rasterId: number; x: number; y: number; distance: number } }

// The README's first quickstart line, `npm ci && npm run demo`, on the committed tree alone in a folder: no
// ../shared beside it, no node_modules, nothing built, as a person who clones the repository gets it. (The second
// line, `npm test`, is what CI itself runs on a clean clone.)
test('the committed tree alone in a folder: npm ci, then npm run demo serves data/sample and its printed queries answer', { skip: notACheckout(), timeout: 1_200_000 }, async (t) => {
  const tmp = tempDir('tilevec-quickstart-');
  try {
    const tree = join(tmp.path, 'tilevec');
    mkdirSync(tree);
    execFileSync('sh', ['-c', 'git -C "$0" archive HEAD | tar -x -C "$1"', ROOT, tree]);
    assert.deepEqual(readdirSync(tmp.path), ['tilevec'], 'nothing beside the tree, no ../shared');
    assert.ok(!existsSync(join(tree, 'node_modules')));
    const installStarted = performance.now();
    execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: tree, stdio: 'ignore', timeout: 600_000 });
    t.diagnostic(`npm ci took ${((performance.now() - installStarted) / 1000).toFixed(0)} s`);

    // A short training run and a free port keep the test quick and out of the way of anything on 8080.
    const env: NodeJS.ProcessEnv = { ...process.env, TILEVEC_PORT: '0' };
    for (const name of ['TILEVEC_DB', 'DATABASE_URL', 'TILEVEC_MODELS_DIR']) delete env[name];
    const demo = spawn('npm', ['run', 'demo', '--', '--triplets', '256'], { cwd: tree, env, detached: true });
    let stdout = '';
    let stderr = '';
    demo.stderr.on('data', (d) => (stderr += d));
    try {
      const url = await new Promise<string>((resolvePromise, reject) => {
        // Its own deadline, inside the test's: a demo that hangs is then stopped below, not left behind.
        const deadline = setTimeout(() => reject(new Error(`the demo was not ready after ${READY_S} s:\n${stderr.slice(-2000)}`)), READY_S * 1000);
        demo.on('exit', () => clearTimeout(deadline));
        demo.stdout.on('data', (d) => {
          stdout += d;
          // Resolved once the whole text is out, not at its first line.
          const ready = /tilevec demo is ready after \d+ s: (http:\/\/\S+)[\s\S]*Press Ctrl-C/.exec(stdout);
          if (ready) {
            clearTimeout(deadline);
            resolvePromise(ready[1]);
          }
        });
        demo.on('exit', (code) => reject(new Error(`the demo exited (${code}) before it was ready:\n${stderr.slice(-2000)}`)));
      });
      t.diagnostic(stdout.match(/tilevec demo is ready after \d+ s/)![0]);
      assert.ok(url.startsWith('http://127.0.0.1:'));
      assert.match(stderr, new RegExp(`\\[1/5\\] ingesting ${join(tree, 'data/sample')} into \\.tilevec/db`));
      assert.match(stderr, /10 ingested, 0 unchanged, 0 failed; 1960 tiles written/);
      assert.match(stderr, /\[2\/5\] training[\s\S]*\[4\/5\] embedding[\s\S]*\[5\/5\] starting/);

      // The similar-tiles example works as printed, on the water tile it names.
      const similar = /# the tiles most like tile (\d+) \(water on 2009-08-18\)\n\s+curl '(http:\/\/[^']+\/similar\?k=5)'/.exec(stdout);
      assert.ok(similar, stdout);
      const res = await fetch(similar[2]);
      assert.equal(res.status, 200);
      const near = ((await res.json()) as { features: Feature[] }).features;
      assert.equal(near.length, 5);
      assert.ok(near.every((f, i) => i === 0 || f.properties.distance >= near[i - 1].properties.distance));

      // The analogy names its tiles for what they show; they are what it says: a and b one window on two dates, c and
      // the expected answer another, c being the tile of the similar example.
      const named = /tile (\d+) \(field on 2009-08-18\) is to tile (\d+) \(the same field on 2020-08-31\) as tile (\d+) \(water on 2009-08-18\) is to \?; expect tile (\d+) \(the same water on 2020-08-31\)/.exec(stdout);
      assert.ok(named, stdout);
      const [b, a, c, expected] = named.slice(1).map(Number);
      assert.equal(c, Number(similar[1]));
      const tile = async (id: number) => ((await (await fetch(`${url}/v1/tiles/${id}`)).json()) as Feature).properties;
      const [ta, tb, tc, te] = await Promise.all([a, b, c, expected].map(tile));
      assert.deepEqual([ta.x, ta.y], [tb.x, tb.y]);
      assert.deepEqual([te.x, te.y], [tc.x, tc.y]);
      assert.notEqual(ta.rasterId, tb.rasterId);
      assert.equal(te.rasterId, ta.rasterId);
      const body = /-d '(\{"a": \d+, "b": \d+, "c": \d+, "k": 5\})'/.exec(stdout)![1];
      assert.deepEqual(JSON.parse(body), { a, b, c, k: 5 });
      const analogy = await fetch(`${url}/v1/analogy`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      assert.equal(analogy.status, 200);
      const found = ((await analogy.json()) as { features: Feature[] }).features.map((f) => f.id);
      assert.equal(found.length, 5);
      assert.ok(found.every((id) => ![a, b, c].includes(id)));
    } finally {
      // npm runs the demo in a child: signal the whole group, and let it close its store before the folder goes.
      const exited = demo.exitCode === null ? new Promise((r) => demo.once('exit', r)) : Promise.resolve();
      try { process.kill(-demo.pid!, 'SIGTERM'); } catch { /* already gone */ }
      await exited;
    }
  } finally {
    tmp.cleanup();
  }
});
