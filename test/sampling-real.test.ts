import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromFile } from 'geotiff';
import { ingest } from '../src/ingest/index.ts';
import { Store } from '../src/store/index.ts';
import { augmentTile, DEFAULT_TEMPORAL_POSITIVES, openTripletSampling, type TripletSampling } from '../src/sampling/index.ts';
import type { TripletIndex } from '../src/sampling/export.ts';
import { DATA_DIR, dataMissing, lastJson, runCli, tempDir } from './helpers.ts';

const ZION = join(DATA_DIR, 'zion-landsat8-nlcd/landsat8_zion_20150818_B2B3B4B5.tif');
const NAIP = ['20150926', '20180716'].map((d) => join(DATA_DIR, `naip-northdakota/m_4709963_se_14_1_${d}.tif`));

/** The whole raster band-interleaved per pixel, read with geotiff.js directly (not through src/ingest). */
async function readDirect(path: string): Promise<{ width: number; height: number; bands: number; nodata: number | null; data: ArrayLike<number> }> {
  const image = await (await fromFile(path)).getImage();
  const data = (await image.readRasters({ interleave: true })) as unknown as ArrayLike<number>;
  return { width: image.getWidth(), height: image.getHeight(), bands: image.getSamplesPerPixel(), nodata: image.getGDALNoData(), data };
}

/** numpy.percentile (linear) of one band's valid values, from a histogram of integer samples. */
function percentile(r: Awaited<ReturnType<typeof readDirect>>, band: number, q: number): number {
  const counts = new Map<number, number>();
  let n = 0;
  for (let p = band - 1; p < r.data.length; p += r.bands) {
    const v = r.data[p];
    if (v === r.nodata) continue;
    counts.set(v, (counts.get(v) ?? 0) + 1);
    n++;
  }
  const sorted = [...counts.entries()].sort((a, b) => a[0] - b[0]);
  const rank = (q / 100) * (n - 1);
  const at = (k: number) => {
    let seen = 0;
    for (const [v, c] of sorted) if ((seen += c) > k) return v;
    return sorted[sorted.length - 1][0];
  };
  const lo = Math.floor(rank);
  return at(lo) + (at(lo + 1) - at(lo)) * (rank - lo);
}

describe('sampling real imagery', { skip: dataMissing() }, () => {
  const tmp = tempDir('tilevec-sampling-real-');
  const db = join(tmp.path, 'db');
  let ids: { zion: number; naip: number[] };

  before(async () => {
    const store = await Store.open(db);
    try {
      const summary = await ingest(store, [ZION, ...NAIP], { tileSize: 32 });
      const id = (path: string) => {
        const o = summary.rasters.find((r) => r.uri.endsWith(path.split('/').pop()!));
        assert.ok(o && 'rasterId' in o, `ingest of ${path} failed: ${JSON.stringify(o)}`);
        return o.rasterId;
      };
      ids = { zion: id(ZION), naip: NAIP.map(id) };
    } finally {
      await store.close();
    }
  });
  after(() => tmp.cleanup());

  test('Zion: windows avoid the scene edge nodata, normalization and tensors match an independent computation', async () => {
    const direct = await readDirect(ZION);
    const store = await Store.open(db);
    let sampling: TripletSampling | undefined;
    try {
      sampling = await openTripletSampling(store, { rasterIds: [ids.zion], tileSize: 32, neighborhood: '900m', maxNodataFraction: 0.05, augment: false, seed: 9 });
      assert.deepEqual(sampling.params.radiusPixels, { [ids.zion]: { x: 30, y: 30 } });
      assert.equal(sampling.params.crossRasterProbability, 0);
      const n = sampling.normalization;
      for (const band of [1, 2, 3, 4]) {
        const p2 = percentile(direct, band, 2);
        const p98 = percentile(direct, band, 98);
        assert.ok(Math.abs(n.offset[band - 1] - p2) < 1e-6, `band ${band} p2 ${n.offset[band - 1]} vs ${p2}`);
        assert.ok(Math.abs(n.scale[band - 1] - (p98 - p2)) < 1e-6, `band ${band} p98-p2 ${n.scale[band - 1]} vs ${p98 - p2}`);
      }
      let tilesChecked = 0;
      for (const t of sampling.sampler.take(30)) {
        for (const tile of [t.anchor, t.neighbor, t.distant]) {
          const { x, y, w, h } = tile.window;
          const tensor = await sampling.dataset.readTile(tile);
          let missing = 0;
          for (let r = 0; r < h; r++) {
            for (let c = 0; c < w; c++) {
              const src = ((y + r) * direct.width + x + c) * 4;
              const isMissing = [0, 1, 2, 3].every((b) => direct.data[src + b] === 65535);
              if (isMissing) missing++;
              for (let b = 0; b < 4; b++) {
                const expected = isMissing ? 0 : Math.min(1, Math.max(0, (direct.data[src + b] - n.offset[b]) / n.scale[b]));
                assert.ok(Math.abs(tensor[(r * w + c) * 4 + b] - expected) < 1e-5);
              }
            }
          }
          assert.ok(missing / (w * h) <= 0.05, `tile at ${x},${y} is ${missing / (w * h)} nodata`);
          tilesChecked++;
        }
      }
      assert.equal(tilesChecked, 90);
    } finally {
      await sampling?.close();
      await store.close();
    }
  });

  test('8-bit NAIP and 16-bit Landsat cannot share one normalization', async () => {
    const store = await Store.open(db);
    try {
      await assert.rejects(openTripletSampling(store, {}), /cannot share one normalization: their sample types differ \(raster \d+ is uint16, raster \d+ is uint8\)/);
    } finally {
      await store.close();
    }
  });

  test('two NAIP dates 2-3 m apart form a stack: temporal positives by default, distant tiles of the anchor date', async () => {
    const store = await Store.open(db);
    let sampling: TripletSampling | undefined;
    try {
      sampling = await openTripletSampling(store, { rasterIds: ids.naip, tileSize: 32, seed: 2 });
      assert.equal(sampling.params.temporalProbability, DEFAULT_TEMPORAL_POSITIVES);
      assert.equal(sampling.params.pairedTemporalAugment, true);
      assert.equal(sampling.params.normalizationScope, 'raster');
      assert.equal(sampling.normalization.scope, 'raster');
      assert.equal(sampling.params.crossRasterProbability, 0);
      const triplets = sampling.sampler.take(300);
      const temporal = triplets.filter((t) => t.neighborFrom === 'other-date');
      assert.ok(temporal.length > 240, `${temporal.length} temporal positives of 300`);
      for (const t of temporal) assert.ok(t.neighbor.rasterId !== t.anchor.rasterId && t.neighbor.window.x === t.anchor.window.x && t.neighbor.window.y === t.anchor.window.y);
      for (const t of triplets) assert.equal(t.distant.rasterId, t.anchor.rasterId);
    } finally {
      await sampling?.close();
      await store.close();
    }
  });

  test('tilevec sample writes an index, float32 tensors that match it, and a contact sheet', async () => {
    const out = join(tmp.path, 'sample');
    const args = ['--db', db, 'sample', '--count', '40', '--seed', '3', '--out', out, '--rasters', ids.naip.join(','), '--neighborhood', '100m', '--tile-size', '48', '--temporal-positives', '0', '--json'];
    const res = await runCli(args);
    assert.equal(res.code, 0, res.stderr);
    const summary = lastJson<{ count: number; params: { radiusPixels: Record<string, { x: number }> } }>(res.stdout);
    assert.equal(summary.count, 40);
    assert.equal(summary.params.radiusPixels[ids.naip[0]].x, 20); // 100 m at 5 m pixels
    const index = JSON.parse(readFileSync(join(out, 'triplets.json'), 'utf8')) as TripletIndex;
    assert.deepEqual(index.tensors.shape, [40, 48, 48, 4]);
    assert.equal(index.triplets.length, 40);
    assert.ok(index.triplets.some((t) => t.distantFrom === 'other-raster') && index.triplets.some((t) => t.distantFrom === 'same-raster'));
    const files = Object.fromEntries((['anchor', 'neighbor', 'distant'] as const).map((role) => {
      const buf = readFileSync(join(out, index.tensors.files[role]));
      assert.equal(buf.byteLength, 40 * index.tensors.recordBytes);
      return [role, new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4)];
    }));
    // Record 7 of each file is its window read directly, normalized with the index's numbers (each date its own), then augmented.
    const direct = new Map<number, Awaited<ReturnType<typeof readDirect>>>();
    for (const [i, id] of ids.naip.entries()) direct.set(id, await readDirect(NAIP[i]));
    assert.equal(index.normalization.scope, 'raster');
    const perDate = index.rasterNormalizations!;
    assert.notDeepEqual(perDate[ids.naip[0]].offset, perDate[ids.naip[1]].offset);
    const t = index.triplets[7];
    for (const role of ['anchor', 'neighbor', 'distant'] as const) {
      const { rasterId, window, augment } = t[role];
      const n = perDate[rasterId];
      const r = direct.get(rasterId)!;
      const raw = new Float32Array(48 * 48 * 4);
      for (let row = 0; row < 48; row++) {
        for (let col = 0; col < 48; col++) {
          for (let b = 0; b < 4; b++) raw[(row * 48 + col) * 4 + b] = r.data[((window.y + row) * r.width + window.x + col) * 4 + b];
        }
      }
      const normalized = raw.map((v, i) => Math.min(1, Math.max(0, (v - n.offset[i % 4]) / n.scale[i % 4])));
      const expected = augmentTile(normalized, 48, 4, augment);
      const got = files[role].subarray(7 * 48 * 48 * 4, 8 * 48 * 48 * 4);
      for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i] - expected[i]) < 1e-5, `${role} value ${i}: ${got[i]} vs ${expected[i]}`);
    }
    const png = readFileSync(join(out, 'contact-sheet.png'));
    assert.equal(png.subarray(1, 4).toString(), 'PNG');

    // The same seed writes the same index.
    const again = await runCli([...args.slice(0, 8), join(tmp.path, 'again'), ...args.slice(9)]);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(JSON.parse(readFileSync(join(tmp.path, 'again', 'triplets.json'), 'utf8')).triplets, index.triplets);
  });
});
