/**
 * End-to-end `tilevec embed` against the model alone, in the same run: the demo NAIP stack (10 rasters, 6380 tiles
 * at 32 px) in an embedded database, a tiny RevBiFPN of bench:embed's shape (dim 128, one extra silo), and
 *   - model:  EmbeddingSession.embed on ready batches with ORT's threads spinning, as bench:embed's ORT row (the model alone at its fastest)
 *   - embed:  embed() from an empty model (read, normalise, infer, upsert, build the HNSW index)
 * Rounds alternate; each figure is the median, with CPU-seconds per 1000 tiles and the load average.
 *
 *   node --import tsx bench/embed-e2e.ts [--db /tmp/tilevec-e2e/db | postgres://...] [--model-dir /tmp/tilevec-e2e/model] [--threads 2] [--batch 64] [--rounds 3]
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { ingest } from '../src/ingest/index.ts';
import { EmbeddingSession, embed, ensureModelOnnx, readOnnx } from '../src/embed/index.ts';
import { Store } from '../src/store/index.ts';
import { initBackend, MODEL_FILES } from '../src/train/index.ts';
import { makeModelDir } from '../test/model-fixtures.ts';

const { values } = parseArgs({
  options: {
    /** An embedded database directory or a postgres:// URL; the demo stack is ingested into it once. */
    db: { type: 'string', default: '/tmp/tilevec-e2e/db' },
    'model-dir': { type: 'string', default: '/tmp/tilevec-e2e/model' },
    data: { type: 'string', default: resolve(import.meta.dirname, '../../shared/data/naip-northdakota') },
    threads: { type: 'string', default: '2' },
    batch: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '3' },
  },
});
const threads = Number(values.threads);
const batch = Number(values.batch);
const rounds = Number(values.rounds);
const modelDir = values['model-dir'];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const loadAverage = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

if (!existsSync(values.data)) {
  console.log(`skipped: the demo NAIP stack is not at ${values.data} (see ../shared/data/README.md)`);
  process.exit(0);
}
await initBackend('cpu');
const store = await Store.open(values.db);
if ((await store.listRasters()).length === 0) {
  const files = readdirSync(values.data).filter((f) => f.endsWith('.tif')).map((f) => join(values.data, f));
  await ingest(store, files, { tileSize: 32 });
}
if (!existsSync(join(modelDir, MODEL_FILES.card))) {
  await makeModelDir(store, modelDir, 'bench-e2e', (await store.listRasters())[0].id, [1, 2, 3, 4], 'pooled', { extraLayers: 1, dim: 128 });
}
const tiles = [...(await store.tileCounts()).values()].reduce((a, b) => a + b, 0);

const session = await EmbeddingSession.create(readOnnx(ensureModelOnnx(modelDir)), { threads, spinning: true });
const input = tf.tidy(() => tf.randomNormal([batch, 32, 32, 4], 0, 1, 'float32', 7).dataSync() as Float32Array);
await session.embed(input, batch);

interface Run { tilesPerSecond: number; cpuPerKiloTile: number }
async function measure(n: number, work: () => Promise<void>): Promise<Run> {
  const cpu = cpuSeconds();
  const started = performance.now();
  await work();
  const seconds = (performance.now() - started) / 1000;
  return { tilesPerSecond: n / seconds, cpuPerKiloTile: ((cpuSeconds() - cpu) / n) * 1000 };
}
const results: Record<'model' | 'embed', Run[]> = { model: [], embed: [] };
const before = loadAverage();
for (let r = 0; r < rounds; r++) {
  results.model.push(await measure(tiles, async () => {
    for (let done = 0; done < tiles; done += batch) await session.embed(input, batch);
  }));
  if ((await store.listModels()).some((m) => m.name === 'bench-e2e')) await store.removeModel('bench-e2e');
  results.embed.push(await measure(tiles, async () => {
    const s = await embed(store, { model: modelDir, batch, threads });
    if (s.tilesEmbedded !== tiles) throw new Error(`embedded ${s.tilesEmbedded} of ${tiles} tiles`);
  }));
}
const after = loadAverage();
await session.release();
await store.close();

const summary = Object.fromEntries(Object.entries(results).map(([k, runs]) => [k, {
  tilesPerSecond: median(runs.map((x) => x.tilesPerSecond)), cpuSecondsPer1000Tiles: median(runs.map((x) => x.cpuPerKiloTile)),
}])) as Record<'model' | 'embed', { tilesPerSecond: number; cpuSecondsPer1000Tiles: number }>;
const ratio = summary.embed.tilesPerSecond / summary.model.tilesPerSecond;
console.log(`end-to-end embed of ${tiles} tiles, batch ${batch}, ${threads} threads, ${rounds} rounds (median)`);
for (const [k, v] of Object.entries(summary)) console.log(`${k.padEnd(6)} ${v.tilesPerSecond.toFixed(1).padStart(8)} tiles/s  ${v.cpuSecondsPer1000Tiles.toFixed(3)} CPU-s/1000 tiles`);
console.log(`embed / model = ${ratio.toFixed(2)}x (goal 0.5x); load ${before.join(' ')} -> ${after.join(' ')}`);
console.log(JSON.stringify({ bench: 'embed-e2e', tiles, batch, threads, rounds, ...summary, ratio, loadAverage: { before, after } }));
