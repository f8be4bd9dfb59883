import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { jitterTile } from '../src/sampling/radiometry.ts';
import { TripletSampler } from '../src/sampling/index.ts';
import type { Normalization } from '../src/sampling/normalize.ts';
import { UserError } from '../src/errors.ts';
import { samplerRaster, syntheticRaster } from './sampling-fixtures.ts';

const norm = (method: 'zscore' | 'percentile'): Normalization => ({
  version: 1, method, bands: [1, 2], offset: [0, 0], scale: [1, 1], clip: method === 'percentile' ? [0, 1] : null, fill: 0, rasterIds: [1],
});

describe('radiometric jitter', () => {
  test('strength 0 changes nothing; the same seed gives the same tile; other seeds differ', () => {
    const tile = Float32Array.from({ length: 2 * 64 }, (_, i) => ((i * 37) % 101) / 25 - 2);
    assert.deepEqual(jitterTile(tile.slice(), norm('zscore'), { strength: 0, seed: 5 }), tile);
    const a = jitterTile(tile.slice(), norm('zscore'), { strength: 0.3, seed: 5 });
    const b = jitterTile(tile.slice(), norm('zscore'), { strength: 0.3, seed: 5 });
    const c = jitterTile(tile.slice(), norm('zscore'), { strength: 0.3, seed: 6 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    assert.ok(a.every(Number.isFinite));
  });

  test('each band is one increasing map of its values, so the order of pixels within a band survives', () => {
    const tile = Float32Array.from({ length: 2 * 200 }, (_, i) => Math.sin(i * 1.7) * 3);
    for (const method of ['zscore', 'percentile'] as const) {
      const input = method === 'percentile' ? tile.map((v) => (v + 3) / 6) : tile;
      const out = jitterTile(input.slice(), norm(method), { strength: 0.5, seed: 11 });
      for (let b = 0; b < 2; b++) {
        const pairs = [...Array(200).keys()].map((p) => [input[p * 2 + b], out[p * 2 + b]]).sort((x, y) => x[0] - y[0]);
        for (let k = 1; k < pairs.length; k++) assert.ok(pairs[k][1] >= pairs[k - 1][1] - 1e-6, `${method} band ${b} not monotone at ${k}`);
      }
    }
  });

  test('gains, offsets and gammas spread with the strength, band by band (1000 draws)', () => {
    // A pixel at z = 0 measures gain * (-2 + 4 * 0.5^gamma) + offset; at strength 0.2 its spread is about 0.2 and its mean near 0.
    const values = Array.from({ length: 1000 }, (_, seed) => jitterTile(new Float32Array([0, 0.5]), norm('zscore'), { strength: 0.2, seed: seed + 1 }));
    const first = values.map((v) => v[0]);
    const mean = first.reduce((s, v) => s + v, 0) / first.length;
    const sd = Math.sqrt(first.reduce((s, v) => s + (v - mean) ** 2, 0) / first.length);
    assert.ok(Math.abs(mean) < 0.05, `mean ${mean}`);
    assert.ok(sd > 0.15 && sd < 0.35, `sd ${sd}`);
    const correlation = values.filter((v) => (v[0] > 0) === (v[1] > 0.5)).length / values.length;
    assert.ok(correlation < 0.7, `bands move together ${correlation}`);
    // Gamma keeps the ends of the range (z = -2 and 2), so their gap is 4 x gain: log gain has mean 0 and sd 0.2.
    const logGains = Array.from({ length: 1000 }, (_, seed) => {
      const out = jitterTile(new Float32Array([-2, -2, 2, 2]), norm('zscore'), { strength: 0.2, seed: seed + 1 });
      return Math.log((out[2] - out[0]) / 4);
    });
    const gainMean = logGains.reduce((sum, v) => sum + v, 0) / logGains.length;
    const gainSd = Math.sqrt(logGains.reduce((sum, v) => sum + (v - gainMean) ** 2, 0) / logGains.length);
    assert.ok(Math.abs(gainMean) < 0.03, `log-gain mean ${gainMean}`);
    assert.ok(Math.abs(gainSd - 0.2) < 0.03, `log-gain sd ${gainSd}`);
  });

  test('nodata pixels (fill in every band) stay fill', () => {
    const out = jitterTile(new Float32Array([0, 0, 1, 1]), norm('zscore'), { strength: 1, seed: 3 });
    assert.deepEqual([...out.slice(0, 2)], [0, 0]);
    assert.notDeepEqual([...out.slice(2)], [1, 1]);
  });

  test('the sampler draws one seed per tile; bad strengths are one clear error', () => {
    const raster = samplerRaster(syntheticRaster(1, 100, 100, 1), 5);
    const opts = { tileSize: 8, crossRasterProbability: 0, maxNodataFraction: 0, augment: true, seed: 3 };
    const [t] = new TripletSampler([raster], { ...opts, radiometricJitter: 0.2 }).take(1);
    assert.equal(t.anchor.jitter?.strength, 0.2);
    assert.notEqual(t.anchor.jitter?.seed, t.neighbor.jitter?.seed);
    assert.equal(new TripletSampler([raster], opts).take(1)[0].anchor.jitter, undefined);
    assert.throws(() => new TripletSampler([raster], { ...opts, radiometricJitter: -1 }), (e: unknown) => e instanceof UserError && /jitter must be between 0 and 2, got -1/.test(e.message));
  });
});
