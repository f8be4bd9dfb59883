import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { basename, join } from 'node:path';
import { Store } from '../src/store/index.ts';
import { initBackend } from '../src/train/index.ts';
import { ROOT, lastJson, runCli, tempDir, type CliResult } from './helpers.ts';
import { makeModelDir } from './model-fixtures.ts';

// The mistakes a new user makes in the first hour, each through the real CLI: one line, exit 1, nothing changed.
// Everything here reads the committed data/sample, so it runs on a fresh clone too.

const SAMPLE = join(ROOT, 'data/sample');
const TWO_DATES = ['20090818', '20200831'].map((d) => join(SAMPLE, `m_4709963_se_14_1_${d}.tif`));

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A user error: exit 1 and exactly one line on stderr, matching `pattern`. */
function assertOneLine(r: CliResult, pattern: RegExp): void {
  assert.equal(r.code, 1, r.stderr);
  const line = r.stderr.trimEnd();
  assert.equal(line.split('\n').length, 1, `more than one line:\n${r.stderr}`);
  assert.match(line, pattern);
}

test('tilevec --version prints the package version', async () => {
  const r = await runCli(['--version']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
});

test('--db under /proc fails at once with one line (a recursive mkdir there never returns)', { skip: !existsSync('/proc/self') && 'no /proc on this system' }, async () => {
  for (const args of [['db', 'migrate'], ['ingest', TWO_DATES[0]]]) {
    const started = performance.now();
    const r = await runCli([...args, '--db', '/proc/tilevec-nope'], { timeoutMs: 60_000 });
    assertOneLine(r, /^tilevec: cannot create the database directory \/proc\/tilevec-nope: \/proc refuses new folders \(no such file or directory\); pass --db with a writable directory/);
    assert.ok(performance.now() - started < 30_000, `took ${performance.now() - started} ms`);
  }
  assert.ok(!existsSync('/proc/tilevec-nope'));
});

test('a --db that does not exist: every command but ingest, db migrate and demo refuses, naming it, and creates nothing', async () => {
  const tmp = tempDir();
  try {
    const db = join(tmp.path, '.tilevc/db');
    const out = (name: string) => join(tmp.path, name);
    const readers = [
      ['models'], ['db', 'status'], ['serve', '--port', '0'], ['export', '--format', 'geoparquet', '--out', out('x.parquet')],
      ['evaluate', '--temporal'], ['classify', 'predict', '--classifier', out('c.json'), '--raster', '1', '--out', out('map.tif')],
      ['tile', '1', '--png', out('tile.png')], ['export-onnx', '--out', out('m.onnx')], ['embed'], ['train'],
      ['sample', '--count', '1', '--out', out('triplets')], ['labels', 'import', out('labels.geojson'), '--name', 'x'],
    ];
    for (const args of readers) {
      const r = await runCli([...args, '--db', db]);
      assertOneLine(r, new RegExp(`^tilevec: no database at ${escape(db)}: it does not exist; check --db, or make one with tilevec ingest`));
    }
    assert.deepEqual(readdirSync(tmp.path), [], 'nothing was created');
  } finally {
    tmp.cleanup();
  }
});

test('under --json an error is also one JSON object on stdout; usage errors point to the command\'s own help', async () => {
  const missing = await runCli(['--json', 'models', '--db', '/nonexistent/tilevec/db']);
  assertOneLine(missing, /^tilevec: no database at \/nonexistent\/tilevec\/db/);
  assert.deepEqual(lastJson(missing.stdout), { error: missing.stderr.trim().replace(/^tilevec: /, ''), code: 'invalid_input' });

  const usage = await runCli(['db', 'migrate', '--bogus', '--json']);
  assertOneLine(usage, /^tilevec: unknown option '--bogus' \(run tilevec db migrate --help for usage\)$/);
  assert.deepEqual(lastJson(usage.stdout), { error: "unknown option '--bogus' (run tilevec db migrate --help for usage)", code: 'usage' });

  const format = await runCli(['export', '--format', 'tiff', '--out', 'x.tif']);
  assertOneLine(format, /--format must be geoparquet or geotiff, got 'tiff' \(run tilevec export --help for usage\)$/);
  assertOneLine(await runCli(['models', 'rm']), /^tilevec: missing required argument 'name' \(run tilevec models rm --help for usage\)$/);

  // A command that printed its result before failing keeps it as the last line: ingest with a failed input.
  const tmp = tempDir();
  try {
    const partly = await runCli(['ingest', TWO_DATES[0], join(tmp.path, 'missing.tif'), '--json', '--db', join(tmp.path, 'db')]);
    assert.equal(partly.code, 1, partly.stderr);
    assert.deepEqual(Object.entries(lastJson(partly.stdout)).filter(([k]) => k === 'ingested' || k === 'failed'), [['ingested', 1], ['failed', 1]]);
  } finally {
    tmp.cleanup();
  }
});

describe('a project of two sample dates with an embedded model', () => {
  const tmp = tempDir();
  const home = join(tmp.path, 'a');
  const db = join(home, '.tilevec/db');
  const modelDir = join(home, '.tilevec/models/m');
  const status = async (at = db) => {
    const r = await runCli(['db', 'status', '--json', '--db', at]);
    assert.equal(r.code, 0, r.stderr);
    return lastJson(r.stdout);
  };

  before(async () => {
    const ingested = await runCli(['ingest', ...TWO_DATES, '--db', db]);
    assert.equal(ingested.code, 0, ingested.stderr);
    await initBackend('cpu');
    const store = await Store.open(db);
    try {
      await makeModelDir(store, modelDir, 'm', 1, [1, 2, 3, 4]);
    } finally {
      await store.close();
    }
    const embedded = await runCli(['embed', '--model', modelDir, '--db', db], { timeoutMs: 300_000 });
    assert.equal(embedded.code, 0, embedded.stderr);
  });
  after(() => tmp.cleanup());

  test('export: a missing --out folder is named, and --out all.tif for two rasters is refused rather than made a folder', async () => {
    const before = await status();
    const allTif = join(home, 'all.tif');
    assertOneLine(await runCli(['export', '--format', 'geotiff', '--out', allTif, '--db', db]),
      new RegExp(`^tilevec: --out ${escape(allTif)} names a file, but 2 rasters make 2 embedding GeoTIFFs: pass a directory for --out, or one raster with --rasters <id>$`));
    assert.ok(!existsSync(allTif));
    for (const [format, file] of [['geotiff', 'x.tif'], ['geoparquet', 'x.parquet']]) {
      assertOneLine(await runCli(['export', '--format', format, '--out', `/nonexistent/dir/${file}`, '--db', db]),
        new RegExp(`^tilevec: --out /nonexistent/dir/${escape(file)}: the folder /nonexistent/dir does not exist; create it first or pick another path$`));
    }
    const folder = await runCli(['export', '--format', 'geotiff', '--out', join(home, 'embeddings'), '--db', db]);
    assert.equal(folder.code, 0, folder.stderr);
    // Named after their source rasters and the model, not after catalog ids.
    assert.deepEqual(readdirSync(join(home, 'embeddings')).sort(), TWO_DATES.map((p) => `${basename(p, '.tif')}.m.emb.tif`).sort());
    assert.deepEqual(await status(), before);
  });

  test('serve on a port in use says so in one line and suggests --port 0', async () => {
    const before = await status();
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = taken.address() as AddressInfo;
      assertOneLine(await runCli(['serve', '--port', String(port), '--db', db]),
        new RegExp(`^tilevec: port ${port} on 127\\.0\\.0\\.1 is already in use by another process; pass --port 0 to pick a free one, or another --port$`));
    } finally {
      taken.close();
    }
    assert.deepEqual(await status(), before);
  });

  test('cp -a .tilevec elsewhere: the copy uses its own model folder, and a stale absolute path is found there by name', async () => {
    const copy = join(tmp.path, 'b/.tilevec');
    cpSync(join(home, '.tilevec'), copy, { recursive: true, preserveTimestamps: true });
    rmSync(join(home, '.tilevec'), { recursive: true });
    const copiedDb = join(copy, 'db');
    const models = async () => {
      const r = await runCli(['models', '--json', '--db', copiedDb]);
      assert.equal(r.code, 0, r.stderr);
      return lastJson<{ models: { name: string; artifactPath: string }[] }>(r.stdout).models;
    };
    assert.deepEqual((await models()).map((m) => [m.name, m.artifactPath]), [['m', join(copy, 'models/m')]]);
    const onnx = await runCli(['export-onnx', '--model', 'm', '--out', join(tmp.path, 'm.onnx'), '--db', copiedDb]);
    assert.equal(onnx.code, 0, onnx.stderr);
    assert.ok(existsSync(join(tmp.path, 'm.onnx')));

    // A catalog written before paths were relative holds the old absolute folder, gone now.
    const store = await Store.open(copiedDb);
    try {
      await store.engine.query('update models set artifact_path = $1', [modelDir]);
    } finally {
      await store.close();
    }
    assert.deepEqual((await models()).map((m) => m.artifactPath), [join(copy, 'models/m')]);
  });
});
