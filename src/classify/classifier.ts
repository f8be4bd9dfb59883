import { z } from 'zod';

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

/** What the three classifiers share: class ids, and prediction as the most probable class. */
export abstract class BaseClassifier implements Classifier {
  abstract readonly kind: ClassifierKind;
  classes: number[] = [];
  abstract fit(rows: readonly FeatureRow[], labels: readonly number[]): this;
  abstract predictProba(rows: readonly FeatureRow[]): Float64Array[];
  abstract toJSON(): Record<string, unknown>;

  predict(rows: readonly FeatureRow[]): number[] {
    return this.predictProba(rows).map((p) => argmaxClass(this.classes, p));
  }
}

/** Training's class ids: distinct integers in ascending order, at least one. */
export const classesSchema = z.array(z.number().int()).min(1).refine((c) => c.every((v, i) => i === 0 || c[i - 1] < v), 'class ids must be distinct and ascending');

/** A standardizer over `dim` features. */
export function standardizerSchema(dim: number) {
  return z.object({ mean: z.array(z.number()).length(dim), std: z.array(z.number().positive()).length(dim) });
}

/**
 * A classifier's saved state checked against its schema, or an Error naming the first problems: a damaged file
 * must fail when it loads, not with a crash or a wrong answer when it predicts.
 */
export function parseState<S extends z.ZodType>(schema: S, state: unknown): z.output<S> {
  const parsed = schema.safeParse(state);
  if (parsed.success) return parsed.data;
  throw new Error(parsed.error.issues.slice(0, 3).map((i) => `${i.path.length ? `${i.path.join('.')}: ` : ''}${i.message}`).join('; '));
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
