import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Store, embeddingIndexName } from '../src/store/index.ts';
import { ingest } from '../src/ingest/index.ts';
import { initBackend } from '../src/train/index.ts';
import { EmbeddingSession, embed, embedTiles, ensureModelOnnx, readBatch, readOnnx } from '../src/embed/index.ts';
import { IngestRasterSource, statsOfRaster, TripletDataset } from '../src/sampling/index.ts';
import { DATA_DIR, dataMissing, freshServerDb, serverSkip, tempDir } from './helpers.ts';
import { makeModelDir } from './model-fixtures.ts';

const NAIP = join(DATA_DIR, 'naip-northdakota/m_4709963_se_14_1_20090818.tif');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A stand-in session that records when each inference starts and ends; vectors are the batch's first inputs. */
function recordingSession(events: string[], ms: number): EmbeddingSession {
  let call = 0;
  return {
    info: { dim: 1 },
    async embed(tiles: Float32Array, count: number) {
      const i = call++;
      events.push(`infer ${i} start`);
      await sleep(ms);
      events.push(`infer ${i} end`);
      return tiles.slice(0, count);
    },
  } as unknown as EmbeddingSession;
}

describe('embedTiles pipeline', () => {
  test('the next batch is read while one is inferred, and a write runs while the next is inferred', async () => {
    const events: string[] = [];
    let reads = 0;
    let writes = 0;
    await embedTiles(recordingSession(events, 20), [1, 2, 3, 4, 5, 6], {
      batch: 2,
      read: async (tiles) => {
        const i = reads++;
        events.push(`read ${i} start`);
        await sleep(5);
        events.push(`read ${i} end`);
        return Float32Array.from(tiles);
      },
      write: async () => {
        const i = writes++;
        events.push(`write ${i} start`);
        await sleep(30);
        events.push(`write ${i} end`);
      },
    });
    const at = (e: string) => events.indexOf(e);
    assert.ok(at('read 1 start') < at('infer 0 end'), events.join('\n'));
    assert.ok(at('read 2 start') < at('infer 1 end'), events.join('\n'));
    assert.ok(at('infer 1 start') < at('write 0 end'), events.join('\n'));
    assert.equal(writes, 3);
    assert.ok(events.at(-1)!.startsWith('write 2 end'), 'returns only after the last write');
  });

  test('a failing write surfaces its error, starts no later write and leaves none running', async () => {
    const written: number[] = [];
    let running = 0;
    await assert.rejects(
      embedTiles(recordingSession([], 1), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], {
        batch: 2,
        read: async (tiles) => Float32Array.from(tiles),
        write: async (tiles) => {
          running++;
          await sleep(5);
          running--;
          if (tiles[0] === 4) throw new Error('disk full');
          written.push(tiles[0]);
        },
      }),
      /disk full/,
    );
    assert.equal(running, 0);
    assert.ok(!written.includes(8), `batches written after the failure: ${written}`);
  });

  test('a failing read surfaces its error before any later batch is inferred', async () => {
    const events: string[] = [];
    await assert.rejects(
      embedTiles(recordingSession(events, 1), [0, 1, 2, 3, 4, 5], {
        batch: 2,
        read: async (tiles) => {
          if (tiles[0] === 2) throw new Error('tile 2 unreadable');
          return Float32Array.from(tiles);
        },
        write: async () => {},
      }),
      /tile 2 unreadable/,
    );
    assert.ok(!events.includes('infer 1 start'));
  });
});

const engines: [string, () => Promise<{ db: string; drop: () => Promise<void> }>, () => Promise<string | false>][] = [
  ['pglite', async () => ({ db: 'memory://', drop: async () => {} }), async () => false],
  ['postgres', async () => { const s = await freshServerDb(); return { db: s.url, drop: s.drop }; }, serverSkip],
];

describe('embed on real tiles', { skip: dataMissing() }, () => {
  const tmp = tempDir();
  const modelDir = join(tmp.path, 'model');
  before(async () => {
    await initBackend('cpu');
  });
  after(() => tmp.cleanup());

  for (const [engine, open, skip] of engines) {
    test(`${engine}: pipelined vectors equal the sequential path; a failed write resumes to the full table; the index is built once, after a big load`, async (t) => {
      const why = await skip();
      if (why) return t.skip(why);
      const { db, drop } = await open();
      const store = await Store.open(db);
      try {
        await ingest(store, [NAIP], { tileSize: 32 });
        await makeModelDir(store, modelDir, 'pipeline-test', 1, [1, 2, 3, 4]);
        const raster = await store.raster(1);
        const tiles = (await store.tilesOfRaster(1)).slice(0, 300);

        // The plain sequential path: read a batch, infer it, next; with ORT's threads spinning, which embed's
        // session does not do, so the comparison also covers that setting.
        const session = await EmbeddingSession.create(readOnnx(ensureModelOnnx(modelDir)), { spinning: true });
        const source = await IngestRasterSource.open(raster);
        const { readCard } = await import('../src/train/index.ts');
        const dataset = new TripletDataset([source], readCard(modelDir).normalization, [statsOfRaster(raster)]);
        const sequential = new Map<number, Float32Array>();
        for (let i = 0; i < tiles.length; i += 32) {
          const batch = tiles.slice(i, i + 32);
          const v = await session.embed(await readBatch(dataset, raster.id, batch), batch.length);
          batch.forEach((tile, k) => sequential.set(tile.id, v.slice(k * 24, (k + 1) * 24)));
        }
        await source.close();
        await session.release();

        // A write that fails midway, then a resumed run.
        const upsert = store.upsertEmbeddings.bind(store);
        let calls = 0;
        store.upsertEmbeddings = async (model, rows) => {
          if (++calls === 4) throw new Error('connection lost');
          return upsert(model, rows);
        };
        await assert.rejects(embed(store, { model: modelDir, batch: 32, rasterIds: [1] }), /connection lost/);
        store.upsertEmbeddings = upsert;
        const model = await store.model('pipeline-test');
        const partial = await store.embeddedTileIds(model.id);
        assert.equal(partial.size % 32, 0, 'only whole batches are stored');
        const summary = await embed(store, { model: modelDir, batch: 32, rasterIds: [1] });
        assert.equal(summary.tilesAlreadyDone, partial.size);

        const stored = await store.embeddingsOf(model.id, tiles.map((x) => x.id));
        assert.equal(stored.size, tiles.length);
        for (const [id, v] of sequential) assert.deepEqual(stored.get(id), v, `tile ${id}`);
        const [{ n }] = await store.engine.query<{ n: number }>('select count(*)::int as n from pg_indexes where indexname = $1', [embeddingIndexName(model.id)]);
        assert.equal(n, 1);

        // A load bigger than what is indexed drops the index first and builds it again after; a small top-up keeps it.
        const drops: boolean[] = [];
        const drop = store.dropEmbeddingIndex.bind(store);
        store.dropEmbeddingIndex = async (m) => {
          const dropped = await drop(m);
          drops.push(dropped);
          return dropped;
        };
        await store.engine.query('delete from embeddings where model_id = $1 and tile_id <> all($2::bigint[])', [model.id, tiles.slice(0, 100).map((x) => x.id)]);
        await embed(store, { model: modelDir, batch: 64, rasterIds: [1] });
        await store.engine.query('delete from embeddings where model_id = $1 and tile_id = any($2::bigint[])', [model.id, tiles.slice(0, 10).map((x) => x.id)]);
        await embed(store, { model: modelDir, batch: 64, rasterIds: [1] });
        assert.deepEqual(drops, [true]);
        const [{ n: after }] = await store.engine.query<{ n: number }>('select count(*)::int as n from pg_indexes where indexname = $1', [embeddingIndexName(model.id)]);
        assert.equal(after, 1);
      } finally {
        await store.close();
        await drop();
      }
    });
  }
});
