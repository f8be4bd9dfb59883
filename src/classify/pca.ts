import { uniform } from '../rng.ts';
import { symmetricEigen } from './symmetric-eigen.ts';

export interface Pca {
  mean: Float64Array;
  /** Unit principal axes, strongest first. */
  components: Float64Array[];
  /** Variance along each axis. */
  variance: number[];
}

/**
 * The top `k` principal components. Raw tile pixels have thousands of dimensions, so this never forms the d×d
 * covariance: it runs a few rounds of randomised subspace iteration on the centred data, then solves the small
 * eigenproblem inside that subspace (Rayleigh-Ritz). Seeded, so it is deterministic.
 */
export function fitPca(rows: readonly ArrayLike<number>[], k: number, opts: { iterations?: number; seed?: number } = {}): Pca {
  const n = rows.length;
  const d = rows[0].length;
  const mean = new Float64Array(d);
  for (const r of rows) for (let j = 0; j < d; j++) mean[j] += r[j] / n;
  const x = new Float64Array(n * d);
  rows.forEach((r, i) => {
    for (let j = 0; j < d; j++) x[i * d + j] = r[j] - mean[j];
  });
  const rank = Math.min(k, d, n);
  const width = Math.min(d, rank + 10);
  let basis: Float64Array[];
  if (width === d) {
    basis = Array.from({ length: d }, (_, i) => Float64Array.from({ length: d }, (_, j) => (i === j ? 1 : 0)));
  } else {
    const random = uniform(opts.seed ?? 7);
    basis = orthonormalize(Array.from({ length: width }, () => Float64Array.from({ length: d }, () => random() - 0.5)));
    for (let it = 0; it < (opts.iterations ?? 4); it++) basis = orthonormalize(basis.map((q) => times(x, n, d, timesVector(x, n, d, q))));
  }
  // Project onto the basis, then diagonalise the projected covariance.
  const projected = basis.map((q) => timesVector(x, n, d, q));
  const l = basis.length;
  const cov = new Float64Array(l * l);
  for (let a = 0; a < l; a++) {
    for (let b = a; b < l; b++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += projected[a][i] * projected[b][i];
      cov[a * l + b] = cov[b * l + a] = s / Math.max(1, n - 1);
    }
  }
  const { values, vectors } = symmetricEigen(cov, l);
  const components = vectors.slice(0, rank).map((w) => {
    const axis = new Float64Array(d);
    for (let a = 0; a < l; a++) for (let j = 0; j < d; j++) axis[j] += w[a] * basis[a][j];
    return axis;
  });
  return { mean, components, variance: values.slice(0, rank) };
}

export function pcaTransform(pca: Pca, row: ArrayLike<number>): Float32Array {
  return Float32Array.from(pca.components, (axis) => {
    let s = 0;
    for (let j = 0; j < axis.length; j++) s += (row[j] - pca.mean[j]) * axis[j];
    return s;
  });
}

/** x·q for row-major x (n×d): one value per row. */
function timesVector(x: Float64Array, n: number, d: number, q: Float64Array): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0, o = i * d; j < d; j++) s += x[o + j] * q[j];
    out[i] = s;
  }
  return out;
}

/** xᵀ·y: one value per column. */
function times(x: Float64Array, n: number, d: number, y: Float64Array): Float64Array {
  const out = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    const yi = y[i];
    if (yi === 0) continue;
    for (let j = 0, o = i * d; j < d; j++) out[j] += x[o + j] * yi;
  }
  return out;
}

/** Gram-Schmidt, twice for stability; vectors that collapse to zero (dependent ones) are dropped. */
function orthonormalize(vectors: Float64Array[]): Float64Array[] {
  const out: Float64Array[] = [];
  for (const v of vectors) {
    const u = Float64Array.from(v);
    for (let pass = 0; pass < 2; pass++) {
      for (const b of out) {
        let dot = 0;
        for (let j = 0; j < u.length; j++) dot += u[j] * b[j];
        for (let j = 0; j < u.length; j++) u[j] -= dot * b[j];
      }
    }
    let norm = 0;
    for (let j = 0; j < u.length; j++) norm += u[j] * u[j];
    norm = Math.sqrt(norm);
    if (norm > 1e-12) {
      for (let j = 0; j < u.length; j++) u[j] /= norm;
      out.push(u);
    }
  }
  return out;
}
