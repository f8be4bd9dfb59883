import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runFaults, TEST_RASTERS } from '../bench/faults.ts';
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
