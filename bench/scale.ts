/**
 * A catalogue as it grows: synthetic tiles on the footprints of a mosaic (10 rasters of side x side tiles) with
 * embedding-like vectors (the spectrum of real tilevec embeddings, as bench:serve draws them), at each size of
 * --sizes, on each engine. For each it reports the load time (tiles and vectors through the store's own writes),
 * the HNSW build time with the memory and workers the build had, the table and index sizes, and for the
 * service's own similarity path (TileQueries.similar) the recall@10 against exact search and the p50 / p99
 * latency, unfiltered and with bbox filters that keep 0.1 %, 1 %, 10 % and 50 % of the tiles; all of it for a float32
 * (`vector`) index and again for a float16 (`halfvec`) one over the same vectors. Then the curve of build and query
 * time against size.
 *
 *   node --import tsx bench/scale.ts [--sizes 10000,100000,1000000] [--pglite-sizes 10000,100000] [--dim 128]
 *                                    [--queries 100] [--maintenance-work-mem 2GB] [--vector-types vector,halfvec]
 *
 * The server is TILEVEC_TEST_PG_URL (default the test server), each size in a scratch database dropped after;
 * PGlite works in a temporary directory. The last line of stdout is one JSON object.
 */
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { embeddingIndexName, Store, VECTOR_TYPES, type BBox, type VectorType } from '../src/store/index.ts';
import { TileQueries } from '../src/serve/tiles.ts';
import { rasterOrigin, seedSynthetic, TILE_DEG } from '../test/serve-fixtures.ts';
import { freshServerDb, serverSkip, tempDir } from '../test/helpers.ts';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10000,100000,1000000' },
    'pglite-sizes': { type: 'string', default: '10000,100000' },
    dim: { type: 'string', default: '128' },
    queries: { type: 'string', default: '100' },
    'maintenance-work-mem': { type: 'string', default: '2GB' },
    'vector-types': { type: 'string', default: 'vector,halfvec' },
  },
});
const VECTOR_TYPE_LIST = values['vector-types'].split(',').map((t) => {
  if (!(VECTOR_TYPES as readonly string[]).includes(t)) throw new Error(`--vector-types takes ${VECTOR_TYPES.join(', ')}, got '${t}'`);
  return t as VectorType;
});
const RASTERS = 10;
const K = 10;
const DIM = Number(values.dim);
const QUERIES = Number(values.queries);
const sizeList = (s: string) => s.split(',').filter(Boolean).map(Number);

const log = (msg: string) => process.stderr.write(`[bench:scale] ${msg}\n`);
const seconds = (since: number) => (performance.now() - since) / 1000;
const MiB = 2 ** 20;

/**
 * Bboxes from one tile centre to another, so exactly the tiles between are kept: squares of raster 0 (0.1 %, a
 * field-sized search at 1M, and 1 %), raster 0 (10 %), rasters 0-4 (50 %).
 */
function filters(side: number): { name: string; bbox?: BBox; kept: number }[] {
  const centre = (r: number, col: number, row: number): [number, number] => {
    const [lon, lat] = rasterOrigin(r, side);
    return [lon + (col + 0.5) * TILE_DEG, lat + (row + 0.5) * TILE_DEG];
  };
  const box = (a: [number, number], b: [number, number]): BBox => [a[0], a[1], b[0], b[1]];
  const small = (name: string, share: number) => {
    const square = Math.round(side * Math.sqrt(share * RASTERS));
    return { name, bbox: box(centre(0, 0, 0), centre(0, square - 1, square - 1)), kept: square * square };
  };
  return [
    { name: 'none', kept: RASTERS * side * side },
    small('0.1 %', 0.001),
    small('1 %', 0.01),
    { name: '10 %', bbox: box(centre(0, 0, 0), centre(0, side - 1, side - 1)), kept: side * side },
    { name: '50 %', bbox: box(centre(0, 0, 0), centre(4, side - 1, side - 1)), kept: 5 * side * side },
  ];
}

const percentile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

/** The embeddings table with its indexes (the HNSW index included), the HNSW index alone, the tiles table with its indexes. */
interface Sizes { tableMiB: number; indexMiB: number; tilesMiB: number }

async function sizesOf(store: Store, modelId: number): Promise<Sizes> {
  const [row] = await store.engine.query<{ table: string; index: string; tiles: string }>(
    `select pg_total_relation_size('embeddings')::text as table, pg_relation_size($1)::text as index, pg_total_relation_size('tiles')::text as tiles`,
    [embeddingIndexName(modelId)],
  );
  return { tableMiB: Number(row.table) / MiB, indexMiB: Number(row.index) / MiB, tilesMiB: Number(row.tiles) / MiB };
}

async function measure(engine: string, db: string, size: number, settings: Record<string, string>) {
  const side = Math.round(Math.sqrt(size / RASTERS));
  const store = await Store.open(db);
  try {
    const loadStarted = performance.now();
    const world = await seedSynthetic(store, { rasters: RASTERS, side, dim: DIM, vectors: 'embedding-like', index: false, seed: 11 });
    const loadSeconds = seconds(loadStarted);
    const tiles = world.vectors.size;
    const ids = [...world.vectors.keys()];
    world.vectors.clear();
    // A fixed spread of query tiles over every raster, most outside the small filters, as a user's would be.
    const picks = Array.from({ length: QUERIES }, (_, i) => ids[Math.floor(((i + 0.5) / QUERIES) * ids.length)]);
    // Settle the load first, as autovacuum would: the first scans after a bulk load write every page again (hint
    // bits), which must not land inside the timed queries.
    const vacuumStarted = performance.now();
    await store.engine.exec('vacuum analyze embeddings');
    await store.engine.exec('vacuum analyze tiles');
    const vacuumSeconds = seconds(vacuumStarted);
    const exact = new Map<string, Set<number>>();
    const out = [];
    for (const type of VECTOR_TYPE_LIST) {
      const model = await store.setVectorType(world.model, type);
      const buildStarted = performance.now();
      await store.ensureEmbeddingIndex(model);
      const buildSeconds = seconds(buildStarted);
      const sizes = await sizesOf(store, model.id);
      log(`${engine} ${tiles} tiles, ${type}: load ${loadSeconds.toFixed(1)} s, vacuum ${vacuumSeconds.toFixed(1)} s, HNSW build ${buildSeconds.toFixed(1)} s, embeddings ${sizes.tableMiB.toFixed(0)} MiB, index ${sizes.indexMiB.toFixed(0)} MiB`);
      const queries = new TileQueries(store);
      const rows = [];
      for (const f of filters(side)) {
        const kept = await store.countEmbedded(model, { bbox: f.bbox });
        if (kept !== f.kept) throw new Error(`filter ${f.name} keeps ${kept} tiles, expected ${f.kept}`);
        await queries.similar(picks[0], { k: K, bbox: f.bbox }); // warm the plan and the index's first pages
        // The timed queries run back to back; the exact answers they are checked against are read after them, so
        // that the exact scans' I/O and cache churn stay out of the timings.
        const ms: number[] = [];
        const answers: number[][] = [];
        for (const tileId of picks) {
          const started = performance.now();
          const got = await queries.similar(tileId, { k: K, bbox: f.bbox });
          ms.push(performance.now() - started);
          answers.push(got.features.map((feature) => feature.id as number));
        }
        let hits = 0;
        for (const [i, tileId] of picks.entries()) {
          const key = `${f.name}:${tileId}`;
          if (!exact.has(key)) exact.set(key, new Set((await store.nearestTiles(model, { tileId }, { k: K, bbox: f.bbox, exact: true })).map((t) => t.id)));
          const truth = exact.get(key)!;
          hits += answers[i].filter((id) => truth.has(id)).length;
        }
        ms.sort((a, b) => a - b);
        const row = { filter: f.name, kept, recall: hits / (QUERIES * K), p50Ms: percentile(ms, 0.5), p99Ms: percentile(ms, 0.99) };
        log(`${engine} ${tiles} ${type} ${f.name.padEnd(5)} kept ${String(kept).padStart(7)}: recall@10 ${row.recall.toFixed(3)}, p50 ${row.p50Ms.toFixed(1)} ms, p99 ${row.p99Ms.toFixed(1)} ms`);
        rows.push(row);
      }
      out.push({ engine, tiles, dim: DIM, vectorType: type, loadSeconds, vacuumSeconds, buildSeconds, settings, ...sizes, filters: rows });
    }
    return out;
  } finally {
    await store.close();
  }
}

/** The scratch database's build settings, set on the database so that every pooled connection has them. */
async function configureServer(url: string): Promise<Record<string, string>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const name = new URL(url).pathname.slice(1);
    await client.query(`alter database ${name} set maintenance_work_mem = '${values['maintenance-work-mem'].replace(/[^\w]/g, '')}'`);
    await client.query(`alter database ${name} set max_parallel_maintenance_workers = 2`);
  } finally {
    await client.end();
  }
  const check = new pg.Client({ connectionString: url });
  await check.connect();
  try {
    const settings: Record<string, string> = {};
    for (const name of ['maintenance_work_mem', 'max_parallel_maintenance_workers', 'shared_buffers']) settings[name] = (await check.query(`show ${name}`)).rows[0][name];
    return settings;
  } finally {
    await check.end();
  }
}

const load = loadavg()[0];
console.log(`load average at start: ${load.toFixed(2)}${load < 1 ? '' : ' (at or above 1.0: times from this run do not go into the README; recall and sizes do)'}`);
const results = [];
const skip = await serverSkip();
if (skip) log(`server: ${skip}`);
for (const size of skip ? [] : sizeList(values.sizes)) {
  const { url, drop } = await freshServerDb();
  try {
    results.push(...await measure('server', url, size, await configureServer(url)));
  } finally {
    await drop();
  }
}
for (const size of sizeList(values['pglite-sizes'])) {
  const dir = tempDir('tilevec-scale-');
  try {
    results.push(...await measure('pglite', join(dir.path, 'db'), size, {}));
  } finally {
    dir.cleanup();
  }
}
console.log('| engine | tiles | index | load s | HNSW build s | embeddings MiB | index MiB | filter | recall@10 | p50 ms | p99 ms |');
console.log('|---|---:|---|---:|---:|---:|---:|---|---:|---:|---:|');
for (const r of results) {
  for (const f of r.filters) {
    console.log(`| ${r.engine} | ${r.tiles} | ${r.vectorType} | ${r.loadSeconds.toFixed(1)} | ${r.buildSeconds.toFixed(1)} | ${r.tableMiB.toFixed(0)} | ${r.indexMiB.toFixed(0)} | ${f.filter} | ${f.recall.toFixed(3)} | ${f.p50Ms.toFixed(1)} | ${f.p99Ms.toFixed(1)} |`);
  }
}
// The growth: build and unfiltered query time against size, per engine and index type.
console.log('\n| engine | index | tiles | HNSW build s | build s per 1k tiles | unfiltered p50 ms |');
console.log('|---|---|---:|---:|---:|---:|');
for (const r of results) console.log(`| ${r.engine} | ${r.vectorType} | ${r.tiles} | ${r.buildSeconds.toFixed(1)} | ${(r.buildSeconds / (r.tiles / 1000)).toFixed(3)} | ${r.filters[0].p50Ms.toFixed(1)} |`);
console.log(JSON.stringify({ bench: 'scale', dim: DIM, k: K, queries: QUERIES, loadavg: load, results }));
