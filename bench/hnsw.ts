/**
 * pgvector HNSW on the PostgreSQL server: recall@10 against exact search, and query latency, for a few
 * (m, ef_construction, ef_search) settings over synthetic clustered vectors. The figures in docs/SCALING.md.
 *   node --import tsx bench/hnsw.ts [--n 100000] [--dim 32] [--queries 200] [--latent 0]
 * --latent d > 0 draws the vectors from a d-dimensional manifold (a random linear map plus small noise), closer to
 * real embeddings; 0 (the default) uses isotropic clusters, the hard case.
 * The server is TILEVEC_TEST_PG_URL (default the test server); it works in a scratch database it drops after.
 */
import { parseArgs } from 'node:util';
import pg from 'pg';

const { values } = parseArgs({
  options: { n: { type: 'string', default: '100000' }, dim: { type: 'string', default: '32' }, queries: { type: 'string', default: '200' }, latent: { type: 'string', default: '0' } },
});
const N = Number(values.n);
const DIM = Number(values.dim);
const QUERIES = Number(values.queries);
const LATENT = Number(values.latent);
const K = 10;
const SERVER = process.env.TILEVEC_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:55432/postgres';
const BUILDS = [{ m: 8, ef: 32 }, { m: 16, ef: 64 }, { m: 32, ef: 128 }];
const EF_SEARCH = [10, 40, 100, 200];

let seed = 12345;
const random = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32);
const gauss = () => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());

const MAP = Array.from({ length: LATENT }, () => Array.from({ length: DIM }, gauss));

/** Points on a LATENT-dimensional linear manifold in DIM dimensions, plus a little noise. */
function manifold(n: number): number[][] {
  return Array.from({ length: n }, () => {
    const z = Array.from({ length: LATENT }, gauss);
    return Array.from({ length: DIM }, (_, j) => z.reduce((s, zi, i) => s + zi * MAP[i][j], 0) + 0.05 * gauss());
  });
}

/** Vectors around 200 cluster centres, like embeddings of land-cover types: harder for HNSW than uniform noise. */
function clustered(n: number): number[][] {
  if (LATENT > 0) return manifold(n);
  const centres = Array.from({ length: 200 }, () => Array.from({ length: DIM }, gauss));
  return Array.from({ length: n }, () => {
    const c = centres[Math.floor(random() * centres.length)];
    return c.map((x) => x + 0.35 * gauss());
  });
}

const literal = (v: number[]) => `[${v.map((x) => x.toFixed(5)).join(',')}]`;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

async function main(): Promise<void> {
  const name = `tilevec_hnsw_${process.pid}`;
  const admin = new pg.Client({ connectionString: SERVER });
  await admin.connect();
  await admin.query(`create database ${name}`);
  const url = new URL(SERVER);
  url.pathname = `/${name}`;
  const c = new pg.Client({ connectionString: url.toString() });
  await c.connect();
  try {
    await c.query('create extension vector');
    await c.query(`create table v (id int primary key, e vector(${DIM}))`);
    const data = clustered(N);
    for (let i = 0; i < N; i += 5000) {
      const chunk = data.slice(i, i + 5000);
      await c.query('insert into v select * from unnest($1::int[], $2::vector[])', [chunk.map((_, j) => i + j), chunk.map(literal)]);
    }
    await c.query('analyze v');
    const queries = clustered(QUERIES).map(literal);
    const exact: number[][] = [];
    for (const q of queries) {
      exact.push((await c.query('select id from v order by e <-> $1::vector limit $2', [q, K])).rows.map((r) => r.id));
    }
    const exactMs: number[] = [];
    for (const q of queries.slice(0, 20)) {
      const t = performance.now();
      await c.query('select id from v order by e <-> $1::vector limit $2', [q, K]);
      exactMs.push(performance.now() - t);
    }
    console.log(`${LATENT > 0 ? `${LATENT}-d manifold` : '200 isotropic clusters'}: n=${N} dim=${DIM} queries=${QUERIES} k=${K}; exact (sequential scan) p50 ${pct(exactMs, 50).toFixed(1)} ms`);
    console.log('| m | ef_construction | build s | index MB | ef_search | recall@10 | p50 ms | p99 ms |');
    console.log('|---|---|---|---|---|---|---|---|');
    await c.query(`set maintenance_work_mem = '1GB'`);
    for (const b of BUILDS) {
      await c.query('drop index if exists v_hnsw');
      const t0 = performance.now();
      await c.query(`create index v_hnsw on v using hnsw (e vector_l2_ops) with (m = ${b.m}, ef_construction = ${b.ef})`);
      const buildS = (performance.now() - t0) / 1000;
      const [{ bytes }] = (await c.query(`select pg_relation_size('v_hnsw') as bytes`)).rows;
      for (const efs of EF_SEARCH) {
        await c.query(`set hnsw.ef_search = ${efs}`);
        let hits = 0;
        const ms: number[] = [];
        for (const [i, q] of queries.entries()) {
          const t = performance.now();
          const ids = (await c.query('select id from v order by e <-> $1::vector limit $2', [q, K])).rows.map((r) => r.id);
          ms.push(performance.now() - t);
          const truth = new Set(exact[i]);
          hits += ids.filter((id: number) => truth.has(id)).length;
        }
        console.log(`| ${b.m} | ${b.ef} | ${buildS.toFixed(1)} | ${(Number(bytes) / 2 ** 20).toFixed(0)} | ${efs} | ${(hits / (K * queries.length)).toFixed(3)} | ${pct(ms, 50).toFixed(2)} | ${pct(ms, 99).toFixed(2)} |`);
      }
    }
  } finally {
    await c.end();
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.end();
  }
}

await main();
