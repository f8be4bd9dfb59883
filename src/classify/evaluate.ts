import type { TileRecord } from '../store/index.ts';
import type { ClassifierKind } from './classifier.ts';
import { crossValidateFolds, makeFolds } from './cross-validate.ts';
import type { FeatureSet } from './feature-providers.ts';
import type { SplitKind } from './folds.ts';

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
  const skipped: { featureSet: string; reason: string }[] = [];
  for (const set of sets) {
    let features: Float32Array[];
    try {
      features = await set.provide(tiles);
    } catch (err) {
      skipped.push({ featureSet: set.name, reason: err instanceof Error ? err.message : String(err) });
      continue;
    }
    for (const classifier of opts.classifiers) {
      for (const split of opts.splits) {
        const r = crossValidateFolds(features, labels, folds.get(split)!, { classifier, split, seed: opts.seed });
        rows.push({ featureSet: set.name, dim: features[0]?.length ?? 0, classifier, split, accuracy: r.accuracy, macroF1: r.macroF1 });
      }
    }
  }
  const accuracy: AccuracyTable = {};
  for (const r of rows) ((accuracy[r.featureSet] ??= {})[r.classifier] ??= {})[r.split] = round(r.accuracy);
  return { rows, skipped, accuracy, tiles: tiles.length };
}

export function formatEvaluation(result: Awaited<ReturnType<typeof evaluateFeatureSets>>): string {
  const lines = [`${'features'.padEnd(22)}${'dim'.padStart(6)}  ${'classifier'.padEnd(10)} ${'split'.padEnd(8)} ${'accuracy'.padStart(8)} ${'macro-F1'.padStart(8)}`];
  for (const r of result.rows) {
    lines.push(`${r.featureSet.padEnd(22)}${String(r.dim).padStart(6)}  ${r.classifier.padEnd(10)} ${r.split.padEnd(8)} ${r.accuracy.toFixed(3).padStart(8)} ${r.macroF1.toFixed(3).padStart(8)}`);
  }
  for (const s of result.skipped) lines.push(`${s.featureSet}: skipped (${s.reason})`);
  lines.push(`${result.tiles} labelled tiles. Random splits put overlapping and neighbouring tiles on both sides (they leak); spatial splits do not.`);
  return lines.join('\n');
}

const round = (v: number) => Math.round(v * 10000) / 10000;
