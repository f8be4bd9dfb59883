/**
 * Nodata in sparse files: GDAL leaves out blocks that hold only nodata (SPARSE_OK), and they must read as nodata
 * (NaN included) just as GDAL reads them. The files are written by GDAL at test time, in a temporary directory.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ingest, openRaster } from '../src/ingest/index.ts';
import { Store } from '../src/store/index.ts';
import { GDAL_PY, ROOT, gdalMissing, tempDir } from './helpers.ts';


interface Case { name: string; dtype: 'float32' | 'uint16' | 'int16'; nodata: 'nan' | number | null; driver: 'GTiff' | 'COG'; tiled: boolean; compress: string; predictor: number }
interface GdalRead { name: string; path: string; sparseBlocks: number; bands: string[]; valid: string }

const CASES: Case[] = [
  { name: 'float-nan-cog', dtype: 'float32', nodata: 'nan', driver: 'COG', tiled: true, compress: 'DEFLATE', predictor: 3 },
  { name: 'float-nan-strips', dtype: 'float32', nodata: 'nan', driver: 'GTiff', tiled: false, compress: 'LZW', predictor: 1 },
  { name: 'float-9999-tiles', dtype: 'float32', nodata: -9999, driver: 'GTiff', tiled: true, compress: 'NONE', predictor: 1 },
  { name: 'uint16-zero-cog', dtype: 'uint16', nodata: 0, driver: 'COG', tiled: true, compress: 'LZW', predictor: 2 },
  { name: 'int16-no-nodata', dtype: 'int16', nodata: null, driver: 'GTiff', tiled: true, compress: 'DEFLATE', predictor: 2 },
];

let tmp: ReturnType<typeof tempDir>;
let refs: GdalRead[] = [];
before(() => {
  if (gdalMissing()) return;
  tmp = tempDir();
  const out = execFileSync(GDAL_PY, [join(ROOT, 'test/fixtures/sparse_rasters.py')], { input: JSON.stringify({ dir: tmp.path, cases: CASES }), maxBuffer: 64 << 20 });
  refs = JSON.parse(out.toString());
});
after(() => tmp?.cleanup());

const f64 = (b64: string) => new Float64Array(new Uint8Array(Buffer.from(b64, 'base64')).buffer);
const same = (a: number, b: number) => a === b || (Number.isNaN(a) && Number.isNaN(b));

for (const [k, c] of CASES.entries()) {
  test(`${c.name}: sparse blocks read as GDAL reads them, cached and streamed`, { skip: gdalMissing() }, async () => {
    const ref = refs[k];
    assert.ok(ref.sparseBlocks >= 1, `GDAL left ${ref.sparseBlocks} blocks out of ${c.name}`);
    const bands = ref.bands.map(f64);
    const valid = new Uint8Array(Buffer.from(ref.valid, 'base64'));
    for (const cacheBytes of [undefined, 0]) {
      const r = await openRaster(ref.path, { cacheBytes });
      try {
        assert.ok(c.nodata === 'nan' ? Number.isNaN(r.nodata) : r.nodata === c.nodata, `nodata ${r.nodata}`);
        // The whole raster, and windows inside one sparse block, across sparse and written ones, and past the edge.
        for (const win of [{ x: 0, y: 0, w: r.width, h: r.height }, { x: 3, y: 2, w: 20, h: 20 }, { x: 20, y: 20, w: 40, h: 30 }, { x: 90, y: 60, w: 20, h: 20 }]) {
          const got = await r.readWindow(win);
          let expectValid = 0;
          for (let row = 0; row < win.h; row++) {
            for (let col = 0; col < win.w; col++) {
              const [x, y] = [win.x + col, win.y + row];
              const p = row * win.w + col;
              const inside = x < r.width && y < r.height;
              const v = inside ? valid[y * r.width + x] : 0;
              expectValid += v;
              assert.equal(got.valid[p], v, `${JSON.stringify(win)} mask at (${x}, ${y}), cache ${cacheBytes}`);
              if (!inside) continue;
              for (let b = 0; b < 2; b++) {
                const want = bands[b][y * r.width + x];
                assert.ok(same(got.data[b][p], want), `${JSON.stringify(win)} band ${b + 1} at (${x}, ${y}): ${got.data[b][p]} vs GDAL ${want}`);
              }
            }
          }
          assert.equal(got.validCount, expectValid);
        }
      } finally {
        await r.close();
      }
    }
  });
}

test('ingest of a NaN-nodata COG: band statistics and tile valid fractions leave the sparse blocks out', { skip: gdalMissing() }, async () => {
  const k = CASES.findIndex((c) => c.name === 'float-nan-cog');
  const ref = refs[k];
  const bands = ref.bands.map(f64);
  const valid = new Uint8Array(Buffer.from(ref.valid, 'base64'));
  const store = await Store.open(join(tmp.path, 'db'));
  try {
    const s = await ingest(store, [ref.path], { tileSize: 16, maxNodata: 1 });
    assert.equal(s.failed, 0, JSON.stringify(s.rasters));
    const rec = (await store.rasterByUri(ref.path))!;
    for (const [b, st] of rec.bandStats.entries()) {
      const values = Array.from(bands[b]).filter((v) => !Number.isNaN(v));
      const mean = values.reduce((a, v) => a + v, 0) / values.length;
      assert.equal(st.count, values.length, `band ${b + 1} count`);
      assert.ok(Math.abs(st.mean - mean) < 1e-9 * mean, `band ${b + 1} mean ${st.mean} vs ${mean}`);
    }
    const tiles = await store.tilesOfRaster(rec.id);
    assert.equal(tiles.length, Math.floor(rec.width / 16) * Math.floor(rec.height / 16));
    for (const t of tiles) {
      let n = 0;
      for (let y = t.y; y < t.y + 16; y++) for (let x = t.x; x < t.x + 16; x++) n += valid[y * rec.width + x];
      assert.equal(t.validFraction, n / 256, `tile at (${t.x}, ${t.y})`);
    }
    assert.ok(tiles.some((t) => t.validFraction === 0), 'tiles inside the sparse corner hold no valid pixel');
  } finally {
    await store.close();
  }
});
