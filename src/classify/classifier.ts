/** Which algorithm; also the `--classifier` flag's values. */
export type ClassifierKind = 'logreg' | 'rf' | 'knn';
export const CLASSIFIER_KINDS: readonly ClassifierKind[] = ['logreg', 'rf', 'knn'];

/** A feature row: one tile's embedding or baseline features. */
export type FeatureRow = ArrayLike<number>;

/**
 * The contract all three classifiers share. Labels are arbitrary integer class ids; `classes` lists the ids seen
 * in training in ascending order, and `predictProba` returns one probability per entry of `classes`.
 */
export interface Classifier {
  readonly kind: ClassifierKind;
  readonly classes: number[];
  fit(rows: readonly FeatureRow[], labels: readonly number[]): this;
  predictProba(rows: readonly FeatureRow[]): Float64Array[];
  predict(rows: readonly FeatureRow[]): number[];
  /** Plain JSON state that the class's `fromJSON` reads back. */
  toJSON(): Record<string, unknown>;
}

/** Sorted distinct labels, and each label's index in that list. */
export function encodeLabels(labels: readonly number[]): { classes: number[]; index: Int32Array } {
  const classes = [...new Set(labels)].sort((a, b) => a - b);
  const lookup = new Map(classes.map((c, i) => [c, i]));
  return { classes, index: Int32Array.from(labels, (l) => lookup.get(l)!) };
}

/** The class with the highest probability; ties go to the lower class id, so predictions are deterministic. */
export function argmaxClass(classes: readonly number[], proba: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < proba.length; i++) if (proba[i] > proba[best]) best = i;
  return classes[best];
}

export function checkTrainingData(rows: readonly FeatureRow[], labels: readonly number[]): void {
  if (rows.length === 0) throw new Error('cannot fit a classifier on zero rows');
  if (rows.length !== labels.length) throw new Error(`${rows.length} feature rows but ${labels.length} labels`);
  const d = rows[0].length;
  for (const r of rows) if (r.length !== d) throw new Error(`feature rows have different lengths (${d} and ${r.length})`);
}
