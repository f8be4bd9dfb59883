import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { augmentTile, createTripletSampling, MemoryRaster, normalizationForRaster, normalizationFromStats, normalizeTile, parseNormalization, type Augmentation } from '../src/sampling/index.ts';
import { exactStats, recordOf, syntheticRaster } from './sampling-fixtures.ts';

describe('normalization', () => {
  const stats = (band: number, count: number, mean: number, std: number, p2: number, p98: number) => ({ band, count, min: 0, max: 0, mean, std, p2, p98 });

  test('z-score and percentile numbers from the stored statistics, pooled across rasters', () => {
    const a = { id: 1, label: 'a', bandStats: [stats(1, 100, 10, 2, 6, 14), stats(2, 100, 0, 1, -2, 2)] };
    const b = { id: 2, label: 'b', bandStats: [stats(1, 300, 20, 4, 12, 28), stats(2, 300, 0, 1, -2, 2)] };
    const z = normalizationFromStats([a, b], [1], 'zscore');
    // Pooled: mean (100*10 + 300*20)/400 = 17.5; variance (100*(4 + 56.25) + 300*(16 + 6.25))/400 = 31.75.
    assert.equal(z.offset[0], 17.5);
    assert.ok(Math.abs(z.scale[0] - Math.sqrt(31.75)) < 1e-12);
    assert.equal(z.clip, null);
    const p = normalizationFromStats([a, b], [2, 1], 'percentile');
    assert.deepEqual(p.bands, [2, 1]);
    assert.deepEqual(p.offset, [-2, 10.5]);
    assert.deepEqual(p.scale, [4, 24.5 - 10.5]);
    assert.deepEqual(p.clip, [0, 1]);
    assert.deepEqual(parseNormalization(JSON.parse(JSON.stringify(p))), p);
    assert.throws(() => parseNormalization({ ...p, scale: [1] }), /no valid normalization/);
    assert.throws(() => normalizationFromStats([a], [3], 'zscore'), /no stored statistics for band 3/);
  });

  test('normalizeTile: scales, clips, fills nodata pixels and NaN samples', () => {
    const n = normalizationFromStats([{ id: 1, label: 'a', bandStats: [stats(1, 10, 0, 1, 10, 20), stats(2, 10, 0, 1, 0, 100)] }], [1, 2], 'percentile');
    const raw = Float32Array.from([15, 50, /* nodata in both bands */ 0, 0, /* valid: only one band is 0 */ 0, 25, 30, NaN, 5, 200]);
    const out = normalizeTile(raw, n, 0);
    assert.deepEqual(Array.from(out), [0.5, 0.5, 0, 0, 0, 0.25, 1, 0, 0, 1]);
    const z = normalizationFromStats([{ id: 1, label: 'a', bandStats: [stats(1, 10, 100, 20, 0, 0)] }], [1], 'zscore');
    assert.deepEqual(Array.from(normalizeTile(Float32Array.from([140, 60, 65535]), z, 65535)), [2, -2, 0]);
  });
});

describe('per-raster normalization', () => {
  test('two dates that differ by a gain and an offset give the same model inputs; pooled statistics do not', async () => {
    const a = syntheticRaster(1, 64, 64, 2);
    const b = new MemoryRaster(2, 64, 64, 2, a.data.map((v) => (v === a.nodata ? v : 3 * v + 40)), a.nodata);
    const inputs = [a, b].map((r) => ({ record: recordOf(r), source: r }));
    const window = { x: 8, y: 8, w: 16, h: 16 };
    const read = async (scope: 'pooled' | 'raster') => {
      const s = await createTripletSampling(inputs, { tileSize: 16, normalization: 'zscore', normalizationScope: scope, crossRasterProbability: 0 });
      assert.equal(s.params.normalizationScope, scope);
      return Promise.all([1, 2].map((rasterId) => s.dataset.readTile({ rasterId, window, augment: { flipH: false, flipV: false, rot90: 0 } })));
    };
    const [ra, rb] = await read('raster');
    assert.ok(ra.every((v, i) => Math.abs(v - rb[i]) < 1e-4), 'per-raster inputs differ');
    // Each raster's own z-scores, computed independently from its pixels.
    const own = exactStats(b);
    const i = (12 * 64 + 9) * 2 + 1;
    assert.ok(Math.abs(rb[(4 * 16 + 1) * 2 + 1] - (b.data[i] - own[1].mean) / own[1].std) < 1e-4);
    const [pa, pb] = await read('pooled');
    assert.ok(pa.some((v, k) => Math.abs(v - pb[k]) > 0.5), 'pooled inputs should keep the gain');
  });

  test('the scope survives the model card; a pooled normalization is the same for every raster', () => {
    const stats = (id: number, mean: number) => ({ id, label: `r${id}`, bandStats: [{ band: 1, count: 10, min: 0, max: 0, mean, std: 2, p2: 0, p98: 1 }] });
    const pooled = normalizationFromStats([stats(1, 10), stats(2, 20)], [1], 'zscore');
    const perRaster = normalizationFromStats([stats(1, 10), stats(2, 20)], [1], 'zscore', 'raster');
    assert.equal(pooled.scope, undefined);
    assert.deepEqual(parseNormalization(JSON.parse(JSON.stringify(perRaster))), perRaster);
    assert.throws(() => parseNormalization({ ...perRaster, scope: 'tile' }), /no valid normalization/);
    assert.equal(normalizationForRaster(pooled, stats(3, 99)), pooled);
    assert.deepEqual(normalizationForRaster(perRaster, stats(3, 99)).offset, [99]);
  });
});

describe('augmentation', () => {
  /** A 3x3 tile with 2 bands: band 0 = index, band 1 = -index. */
  const tile = Float32Array.from(Array.from({ length: 9 }, (_, i) => [i, -i]).flat());
  const band0 = (t: Float32Array) => Array.from({ length: 9 }, (_, i) => t[i * 2]);

  test('flips and quarter turns move pixels as expected, bands stay together', () => {
    assert.deepEqual(band0(augmentTile(tile, 3, 2, { flipH: true, flipV: false, rot90: 0 })), [2, 1, 0, 5, 4, 3, 8, 7, 6]);
    assert.deepEqual(band0(augmentTile(tile, 3, 2, { flipH: false, flipV: true, rot90: 0 })), [6, 7, 8, 3, 4, 5, 0, 1, 2]);
    // Counter-clockwise: the top row (0 1 2) becomes the left column read upward.
    assert.deepEqual(band0(augmentTile(tile, 3, 2, { flipH: false, flipV: false, rot90: 1 })), [2, 5, 8, 1, 4, 7, 0, 3, 6]);
    const out = augmentTile(tile, 3, 2, { flipH: true, flipV: true, rot90: 3 });
    for (let p = 0; p < 9; p++) assert.equal(out[p * 2 + 1], -out[p * 2]);
  });

  test('every augmentation is a permutation; four quarter turns are the identity', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.boolean(), fc.constantFrom(0, 1, 2, 3), fc.integer({ min: 1, max: 9 }), (flipH, flipV, rot90, size) => {
        const t = Float32Array.from({ length: size * size }, (_, i) => i);
        const a: Augmentation = { flipH, flipV, rot90: rot90 as Augmentation['rot90'] };
        const out = augmentTile(t, size, 1, a);
        assert.deepEqual(Array.from(out).sort((x, y) => x - y), Array.from(t));
        let turned = out;
        for (let k = 0; k < 4; k++) turned = augmentTile(turned, size, 1, { flipH: false, flipV: false, rot90: 1 });
        assert.deepEqual(turned, out);
      }),
    );
  });
});

describe('dataset and prefetching loader', () => {
  const rasters = [syntheticRaster(1, 120, 100, 3, [{ x: 0, y: 0, w: 10, h: 100 }]), syntheticRaster(2, 90, 110, 3)];
  const open = (params: Parameters<typeof createTripletSampling>[1]) => createTripletSampling(rasters.map((r) => ({ record: recordOf(r), source: r })), params);

  test('tensors are the windows normalized with the stored statistics, computed independently', async () => {
    // The two rasters share a grid, so pooled statistics are asked for: a stack would default to per-date ones.
    const s = await open({ tileSize: 16, neighborhood: 6, augment: false, seed: 5, maxNodataFraction: 0.2, bands: [3, 1], normalizationScope: 'pooled' });
    const statsByRaster = new Map(rasters.map((r) => [r.id, exactStats(r)]));
    const n = [3, 1].map((band) => {
      let count = 0;
      let low = 0;
      let high = 0;
      for (const st of statsByRaster.values()) {
        const b = st[band - 1];
        count += b.count;
        low += b.count * b.p2;
        high += b.count * b.p98;
      }
      return { low: low / count, high: high / count };
    });
    for (const t of s.sampler.take(10)) {
      const tensors = await s.dataset.readTriplet(t);
      const r = rasters.find((x) => x.id === t.anchor.rasterId)!;
      const { x, y } = t.anchor.window;
      for (let row = 0; row < 16; row++) {
        for (let col = 0; col < 16; col++) {
          const src = ((y + row) * r.width + x + col) * 3;
          [3, 1].forEach((band, c) => {
            const rawValue = r.data[src + band - 1];
            const expected = rawValue === 0 ? 0 : Math.min(1, Math.max(0, (rawValue - n[c].low) / (n[c].high - n[c].low)));
            assert.ok(Math.abs(tensors.anchor[(row * 16 + col) * 2 + c] - expected) < 1e-5);
          });
        }
      }
    }
  });

  test('batches come out [batch, tile, tile, bands], the same with or without prefetch, and resume from a checkpoint', async () => {
    const params = { tileSize: 16, neighborhood: 6, seed: 11, maxNodataFraction: 0.2 };
    const a = await open(params);
    const prefetched = [];
    for await (const batch of a.loader({ batchSize: 8, prefetch: 3, batches: 5 })) prefetched.push(batch);
    assert.equal(prefetched.length, 5);
    assert.deepEqual(prefetched[0].shape, [8, 16, 16, 3]);
    assert.equal(prefetched[0].anchor.length, 8 * 16 * 16 * 3);
    assert.ok(prefetched.every((b) => b.anchor.every(Number.isFinite)));

    const b = await open(params);
    const plain = [];
    for await (const batch of b.loader({ batchSize: 8, prefetch: 0, batches: 5 })) plain.push(batch);
    assert.deepEqual(plain.map((x) => x.anchor), prefetched.map((x) => x.anchor));
    assert.deepEqual(plain.map((x) => x.distant), prefetched.map((x) => x.distant));

    // Checkpoint after batch 2 and resume in a fresh sampling: batches 3 and 4 come back identical.
    const c = await open({ ...params, rngState: JSON.parse(JSON.stringify(prefetched[1].rngState)) });
    const resumed = [];
    for await (const batch of c.loader({ batchSize: 8, prefetch: 2, batches: 3 })) resumed.push(batch);
    assert.deepEqual(resumed.map((x) => x.triplets), prefetched.slice(2).map((x) => x.triplets));
    assert.deepEqual(resumed.map((x) => x.neighbor), prefetched.slice(2).map((x) => x.neighbor));
  });

  test('a failed read surfaces when its batch is awaited', async () => {
    const s = await open({ tileSize: 16, neighborhood: 6, seed: 1 });
    const source = s.dataset.source(1);
    source.readWindow = async () => {
      throw new Error('disk on fire');
    };
    const loader = s.loader({ batchSize: 64, prefetch: 2 });
    await assert.rejects(loader.next(), /disk on fire/);
  });
});
