/**
 * Crash safety of the work queue: worker processes are SIGKILLed at random moments while they ingest and embed,
 * and the end state (catalog rows and vectors) must equal a single-process run's. Rounds of force re-ingest plus
 * embed repeat until enough kills have landed. test/faults.test.ts runs a small version; this file's main runs
 * the long one (npm run bench:faults [-- --kills 60 --workers 4]). With --load it runs the load test instead:
 * 50 clients for 60 s against tilevec serve (npm run bench:faults -- --load [--connections 50 --seconds 60]).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import pg from 'pg';
import { Store } from '../src/store/index.ts';
import { ingest } from '../src/ingest/index.ts';
import { embed } from '../src/embed/index.ts';
import { normalizationFromStats } from '../src/sampling/index.ts';
import { createBackbone, initBackend, saveWeights, MODEL_FILES, type ModelCard } from '../src/train/index.ts';
import { writeCard } from '../src/train/model-dir.ts';
import { JobQueue, jobsReport, planEmbed, planIngest, type QueueSettings } from '../src/queue/index.ts';
import { loadConfig } from '../src/config.ts';
import { freshDatabase } from '../test/helpers.ts';

const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'bin/tilevec.js');
export const DATA = resolve(ROOT, '../shared/data');

/** Short expiry and supervision so that the units of killed workers come back within seconds. */
export const FAULT_QUEUE: QueueSettings = { retryLimit: 30, retryDelaySeconds: 1, expireSeconds: 8, superviseSeconds: 1, pollSeconds: 0.5 };

export interface FaultOptions {
  serverUrl: string;
  rasters: string[];
  workers: number;
  minKills: number;
  /** Also keep killing until this many kills landed in the middle of a unit (default 0), at most 5 x minKills kills in all. */
  minKillsDuringWork?: number;
  tmpDir: string;
  /** Tiles per embed unit: small blocks give more units to interrupt. */
  blockTiles?: number;
  seed?: number;
  log?: (line: string) => void;
}

export interface FaultReport {
  kills: number;
  /** Kills of a worker in the middle of a unit. */
  killsDuringWork: number;
  rounds: number;
  unitsRun: number;
  /** Units whose run a kill interrupted: pg-boss ran them again after they expired. */
  unitsRetried: number;
  deadLetters: number;
  rasters: number;
  tiles: number;
  embeddings: number;
  maxVectorDiff: number;
  mismatches: string[];
  seconds: number;
}

function rng(seed: number): () => number {
  return () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}


/** A seeded tiny model directory over bands 1-3, normalised by the first raster's statistics. */
async function makeModel(store: Store, dir: string): Promise<void> {
  await initBackend('cpu');
  mkdirSync(dir, { recursive: true });
  const raster = (await store.listRasters())[0];
  const bands = [1, 2, 3];
  const normalization = normalizationFromStats([{ id: raster.id, label: raster.uri, bandStats: raster.bandStats }], bands, 'percentile');
  const model = createBackbone({ name: 'tiny', tileSize: 32, bands: bands.length, extraLayers: 0, dim: 16 }, { seed: 5 });
  for (const [n, v] of model.params.entries()) if (n.endsWith('movingVariance')) v.assign(tf.randomUniform(v.shape, 0.5, 1.5, 'float32', 2));
  saveWeights(join(dir, MODEL_FILES.weights), model, normalization);
  const card: ModelCard = {
    format: 'tilevec-model-card/1', name: 'faults', backbone: model.config, bands, normalization, tileSize: 32, dim: 16, training: {},
    rasters: [{ id: raster.id, uri: raster.uri, contentHash: raster.contentHash }], metrics: {}, seed: 5, versions: { tilevec: 'faults' },
    wallSeconds: 0, createdAt: new Date().toISOString(),
  };
  writeCard(dir, card);
  model.dispose();
}

interface EndState {
  rasters: Map<string, string>;
  tiles: Map<string, string>;
  vectors: Map<string, Float32Array>;
  duplicateTiles: number;
  orphanVectors: number;
}

/** The store's content keyed by what identifies it across databases (URIs and pixel positions, not ids). */
async function endState(url: string): Promise<EndState> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const rasters = await c.query(`select uri, concat_ws('|', content_hash, width, height, band_count, dtype, tile_size, stride, band_stats::text, footprint::text) as v from rasters`);
    const tiles = await c.query(`select r.uri || '@' || t.x || ',' || t.y || ',' || t.size as k, concat_ws('|', t.valid_fraction, t.footprint::text, t.center_lon, t.center_lat) as v
      from tiles t join rasters r on r.id = t.raster_id`);
    const vectors = await c.query(`select r.uri || '@' || t.x || ',' || t.y || ',' || t.size as k, e.embedding::text as v
      from embeddings e join tiles t on t.id = e.tile_id join rasters r on r.id = t.raster_id`);
    const [{ dup }] = (await c.query(`select count(*) - count(distinct (raster_id, x, y, size)) as dup from tiles`)).rows;
    const [{ orphans }] = (await c.query(`select count(*) as orphans from embeddings e left join tiles t on t.id = e.tile_id where t.id is null`)).rows;
    return {
      rasters: new Map(rasters.rows.map((r) => [r.uri, r.v])),
      tiles: new Map(tiles.rows.map((r) => [r.k, r.v])),
      vectors: new Map(vectors.rows.map((r) => [r.k, Float32Array.from(r.v.slice(1, -1).split(','), Number)])),
      duplicateTiles: Number(dup),
      orphanVectors: Number(orphans),
    };
  } finally {
    await c.end();
  }
}

function compare(ref: EndState, got: EndState, vectorTolerance: number): { mismatches: string[]; maxVectorDiff: number } {
  const mismatches: string[] = [];
  const sameMaps = (what: string, a: Map<string, unknown>, b: Map<string, unknown>, eq: (x: unknown, y: unknown) => boolean) => {
    if (a.size !== b.size) mismatches.push(`${what}: ${b.size} rows, the single-process run has ${a.size}`);
    for (const [k, v] of a) {
      if (!b.has(k)) mismatches.push(`${what}: missing ${k}`);
      else if (!eq(v, b.get(k))) mismatches.push(`${what}: ${k} differs`);
    }
    for (const k of b.keys()) if (!a.has(k)) mismatches.push(`${what}: extra ${k}`);
  };
  sameMaps('rasters', ref.rasters, got.rasters, (x, y) => x === y);
  sameMaps('tiles', ref.tiles, got.tiles, (x, y) => x === y);
  let maxVectorDiff = 0;
  sameMaps('embeddings', ref.vectors, got.vectors, (x, y) => {
    const a = x as Float32Array;
    const b = y as Float32Array;
    if (a.length !== b.length) return false;
    let d = 0;
    for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
    maxVectorDiff = Math.max(maxVectorDiff, d);
    return d <= vectorTolerance;
  });
  if (got.duplicateTiles) mismatches.push(`${got.duplicateTiles} duplicated tiles`);
  if (got.orphanVectors) mismatches.push(`${got.orphanVectors} vectors without a tile`);
  return { mismatches: mismatches.slice(0, 20), maxVectorDiff };
}

function queueEnv(url: string, q: QueueSettings): NodeJS.ProcessEnv {
  // Info level: the harness reads 'job started' and 'job finished' to know which workers hold a unit.
  const env = { ...process.env, TILEVEC_DB: url, TILEVEC_LOG_LEVEL: 'info' } as NodeJS.ProcessEnv;
  delete env.DATABASE_URL;
  env.TILEVEC_QUEUE_RETRY_LIMIT = String(q.retryLimit);
  env.TILEVEC_QUEUE_RETRY_DELAY = String(q.retryDelaySeconds);
  env.TILEVEC_QUEUE_EXPIRE = String(q.expireSeconds);
  env.TILEVEC_QUEUE_SUPERVISE = String(q.superviseSeconds);
  env.TILEVEC_QUEUE_POLL = String(q.pollSeconds);
  return env;
}

/** Worker processes that can be killed and replaced; `busy` tells whether a kill lands while units are running. */
class WorkerPool {
  private readonly children = new Set<ChildProcess>();
  private readonly born = new Map<ChildProcess, number>();
  private readonly busy = new Set<ChildProcess>();
  constructor(private readonly env: NodeJS.ProcessEnv, private readonly log: (l: string) => void) {}

  spawn(): void {
    const child = spawn(process.execPath, [CLI, 'worker', '--concurrency', '1'], { cwd: ROOT, env: this.env, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.setEncoding('utf8').on('data', (text: string) => {
      for (const line of text.split('\n').filter(Boolean)) {
        if (line.includes('"job started"')) this.busy.add(child);
        else if (line.includes('"job finished"')) this.busy.delete(child);
        else if (!/taking jobs/.test(line)) this.log(`worker ${child.pid}: ${line.slice(0, 300)}`);
      }
    });
    this.children.add(child);
    this.born.set(child, performance.now());
    child.on('exit', () => { this.children.delete(child); this.born.delete(child); this.busy.delete(child); });
  }

  /**
   * Kills a random worker that has had time to start (one still loading its modules holds no unit), mostly one
   * in the middle of a unit, since those kills are the ones that test recovery.
   */
  killRandom(random: () => number, minAgeMs: number): { pid: number; busy: boolean } | undefined {
    const started = [...this.children].filter((c) => performance.now() - (this.born.get(c) ?? 0) >= minAgeMs);
    const working = started.filter((c) => this.busy.has(c));
    const pool = working.length > 0 && random() < 0.8 ? working : started;
    if (pool.length === 0) return undefined;
    const victim = pool[Math.floor(random() * pool.length)];
    const busy = this.busy.has(victim);
    victim.kill('SIGKILL');
    this.children.delete(victim);
    return { pid: victim.pid!, busy };
  }

  async stopAll(): Promise<void> {
    const exits = [...this.children].map((c) => new Promise<void>((r) => (c.exitCode !== null ? r() : c.once('exit', () => r()))));
    for (const c of this.children) c.kill('SIGTERM');
    const timer = setTimeout(() => { for (const c of this.children) c.kill('SIGKILL'); }, 15_000);
    await Promise.all(exits);
    clearTimeout(timer);
  }
}

export async function runFaults(opts: FaultOptions): Promise<FaultReport> {
  const log = opts.log ?? (() => {});
  const random = rng(opts.seed ?? 20240601);
  const started = performance.now();
  const modelDir = join(opts.tmpDir, 'model');
  const ref = await freshDatabase(opts.serverUrl, 'ref');
  const chaos = await freshDatabase(opts.serverUrl, 'chaos');
  const pool = new WorkerPool(queueEnv(chaos.url, FAULT_QUEUE), log);
  let store: Store | undefined;
  try {
    // The single-process reference.
    const refStore = await Store.open(ref.url);
    try {
      const s = await ingest(refStore, opts.rasters, { tileSize: 32 });
      if (s.failed) throw new Error(`reference ingest failed: ${JSON.stringify(s.rasters.filter((r) => r.status === 'failed'))}`);
      await makeModel(refStore, modelDir);
      await embed(refStore, { model: modelDir, batch: 64 });
    } finally {
      await refStore.close();
    }
    log(`reference run done in ${((performance.now() - started) / 1000).toFixed(1)} s`);

    store = await Store.open(chaos.url);
    const queue = await JobQueue.open(store, FAULT_QUEUE);
    const quiet = async () => (await jobsReport(store!)).queues.every((q) => q.queued + q.active === 0);
    for (let i = 0; i < opts.workers; i++) pool.spawn();

    let kills = 0;
    let killsDuringWork = 0;
    let rounds = 0;
    let phase: 'ingest' | 'embed' = 'embed';
    let killing = true;
    // Where a kill lands is chance: a run whose kills all found idle workers has not tested recovery, so it goes on.
    const enough = () => kills >= opts.minKills && (killsDuringWork >= (opts.minKillsDuringWork ?? 0) || kills >= 5 * opts.minKills);
    const killer = (async () => {
      // Enough kills, then the last round drains without more.
      while (killing && !enough()) {
        await new Promise((r) => setTimeout(r, 1500 + random() * 4000));
        if (!killing) break;
        const victim = pool.killRandom(random, 4000);
        if (victim === undefined) continue;
        kills++;
        if (victim.busy) killsDuringWork++;
        log(`kill ${kills}: worker ${victim.pid} during ${phase}${victim.busy ? ', in the middle of a unit' : ''}`);
        pool.spawn();
      }
    })();

    // Rounds of (force) ingest, then embed, each drained before the next, until enough kills have landed.
    try {
      while (rounds === 0 || !enough()) {
        rounds++;
        phase = 'ingest';
        const { units, failed } = await planIngest(opts.rasters, { tileSize: 32, force: rounds > 1 });
        if (failed.length) throw new Error(`inputs failed: ${JSON.stringify(failed)}`);
        await queue.enqueue(units);
        while (!(await quiet())) await new Promise((r) => setTimeout(r, 500));
        phase = 'embed';
        const plan = await planEmbed(store, { model: modelDir, batch: 16, blockTiles: opts.blockTiles ?? 64 });
        await queue.enqueue(plan.units);
        while (!(await quiet())) await new Promise((r) => setTimeout(r, 500));
        log(`round ${rounds} drained; ${kills} kills so far`);
      }
    } finally {
      killing = false;
      await killer;
      await pool.stopAll();
      await queue.close();
    }

    const report = await jobsReport(store);
    const [{ runs, retried }] = await store.engine.query<{ runs: number; retried: number }>(
      `select count(*)::int as runs, (count(*) filter (where retry_count > 0))::int as retried from pgboss.job where name in ('tilevec-ingest', 'tilevec-embed')`,
    );
    const refState = await endState(ref.url);
    const gotState = await endState(chaos.url);
    const { mismatches, maxVectorDiff } = compare(refState, gotState, 1e-4);
    return {
      kills, killsDuringWork, rounds, unitsRun: runs, unitsRetried: retried, deadLetters: report.deadTotal,
      rasters: gotState.rasters.size, tiles: gotState.tiles.size, embeddings: gotState.vectors.size, maxVectorDiff, mismatches,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await pool.stopAll();
    await store?.close();
    await ref.drop();
    await chaos.drop();
  }
}

/** Small rasters with at least three bands, so that one model embeds them all. */
export const TEST_RASTERS = [
  'virginia-naip-landsat8/m_3607717_sw_18_1_20160620_subset.tif',
  'virginia-naip-landsat8/m_3607824_se_17_1_20160620_subset.tif',
  'virginia-naip-landsat8/naip_va_1m_RGBN.tif',
  'virginia-naip-landsat8/landsat8_elkton_va_B1-7_9-11.tif',
  'misc/L7_ETMs_olinda_brazil.tif',
].map((p) => join(DATA, p));

export const BENCH_RASTERS = [
  ...TEST_RASTERS,
  'naip-northdakota/m_4709963_se_14_1_20090818.tif',
  'zion-landsat8-nlcd/landsat8_zion_20150818_B2B3B4B5.tif',
].map((p) => resolve(DATA, p));

/**
 * 50 concurrent clients for `seconds` against `tilevec serve` (a child process on loopback) over a synthetic
 * catalog on the server: similar-tile, search, page and point queries. Returns autocannon's figures.
 */
export async function runLoad(serverUrl: string, opts: { connections?: number; seconds?: number } = {}) {
  const autocannonModule = 'autocannon'; // ships no type declarations
  const { default: autocannon } = await import(autocannonModule);
  const { seedSynthetic } = await import('../test/serve-fixtures.ts');
  const db = await freshDatabase(serverUrl, 'load');
  const store = await Store.open(db.url);
  let child: ChildProcess | undefined;
  try {
    const world = await seedSynthetic(store, { rasters: 10, side: 20, dim: 32 });
    const ids = [...world.vectors.keys()];
    child = spawn(process.execPath, [CLI, '--db', db.url, 'serve', '--port', '0'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    const base = await new Promise<string>((resolveUrl, reject) => {
      child!.stderr!.setEncoding('utf8').on('data', (t: string) => {
        const m = /serving on (http:\/\/\S+)/.exec(t);
        if (m) resolveUrl(m[1]);
      });
      child!.once('exit', (code) => reject(new Error(`tilevec serve exited with ${code}`)));
    });
    const random = rng(3);
    const id = () => ids[Math.floor(random() * ids.length)];
    const result = await autocannon({
      url: base, connections: opts.connections ?? 50, duration: opts.seconds ?? 60,
      requests: [
        { method: 'GET', setupRequest: (r: Record<string, unknown>) => ({ ...r, path: `/v1/tiles/${id()}/similar?k=10` }) },
        { method: 'POST', headers: { 'content-type': 'application/json' }, setupRequest: (r: Record<string, unknown>) => ({ ...r, path: '/v1/search', body: JSON.stringify({ tileId: id(), k: 10 }) }) },
        { method: 'GET', setupRequest: (r: Record<string, unknown>) => ({ ...r, path: `/v1/tiles?limit=50&bbox=-110,37,-109.5,37.2` }) },
        { method: 'GET', setupRequest: (r: Record<string, unknown>) => ({ ...r, path: `/v1/tiles/at?lon=${(-110 + random() * 2).toFixed(4)}&lat=37.05` }) },
      ],
    }) as { requests: { average: number; total: number }; latency: { p50: number; p99: number; max: number }; errors: number; timeouts: number; non2xx: number; '5xx'?: number };
    return {
      connections: opts.connections ?? 50, seconds: opts.seconds ?? 60, requests: result.requests.total, reqPerSec: result.requests.average,
      p50Ms: result.latency.p50, p99Ms: result.latency.p99, maxMs: result.latency.max, errors: result.errors, timeouts: result.timeouts, non2xx: result.non2xx,
    };
  } finally {
    child?.kill('SIGTERM');
    await store.close();
    await db.drop();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      load: { type: 'boolean', default: false }, connections: { type: 'string', default: '50' }, seconds: { type: 'string', default: '60' },
      workers: { type: 'string', default: '4' }, kills: { type: 'string', default: '60' }, 'block-tiles': { type: 'string', default: '256' },
    },
  });
  const serverUrl = process.env.TILEVEC_TEST_PG_URL ?? loadConfig().db;
  if (!/^postgres/.test(serverUrl)) throw new Error('set TILEVEC_TEST_PG_URL (or TILEVEC_DB) to a postgres:// server URL');
  if (values.load) {
    const load = await runLoad(serverUrl, { connections: Number(values.connections), seconds: Number(values.seconds) });
    process.stdout.write(`${JSON.stringify(load, null, 2)}\n`);
    if (load.errors || load.timeouts || load.non2xx) process.exitCode = 1;
    return;
  }
  const tmpDir = join(ROOT, '.tilevec', `faults-${process.pid}`);
  const report = await runFaults({
    serverUrl, rasters: BENCH_RASTERS, workers: Number(values.workers), minKills: Number(values.kills), tmpDir, blockTiles: Number(values['block-tiles']),
    log: (l) => process.stderr.write(`${l}\n`),
  });
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  if (report.mismatches.length || report.deadLetters) process.exitCode = 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
