import type { TileRecord } from '../store/index.ts';
import type { ClassifierKind } from './classifier.ts';
import { crossValidateFolds, makeFolds } from './cross-validate.ts';
import type { FeatureSet } from './feature-providers.ts';
import type { SplitKind } from './folds.ts';
import { searchPrecision, standardizeColumns, temporalAnalogy, temporalRetrieval, type AnalogyMetrics, type DatedPlace, type TemporalMetrics } from './retrieval.ts';

export interface EvaluationOptions {
  classifiers: ClassifierKind[];
  splits: SplitKind[];
  folds?: number;
  seed?: number;
  blockTiles?: number;
}

export interface EvaluationRow {
  featureSet: string;
  dim: number;
  classifier: ClassifierKind;
  split: SplitKind;
  accuracy: number;
  macroF1: number;
}

/** accuracy[featureSet][classifier][split] */
export type AccuracyTable = Record<string, Record<string, Record<string, number>>>;

/**
 * Cross-validates every classifier on every feature set with the same folds, so rows differ only in features.
 * Feature sets whose provider fails (a model with no embeddings yet, say) are reported as skipped.
 */
export async function evaluateFeatureSets(tiles: TileRecord[], labels: number[], sets: FeatureSet[], opts: EvaluationOptions) {
  const k = opts.folds ?? 5;
  const folds = new Map(opts.splits.map((s) => [s, makeFolds(tiles, s, k, opts)]));
  const rows: EvaluationRow[] = [];
  const search: Record<string, number> = {};
  const skipped: { featureSet: string; reason: string }[] = [];
  for (const set of sets) {
    let features: Float32Array[];
    try {
      features = await set.provide(tiles);
    } catch (err) {
      skipped.push({ featureSet: set.name, reason: err instanceof Error ? err.message : String(err) });
      continue;
    }
    search[set.name] = round(searchPrecision(searchable(set, features), labels, tiles, SEARCH_K));
    for (const classifier of opts.classifiers) {
      for (const split of opts.splits) {
        const r = crossValidateFolds(features, labels, folds.get(split)!, { classifier, split, seed: opts.seed });
        rows.push({ featureSet: set.name, dim: features[0]?.length ?? 0, classifier, split, accuracy: r.accuracy, macroF1: r.macroF1 });
      }
    }
  }
  const accuracy: AccuracyTable = {};
  for (const r of rows) ((accuracy[r.featureSet] ??= {})[r.classifier] ??= {})[r.split] = round(r.accuracy);
  return { rows, skipped, accuracy, search, tiles: tiles.length };
}

/** Neighbours per search query in the search measures. */
export const SEARCH_K = 10;

/** Embeddings are searched as the store holds them; hand-made features only after standardising each column. */
function searchable(set: FeatureSet, features: Float32Array[]): Float32Array[] {
  return set.searchAsIs ? features : standardizeColumns(features);
}

export function formatEvaluation(result: Awaited<ReturnType<typeof evaluateFeatureSets>>): string {
  const lines = [`${'features'.padEnd(22)}${'dim'.padStart(6)}  ${'classifier'.padEnd(10)} ${'split'.padEnd(8)} ${'accuracy'.padStart(8)} ${'macro-F1'.padStart(8)}`];
  for (const r of result.rows) {
    lines.push(`${r.featureSet.padEnd(22)}${String(r.dim).padStart(6)}  ${r.classifier.padEnd(10)} ${r.split.padEnd(8)} ${r.accuracy.toFixed(3).padStart(8)} ${r.macroF1.toFixed(3).padStart(8)}`);
  }
  for (const s of result.skipped) lines.push(`${s.featureSet}: skipped (${s.reason})`);
  lines.push('', `search by example: label precision@${SEARCH_K} of each tile's nearest tiles, never counting tiles that overlap or touch it`);
  for (const [name, precision] of Object.entries(result.search)) lines.push(`${name.padEnd(22)} ${precision.toFixed(3)}`);
  lines.push(`${result.tiles} labelled tiles. Random splits put overlapping and neighbouring tiles on both sides (they leak); spatial splits do not.`);
  return lines.join('\n');
}

const round = (v: number) => Math.round(v * 10000) / 10000;

export interface TemporalRow {
  featureSet: string;
  dim: number;
  retrieval: TemporalMetrics;
  analogy: AnalogyMetrics;
}

/**
 * The same place across the dates of a co-registered stack (recall@10 and median rank of the same window on
 * another date, the share of neighbours from the query's own date) and temporal analogies, for each feature set
 * on the same tiles. Sets may give rows already arranged for search (see `FeatureSet.searchAsIs`).
 */
export async function evaluateTemporal(tiles: TileRecord[], sets: FeatureSet[], opts: { queries?: number; seed?: number } = {}) {
  // Each raster of the stack is one date.
  const places: DatedPlace[] = tiles.map((t) => ({ rasterId: t.rasterId, x: t.x, y: t.y, size: t.size, date: t.rasterId }));
  const rows: TemporalRow[] = [];
  const skipped: { featureSet: string; reason: string }[] = [];
  for (const set of sets) {
    let features: Float32Array[];
    try {
      features = searchable(set, await set.provide(tiles));
    } catch (err) {
      skipped.push({ featureSet: set.name, reason: err instanceof Error ? err.message : String(err) });
      continue;
    }
    const retrieval = temporalRetrieval(features, places, { k: SEARCH_K, queries: opts.queries, seed: opts.seed });
    const analogy = temporalAnalogy(features, places, { k: SEARCH_K, queries: opts.queries, seed: opts.seed });
    rows.push({ featureSet: set.name, dim: features[0]?.length ?? 0, retrieval: roundAll(retrieval), analogy: roundAll(analogy) });
  }
  return { rows, skipped, tiles: tiles.length, dates: new Set(places.map((p) => p.date)).size };
}

export function formatTemporal(result: Awaited<ReturnType<typeof evaluateTemporal>>): string {
  const head = `${'features'.padEnd(26)}${'dim'.padStart(5)} ${'recall@10'.padStart(9)} ${'hit@10'.padStart(7)} ${'med.rank'.padStart(9)} ${'own-date'.padStart(9)} ${'chance'.padStart(7)} ${'analogy'.padStart(8)} ${'trivial'.padStart(8)}`;
  const lines = [head];
  for (const r of result.rows) {
    const t = r.retrieval;
    lines.push(`${r.featureSet.padEnd(26)}${String(r.dim).padStart(5)} ${t.recall.toFixed(3).padStart(9)} ${t.hitRate.toFixed(3).padStart(7)} ${String(t.medianRank).padStart(9)} ${t.sameDateShare.toFixed(3).padStart(9)} ` +
      `${t.sameDateChance.toFixed(3).padStart(7)} ${r.analogy.analogy.toFixed(4).padStart(8)} ${r.analogy.trivial.toFixed(4).padStart(8)}`);
  }
  for (const s of result.skipped) lines.push(`${s.featureSet}: skipped (${s.reason})`);
  lines.push(`${result.tiles} tiles on ${result.dates} dates. recall@10: the share of a tile's window on the other dates found among its 10 nearest; hit@10: at least one found; own-date: ` +
    `share of the 10 nearest from the query's date; analogy: z(A,t2) - z(A,t1) + z(B,t1) finds (B,t2) in its 10 nearest; trivial: z(B,t1) does.`);
  return lines.join('\n');
}

function roundAll<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === 'number' ? round(v) : v])) as T;
}
