import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadMigrations, migrate } from '../src/store/migrate.ts';
import { Store } from '../src/store/index.ts';
import { startServer } from '../src/serve/index.ts';
import { freshServerDb, runCli, serverSkip } from './helpers.ts';
import { seedSynthetic, testConfig } from './serve-fixtures.ts';

/**
 * A streaming replica (hot standby) of the test server, as scripts/setup-postgres.sh --replica starts it: the
 * service reads from it, and every write gets a clear error instead of an internal one.
 */
const REPLICA_URL = process.env.TILEVEC_TEST_PG_REPLICA_URL;

async function replicaSkip(): Promise<string | false> {
  const server = await serverSkip();
  if (server) return server;
  if (REPLICA_URL) return false;
  if (process.env.CI === 'true') throw new Error('CI=true but TILEVEC_TEST_PG_REPLICA_URL is not set; run scripts/setup-postgres.sh --replica');
  return 'no TILEVEC_TEST_PG_REPLICA_URL (start a streaming replica with scripts/setup-postgres.sh --replica); skipping the replica tests';
}

/** The same database on the replica. */
function onReplica(primaryDbUrl: string): string {
  const replica = new URL(REPLICA_URL!);
  replica.pathname = new URL(primaryDbUrl).pathname;
  return replica.toString();
}

/** Opens the replica's copy once it has replayed the primary's state (`ready` says when); returns the lag seen. */
async function openWhenReplayed(url: string, ready: (store: Store) => Promise<boolean>): Promise<{ store: Store; seconds: number }> {
  const started = performance.now();
  for (;;) {
    const store = await Store.open(url).catch(() => undefined);
    if (store && (await ready(store))) return { store, seconds: (performance.now() - started) / 1000 };
    await store?.close();
    if (performance.now() - started > 60_000) throw new Error(`the replica at ${url} did not replay the primary within 60 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('a read replica serves searches as the primary does; writes to it get a clear error, on the CLI and over HTTP', { skip: await replicaSkip(), timeout: 180_000 }, async () => {
  const db = await freshServerDb();
  const primary = await Store.open(db.url);
  let replica: Store | undefined;
  try {
    const world = await seedSynthetic(primary, { rasters: 2, side: 8, dim: 16 });
    const query = [...world.vectors.keys()][5];
    const expected = (await primary.nearestTiles(world.model, { tileId: query }, { k: 5 })).map((t) => t.id);
    const opened = await openWhenReplayed(onReplica(db.url), async (s) => (await s.status()).counts.embeddings === world.vectors.size);
    replica = opened.store;
    console.log(`replica caught up ${opened.seconds.toFixed(2)} s after the primary's load`);

    assert.equal((await primary.status()).standby, false);
    assert.equal((await replica.status()).standby, true);
    assert.deepEqual((await replica.nearestTiles(world.model, { tileId: query }, { k: 5 })).map((t) => t.id), expected);

    // A migration the primary lacks: the standby cannot apply it and says where to.
    const future = { version: 999, name: '999_future.sql', sql: 'select 1', checksum: 'future' };
    await assert.rejects(migrate(replica.engine, [...loadMigrations(), future]), /is a read-only standby without migrations 999_future\.sql; run tilevec db migrate against its primary/);

    const cli = await runCli(['--db', onReplica(db.url), 'models', 'rm', world.model.name]);
    assert.equal(cli.code, 1, cli.stderr);
    assert.match(cli.stderr, /^tilevec: the database is a read-only standby \(a read replica\): writes go to its primary; run this command with --db pointing at the primary\n$/);

    const token = 'replica-test-token-0123';
    const server = await startServer({ store: replica, config: testConfig({ token }) });
    try {
      const similar = await fetch(`${server.url}/v1/tiles/${query}/similar?k=5`);
      assert.equal(similar.status, 200);
      assert.deepEqual(((await similar.json()) as { features: { id: number }[] }).features.map((f) => f.id), expected);
      const write = await fetch(`${server.url}/v1/label-sets`, {
        method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'found', positives: [query], negatives: [expected[4]], classes: ['a', 'b'] }),
      });
      assert.equal(write.status, 503);
      assert.match(((await write.json()) as { detail: string }).detail, /read-only standby .*send this request to a service on the primary/);
    } finally {
      await server.close();
    }
    assert.equal((await primary.listModels()).length, 1, 'nothing was written');
  } finally {
    await replica?.close();
    await primary.close();
    await db.drop();
  }
});
