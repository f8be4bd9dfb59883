/**
 * Recall of filtered similarity search, the service's own path (TileQueries.similar: the HNSW iterative scan, and
 * the exact search it falls back to when the scan comes back short of k), against exact search over the same
 * filter. 100k synthetic tiles (10 rasters of 100 x 100 tiles, embedding-like vectors as bench:serve draws them),
 * queried with bbox filters that keep 1 %, 10 % and 50 % of the tiles, and unfiltered for comparison. Reports
 * recall@10, the share of answers that say `complete`, and p50/p99 latency per filter, on each engine.
 *
 *   node --import tsx bench/filtered.ts [--engines server,pglite] [--queries 100] [--dim 64]
 *
 * The server is TILEVEC_TEST_PG_URL (default the test server), in a scratch database dropped after. The last line
 * of stdout is one JSON object.
 */
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Store, type BBox } from '../src/store/index.ts';
import { TileQueries } from '../src/serve/tiles.ts';
import { rasterOrigin, seedSynthetic, TILE_DEG } from '../test/serve-fixtures.ts';
import { freshServerDb, serverSkip, tempDir } from '../test/helpers.ts';

const { values } = parseArgs({
  options: {
    engines: { type: 'string', default: 'server,pglite' },
    queries: { type: 'string', default: '100' },
    dim: { type: 'string', default: '64' },
  },
});
const RASTERS = 10;
const SIDE = 100;
const K = 10;
const QUERIES = Number(values.queries);
const DIM = Number(values.dim);

const log = (msg: string) => process.stderr.write(`[bench:filtered] ${msg}\n`);

/**
 * Bboxes from the centre of one tile to the centre of another, so that exactly the tiles between are kept: 32 x 32
 * tiles of raster 0 (1.02 %), all of raster 0 (10 %), rasters 0 to 4 (50 %).
 */
function filters(): { name: string; bbox?: BBox; kept: number }[] {
  const centre = (r: number, col: number, row: number): [number, number] => {
    const [lon, lat] = rasterOrigin(r, SIDE);
    return [lon + (col + 0.5) * TILE_DEG, lat + (row + 0.5) * TILE_DEG];
  };
  const box = (a: [number, number], b: [number, number]): BBox => [a[0], a[1], b[0], b[1]];
  return [
    { name: 'none', kept: RASTERS * SIDE * SIDE },
    { name: '1 %', bbox: box(centre(0, 10, 10), centre(0, 41, 41)), kept: 32 * 32 },
    { name: '10 %', bbox: box(centre(0, 0, 0), centre(0, SIDE - 1, SIDE - 1)), kept: SIDE * SIDE },
    { name: '50 %', bbox: box(centre(0, 0, 0), centre(4, SIDE - 1, SIDE - 1)), kept: 5 * SIDE * SIDE },
  ];
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function measure(engine: string, db: string) {
  const store = await Store.open(db);
  try {
    const t0 = performance.now();
    const world = await seedSynthetic(store, { rasters: RASTERS, side: SIDE, dim: DIM, vectors: 'embedding-like' });
    log(`${engine}: ${world.vectors.size} tiles seeded and indexed in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const queries = new TileQueries(store);
    const ids = [...world.vectors.keys()];
    // A fixed spread of query tiles from every raster, most of them outside the small filters, as a user's would be.
    const picks = Array.from({ length: QUERIES }, (_, i) => ids[Math.floor(((i + 0.5) / QUERIES) * ids.length)]);
    const rows = [];
    for (const f of filters()) {
      const kept = await store.countEmbedded(world.model, { bbox: f.bbox });
      if (kept !== f.kept) throw new Error(`filter ${f.name} keeps ${kept} tiles, expected ${f.kept}`);
      let hits = 0;
      let complete = 0;
      const ms: number[] = [];
      for (const tileId of picks) {
        const started = performance.now();
        const got = await queries.similar(tileId, { k: K, bbox: f.bbox });
        ms.push(performance.now() - started);
        if (got.complete !== false) complete++;
        const exact = await store.nearestTiles(world.model, { tileId }, { k: K, bbox: f.bbox, exact: true });
        const truth = new Set(exact.map((t) => t.id));
        hits += got.features.filter((feature) => truth.has(feature.id as number)).length;
      }
      ms.sort((a, b) => a - b);
      const row = { engine, filter: f.name, kept, recall: hits / (QUERIES * K), completeShare: complete / QUERIES, p50Ms: percentile(ms, 0.5), p99Ms: percentile(ms, 0.99) };
      log(`${engine} ${f.name.padEnd(5)} kept ${String(kept).padStart(6)}: recall@10 ${row.recall.toFixed(3)}, complete ${row.completeShare.toFixed(2)}, p50 ${row.p50Ms.toFixed(1)} ms, p99 ${row.p99Ms.toFixed(1)} ms`);
      rows.push(row);
    }
    return rows;
  } finally {
    await store.close();
  }
}

const load = loadavg()[0];
console.log(`load average at start: ${load.toFixed(2)}${load < 1 ? '' : ' (at or above 1.0: latencies from this run do not go into the README; recall does)'}`);
const results = [];
for (const engine of values.engines.split(',')) {
  if (engine === 'server') {
    const skip = await serverSkip();
    if (skip) {
      log(`server: ${skip}`);
      continue;
    }
    const { url, drop } = await freshServerDb();
    try {
      results.push(...await measure('server', url));
    } finally {
      await drop();
    }
  } else if (engine === 'pglite') {
    const dir = tempDir('tilevec-filtered-');
    try {
      results.push(...await measure('pglite', join(dir.path, 'db')));
    } finally {
      dir.cleanup();
    }
  } else {
    throw new Error(`unknown engine '${engine}' (server, pglite)`);
  }
}
console.log('| engine | filter | tiles kept | recall@10 | answers complete | p50 ms | p99 ms |');
console.log('|---|---|---:|---:|---:|---:|---:|');
for (const r of results) console.log(`| ${r.engine} | ${r.filter} | ${r.kept} | ${r.recall.toFixed(3)} | ${r.completeShare.toFixed(2)} | ${r.p50Ms.toFixed(1)} | ${r.p99Ms.toFixed(1)} |`);
console.log(JSON.stringify({ bench: 'filtered', tiles: RASTERS * SIDE * SIDE, dim: DIM, k: K, queries: QUERIES, loadavg: load, results }));
