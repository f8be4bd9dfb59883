/**
 * Load test of GET /v1/tiles/{id}/similar on 100k tiles with synthetic vectors, on the PostgreSQL server engine
 * and on embedded PGlite. Each engine is seeded through the store, served by the real `tilevec serve` in a child
 * process (so the load generator does not share its event loop), warmed up, then loaded with autocannon on
 * 127.0.0.1. Goal on the server engine: >= 1000 req/s with p99 <= 50 ms. The last line of stdout is one JSON object.
 *
 * The vectors are embedding-like by default: real tilevec embeddings have most of their variance in a few directions,
 * and HNSW both answers better and visits fewer nodes on such data than on uniform noise, which `--vectors uniform`
 * loads as the worst case. Each run also reports the recall@k of the served answers against exact search.
 *
 *   node --import tsx bench/serve.ts [--engines server,pglite] [--tiles 100000] [--dim 64] [--seconds 15] [--connections 16]
 *     [--vectors embedding-like|uniform]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { Store } from '../src/store/index.ts';
import { seedSynthetic, type SyntheticVectors } from '../test/serve-fixtures.ts';
import { CLI, ROOT, SERVER_URL, freshServerDb, tempDir } from '../test/helpers.ts';

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; average: number; max: number };
  errors: number;
  timeouts: number;
  non2xx: number;
}
type Autocannon = (opts: Record<string, unknown>) => Promise<AutocannonResult>;
// autocannon ships no types; this is the slice of its API the bench uses.
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

const { values } = parseArgs({
  options: {
    engines: { type: 'string', default: 'server,pglite' },
    tiles: { type: 'string', default: '100000' },
    dim: { type: 'string', default: '64' },
    seconds: { type: 'string', default: '15' },
    connections: { type: 'string', default: '16' },
    k: { type: 'string', default: '10' },
    vectors: { type: 'string', default: 'embedding-like' },
  },
});
const rasters = 10;
const side = Math.round(Math.sqrt(Number(values.tiles) / rasters));
const tiles = rasters * side * side;
const dim = Number(values.dim);
const seconds = Number(values.seconds);
const connections = Number(values.connections);
const k = Number(values.k);
const vectors = values.vectors as SyntheticVectors;
if (vectors !== 'embedding-like' && vectors !== 'uniform') throw new Error(`unknown --vectors '${vectors}' (embedding-like, uniform)`);
const RECALL_QUERIES = 200;

const log = (msg: string) => process.stderr.write(`[bench:serve] ${msg}\n`);
const secondsSince = (t0: number) => Math.round((performance.now() - t0) / 100) / 10;

async function seed(db: string): Promise<{ seedS: number; indexS: number; ids: [number, number]; vectors: Map<number, Float32Array> }> {
  const store = await Store.open(db);
  try {
    let t0 = performance.now();
    const world = await seedSynthetic(store, { rasters, side, dim, index: false, modelName: 'bench', vectors });
    const seedS = secondsSince(t0);
    log(`seeded ${tiles} tiles with ${dim}-d vectors in ${seedS} s`);
    t0 = performance.now();
    await store.ensureEmbeddingIndex(world.model);
    const indexS = secondsSince(t0);
    log(`built the HNSW index in ${indexS} s`);
    const ids = [...world.vectors.keys()];
    return { seedS, indexS, ids: [Math.min(...ids), Math.max(...ids)], vectors: world.vectors };
  } finally {
    await store.close();
  }
}

function serve(db: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [CLI, '--db', db, '--log-level', 'warn', 'serve', '--host', '127.0.0.1', '--port', '0'], {
    cwd: ROOT, stdio: ['ignore', 'inherit', 'pipe'], env: { ...process.env, TILEVEC_MAX_K: '1000' },
  });
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr!.on('data', (d) => {
      err += d;
      const m = /serving on (http:\/\/\S+)/.exec(err);
      if (m) resolve({ child, url: m[1] });
    });
    child.on('exit', (code) => reject(new Error(`tilevec serve exited ${code}: ${err}`)));
  });
}

/** CPU seconds a process has used (user + system), from /proc: load-independent cost, on a shared machine. */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ ticks
  } catch {
    return 0; // a backend that exited between listing and reading
  }
}

/** The PostgreSQL backends serving the bench database (the server engine); PGlite runs inside the server process. */
async function backendPids(db: string): Promise<number[]> {
  if (!db.startsWith('postgres')) return [];
  const client = new pg.Client({ connectionString: db });
  await client.connect();
  try {
    const { rows } = await client.query<{ pid: number }>('select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()');
    return rows.map((r) => r.pid);
  } finally {
    await client.end();
  }
}

async function load(url: string, [lo, hi]: [number, number], duration: number) {
  const result = await autocannon({
    url, connections, duration,
    requests: [{ setupRequest: (req: Record<string, unknown>) => ({ ...req, path: `/v1/tiles/${lo + Math.floor(Math.random() * (hi - lo + 1))}/similar?k=${k}` }) }],
  });
  return {
    reqPerSec: Math.round(result.requests.average),
    requests: result.requests.total,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    maxMs: result.latency.max,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

/** Mean share of the exact k nearest (brute force over the seeded vectors) that the service returned. */
async function recallAtK(url: string, all: Map<number, Float32Array>): Promise<number> {
  const ids = [...all.keys()];
  let found = 0;
  for (let q = 0; q < RECALL_QUERIES; q++) {
    const id = ids[Math.floor(Math.random() * ids.length)];
    const z = all.get(id)!;
    const exact = ids.filter((other) => other !== id)
      .map((other) => ({ other, d: all.get(other)!.reduce((sum, v, i) => sum + (v - z[i]) ** 2, 0) }))
      .sort((a, b) => a.d - b.d).slice(0, k).map((e) => e.other);
    const served = await (await fetch(`${url}/v1/tiles/${id}/similar?k=${k}`)).json() as { features: { id: number }[] };
    const got = new Set(served.features.map((f) => f.id));
    found += exact.filter((e) => got.has(e)).length;
  }
  return Math.round((found / (RECALL_QUERIES * k)) * 1000) / 1000;
}

async function benchEngine(name: string, db: string) {
  log(`${name}: seeding ${db.replace(/\/\/[^@]*@/, '//')}`);
  const seeded = await seed(db);
  const { child, url } = await serve(db);
  try {
    log(`${name}: warming up ${url}`);
    await load(url, seeded.ids, 3);
    log(`${name}: ${seconds} s at ${connections} connections`);
    // Backends the pool opens during the run started after this snapshot, so all of their CPU time counts.
    const dbAtStart = new Map((await backendPids(db)).map((pid) => [pid, cpuSeconds(pid)]));
    const nodeCpu = () => cpuSeconds(child.pid!);
    const node0 = nodeCpu();
    const figures = await load(url, seeded.ids, seconds);
    const dbCpu = (await backendPids(db)).reduce((sum, pid) => sum + cpuSeconds(pid) - (dbAtStart.get(pid) ?? 0), 0);
    // Server-side CPU per request: what bounds the rate on dedicated cores, whatever else shares this machine.
    const perRequest = (s: number) => Math.round((s * 1000 / Math.max(1, figures.requests)) * 100) / 100;
    const cpu = { nodeCpuMsPerRequest: perRequest(nodeCpu() - node0), dbCpuMsPerRequest: perRequest(dbCpu) };
    const recall = await recallAtK(url, seeded.vectors);
    log(`${name}: ${JSON.stringify({ ...figures, ...cpu, recall })}`);
    return { ...figures, ...cpu, [`recallAt${k}`]: recall, seedS: seeded.seedS, indexBuildS: seeded.indexS };
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
}

const results: Record<string, unknown> = {};
for (const engine of values.engines!.split(',')) {
  if (engine === 'server') {
    const { url, drop } = await freshServerDb();
    try { results.server = await benchEngine('server', url); } finally { await drop(); }
  } else if (engine === 'pglite') {
    const dir = tempDir('tilevec-bench-');
    try { results.pglite = await benchEngine('pglite', `${dir.path}/db`); } finally { dir.cleanup(); }
  } else {
    throw new Error(`unknown engine '${engine}' (server, pglite)`);
  }
}
const server = results.server as { reqPerSec: number; p99Ms: number; errors: number; non2xx: number } | undefined;
const goal = { reqPerSec: 1000, p99Ms: 50 };
const met = server ? server.reqPerSec >= goal.reqPerSec && server.p99Ms <= goal.p99Ms && server.errors === 0 && server.non2xx === 0 : null;
const loadAverage = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
process.stdout.write(`${JSON.stringify({ bench: 'serve', cpus: (await import('node:os')).cpus().length, loadAverage, route: '/v1/tiles/{id}/similar', tiles, dim, vectors, k, connections, seconds, serverUrl: SERVER_URL.replace(/\/\/[^@]*@/, '//'), goal, met, ...results })}\n`);
