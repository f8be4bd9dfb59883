import { z } from 'zod';
import { BaseClassifier, checkTrainingData, classesSchema, encodeLabels, parseState, standardizerSchema, type FeatureRow } from './classifier.ts';
import { lbfgs } from './lbfgs.ts';
import { fitStandardizer, standardize, type Standardizer } from './standardizer.ts';

export interface LogisticRegressionOptions {
  /** L2 penalty on the weights (not the intercepts), per training row. */
  l2?: number;
  maxIterations?: number;
}

/**
 * Multinomial logistic regression on standardised features with an L2 penalty, fitted by L-BFGS (deterministic).
 * Weights are stored row-major as [class][feature + 1], the last column being the intercept.
 */
export class LogisticRegression extends BaseClassifier {
  readonly kind = 'logreg' as const;
  private scaler: Standardizer = { mean: [], std: [] };
  private weights: number[][] = [];

  constructor(readonly options: LogisticRegressionOptions = {}) {
    super();
  }

  fit(rows: readonly FeatureRow[], labels: readonly number[]): this {
    checkTrainingData(rows, labels);
    const { classes, index } = encodeLabels(labels);
    this.classes = classes;
    this.scaler = fitStandardizer(rows);
    const x = rows.map((r) => standardize(this.scaler, r));
    const n = x.length;
    const d = x[0].length;
    const k = classes.length;
    const l2 = this.options.l2 ?? 1e-3;
    const width = d + 1;
    const logits = new Float64Array(k);
    const objective = (w: Float64Array, grad: Float64Array): number => {
      grad.fill(0);
      let loss = 0;
      for (let i = 0; i < n; i++) {
        const xi = x[i];
        let max = -Infinity;
        for (let c = 0; c < k; c++) {
          let z = w[c * width + d];
          for (let j = 0; j < d; j++) z += w[c * width + j] * xi[j];
          logits[c] = z;
          if (z > max) max = z;
        }
        let sum = 0;
        for (let c = 0; c < k; c++) sum += (logits[c] = Math.exp(logits[c] - max));
        loss -= Math.log(logits[index[i]] / sum);
        for (let c = 0; c < k; c++) {
          const err = logits[c] / sum - (c === index[i] ? 1 : 0);
          for (let j = 0; j < d; j++) grad[c * width + j] += err * xi[j];
          grad[c * width + d] += err;
        }
      }
      loss /= n;
      for (let c = 0; c < k; c++) {
        for (let j = 0; j < d; j++) {
          const wj = w[c * width + j];
          grad[c * width + j] = grad[c * width + j] / n + l2 * wj;
          loss += 0.5 * l2 * wj * wj;
        }
        grad[c * width + d] /= n;
      }
      return loss;
    };
    const { x: w } = lbfgs(objective, new Float64Array(k * width), { maxIterations: this.options.maxIterations ?? 300 });
    this.weights = Array.from({ length: k }, (_, c) => Array.from(w.subarray(c * width, (c + 1) * width)));
    return this;
  }

  predictProba(rows: readonly FeatureRow[]): Float64Array[] {
    return rows.map((r) => {
      const xi = standardize(this.scaler, r);
      const d = xi.length;
      const p = Float64Array.from(this.weights, (wc) => {
        let z = wc[d];
        for (let j = 0; j < d; j++) z += wc[j] * xi[j];
        return z;
      });
      const max = Math.max(...p);
      let sum = 0;
      for (let c = 0; c < p.length; c++) sum += (p[c] = Math.exp(p[c] - max));
      for (let c = 0; c < p.length; c++) p[c] /= sum;
      return p;
    });
  }

  toJSON(): Record<string, unknown> {
    return { options: this.options, classes: this.classes, scaler: this.scaler, weights: this.weights };
  }

  /** A fitted model from `toJSON`'s state over `dim` features; throws naming what is wrong with a damaged one. */
  static fromJSON(state: unknown, dim: number): LogisticRegression {
    const s = parseState(z.object({
      options: z.object({ l2: z.number().min(0).optional(), maxIterations: z.number().int().min(1).optional() }),
      classes: classesSchema,
      scaler: standardizerSchema(dim),
      weights: z.array(z.array(z.number()).length(dim + 1, `each class's weights are ${dim} features and an intercept`)),
    }).refine((s) => s.weights.length === s.classes.length, { message: 'one row of weights per class', path: ['weights'] }), state);
    const model = new LogisticRegression(s.options);
    model.classes = s.classes;
    model.scaler = s.scaler;
    model.weights = s.weights;
    return model;
  }
}
