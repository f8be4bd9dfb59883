import type { ClassifierKind, FeatureRow } from './classifier.ts';
import { createClassifier, type ClassifierOptions } from './create-classifier.ts';
import { randomFolds, spatialFolds, type Fold, type SplitKind, type TilePlace } from './folds.ts';
import { classificationMetrics, type ClassificationMetrics } from './metrics.ts';

export interface CrossValidationOptions {
  classifier: ClassifierKind;
  split: SplitKind;
  folds?: number;
  seed?: number;
  blockTiles?: number;
  classifierOptions?: ClassifierOptions;
}

export interface CrossValidationResult extends ClassificationMetrics {
  classifier: ClassifierKind;
  split: SplitKind;
  folds: number;
  /** Training rows left out of some fold's training set because they overlap its test tiles (spatial only). */
  bufferedOut: number;
}

/** The folds for a split kind over labelled tiles (row i of the features is tiles[i]). */
export function makeFolds(tiles: readonly TilePlace[], split: SplitKind, k: number, opts: { seed?: number; blockTiles?: number } = {}): Fold[] {
  return split === 'random' ? randomFolds(tiles.length, k, opts.seed) : spatialFolds(tiles, k, { seed: opts.seed, blockTiles: opts.blockTiles });
}

/** Out-of-fold predictions for every row, pooled into one set of metrics. */
export function crossValidate(rows: readonly FeatureRow[], labels: readonly number[], tiles: readonly TilePlace[], opts: CrossValidationOptions): CrossValidationResult {
  const k = opts.folds ?? 5;
  const folds = makeFolds(tiles, opts.split, k, opts);
  return crossValidateFolds(rows, labels, folds, opts);
}

export function crossValidateFolds(rows: readonly FeatureRow[], labels: readonly number[], folds: Fold[], opts: CrossValidationOptions): CrossValidationResult {
  const predicted = new Array<number>(rows.length);
  let bufferedOut = 0;
  for (const fold of folds) {
    bufferedOut += rows.length - fold.test.length - fold.train.length;
    const model = createClassifier(opts.classifier, { seed: opts.seed, ...opts.classifierOptions });
    model.fit(fold.train.map((i) => rows[i]), fold.train.map((i) => labels[i]));
    const out = model.predict(fold.test.map((i) => rows[i]));
    fold.test.forEach((row, j) => (predicted[row] = out[j]));
  }
  const classes = [...new Set(labels)].sort((a, b) => a - b);
  return { ...classificationMetrics(labels, predicted, classes), classifier: opts.classifier, split: opts.split, folds: folds.length, bufferedOut };
}
