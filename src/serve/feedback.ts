import { LogisticRegression } from '../classify/index.ts';

/** Marks of each kind from which a classifier ranks better than a query vector; below it, Rocchio. */
export const MIN_MARKS_FOR_CLASSIFIER = 3;
/** How far the Rocchio query moves from the positives' mean away from the negatives' mean. */
export const ROCCHIO_GAMMA = 0.5;
/**
 * The ridge penalty of the relevance classifier. A handful of marks in a space of a hundred or more dimensions
 * separates perfectly; the penalty keeps the weights, and so the ranking, from chasing the last few marks.
 */
const FEEDBACK_L2 = 0.1;

export type FeedbackMethod = 'rocchio' | 'logistic';

function mean(vectors: ArrayLike<number>[], dim: number): Float64Array {
  const m = new Float64Array(dim);
  for (const v of vectors) for (let j = 0; j < dim; j++) m[j] += v[j] / vectors.length;
  return m;
}

/**
 * Rocchio's query: the positives' mean, moved away from the negatives' mean, q = (1 + γ)·mean(P) − γ·mean(N).
 * The weights sum to one, so the query stays at the scale of the embeddings, where L2 distances mean something.
 */
export function rocchioQuery(positives: ArrayLike<number>[], negatives: ArrayLike<number>[], gamma = ROCCHIO_GAMMA): Float64Array {
  const dim = positives[0].length;
  const p = mean(positives, dim);
  if (negatives.length === 0) return p;
  const n = mean(negatives, dim);
  return p.map((v, j) => (1 + gamma) * v - gamma * n[j]);
}

/**
 * A logistic regression of positive against negative marks, as one linear score over raw embeddings:
 * score(x) = weights·x + bias is the log-odds that x is relevant, so ranking by it ranks by the probability.
 */
export function relevanceScore(positives: ArrayLike<number>[], negatives: ArrayLike<number>[]): { weights: Float64Array; bias: number } {
  const model = new LogisticRegression({ l2: FEEDBACK_L2 }).fit([...positives, ...negatives], [...positives.map(() => 1), ...negatives.map(() => 0)]);
  // Its saved state is the two classes' weights over standardised features; fold the standardisation back in.
  const { scaler, weights } = model.toJSON() as { scaler: { mean: number[]; std: number[] }; weights: number[][] };
  const d = scaler.mean.length;
  const w = new Float64Array(d);
  let bias = weights[1][d] - weights[0][d];
  for (let j = 0; j < d; j++) {
    w[j] = (weights[1][j] - weights[0][j]) / scaler.std[j];
    bias -= w[j] * scaler.mean[j];
  }
  return { weights: w, bias };
}

export function chooseMethod(positives: number, negatives: number): FeedbackMethod {
  return positives >= MIN_MARKS_FOR_CLASSIFIER && negatives >= MIN_MARKS_FOR_CLASSIFIER ? 'logistic' : 'rocchio';
}

export function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}
