import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runFaults, TEST_RASTERS } from '../bench/faults.ts';
import { SERVER_URL, dataMissing, serverSkip, tempDir } from './helpers.ts';

/**
 * Worker processes on the real PostgreSQL server are SIGKILLed at >= 20 random moments while they ingest and
 * embed; after the retries the catalog and vectors equal a single-process run's: nothing missing or duplicated.
 * The long version is npm run bench:faults.
 */
const skip = dataMissing || (await serverSkip());

test('kill -9 at random moments: the end state equals a single-process run', { skip, timeout: 600_000 }, async () => {
  const tmp = tempDir('tilevec-faults-');
  try {
    const report = await runFaults({ serverUrl: SERVER_URL, rasters: TEST_RASTERS, workers: 3, minKills: 20, tmpDir: tmp.path, blockTiles: 32, seed: 7 });
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
