/** Per-feature mean and standard deviation, so L2 penalties and distances weigh every feature alike. */
export interface Standardizer {
  mean: number[];
  std: number[];
}

export function fitStandardizer(rows: readonly ArrayLike<number>[]): Standardizer {
  const d = rows[0]?.length ?? 0;
  const mean = new Array<number>(d).fill(0);
  const sq = new Array<number>(d).fill(0);
  for (const r of rows) for (let j = 0; j < d; j++) mean[j] += r[j];
  for (let j = 0; j < d; j++) mean[j] /= Math.max(1, rows.length);
  for (const r of rows) for (let j = 0; j < d; j++) sq[j] += (r[j] - mean[j]) ** 2;
  // A constant feature keeps std 1 rather than dividing by zero.
  const std = sq.map((s) => Math.sqrt(s / Math.max(1, rows.length)) || 1);
  return { mean, std };
}

export function standardize(s: Standardizer, row: ArrayLike<number>): Float64Array {
  const out = new Float64Array(s.mean.length);
  for (let j = 0; j < out.length; j++) out[j] = (row[j] - s.mean[j]) / s.std[j];
  return out;
}
