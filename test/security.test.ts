import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Store } from '../src/store/index.ts';
import { loadConfig, type Config } from '../src/config.ts';
import { startServer, type RunningServer } from '../src/serve/index.ts';
import { confineIngestInputs } from '../src/serve/access.ts';
import { DATA_DIR, ROOT, dataMissing, freshServerDb, runCli, serverSkip, tempDir } from './helpers.ts';

/** The security review's claims (docs/SECURITY.md), each checked here. */

const TOKEN = 'security-test-token-0123456789';
const SMALL = join(DATA_DIR, 'virginia-naip-landsat8/m_3607717_sw_18_1_20160620_subset.tif');

function config(db: string, ingest: { roots?: string; allowHosts?: string } = {}, token: string | null = TOKEN): Config {
  return loadConfig({ db, logLevel: 'silent', serve: { port: 0, token: token ?? undefined }, ingest: { roots: ingest.roots ?? '', allowHosts: ingest.allowHosts ?? '' } }, {});
}

async function post(base: string, body: unknown, token: string | null = TOKEN, raw?: string) {
  const res = await fetch(`${base}/v1/ingest`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: raw ?? JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('POST /v1/ingest: token, roots, host allow-list, limits', { skip: dataMissing() }, () => {
  const tmp = tempDir('tilevec-sec-');
  const root = join(tmp.path, 'root');
  const outside = join(tmp.path, 'outside');
  let store: Store;
  let server: RunningServer;

  before(async () => {
    mkdirSync(join(root, 'sub'), { recursive: true });
    mkdirSync(outside);
    copyFileSync(SMALL, join(root, 'sub', 'a.tif'));
    copyFileSync(SMALL, join(outside, 'secret.tif'));
    symlinkSync(join(outside, 'secret.tif'), join(root, 'link.tif'));
    symlinkSync(outside, join(root, 'linkdir'));
    store = await Store.open('memory://');
    server = await startServer({ store, config: config('memory://', { roots: root, allowHosts: 'tiles.example.org' }) });
  });
  after(async () => {
    await server?.close();
    await store?.close();
    tmp.cleanup();
  });

  test('needs the bearer token', async () => {
    assert.equal((await post(server.url, { inputs: [join(root, 'sub/a.tif')] }, null)).status, 401);
    assert.equal((await post(server.url, { inputs: [join(root, 'sub/a.tif')] }, 'wrong-token-wrong-token-wrong')).status, 401);
    const off = await startServer({ store, config: config('memory://', { roots: root }, null) });
    try {
      assert.equal((await post(off.url, { inputs: [join(root, 'sub/a.tif')] })).status, 403, 'without serve.token the route is off');
    } finally {
      await off.close();
    }
  });

  test('paths outside the roots, through .., symlinks or relative, are refused and ingest nothing', async () => {
    for (const input of [join(outside, 'secret.tif'), `${root}/../outside/secret.tif`, join(root, 'link.tif'), join(root, 'linkdir'), join(root, 'linkdir/secret.tif'), '/etc/passwd', '/no/such/file.tif']) {
      const r = await post(server.url, { inputs: [input] });
      assert.equal(r.status, 403, `${input}: ${JSON.stringify(r.body)}`);
    }
    for (const input of ['sub/a.tif', `${root}/*.tif`, 'file:///etc/passwd']) assert.equal((await post(server.url, { inputs: [input] })).status, 400, input);
    assert.equal((await store.listRasters()).length, 0);
  });

  test('URLs only to allowed hosts, without credentials', async () => {
    for (const input of ['http://127.0.0.1:1/a.tif', 'http://169.254.169.254/latest/meta-data', 'https://evil.example.com/a.tif', 'http://tiles.example.org.evil.com/a.tif']) {
      assert.equal((await post(server.url, { inputs: [input] })).status, 403, input);
    }
    assert.equal((await post(server.url, { inputs: ['http://user:pw@tiles.example.org/a.tif'] })).status, 400);
    assert.deepEqual(await confineIngestInputs(['https://TILES.example.org/x/a.tif'], { roots: [], allowHosts: ['tiles.example.org'] }), ['https://tiles.example.org/x/a.tif']);
    await assert.rejects(confineIngestInputs(['https://tiles.example.org/a.tif'], { roots: [], allowHosts: [] }), /allowHosts/);
  });

  test('bad and oversize bodies are 4xx', async () => {
    assert.equal((await post(server.url, { inputs: [] })).status, 400);
    assert.equal((await post(server.url, { inputs: [join(root, 'sub/a.tif')], tileSize: 1e9 })).status, 400);
    assert.equal((await post(server.url, { inputs: [join(root, 'sub/a.tif')], extra: 1 })).status, 400);
    for (const overview of [-1, 1.5, '1']) assert.equal((await post(server.url, { inputs: [join(root, 'sub/a.tif')], overview })).status, 400, `overview ${overview}`);
    assert.equal((await post(server.url, undefined, TOKEN, `{"inputs": ["${'a'.repeat(400 * 1024)}"]}`)).status, 413);
  });

  test('files under the roots are ingested (embedded engine: a job to poll); a directory walk skips symlinks', async () => {
    const r = await post(server.url, { inputs: [root] });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const job = await pollJob(server.url, r.body.poll as string);
    assert.equal(job.state, 'done', JSON.stringify(job));
    assert.equal((job.summary as { ingested: number }).ingested, 1, JSON.stringify(job));
    assert.deepEqual((await store.listRasters()).map((x) => x.uri), [join(root, 'sub/a.tif')]);
    const missing = await fetch(`${server.url}/v1/ingest/jobs/00000000-0000-4000-8000-000000000000`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    assert.equal(missing.status, 404);
  });
});

/** Polls an ingest job until it is no longer running. */
async function pollJob(base: string, path: string): Promise<Record<string, unknown>> {
  for (;;) {
    const job = (await (await fetch(base + path, { headers: { Authorization: `Bearer ${TOKEN}` } })).json()) as Record<string, unknown>;
    if (job.state !== 'running') return job;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('POST /v1/ingest of a slow URL on the embedded engine', () => {
  test('answers 202 at once, and the job, not a 503, tells how it ended', async () => {
    // Loopback only: a source that stalls past the query deadline, then fails.
    const slow = createServer((_req, res) => { setTimeout(() => res.writeHead(503).end(), 800); });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', () => r()));
    const { port } = slow.address() as AddressInfo;
    const store = await Store.open('memory://');
    const cfg = config('memory://', { allowHosts: `127.0.0.1:${port}` });
    const server = await startServer({ store, config: { ...cfg, serve: { ...cfg.serve, queryTimeoutMs: 200 } } });
    try {
      const started = performance.now();
      const r = await post(server.url, { inputs: [`http://127.0.0.1:${port}/a.tif`] });
      assert.equal(r.status, 202, JSON.stringify(r.body));
      assert.ok(performance.now() - started < 700, 'the answer does not wait for the source');
      const job = await pollJob(server.url, r.body.poll as string);
      assert.equal(job.state, 'done');
      assert.match(JSON.stringify(job.summary), /HTTP 503/);
      assert.equal((await store.listRasters()).length, 0);
    } finally {
      await server.close();
      await store.close();
      slow.close();
    }
  });
});

describe('POST /v1/ingest on a PostgreSQL server enqueues', { skip: dataMissing() || (await serverSkip()) }, () => {
  test('the request queues one job per raster', async () => {
    const tmp = tempDir('tilevec-sec-');
    const db = await freshServerDb();
    const store = await Store.open(db.url);
    const server = await startServer({ store, config: config(db.url, { roots: tmp.path }) });
    try {
      copyFileSync(SMALL, join(tmp.path, 'a.tif'));
      copyFileSync(SMALL, join(tmp.path, 'b.tif'));
      const r = await post(server.url, { inputs: [tmp.path] });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.queued, 2);
      const jobs = await store.engine.query<{ n: number }>(`select count(*)::int as n from pgboss.job where name = 'tilevec-ingest'`);
      assert.equal(jobs[0].n, 2);
      assert.equal((await store.listRasters()).length, 0, 'nothing ran in the request');
    } finally {
      await server.close();
      await store.close();
      await db.drop();
      tmp.cleanup();
    }
  });
});

describe('no secrets in logs or errors', () => {
  test('a database password never appears in CLI output, even at trace level', async () => {
    for (const url of ['postgres://postgres:hunter2secret@127.0.0.1:1/x', 'postgres://nobody:hunter2secret@127.0.0.1:55432/no_such_db']) {
      for (const args of [['db', 'status'], ['jobs'], ['worker'], ['ingest', '--queue', SMALL]]) {
        const r = await runCli(['--db', url, '--log-level', 'trace', ...args], { timeoutMs: 60_000 });
        assert.notEqual(r.code, 0);
        assert.doesNotMatch(r.stdout + r.stderr, /hunter2secret/, `${args.join(' ')}: ${r.stderr}`);
      }
    }
  });

  test('the logger redacts tokens, passwords and authorization headers', async () => {
    const script = `import { createLogger } from './src/log.ts';
      createLogger('trace').info({ token: 'tok-SECRET', password: 'pw-SECRET', req: { headers: { authorization: 'Bearer auth-SECRET' } }, authorization: 'x-SECRET', cfg: { token: 'nested-SECRET' } }, 'hello');`;
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
    assert.match(r.stderr, /hello/);
    assert.doesNotMatch(r.stderr, /SECRET/);
  });
});

describe('SQL: values are always parameters', () => {
  /**
   * Every `${...}` inside SQL text in the store and the queue. Each is a column list, a fixed identifier or a
   * validated integer (docs/SECURITY.md says which and why); a new one fails this test until it is reviewed.
   */
  const REVIEWED = new Set([
    'tileColumns', 'rasterColumns', 'modelColumns', 'labelSetColumns', 'BOSS_SCHEMA', 'dim', 'where', 'target', 'm', 'ef',
    'first', 'first + 1', 'first + 2', 'first + 3', 'bboxOverlaps(1)', 'bboxOverlaps(3)', 'bboxOverlaps(5)', 'bboxOverlaps(6)',
    'embeddingIndexName(model.id)', 'Math.trunc(model.dim)', 'Math.trunc(model.id)', 'Math.trunc(modelId)', 'modelId', 'key', 'table',
    'type', 't', 'queryAs(type)', 'inner', 'order', 'from', 'distance',
    'exactDistance(dim, target)',
    "tables.map(([key, table]) => `(select count(*) from ${table})::int as \"${key}\"`).join(', ')",
  ]);
  const SQL = /\b(select|insert|update|delete|create|drop|alter|where|order by)\b/i;

  test('src/store and src/queue interpolate only reviewed identifiers and integers into SQL', () => {
    const unreviewed: string[] = [];
    for (const dir of ['src/store', 'src/queue']) {
      for (const file of readdirSync(join(ROOT, dir)).filter((f) => f.endsWith('.ts'))) {
        const text = readFileSync(join(ROOT, dir, file), 'utf8');
        for (const m of text.matchAll(/`((?:[^`\\]|\\.|\$\{(?:[^{}]|\{[^{}]*\})*\})*)`/g)) {
          const literal = m[1];
          if (!SQL.test(literal.replace(/\$\{(?:[^{}]|\{[^{}]*\})*\}/g, ''))) continue;
          for (const e of literal.matchAll(/\$\{((?:[^{}]|\{[^{}]*\})*)\}/g)) {
            const expr = e[1].trim();
            if (!REVIEWED.has(expr)) unreviewed.push(`${dir}/${file}: \${${expr}}`);
          }
        }
      }
    }
    assert.deepEqual(unreviewed, []);
  });

  test('injection strings reach the database as values', async () => {
    const store = await Store.open('memory://');
    try {
      for (const evil of ["x'; drop table tiles; --", "' or 1=1 --", 'a"b', '$1', '\\']) {
        assert.equal(await store.rasterByUri(evil), undefined);
        await assert.rejects(store.model(evil), /does not exist/);
      }
      const [{ n }] = await store.engine.query<{ n: number }>(`select count(*)::int as n from pg_tables where tablename = 'tiles'`);
      assert.equal(n, 1);
    } finally {
      await store.close();
    }
  });
});

describe('URL ingest follows redirects only to allowed hosts', () => {
  test('a redirect to a host outside the allow-list is refused; one within it is followed', async () => {
    const { createServer } = await import('node:http');
    const { openSource } = await import('../src/ingest/index.ts');
    const body = Buffer.from('II*\0 some bytes standing in for a TIFF');
    const other = createServer((_req, res) => res.writeHead(206, { 'content-range': `bytes 0-0/${body.length}`, 'content-length': '1' }).end(body.subarray(0, 1)));
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    const otherPort = (other.address() as { port: number }).port;
    const allowed = createServer((req, res) => {
      if (req.url === '/away.tif') res.writeHead(302, { location: `http://localhost:${otherPort}/x.tif` }).end();
      else if (req.url === '/here.tif') res.writeHead(301, { location: '/data.tif' }).end();
      else res.writeHead(206, { 'content-range': `bytes 0-0/${body.length}`, 'content-length': '1' }).end(body.subarray(0, 1));
    });
    await new Promise<void>((r) => allowed.listen(0, '127.0.0.1', r));
    const host = `127.0.0.1:${(allowed.address() as { port: number }).port}`;
    try {
      await assert.rejects(openSource(`http://${host}/away.tif`, { allowHosts: [host] }), new RegExp(`redirected to localhost:${otherPort}, which is not in ingest.allowHosts`));
      const source = await openSource(`http://${host}/here.tif`, { allowHosts: [host] });
      assert.equal(source.fileSize, body.length);
      await source.close();
      // Without an allow-list (the CLI), redirects are followed as usual.
      const free = await openSource(`http://${host}/away.tif`);
      assert.equal(free.fileSize, body.length);
      await free.close();
    } finally {
      allowed.close();
      other.close();
    }
  });
});
