/**
 * The land-cover goal of issue 9, end to end through the real CLI on the Zion scene: ingest the Landsat 8 image,
 * train a Tile2Vec model on it, embed every tile, label tiles with NLCD 2011 (8 classes, majority per tile), then
 * `tilevec evaluate`: the embeddings against a random-initialised backbone of the same architecture, per-band
 * mean + std and raw-pixel PCA, with logistic regression, random forest and k-NN under random and spatial 5-fold
 * CV. The goal: tilevec's best spatial accuracy ≥ the best baseline's + 5 points.
 *
 * Defaults are the best configuration measured; BENCH_* variables change it (BENCH_TILE, BENCH_TRIPLETS, BENCH_DIM,
 * BENCH_NEIGHBORHOOD, BENCH_MARGIN, BENCH_DEPTH, BENCH_BATCH, BENCH_LR, BENCH_SEED; BENCH_DIR keeps the work
 * directory, which must not exist yet). Prints each command, the evaluation table, a verdict, and last one JSON line.
 * Run: node --import tsx bench/landcover.ts
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'bin/tilevec.js');
const DATA = resolve(ROOT, '../shared/data/zion-landsat8-nlcd');
const IMAGE = join(DATA, 'landsat8_zion_20150818_B2B3B4B5.tif');
const NLCD = join(DATA, 'nlcd2011_zion_8class_on_landsat_grid.tif');
const CLASSES = { 1: 'water', 2: 'developed', 3: 'barren', 4: 'forest', 5: 'shrubland', 6: 'herbaceous', 7: 'cultivated', 8: 'wetlands' };
const GOAL_POINTS = 0.05;

const env = (name: string, fallback: string) => process.env[`BENCH_${name}`] || fallback;
const config = {
  tileSize: env('TILE', '32'),
  triplets: env('TRIPLETS', '16000'),
  dim: env('DIM', '128'),
  neighborhood: env('NEIGHBORHOOD', '32'),
  margin: env('MARGIN', '10'),
  depth: env('DEPTH', ''),
  batch: env('BATCH', '16'),
  lr: env('LR', '0.001'),
  seed: env('SEED', '0'),
};

type Accuracy = Record<string, Record<string, Record<string, number>>>;

if (!existsSync(IMAGE) || !existsSync(NLCD)) {
  console.log(`Zion data not found in ${DATA}; skipping`);
  console.log(JSON.stringify({ skipped: true }));
  process.exit(0);
}

const keep = process.env.BENCH_DIR;
const dir = keep ? resolve(keep) : mkdtempSync(join(tmpdir(), 'tilevec-landcover-'));
const db = join(dir, 'db');
const started = performance.now();
try {
  const seconds: Record<string, number> = {};
  tilevec('ingest', ['ingest', IMAGE, '--tile-size', config.tileSize, '--force'], seconds);
  tilevec('train', [
    'train', '--backbone', 'tiny', '--tile-size', config.tileSize, '--dim', config.dim, '--triplets', config.triplets, '--batch', config.batch,
    '--neighborhood', config.neighborhood, '--margin', config.margin, '--lr', config.lr, '--seed', config.seed,
    ...(config.depth ? ['--depth', config.depth] : []), '--name', 'landcover', '--out', join(dir, 'model'),
  ], seconds);
  tilevec('embed', ['embed', '--model', 'landcover'], seconds);
  tilevec('labels', ['labels', 'import', NLCD, '--name', 'nlcd', '--classes', JSON.stringify(CLASSES)], seconds);
  const evaluation = tilevec('evaluate', ['evaluate', '--labels', 'nlcd', '--model', 'landcover'], seconds);
  process.stdout.write(evaluation);
  const { accuracy, tiles } = JSON.parse(evaluation.trim().split('\n').at(-1)!) as { accuracy: Accuracy; tiles: number };
  const verdict = judge(accuracy);
  console.log(`tilevec best spatial ${verdict.tilevec.accuracy.toFixed(3)} (${verdict.tilevec.classifier}); best baseline ${verdict.baseline.accuracy.toFixed(3)} ` +
    `(${verdict.baseline.featureSet}, ${verdict.baseline.classifier}); goal ${verdict.target.toFixed(3)}: ${verdict.met ? 'MET' : 'MISSED'} ` +
    `(${((verdict.tilevec.accuracy - verdict.baseline.accuracy) * 100).toFixed(1)} points)`);
  console.log(JSON.stringify({ config, tiles, accuracy, ...verdict, seconds, totalSeconds: round((performance.now() - started) / 1000), loadavg: loadavg()[0], dir: keep ? dir : undefined }));
} finally {
  if (!keep) rmSync(dir, { recursive: true, force: true });
}

/** Runs one CLI step on the bench store, echoing the command; returns stdout and fails the bench on a non-zero exit. */
function tilevec(step: string, args: string[], seconds: Record<string, number>): string {
  const full = [...args, '--db', db];
  console.log(`$ tilevec ${full.map((a) => (/^[\w./:=,-]+$/.test(a) ? a : `'${a}'`)).join(' ')}`);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [CLI, ...full], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 * 2 ** 20 });
  seconds[step] = round((performance.now() - t0) / 1000);
  if (r.status !== 0) throw new Error(`tilevec ${step} exited ${r.status}`);
  return r.stdout;
}

/** tilevec's best spatial-CV accuracy against the best baseline's (the random backbone counts as a baseline). */
function judge(accuracy: Accuracy) {
  const best = (sets: string[]) => sets.flatMap((featureSet) => Object.entries(accuracy[featureSet]).map(([classifier, bySplit]) => ({ featureSet, classifier, accuracy: bySplit.spatial })))
    .reduce((a, b) => (b.accuracy > a.accuracy ? b : a));
  const names = Object.keys(accuracy);
  const tilevec = best(names.filter((n) => n.startsWith('tilevec:')));
  const baseline = best(names.filter((n) => !n.startsWith('tilevec:')));
  const target = round(baseline.accuracy + GOAL_POINTS);
  return { tilevec, baseline, target, met: tilevec.accuracy >= target };
}

function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}
