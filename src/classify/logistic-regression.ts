import { argmaxClass, checkTrainingData, encodeLabels, type Classifier, type FeatureRow } from './classifier.ts';
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
export class LogisticRegression implements Classifier {
  readonly kind = 'logreg' as const;
  classes: number[] = [];
  private scaler: Standardizer = { mean: [], std: [] };
  private weights: number[][] = [];

  constructor(readonly options: LogisticRegressionOptions = {}) {}

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

  predict(rows: readonly FeatureRow[]): number[] {
    return this.predictProba(rows).map((p) => argmaxClass(this.classes, p));
  }

  toJSON(): Record<string, unknown> {
    return { options: this.options, classes: this.classes, scaler: this.scaler, weights: this.weights };
  }

  static fromJSON(state: Record<string, unknown>): LogisticRegression {
    const model = new LogisticRegression(state.options as LogisticRegressionOptions);
    model.classes = state.classes as number[];
    model.scaler = state.scaler as Standardizer;
    model.weights = state.weights as number[][];
    return model;
  }
}
