import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createTripletSampling, Rng, TripletSampler, type Triplet } from '../src/sampling/index.ts';
import { UserError } from '../src/errors.ts';
import { nodataFlags, nodataShare, recordOf, samplerRaster, syntheticRaster, type Hole } from './sampling-fixtures.ts';

const centre = (w: { x: number; y: number; w: number; h: number }) => ({ x: w.x + w.w / 2, y: w.y + w.h / 2 });

describe('sampler geometry (properties)', () => {
  const scenario = fc.record({
    tileSize: fc.integer({ min: 4, max: 24 }),
    radius: fc.integer({ min: 1, max: 12 }),
    p: fc.double({ min: 0, max: 1, noNaN: true }),
    maxNodata: fc.constantFrom(0, 0.05, 0.25, 0.5),
    seed: fc.integer(),
    hole: fc.record({ x: fc.integer({ min: 0, max: 60 }), y: fc.integer({ min: 0, max: 60 }), w: fc.integer({ min: 1, max: 40 }), h: fc.integer({ min: 1, max: 40 }) }),
  });

  test('neighbors lie within the radius, same-raster distant tiles beyond it on both axes, nodata never above the limit', () => {
    fc.assert(
      fc.property(scenario, ({ tileSize, radius, p, maxNodata, seed, hole }) => {
        const size = tileSize + 2 * radius + 30;
        const rasters = [syntheticRaster(1, size + 20, size, 1, [hole as Hole]), syntheticRaster(2, size, size + 10, 1, [{ x: 0, y: 0, w: 8, h: size }])];
        const flags = new Map(rasters.map((r) => [r.id, nodataFlags(r)]));
        const widths = new Map(rasters.map((r) => [r.id, r.width]));
        const heights = new Map(rasters.map((r) => [r.id, r.height]));
        const sampler = new TripletSampler(rasters.map((r) => samplerRaster(r, radius)), { tileSize, crossRasterProbability: p, maxNodataFraction: maxNodata, augment: true, seed });
        for (const t of sampler.take(40)) {
          const a = centre(t.anchor.window);
          const n = centre(t.neighbor.window);
          const d = centre(t.distant.window);
          assert.equal(t.neighbor.rasterId, t.anchor.rasterId);
          assert.ok(Math.abs(n.x - a.x) <= radius && Math.abs(n.y - a.y) <= radius, `neighbor offset ${n.x - a.x},${n.y - a.y} beyond ${radius}`);
          if (t.distantFrom === 'same-raster') {
            assert.equal(t.distant.rasterId, t.anchor.rasterId);
            assert.ok(Math.abs(d.x - a.x) > radius && Math.abs(d.y - a.y) > radius, `same-raster distant offset ${d.x - a.x},${d.y - a.y} within ${radius}`);
          } else {
            assert.notEqual(t.distant.rasterId, t.anchor.rasterId);
          }
          for (const tile of [t.anchor, t.neighbor, t.distant]) {
            const w = tile.window;
            assert.ok(w.w === tileSize && w.h === tileSize && w.x >= 0 && w.y >= 0);
            assert.ok(w.x + w.w <= widths.get(tile.rasterId)! && w.y + w.h <= heights.get(tile.rasterId)!, 'window leaves the raster');
            const share = nodataShare(flags.get(tile.rasterId)!, widths.get(tile.rasterId)!, w);
            assert.ok(share <= maxNodata, `tile nodata share ${share} above ${maxNodata}`);
          }
        }
      }),
      { numRuns: 60 },
    );
  });

  test('the same seed gives identical triplets; other seeds differ', () => {
    const rasters = [syntheticRaster(1, 200, 150), syntheticRaster(2, 120, 180)];
    const make = (seed: number | string) => new TripletSampler(rasters.map((r) => samplerRaster(r, 10)), { tileSize: 16, crossRasterProbability: 0.4, maxNodataFraction: 0.1, augment: true, seed });
    fc.assert(
      fc.property(fc.integer(), fc.integer(), (s1, s2) => {
        fc.pre(s1 !== s2);
        const first = make(s1).take(20);
        assert.deepEqual(make(s1).take(20), first);
        assert.notDeepEqual(make(s2).take(20), first);
      }),
      { numRuns: 50 },
    );
    assert.notDeepEqual(make('1').take(5), make(1 + 2 ** 32).take(5));
  });

  test('saving and restoring the RNG state reproduces the continuation exactly', () => {
    const rasters = [syntheticRaster(1, 160, 160), syntheticRaster(2, 100, 90)];
    const make = (seed: number) => new TripletSampler(rasters.map((r) => samplerRaster(r, 8)), { tileSize: 12, crossRasterProbability: 0.5, maxNodataFraction: 0, augment: true, seed });
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 0, max: 50 }), (seed, before) => {
        const original = make(seed);
        original.take(before);
        const saved = JSON.parse(JSON.stringify(original.getState()));
        const continuation = original.take(25);
        const resumed = make(seed ^ 0x5bd1e995); // another seed: the state alone must decide the sequence
        resumed.setState(saved);
        assert.deepEqual(resumed.take(25), continuation);
      }),
      { numRuns: 50 },
    );
  });

  test('the RNG: a restored state continues the same numbers, ints stay in range', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 1, max: 1000 }), (seed, n) => {
        const a = new Rng(seed);
        for (let i = 0; i < 10; i++) a.nextUint32();
        const b = Rng.fromState(a.getState());
        for (let i = 0; i < 20; i++) {
          const v = a.int(n);
          assert.equal(b.int(n), v);
          assert.ok(v >= 0 && v < n);
        }
      }),
    );
    assert.throws(() => new Rng(1).setState({ algorithm: 'xoshiro128**', words: [0, 0, 0, 0] }), TypeError);
    assert.throws(() => new Rng(1).setState({ algorithm: 'mt19937', words: [1, 2, 3, 4] } as never), TypeError);
  });
});

describe('sampler statistics (10k draws)', () => {
  test('neighbor offsets are uniform over the square (chi-square)', () => {
    const radius = 6;
    const tileSize = 8;
    const rasters = [syntheticRaster(1, 300, 300, 1)];
    const sampler = new TripletSampler(rasters.map((r) => samplerRaster(r, radius)), { tileSize, crossRasterProbability: 0, maxNodataFraction: 0, augment: false, seed: 42 });
    const side = 2 * radius + 1;
    const counts = new Array(side * side).fill(0);
    let n = 0;
    while (n < 10_000) {
      const t = sampler.next();
      const a = t.anchor.window;
      // Near an edge the reference clips the square; away from edges the offset must cover all of it evenly.
      if (a.x < radius || a.y < radius || a.x > 300 - tileSize - radius || a.y > 300 - tileSize - radius) continue;
      counts[(t.neighbor.window.y - a.y + radius) * side + (t.neighbor.window.x - a.x + radius)]++;
      n++;
    }
    const expected = n / counts.length;
    const chi2 = counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
    const dof = counts.length - 1;
    // Wilson-Hilferty: the 99.9th percentile of chi-square with `dof` degrees of freedom.
    const critical = dof * (1 - 2 / (9 * dof) + 3.09 * Math.sqrt(2 / (9 * dof))) ** 3;
    assert.ok(chi2 < critical, `chi-square ${chi2.toFixed(1)} >= ${critical.toFixed(1)} (dof ${dof})`);
    // And the offsets are centred: no drift toward a side.
    const meanDx = counts.reduce((s, c, i) => s + c * ((i % side) - radius), 0) / n;
    assert.ok(Math.abs(meanDx) < 0.15, `mean dx ${meanDx}`);
  });

  test('the cross-raster share matches the parameter, and rasters are drawn in proportion to valid area', () => {
    const rasters = [
      syntheticRaster(1, 200, 200, 1),
      syntheticRaster(2, 200, 200, 1, [{ x: 0, y: 0, w: 100, h: 200 }]), // half nodata: half the weight
      syntheticRaster(3, 100, 100, 1),
    ];
    const p = 0.3;
    const sampler = new TripletSampler(rasters.map((r) => samplerRaster(r, 10)), { tileSize: 16, crossRasterProbability: p, maxNodataFraction: 0, augment: false, seed: 7 });
    const triplets = sampler.take(10_000);
    const cross = triplets.filter((t) => t.distantFrom === 'other-raster').length / triplets.length;
    const sigma = Math.sqrt((p * (1 - p)) / triplets.length);
    assert.ok(Math.abs(cross - p) < 4 * sigma, `cross-raster share ${cross} vs ${p}`);
    const weights = [40_000, 20_000, 10_000];
    const total = weights.reduce((s, w) => s + w, 0);
    weights.forEach((w, i) => {
      const share = triplets.filter((t) => t.anchor.rasterId === i + 1).length / triplets.length;
      const q = w / total;
      assert.ok(Math.abs(share - q) < 4 * Math.sqrt((q * (1 - q)) / triplets.length), `raster ${i + 1} anchor share ${share} vs ${q}`);
    });
  });

  test('augmentations are independent per tile and cover all flips and turns evenly', () => {
    const sampler = new TripletSampler([samplerRaster(syntheticRaster(1, 100, 100, 1), 5)], { tileSize: 8, crossRasterProbability: 0, maxNodataFraction: 0, augment: true, seed: 3 });
    const triplets: Triplet[] = sampler.take(10_000);
    const rot = [0, 0, 0, 0];
    let flipH = 0;
    let sameAsAnchor = 0;
    for (const t of triplets) {
      rot[t.anchor.augment.rot90]++;
      if (t.neighbor.augment.flipH) flipH++;
      if (JSON.stringify(t.anchor.augment) === JSON.stringify(t.neighbor.augment)) sameAsAnchor++;
    }
    for (const c of rot) assert.ok(Math.abs(c / 10_000 - 0.25) < 0.02, `rotation counts ${rot}`);
    assert.ok(Math.abs(flipH / 10_000 - 0.5) < 0.03);
    assert.ok(Math.abs(sameAsAnchor / 10_000 - 1 / 16) < 0.015, `anchor and neighbor augmentations agree ${sameAsAnchor} times`);
  });
});

describe('bad parameters give clear errors', () => {
  const make = (rasters: ReturnType<typeof syntheticRaster>[], params: Parameters<typeof createTripletSampling>[1], pixel = 30) =>
    createTripletSampling(rasters.map((r) => ({ record: recordOf(r, { pixel }), source: r })), params);

  test('a radius too small for any neighbor', async () => {
    const r = syntheticRaster(1, 100, 100);
    await assert.rejects(make([r], { tileSize: 16, neighborhood: '10m' }), (e: Error) => e instanceof UserError && /too small for any neighbor.*under 1 pixel.*30m/.test(e.message));
    await assert.rejects(make([r], { tileSize: 16, neighborhood: 0 }), (e: Error) => e instanceof UserError && /too small for any neighbor/.test(e.message));
    await assert.rejects(make([r], { tileSize: 16, neighborhood: 'ten' }), /not a radius/);
  });

  test('a radius too large for a same-raster distant tile', async () => {
    const r = syntheticRaster(1, 100, 100);
    await assert.rejects(make([r], { tileSize: 16, neighborhood: 42, crossRasterProbability: 0 }), /too large for same-raster distant tiles/);
    await make([r], { tileSize: 16, neighborhood: 41, crossRasterProbability: 0 }); // 100 - 16 = 84 >= 2 * 41 + 1
  });

  test('a raster smaller than one tile', async () => {
    await assert.rejects(make([syntheticRaster(1, 100, 100), syntheticRaster(2, 30, 100)], { tileSize: 32, neighborhood: 4 }), (e: Error) => e instanceof UserError && /raster 2 .*30 x 100 px\) is smaller than one 32 px tile/.test(e.message));
  });

  test('a raster with no valid tile', async () => {
    // Nodata stripes every 10 columns: no 16 px window has under 10 % nodata.
    const holes = Array.from({ length: 10 }, (_, i) => ({ x: i * 10, y: 0, w: 2, h: 100 }));
    await assert.rejects(make([syntheticRaster(1, 100, 100), syntheticRaster(2, 100, 100, 3, holes)], { tileSize: 16, neighborhood: 4, maxNodataFraction: 0.1 }), (e: Error) => e instanceof UserError && /raster 2 .* has no valid 16 px tile/.test(e.message));
    await make([syntheticRaster(2, 100, 100, 3, holes)], { tileSize: 16, neighborhood: 4, maxNodataFraction: 0.25 });
  });

  test('band counts that cannot mix, and bands a raster lacks', async () => {
    const four = syntheticRaster(1, 100, 100, 4);
    const ten = syntheticRaster(2, 100, 100, 10);
    await assert.rejects(make([four, ten], { tileSize: 16, neighborhood: 4 }), (e: Error) => e instanceof UserError && /cannot mix.*raster 1 .* has 4, raster 2 .* has 10 bands.*--bands/.test(e.message));
    const mixed = await make([four, ten], { tileSize: 16, neighborhood: 4, bands: [3, 2, 1] });
    assert.deepEqual(mixed.normalization.bands, [3, 2, 1]);
    await assert.rejects(make([four, ten], { tileSize: 16, neighborhood: 4, bands: [5] }), /band 5 does not exist in every raster: raster 1/);
    const sixteenBit = { record: { ...recordOf(ten), dtype: 'uint16' }, source: ten };
    await assert.rejects(createTripletSampling([{ record: recordOf(four), source: four }, sixteenBit], { tileSize: 16, neighborhood: 4, bands: [1] }), /cannot share one normalization.*raster 1 is uint8, raster 2 is uint16/);
  });

  test('probabilities and fractions out of range, cross-raster with one raster', async () => {
    const r = syntheticRaster(1, 100, 100);
    await assert.rejects(make([r, syntheticRaster(2, 100, 100)], { tileSize: 16, neighborhood: 4, crossRasterProbability: 1.5 }), /between 0 and 1/);
    await assert.rejects(make([r], { tileSize: 16, neighborhood: 4, maxNodataFraction: -0.1 }), /between 0 and 1/);
    await assert.rejects(make([r], { tileSize: 16, neighborhood: 4, crossRasterProbability: 0.5 }), /needs at least two rasters/);
    assert.equal((await make([r], { tileSize: 16, neighborhood: 4 })).params.crossRasterProbability, 0);
  });

  test('a radius in metres converts through each raster pixel size', async () => {
    const a = syntheticRaster(1, 200, 200);
    const b = syntheticRaster(2, 200, 200);
    const s = await createTripletSampling([{ record: recordOf(a, { pixel: 30 }), source: a }, { record: recordOf(b, { pixel: 10 }), source: b }], { tileSize: 16, neighborhood: '100m' });
    assert.deepEqual(s.params.radiusPixels, { 1: { x: 3, y: 3 }, 2: { x: 10, y: 10 } });
    // Geographic pixels of 1e-4 degrees at 34.7 N: about 9.15 m across and 11.09 m down.
    const g = await createTripletSampling([{ record: recordOf(a, { pixel: 1e-4, geographic: true }), source: a }], { tileSize: 16, neighborhood: '100m' });
    assert.deepEqual(g.params.radiusPixels, { 1: { x: 10, y: 9 } });
    await assert.rejects(createTripletSampling([{ record: recordOf(a, { georeferenced: false }), source: a }], { tileSize: 16, neighborhood: '100m' }), /not georeferenced/);
  });
});

describe('temporal positives', () => {
  const dates = [syntheticRaster(1, 120, 100), syntheticRaster(2, 120, 101), syntheticRaster(3, 119, 100, 1, [{ x: 0, y: 0, w: 60, h: 100 }])];
  const stacked = (stack: string | undefined) => dates.map((r) => ({ ...samplerRaster(r, 8), stack }));

  test('the neighbor is the anchor window on another date with probability p, valid there; the distant tile is of the anchor date', () => {
    const sampler = new TripletSampler(stacked('one place'), { tileSize: 16, crossRasterProbability: 0, temporalProbability: 0.5, maxNodataFraction: 0, augment: false, seed: 4 });
    const triplets = sampler.take(2000);
    const temporal = triplets.filter((t) => t.neighborFrom === 'other-date');
    for (const t of temporal) {
      assert.notEqual(t.neighbor.rasterId, t.anchor.rasterId);
      assert.deepEqual(t.neighbor.window, t.anchor.window);
      // Raster 3's left half is nodata, so no temporal neighbor lands there.
      if (t.neighbor.rasterId === 3) assert.ok(t.neighbor.window.x >= 60, `x ${t.neighbor.window.x}`);
    }
    for (const t of triplets) assert.equal(t.distant.rasterId, t.anchor.rasterId);
    const share = temporal.length / triplets.length;
    assert.ok(share > 0.44 && share <= 0.5, `temporal share ${share}`);
    assert.ok(triplets.filter((t) => t.neighborFrom === 'nearby').every((t) => t.neighbor.rasterId === t.anchor.rasterId));
  });

  test('paired augmentation: a temporal positive shows its anchor\'s flips and turns; nearby neighbours keep their own', () => {
    const opts = { tileSize: 16, crossRasterProbability: 0, temporalProbability: 0.5, maxNodataFraction: 0, augment: true, seed: 4 };
    const paired = new TripletSampler(stacked('one place'), { ...opts, pairedTemporalAugment: true }).take(2000);
    const independent = new TripletSampler(stacked('one place'), opts).take(2000);
    const same = (t: Triplet) => JSON.stringify(t.anchor.augment) === JSON.stringify(t.neighbor.augment);
    const share = (ts: Triplet[]) => ts.filter(same).length / ts.length;
    assert.equal(share(paired.filter((t) => t.neighborFrom === 'other-date')), 1);
    assert.ok(Math.abs(share(paired.filter((t) => t.neighborFrom === 'nearby')) - 1 / 16) < 0.03);
    assert.ok(Math.abs(share(independent.filter((t) => t.neighborFrom === 'other-date')) - 1 / 16) < 0.03);
    // Pairing draws the same random numbers, so the windows are those of the independent run.
    assert.deepEqual(paired.map((t) => t.neighbor.window), independent.map((t) => t.neighbor.window));
  });

  test('adjacent negatives: with a temporal positive the distant tile is on the anchor date, not overlapping it, within two tiles', () => {
    const opts = { tileSize: 16, crossRasterProbability: 0, temporalProbability: 0.5, maxNodataFraction: 0, augment: false, seed: 9, adjacentNegatives: true };
    const triplets = new TripletSampler(stacked('one place'), opts).take(2000);
    const gap = (t: Triplet) => Math.max(Math.abs(t.distant.window.x - t.anchor.window.x), Math.abs(t.distant.window.y - t.anchor.window.y));
    const temporal = triplets.filter((t) => t.neighborFrom === 'other-date');
    assert.ok(temporal.length > 800);
    for (const t of temporal) {
      assert.equal(t.distant.rasterId, t.anchor.rasterId);
      assert.ok(gap(t) >= 16 && gap(t) <= 32, `distant ${gap(t)} px away`);
    }
    // Nearby neighbours keep the far distant tile (beyond the 8 px radius on both axes).
    for (const t of triplets.filter((t) => t.neighborFrom === 'nearby')) {
      assert.ok(Math.abs(t.distant.window.x - t.anchor.window.x) > 8 && Math.abs(t.distant.window.y - t.anchor.window.y) > 8);
    }
  });

  test('bad probabilities and rasters that do not line up are one clear error', () => {
    const opts = { tileSize: 16, crossRasterProbability: 0, maxNodataFraction: 0.1, augment: false, seed: 1 };
    assert.throws(() => new TripletSampler(stacked('a'), { ...opts, temporalProbability: 1.5 }), (e: unknown) => e instanceof UserError && /between 0 and 1, got 1.5/.test(e.message));
    assert.throws(() => new TripletSampler(stacked(undefined), { ...opts, temporalProbability: 0.3 }), (e: unknown) => e instanceof UserError && /need co-registered rasters/.test(e.message));
  });

  test('rasters line up when CRS and pixel size agree and origins lie within a pixel; stacks group them', async () => {
    const { coRegistered, coRegisteredStacks } = await import('../src/sampling/index.ts');
    const base = { id: 1, georeferenced: true, crsDef: '+proj=utm +zone=14', geotransform: [500000, 5, 0, 5200000, 0, -5] };
    const near = { ...base, id: 2, geotransform: [500002, 5, 0, 5199997.5, 0, -5] };
    const shifted = { ...base, id: 3, geotransform: [500005, 5, 0, 5200000, 0, -5] };
    assert.ok(coRegistered(base, near));
    assert.ok(!coRegistered(base, shifted));
    assert.ok(!coRegistered(base, { ...base, crsDef: '+proj=utm +zone=15' }));
    assert.ok(!coRegistered(base, { ...base, geotransform: [500000, 10, 0, 5200000, 0, -10] }));
    assert.ok(!coRegistered(base, { ...base, georeferenced: false }));
    const stacks = coRegisteredStacks([base, near, shifted]);
    assert.equal(stacks.get(1), stacks.get(2));
    assert.notEqual(stacks.get(1), stacks.get(3));
  });
});
