import { z } from 'zod';
import { BaseClassifier, checkTrainingData, classesSchema, encodeLabels, parseState, standardizerSchema, type FeatureRow } from './classifier.ts';
import { fitStandardizer, standardize, type Standardizer } from './standardizer.ts';

export interface KNearestNeighborsOptions {
  k?: number;
}

/** k-nearest neighbours by Euclidean distance on standardised features; probabilities are vote shares. */
export class KNearestNeighbors extends BaseClassifier {
  readonly kind = 'knn' as const;
  private scaler: Standardizer = { mean: [], std: [] };
  private points: Float64Array[] = [];
  private pointClass: Int32Array = new Int32Array(0);

  constructor(readonly options: KNearestNeighborsOptions = {}) {
    super();
  }

  fit(rows: readonly FeatureRow[], labels: readonly number[]): this {
    checkTrainingData(rows, labels);
    const { classes, index } = encodeLabels(labels);
    this.classes = classes;
    this.scaler = fitStandardizer(rows);
    this.points = rows.map((r) => standardize(this.scaler, r));
    this.pointClass = index;
    return this;
  }

  predictProba(rows: readonly FeatureRow[]): Float64Array[] {
    const k = Math.min(this.options.k ?? 5, this.points.length);
    return rows.map((r) => {
      const q = standardize(this.scaler, r);
      // Keep the k nearest in a small sorted list; ties keep the earlier training row.
      const nearest: { dist: number; cls: number }[] = [];
      for (let i = 0; i < this.points.length; i++) {
        const p = this.points[i];
        let dist = 0;
        for (let j = 0; j < q.length; j++) dist += (p[j] - q[j]) ** 2;
        if (nearest.length === k && dist >= nearest[k - 1].dist) continue;
        let at = nearest.length;
        while (at > 0 && nearest[at - 1].dist > dist) at--;
        nearest.splice(at, 0, { dist, cls: this.pointClass[i] });
        if (nearest.length > k) nearest.pop();
      }
      const proba = new Float64Array(this.classes.length);
      for (const n of nearest) proba[n.cls] += 1 / k;
      return proba;
    });
  }

  toJSON(): Record<string, unknown> {
    return { options: this.options, classes: this.classes, scaler: this.scaler, points: this.points.map((p) => Array.from(p)), pointClass: Array.from(this.pointClass) };
  }

  /** A fitted model from `toJSON`'s state over `dim` features; throws naming what is wrong with a damaged one. */
  static fromJSON(state: unknown, dim: number): KNearestNeighbors {
    const s = parseState(z.object({
      options: z.object({ k: z.number().int().min(1).optional() }),
      classes: classesSchema,
      scaler: standardizerSchema(dim),
      points: z.array(z.array(z.number()).length(dim)).min(1),
      pointClass: z.array(z.number().int().min(0)),
    }).superRefine((s, ctx) => {
      if (s.pointClass.length !== s.points.length) ctx.addIssue({ code: 'custom', message: `${s.pointClass.length} point classes for ${s.points.length} points`, path: ['pointClass'] });
      const bad = s.pointClass.findIndex((c) => c >= s.classes.length);
      if (bad >= 0) ctx.addIssue({ code: 'custom', message: `class index ${s.pointClass[bad]} of ${s.classes.length} classes`, path: ['pointClass', bad] });
    }), state);
    const model = new KNearestNeighbors(s.options);
    model.classes = s.classes;
    model.scaler = s.scaler;
    model.points = s.points.map((p) => Float64Array.from(p));
    model.pointClass = Int32Array.from(s.pointClass);
    return model;
  }
}
