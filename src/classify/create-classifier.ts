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

export function classifierFromJSON(kind: ClassifierKind, state: Record<string, unknown>): Classifier {
  switch (kind) {
    case 'logreg':
      return LogisticRegression.fromJSON(state);
    case 'rf':
      return RandomForest.fromJSON(state);
    case 'knn':
      return KNearestNeighbors.fromJSON(state);
  }
}
