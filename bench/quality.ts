/**
 * The embedding's quality, end to end through the real CLI with fixed seeds, against baselines computed in the same
 * run on the same tiles (per-band mean + std, raw-pixel PCA at the embedding's dimension, the random-init backbone):
 *   1. land cover: Zion Landsat 8 with NLCD 2011, 5-fold spatial CV accuracy (logreg, random forest, k-NN);
 *   2. search by example: Zion, label precision@10 of each labelled tile's nearest tiles, touching tiles excluded;
 *   3. same place across dates: the ten NAIP North Dakota dates, recall@10 / hit@10 / median rank of the same
 *      window on other dates, and the share of neighbours from the query's own date against chance;
 *   4. temporal analogy: z(A,t2) - z(A,t1) + z(B,t1) finds (B,t2), against the trivial query z(B,t1).
 * Measures 1-2 come from `tilevec evaluate --labels`, 3-4 from `tilevec evaluate --temporal`.
 *
 * `--quick` trains on a quarter of the triplets and draws 200 temporal queries instead of 500, for trying recipes;
 * `--only zion` or `--only naip` runs half of the bench (the goals of the other half are then not judged).
 * BENCH_TRAIN adds `tilevec train` flags to both models (for example BENCH_TRAIN='--normalization percentile');
 * BENCH_TRIPLETS sets the triplets; BENCH_DIR keeps the work directory (which must not exist yet).
 * Prints each command, both tables, the goals, and last one JSON line. Run: npm run bench:quality [-- --quick]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'bin/tilevec.js');
const DATA = resolve(ROOT, '../shared/data');
const ZION = join(DATA, 'zion-landsat8-nlcd/landsat8_zion_20150818_B2B3B4B5.tif');
const NLCD = join(DATA, 'zion-landsat8-nlcd/nlcd2011_zion_8class_on_landsat_grid.tif');
const NAIP = join(DATA, 'naip-northdakota');
const CLASSES = { 1: 'water', 2: 'developed', 3: 'barren', 4: 'forest', 5: 'shrubland', 6: 'herbaceous', 7: 'cultivated', 8: 'wetlands' };

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, only: { type: 'string' } } });
const quick = values.quick;
const only = values.only;
if (only !== undefined && only !== 'zion' && only !== 'naip') {
  console.error(`--only takes zion or naip, got '${only}'`);
  process.exit(2);
}
const triplets = process.env.BENCH_TRIPLETS || (quick ? '4000' : '16000');
const queries = quick ? '200' : '500';
const extra = (process.env.BENCH_TRAIN ?? '').split(/\s+/).filter(Boolean);
const trainArgs = ['--backbone', 'tiny', '--tile-size', '32', '--triplets', triplets, '--seed', '0', ...extra];

type Accuracy = Record<string, Record<string, Record<string, number>>>;
interface TemporalRow { featureSet: string; retrieval: { recall: number; hitRate: number; medianRank: number; sameDateShare: number; sameDateChance: number }; analogy: { analogy: number; trivial: number } }

if (!existsSync(ZION) || !existsSync(NLCD) || !existsSync(NAIP)) {
  console.log(`imagery not found in ${DATA} (Zion Landsat 8 + NLCD, NAIP North Dakota); skipping`);
  console.log(JSON.stringify({ skipped: true }));
  process.exit(0);
}

const keep = process.env.BENCH_DIR;
const dir = keep ? resolve(keep) : mkdtempSync(join(tmpdir(), 'tilevec-quality-'));
const load = loadavg()[0];
const started = performance.now();
console.log(`load average at start: ${load.toFixed(2)}${load < 1 ? '' : ' (at or above 1.0: figures from this run do not go into the README)'}`);
try {
  const seconds: Record<string, number> = {};
  let accuracy: Accuracy | undefined;
  let search: Record<string, number> | undefined;
  let temporal: TemporalRow[] | undefined;
  if (only !== 'naip') {
    const zion = join(dir, 'zion');
    tilevec(zion, 'zion ingest', ['ingest', ZION, '--tile-size', '32'], seconds);
    tilevec(zion, 'zion train', ['train', ...trainArgs, '--name', 'zion', '--out', join(dir, 'models/zion')], seconds);
    tilevec(zion, 'zion embed', ['embed', '--model', 'zion'], seconds);
    tilevec(zion, 'zion labels', ['labels', 'import', NLCD, '--name', 'nlcd', '--classes', JSON.stringify(CLASSES)], seconds);
    const landcover = tilevec(zion, 'land cover and search', ['evaluate', '--labels', 'nlcd', '--model', 'zion'], seconds);
    process.stdout.write(landcover);
    ({ accuracy, search } = lastJson<{ accuracy: Accuracy; search: Record<string, number> }>(landcover));
  }
  if (only !== 'zion') {
    const naip = join(dir, 'naip');
    tilevec(naip, 'naip ingest', ['ingest', NAIP, '--tile-size', '32'], seconds);
    tilevec(naip, 'naip train', ['train', ...trainArgs, '--name', 'naip', '--out', join(dir, 'models/naip')], seconds);
    tilevec(naip, 'naip embed', ['embed', '--model', 'naip'], seconds);
    const temporalOut = tilevec(naip, 'across dates and analogy', ['evaluate', '--temporal', '--model', 'naip', '--queries', queries], seconds);
    process.stdout.write(temporalOut);
    temporal = lastJson<{ rows: TemporalRow[] }>(temporalOut).rows;
  }

  const goals = judge(accuracy, search, temporal);
  console.log('\ngoal                                   tilevec   best baseline          target   verdict');
  for (const g of goals) {
    console.log(`${g.measure.padEnd(38)} ${g.tilevec.toFixed(4).padStart(7)}   ${`${g.baseline.toFixed(4)} (${g.baselineName})`.padEnd(22)} ${g.target.toFixed(4).padStart(7)}   ${g.met ? 'MET' : 'MISSED'}`);
  }
  console.log(JSON.stringify({ quick, only, trainArgs, accuracy, search, temporal, goals, seconds, totalSeconds: round((performance.now() - started) / 1000), loadavg: load, dir: keep ? dir : undefined }));
} finally {
  if (!keep) rmSync(dir, { recursive: true, force: true });
}

/** The issue's goals: land cover and search +3 points over the best baseline; temporal recall ≥ best baseline and ≥ 0.3; analogy ≥ 2× trivial and ≥ band stats. */
function judge(accuracy: Accuracy | undefined, search: Record<string, number> | undefined, temporal: TemporalRow[] | undefined) {
  return [...(accuracy && search ? judgeZion(accuracy, search) : []), ...(temporal ? judgeNaip(temporal) : [])];
}

// Declarations, not consts: the bench's body above runs before a const here would be initialised.
function isOurs(name: string): boolean {
  return name.startsWith('tilevec:');
}
function bestOf(entries: [string, number][]): [string, number] {
  return entries.reduce((a, b) => (b[1] > a[1] ? b : a));
}
function ours<T>(rows: [string, T][]): [string, T] {
  return rows.find(([n]) => isOurs(n))!;
}
function others<T>(rows: [string, T][]): [string, T][] {
  return rows.filter(([n]) => !isOurs(n));
}
function goal(measure: string, tilevec: number, [baselineName, baseline]: [string, number], target: number) {
  return { measure, tilevec, baseline, baselineName, target: round(target), met: tilevec >= target };
}

function judgeZion(accuracy: Accuracy, search: Record<string, number>) {
  const spatial = (name: string) => Math.max(...Object.values(accuracy[name]).map((s) => s.spatial));
  const accuracies = Object.keys(accuracy).map((n) => [n, spatial(n)] as [string, number]);
  const searches = Object.entries(search);
  return [
    goal('land cover, spatial CV, best classifier', ours(accuracies)[1], bestOf(others(accuracies)), bestOf(others(accuracies))[1] + 0.03),
    goal('search by example, precision@10', ours(searches)[1], bestOf(others(searches)), bestOf(others(searches))[1] + 0.03),
  ];
}

function judgeNaip(temporal: TemporalRow[]) {
  const recalls = temporal.map((r) => [r.featureSet, r.retrieval.recall] as [string, number]);
  const analogies = temporal.map((r) => [r.featureSet, r.analogy.analogy] as [string, number]);
  const bandStatsAnalogy = bestOf(analogies.filter(([n]) => n.startsWith('band-mean-std')));
  const trivial = temporal.find((r) => isOurs(r.featureSet))!.analogy.trivial;
  return [
    goal('same window on another date, recall@10', ours(recalls)[1], bestOf(others(recalls)), Math.max(bestOf(others(recalls))[1], 0.3)),
    goal('temporal analogy, recall@10', ours(analogies)[1], bandStatsAnalogy, Math.max(2 * trivial, bandStatsAnalogy[1])),
  ];
}

/** Runs one CLI step on a bench store, echoing the command and timing it; a non-zero exit fails the bench. */
function tilevec(db: string, step: string, args: string[], seconds: Record<string, number>): string {
  const full = [...args, '--db', db];
  console.log(`$ tilevec ${full.map((a) => (/^[\w./:=,-]+$/.test(a) ? a : `'${a}'`)).join(' ')}`);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [CLI, ...full], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 * 2 ** 20 });
  seconds[step] = round((performance.now() - t0) / 1000);
  if (r.status !== 0) throw new Error(`tilevec ${step} exited ${r.status}`);
  return args[0] === 'evaluate' ? r.stdout : '';
}

function lastJson<T>(stdout: string): T {
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as T;
}

function round(v: number): number {
  return Math.round(v * 10000) / 10000;
}
