import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { searchPrecision, standardizeColumns, temporalAnalogy, temporalRetrieval, windowsTouch, type DatedPlace, type Place } from '../src/classify/index.ts';
import { uniform } from '../src/rng.ts';
import { dataMissing, DATA_DIR, runCli, tempDir, lastJson } from './helpers.ts';

const gauss = (r: () => number) => Math.sqrt(-2 * Math.log(r() || 1e-12)) * Math.cos(2 * Math.PI * r());

/** A grid of 32-px windows, `side` × `side`, on each of `dates` co-registered rasters (raster id = date). */
function stack(side: number, dates: number): DatedPlace[] {
  const places: DatedPlace[] = [];
  for (let d = 1; d <= dates; d++) for (let r = 0; r < side; r++) for (let c = 0; c < side; c++) places.push({ rasterId: d, date: d, x: c * 32, y: r * 32, size: 32 });
  return places;
}

describe('search by example', () => {
  test('windows touch when they share pixels, an edge or a corner of one raster', () => {
    const a: Place = { rasterId: 1, x: 0, y: 0, size: 32 };
    assert.ok(windowsTouch(a, { ...a, x: 16 }));
    assert.ok(windowsTouch(a, { ...a, x: 32, y: 32 }));
    assert.ok(!windowsTouch(a, { ...a, x: 33 }));
    assert.ok(!windowsTouch(a, { ...a, rasterId: 2 }));
  });

  test('precision is 1 for features that are the label, and touching tiles never count', () => {
    const places = stack(6, 1);
    const labels = places.map((p) => (p.x / 32) % 3);
    const exact = labels.map((l) => Float32Array.of(l * 10));
    assert.equal(searchPrecision(exact, labels, places, 5), 1);
    // q and t touch and have identical features but different labels; counting t would make q's answer wrong.
    const four: Place[] = [{ rasterId: 1, x: 0, y: 0, size: 32 }, { rasterId: 1, x: 32, y: 0, size: 32 }, { rasterId: 1, x: 200, y: 200, size: 32 }, { rasterId: 1, x: 400, y: 400, size: 32 }];
    const features = [0, 0, 1, 5].map((v) => Float32Array.of(v));
    // q -> f (right), t -> f (wrong), f -> q (right), g -> f (wrong); with t counted for q it would be 0.25.
    assert.equal(searchPrecision(features, [1, 2, 1, 2], four, 1), 0.5);
  });
});

describe('same place across dates', () => {
  test('an embedding that is the date: every neighbour from the same date, no window found on another', () => {
    const places = stack(5, 4);
    const rows = places.map((p) => Float32Array.of(p.date * 100 + 0.001 * p.x));
    const m = temporalRetrieval(rows, places, { k: 10, queries: 200 });
    assert.equal(m.sameDateShare, 1);
    assert.equal(m.recall, 0);
    assert.equal(m.hitRate, 0);
    assert.ok(Math.abs(m.sameDateChance - 24 / 99) < 1e-9, `${m.sameDateChance}`);
  });

  test('an embedding that is the place: every other date found at the top ranks', () => {
    const places = stack(5, 4);
    const r = uniform(3);
    const rows = places.map((p) => Float32Array.of(p.x, p.y, 0.01 * gauss(r)));
    const m = temporalRetrieval(rows, places, { k: 3, queries: 200 });
    assert.equal(m.recall, 1);
    assert.equal(m.hitRate, 1);
    assert.equal(m.sameDateShare, 0);
    assert.ok(m.medianRank <= 3, `${m.medianRank}`);
  });

  test('analogies are exact for vectors built as place + date, and the trivial query finds the other date only by chance', () => {
    const places = stack(6, 5);
    const r = uniform(9);
    const placeVector = new Map<string, number[]>();
    const dateVector = new Map<number, number[]>();
    const rows = places.map((p) => {
      const key = `${p.x},${p.y}`;
      if (!placeVector.has(key)) placeVector.set(key, Array.from({ length: 16 }, () => gauss(r)));
      if (!dateVector.has(p.date)) dateVector.set(p.date, Array.from({ length: 16 }, () => 3 * gauss(r)));
      return Float32Array.from(placeVector.get(key)!, (v, j) => v + dateVector.get(p.date)![j]);
    });
    const m = temporalAnalogy(rows, places, { k: 10, queries: 300 });
    assert.equal(m.analogy, 1);
    assert.ok(m.trivial < 0.2, `${m.trivial}`);
    assert.equal(m.quadruples, 300);
  });

  test('a stack without repeated windows is a clear error', () => {
    const places = stack(3, 1);
    assert.throws(() => temporalRetrieval(places.map(() => Float32Array.of(0)), places), /not a co-registered stack/);
  });

  test('standardising per group removes each group offset', () => {
    const rows = [Float32Array.of(1), Float32Array.of(3), Float32Array.of(101), Float32Array.of(103)];
    assert.deepEqual(standardizeColumns(rows, (i) => (i < 2 ? 0 : 1)).map((r) => r[0]), [-1, 1, -1, 1]);
    assert.deepEqual(standardizeColumns([Float32Array.of(5), Float32Array.of(5)]).map((r) => r[0]), [0, 0]);
  });
});

describe('tilevec evaluate --temporal', { skip: dataMissing() }, () => {
  test('rasters that do not line up are refused with one line, and a stack is measured', async () => {
    const dir = tempDir();
    try {
      const db = `${dir.path}/db`;
      const naip = `${DATA_DIR}/naip-northdakota`;
      const ingest = await runCli(['ingest', `${naip}/m_4709963_se_14_1_20090818.tif`, `${naip}/m_4709963_se_14_1_20200831.tif`, `${DATA_DIR}/misc/L7_ETMs_olinda_brazil.tif`, '--tile-size', '32', '--db', db]);
      assert.equal(ingest.code, 0, ingest.stderr);
      const refused = await runCli(['evaluate', '--temporal', '--db', db]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr.trim(), /^tilevec: --temporal needs co-registered rasters: raster 3 .* does not line up/);
      assert.equal(refused.stderr.trim().split('\n').length, 1);
      const both = await runCli(['evaluate', '--temporal', '--rasters', '1,2', '--queries', '50', '--db', db, '--json']);
      assert.equal(both.code, 0, both.stderr);
      const result = lastJson<{ rows: { featureSet: string; retrieval: { sameDateChance: number; queries: number } }[]; dates: number }>(both.stdout);
      assert.equal(result.dates, 2);
      assert.deepEqual(result.rows.map((r) => r.featureSet), ['band-mean-std', 'band-mean-std-per-date', 'raw-pixel-pca']);
      for (const r of result.rows) assert.equal(r.retrieval.queries, 50);
      const neither = await runCli(['evaluate', '--db', db]);
      assert.equal(neither.code, 1);
      assert.match(neither.stderr, /needs --labels <name> or --temporal/);
    } finally {
      dir.cleanup();
    }
  });
});
