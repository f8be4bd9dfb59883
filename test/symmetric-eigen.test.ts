import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { GDAL_PY, gdalMissing } from './helpers.ts';
import { symmetricEigen } from '../src/classify/symmetric-eigen.ts';
import { uniform } from '../src/rng.ts';


/** numpy's eigenvalues (LAPACK syevd), descending. */
function numpyEigenvalues(m: Float64Array, n: number): number[] {
  return JSON.parse(execFileSync(GDAL_PY, ['-c', `
import json, sys, numpy
m = numpy.array(json.load(sys.stdin)).reshape(${n}, ${n})
print(json.dumps(sorted(numpy.linalg.eigvalsh(m).tolist(), reverse=True)))
`], { input: JSON.stringify(Array.from(m)), encoding: 'utf8' }));
}

test('eigenvalues equal numpy\'s at every scale, in a few sweeps, and the vectors diagonalise the matrix', { skip: gdalMissing() }, () => {
  const n = 24;
  const r = uniform(3);
  // A covariance-like matrix: B Bᵀ of a random B.
  const b = Float64Array.from({ length: n * n }, () => r() - 0.5);
  const base = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) base[i * n + j] += b[i * n + k] * b[j * n + k];
  // 1e8: raw 16-bit pixels' covariance, where the absolute bound never stopped; 1e-14: where it stopped at once.
  for (const scale of [1e-14, 1, 1e8]) {
    const m = base.map((v) => v * scale);
    const { values, vectors, sweeps } = symmetricEigen(m, n);
    assert.ok(sweeps < 20, `scale ${scale}: ${sweeps} sweeps`);
    const ref = numpyEigenvalues(m, n);
    const top = ref[0];
    values.forEach((v, i) => assert.ok(Math.abs(v - ref[i]) <= 1e-12 * top, `scale ${scale}: eigenvalue ${i} ${v} vs ${ref[i]}`));
    for (const [i, u] of vectors.entries()) {
      // M u = λ u
      for (let row = 0; row < n; row++) {
        let mu = 0;
        for (let k = 0; k < n; k++) mu += m[row * n + k] * u[k];
        assert.ok(Math.abs(mu - values[i] * u[row]) <= 1e-10 * top, `scale ${scale}: vector ${i} row ${row}`);
      }
    }
  }
  assert.deepEqual(symmetricEigen(new Float64Array(9), 3).values, [0, 0, 0]);
});
