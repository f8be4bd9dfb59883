import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import pg from 'pg';
import { runFaults, TEST_RASTERS } from '../bench/faults.ts';
import { ingest } from '../src/ingest/index.ts';
import { Store } from '../src/store/index.ts';
import { initBackend } from '../src/train/index.ts';
import { makeModelDir } from './model-fixtures.ts';
import { SERVER_URL, dataMissing, freshServerDb, lastJson, runCli, serverSkip, tempDir } from './helpers.ts';

/**
 * Worker processes on the real PostgreSQL server are SIGKILLed at >= 20 random moments while they ingest and
 * embed; after the retries the catalog and vectors equal a single-process run's: nothing missing or duplicated.
 * The long version is npm run bench:faults.
 */
const skip = dataMissing() || (await serverSkip());

test('kill -9 at random moments: the end state equals a single-process run', { skip, timeout: 600_000 }, async () => {
  const tmp = tempDir('tilevec-faults-');
  try {
    const report = await runFaults({ serverUrl: SERVER_URL, rasters: TEST_RASTERS, workers: 3, minKills: 20, minKillsDuringWork: 3, tmpDir: tmp.path, blockTiles: 32, seed: 7 });
    console.log(`faults: ${JSON.stringify(report)}`);
    assert.ok(report.kills >= 20, `only ${report.kills} kills`);
    assert.ok(report.killsDuringWork >= 3 && report.unitsRetried >= 1, `too few kills landed in the middle of a unit (${report.killsDuringWork}, ${report.unitsRetried} units retried)`);
    assert.deepEqual(report.mismatches, []);
    assert.equal(report.deadLetters, 0);
    assert.ok(report.tiles > 0 && report.embeddings === report.tiles, `${report.embeddings} vectors for ${report.tiles} tiles`);
  } finally {
    tmp.cleanup();
  }
});

test('--queue needs a server: a clear one-line error on the embedded engine', async () => {
  const tmp = tempDir('tilevec-queue-');
  try {
    for (const args of [['ingest', '--queue', 'x.tif'], ['embed', '--queue'], ['worker'], ['jobs']]) {
      const r = await runCli(['--db', tmp.path, ...args]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^tilevec: .*needs a PostgreSQL server \(--db postgres:\/\/\.\.\.\).*PGlite.*\n$/);
    }
  } finally {
    tmp.cleanup();
  }
});

test('a unit that keeps failing for a transient reason is retried with back-off, then a dead letter carrying its error', { skip, timeout: 120_000 }, async () => {
  const db = await freshServerDb();
  // Nothing listens on the discard port: a connection failure, which is worth retrying (a missing file is not).
  const uri = 'http://127.0.0.1:9/raster.tif';
  const env = { TILEVEC_QUEUE_RETRY_LIMIT: '1', TILEVEC_QUEUE_RETRY_DELAY: '1', TILEVEC_QUEUE_POLL: '0.5' };
  try {
    const queued = await runCli(['--db', db.url, '--json', 'ingest', '--queue', uri], { env });
    assert.equal(queued.code, 0, queued.stderr);
    assert.equal(lastJson<{ queued: number }>(queued.stdout).queued, 1);
    const worker = await runCli(['--db', db.url, '--json', 'worker', '--exit-when-idle'], { env, timeoutMs: 90_000 });
    assert.equal(worker.code, 0, worker.stderr);
    assert.deepEqual(lastJson(worker.stdout), { done: 0, failed: 2 }, 'the first run and one retry');
    const jobs = lastJson<{ queues: { queue: string; failed: number }[]; dead: { error: string; unit: { uri: string } }[]; deadTotal: number }>(
      (await runCli(['--db', db.url, '--json', 'jobs'], { env })).stdout,
    );
    assert.equal(jobs.queues.find((q) => q.queue === 'tilevec-ingest')!.failed, 1);
    assert.equal(jobs.deadTotal, 1);
    assert.equal(jobs.dead[0].unit.uri, uri);
    assert.match(jobs.dead[0].error, /connection failed/);
  } finally {
    await db.drop();
  }
});

test('queued embedding: a big load drops the HNSW index, and the worker that finishes the last unit builds it once', { skip, timeout: 300_000 }, async () => {
  const db = await freshServerDb();
  const tmp = tempDir('tilevec-queue-index-');
  const env = { TILEVEC_QUEUE_POLL: '0.5' };
  const sql = new pg.Client({ connectionString: db.url });
  await sql.connect();
  const indexes = async () => (await sql.query<{ n: number }>(`select count(*)::int as n from pg_indexes where indexname like 'embeddings_hnsw_model_%'`)).rows[0].n;
  const cli = async (...args: string[]) => {
    const r = await runCli(['--db', db.url, '--json', ...args], { env, timeoutMs: 180_000 });
    assert.equal(r.code, 0, r.stderr);
    return lastJson<Record<string, number>>(r.stdout);
  };
  try {
    await initBackend('cpu');
    const store = await Store.open(db.url);
    try {
      await ingest(store, TEST_RASTERS.slice(0, 2), { tileSize: 32 });
      const [first, second] = await store.listRasters();
      const [firstTiles, secondTiles] = [(await store.tileIdsOfRaster(first.id)).length, (await store.tileIdsOfRaster(second.id)).length];
      assert.ok(secondTiles >= firstTiles, `the second load (${secondTiles} tiles) must be at least as big as the first (${firstTiles}) for the index to be dropped`);
      await makeModelDir(store, join(tmp.path, 'model'), 'queued', first.id, [1, 2, 3]);
    } finally {
      await store.close();
    }
    const model = join(tmp.path, 'model');
    // No vectors yet: the first load is big, there is no index until the workers are done.
    assert.ok((await cli('embed', '--queue', '--model', model, '--rasters', '1', '--block-tiles', '16')).queued > 1);
    assert.equal(await indexes(), 0);
    assert.equal((await cli('worker', '--exit-when-idle', '--concurrency', '2')).failed, 0);
    assert.equal(await indexes(), 1, 'the last unit builds the index');
    // The second raster is at least as big as what is indexed: planning drops the index, the last unit builds it.
    assert.ok((await cli('embed', '--queue', '--model', model, '--block-tiles', '16')).queued > 1);
    assert.equal(await indexes(), 0, 'a big load drops the index');
    assert.equal((await cli('worker', '--exit-when-idle', '--concurrency', '2')).failed, 0);
    assert.equal(await indexes(), 1);
    const { rows: [counts] } = await sql.query<{ tiles: number; vectors: number }>('select (select count(*)::int from tiles) as tiles, (select count(*)::int from embeddings) as vectors');
    assert.equal(counts.vectors, counts.tiles);
    // Nothing left to embed: planning keeps (or makes) the index and queues nothing.
    assert.equal((await cli('embed', '--queue', '--model', model)).queued, 0);
    assert.equal(await indexes(), 1);
  } finally {
    await sql.end();
    await db.drop();
    tmp.cleanup();
  }
});
