import { z } from 'zod';
import { BaseClassifier, checkTrainingData, classesSchema, encodeLabels, parseState, type FeatureRow } from './classifier.ts';
import { uniform } from '../rng.ts';

export interface RandomForestOptions {
  trees?: number;
  seed?: number;
  /** Unlimited when absent. */
  maxDepth?: number;
  minSamplesLeaf?: number;
}

/** One tree in flat arrays; `feature[i] < 0` marks a leaf whose class distribution is `proba[i]`. */
interface Tree {
  feature: number[];
  threshold: number[];
  left: number[];
  right: number[];
  proba: (number[] | null)[];
}

/**
 * Random forest: bootstrap samples, Gini splits over sqrt(d) randomly chosen features per node, probabilities
 * averaged over trees. Seeded, so the same data and seed give the same forest.
 */
export class RandomForest extends BaseClassifier {
  readonly kind = 'rf' as const;
  private trees: Tree[] = [];

  constructor(readonly options: RandomForestOptions = {}) {
    super();
  }

  fit(rows: readonly FeatureRow[], labels: readonly number[]): this {
    checkTrainingData(rows, labels);
    const { classes, index } = encodeLabels(labels);
    this.classes = classes;
    const n = rows.length;
    const d = rows[0].length;
    // Column-major copy: split search scans one feature across many rows.
    const columns = Array.from({ length: d }, (_, j) => Float64Array.from(rows, (r) => r[j]));
    const random = uniform(this.options.seed ?? 1);
    const treeCount = this.options.trees ?? 100;
    this.trees = [];
    for (let t = 0; t < treeCount; t++) {
      const sample = Int32Array.from({ length: n }, () => Math.floor(random() * n));
      this.trees.push(growTree(columns, index, classes.length, sample, random, {
        mtry: Math.max(1, Math.round(Math.sqrt(d))),
        maxDepth: this.options.maxDepth ?? Infinity,
        minSamplesLeaf: this.options.minSamplesLeaf ?? 1,
      }));
    }
    return this;
  }

  predictProba(rows: readonly FeatureRow[]): Float64Array[] {
    return rows.map((r) => {
      const p = new Float64Array(this.classes.length);
      for (const tree of this.trees) {
        let node = 0;
        while (tree.feature[node] >= 0) node = r[tree.feature[node]] <= tree.threshold[node] ? tree.left[node] : tree.right[node];
        const leaf = tree.proba[node]!;
        for (let c = 0; c < p.length; c++) p[c] += leaf[c] / this.trees.length;
      }
      return p;
    });
  }

  toJSON(): Record<string, unknown> {
    return { options: this.options, classes: this.classes, trees: this.trees };
  }

  /** A fitted forest from `toJSON`'s state over `dim` features; throws naming what is wrong with a damaged one. */
  static fromJSON(state: unknown, dim: number): RandomForest {
    const tree = z.object({
      feature: z.array(z.number().int().max(dim - 1)).min(1),
      threshold: z.array(z.number()),
      left: z.array(z.number().int()),
      right: z.array(z.number().int()),
      proba: z.array(z.array(z.number().min(0).max(1)).nullable()),
    });
    const s = parseState(z.object({
      // maxDepth: Infinity (unlimited) is null in JSON.
      options: z.object({ trees: z.number().int().min(1).optional(), seed: z.number().optional(), maxDepth: z.number().nullable().optional(), minSamplesLeaf: z.number().int().min(1).optional() }),
      classes: classesSchema,
      trees: z.array(tree).min(1),
    }).superRefine((s, ctx) => {
      for (const [t, tr] of s.trees.entries()) {
        const n = tr.feature.length;
        if (![tr.threshold, tr.left, tr.right, tr.proba].every((a) => a.length === n)) {
          ctx.addIssue({ code: 'custom', message: 'node arrays of different lengths', path: ['trees', t] });
          continue;
        }
        for (let i = 0; i < n; i++) {
          // Children come after their parent, so prediction always reaches a leaf.
          const split = tr.feature[i] >= 0;
          if (split && !(tr.left[i] > i && tr.left[i] < n && tr.right[i] > i && tr.right[i] < n)) {
            ctx.addIssue({ code: 'custom', message: `node ${i}'s children ${tr.left[i]} and ${tr.right[i]} are not later nodes of the tree`, path: ['trees', t] });
            break;
          }
          if (!split && tr.proba[i]?.length !== s.classes.length) {
            ctx.addIssue({ code: 'custom', message: `leaf ${i} has no probability for each of the ${s.classes.length} classes`, path: ['trees', t] });
            break;
          }
        }
      }
    }), state);
    const model = new RandomForest({ ...s.options, maxDepth: s.options.maxDepth ?? undefined });
    model.classes = s.classes;
    model.trees = s.trees;
    return model;
  }
}

interface GrowOptions {
  mtry: number;
  maxDepth: number;
  minSamplesLeaf: number;
}

function growTree(columns: Float64Array[], y: Int32Array, k: number, sample: Int32Array, random: () => number, opts: GrowOptions): Tree {
  const tree: Tree = { feature: [], threshold: [], left: [], right: [], proba: [] };
  const stack: { node: number; rows: Int32Array; depth: number }[] = [];
  const addNode = (rows: Int32Array, depth: number): number => {
    const id = tree.feature.length;
    tree.feature.push(-1);
    tree.threshold.push(0);
    tree.left.push(-1);
    tree.right.push(-1);
    tree.proba.push(null);
    stack.push({ node: id, rows, depth });
    return id;
  };
  addNode(sample, 0);
  const counts = new Float64Array(k);
  while (stack.length) {
    const { node, rows, depth } = stack.pop()!;
    counts.fill(0);
    for (const i of rows) counts[y[i]]++;
    const pure = counts.some((c) => c === rows.length);
    const split = pure || depth >= opts.maxDepth || rows.length < 2 * opts.minSamplesLeaf ? null : bestSplit(columns, y, k, rows, random, opts);
    if (!split) {
      tree.proba[node] = Array.from(counts, (c) => c / rows.length);
      continue;
    }
    const column = columns[split.feature];
    const leftRows = rows.filter((i) => column[i] <= split.threshold);
    const rightRows = rows.filter((i) => column[i] > split.threshold);
    tree.feature[node] = split.feature;
    tree.threshold[node] = split.threshold;
    tree.left[node] = addNode(leftRows, depth + 1);
    tree.right[node] = addNode(rightRows, depth + 1);
  }
  return tree;
}

/** The Gini-best threshold over `mtry` random features, or null when no feature separates the rows. */
function bestSplit(columns: Float64Array[], y: Int32Array, k: number, rows: Int32Array, random: () => number, opts: GrowOptions) {
  const n = rows.length;
  const total = new Float64Array(k);
  for (const i of rows) total[y[i]]++;
  const left = new Float64Array(k);
  const candidates = Array.from(columns.keys());
  let best: { feature: number; threshold: number; score: number } | null = null;
  const order = new Int32Array(n);
  for (let f = 0; f < opts.mtry && f < candidates.length; f++) {
    // Partial Fisher-Yates: draw features without replacement.
    const pick = f + Math.floor(random() * (candidates.length - f));
    [candidates[f], candidates[pick]] = [candidates[pick], candidates[f]];
    const column = columns[candidates[f]];
    order.set(rows);
    order.sort((a, b) => column[a] - column[b]);
    left.fill(0);
    let leftSq = 0;
    let rightSq = 0;
    for (let c = 0; c < k; c++) rightSq += total[c] * total[c];
    for (let s = 0; s < n - 1; s++) {
      const c = y[order[s]];
      // Update sums of squared class counts incrementally: Gini = 1 - sumSq / size^2.
      leftSq += 2 * left[c] + 1;
      rightSq -= 2 * (total[c] - left[c]) - 1;
      left[c]++;
      const a = column[order[s]];
      const b = column[order[s + 1]];
      const nl = s + 1;
      if (a === b || nl < opts.minSamplesLeaf || n - nl < opts.minSamplesLeaf) continue;
      // Weighted impurity up to constants: minimise -(leftSq/nl + rightSq/nr).
      const score = -(leftSq / nl + rightSq / (n - nl));
      if (!best || score < best.score - 1e-12) best = { feature: candidates[f], threshold: (a + b) / 2, score };
    }
  }
  return best;
}
