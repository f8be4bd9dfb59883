import type { Classifier, ClassifierKind } from './classifier.ts';
import { KNearestNeighbors, type KNearestNeighborsOptions } from './knn.ts';
import { LogisticRegression, type LogisticRegressionOptions } from './logistic-regression.ts';
import { RandomForest, type RandomForestOptions } from './random-forest.ts';

export type ClassifierOptions = LogisticRegressionOptions & RandomForestOptions & KNearestNeighborsOptions;

/** An unfitted classifier of the given kind; each kind reads only its own options. */
export function createClassifier(kind: ClassifierKind, options: ClassifierOptions = {}): Classifier {
  switch (kind) {
    case 'logreg':
      return new LogisticRegression({ l2: options.l2, maxIterations: options.maxIterations });
    case 'rf':
      return new RandomForest({ trees: options.trees, seed: options.seed, maxDepth: options.maxDepth, minSamplesLeaf: options.minSamplesLeaf });
    case 'knn':
      return new KNearestNeighbors({ k: options.k });
  }
}

/** A fitted classifier from its saved state over `dim` features; throws naming what is wrong with a damaged one. */
export function classifierFromJSON(kind: ClassifierKind, state: unknown, dim: number): Classifier {
  switch (kind) {
    case 'logreg':
      return LogisticRegression.fromJSON(state, dim);
    case 'rf':
      return RandomForest.fromJSON(state, dim);
    case 'knn':
      return KNearestNeighbors.fromJSON(state, dim);
  }
}
