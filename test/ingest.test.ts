import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join, relative } from 'node:path';
import { writeArrayBuffer } from 'geotiff';
import { Store, type TileRecord } from '../src/store/index.ts';
import { ingest, openRaster, openStoredRaster, tileGrid, signedArea, type IngestSummary } from '../src/ingest/index.ts';
import { INFLATE_ENGINE } from '../src/ingest/codecs.ts';
import { startRangeServer } from '../bench/range-server.ts';
import { DATA_DIR, GDAL_PY, ROOT, dataMissing, gdalMissing, freshServerDb, lastJson, runCli, serverSkip, tempDir } from './helpers.ts';

function allRasters(): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (/\.tif$/.test(e.name)) out.push(join(d, e.name));
    }
  };
  if (!dataMissing()) walk(DATA_DIR);
  return out.sort();
}

const NAIP = join(DATA_DIR, 'naip-northdakota/m_4709963_se_14_1_20090818.tif');
const ZION = join(DATA_DIR, 'zion-landsat8-nlcd/landsat8_zion_20150818_B2B3B4B5.tif');
const NC = join(DATA_DIR, 'northcarolina-sentinel2/s2b_l1c_20181013_B01-B08_stack.tif');
const ORBVIEW = join(DATA_DIR, 'misc/orbview3_orbetello_4band_4m.tif');
const OLINDA = join(DATA_DIR, 'misc/L7_ETMs_olinda_brazil.tif');

interface Reference {
  path: string;
  width: number;
  height: number;
  bands: number;
  /** Overviews below the level read. */
  overviews: number;
  nodata: number | null;
  geotransform: number[];
  corners: Record<'ul' | 'll' | 'lr' | 'ur', [number, number]> | null;
  windows: { sha256: string; sums: number[]; nodataPixels: number }[];
  stats: { count: number; mean: number; std: number; p2: number; p98: number; min: number; max: number }[] | null;
}

/** Windows per file: corners, the middle, one straddling block boundaries, and one reaching past the edge. */
function windowsFor(w: number, h: number): [number, number, number, number][] {
  return [
    [0, 0, Math.min(64, w), Math.min(48, h)],
    [Math.max(0, w - 37), Math.max(0, h - 29), Math.min(37, w), Math.min(29, h)],
    [Math.floor(w / 2) - 20, Math.floor(h / 2) - 11, Math.min(70, w), Math.min(41, h)],
    [Math.max(0, Math.min(250, w - 20)), Math.max(0, Math.min(250, h - 20)), Math.min(20, w), Math.min(20, h)],
  ];
}

function gdalReference(files: { path: string; overview?: number; windows?: number[][]; stats?: boolean }[]): Reference[] {
  const out = execFileSync(GDAL_PY, [join(ROOT, 'test/fixtures/gdal_reference.py')], { input: JSON.stringify({ files }), maxBuffer: 64 << 20 });
  return JSON.parse(out.toString());
}

function sampleHash(data: ArrayBufferView[]): string {
  const h = createHash('sha256');
  for (const d of data) h.update(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  return h.digest('hex');
}

/** One embedded store for the in-process suites: opening PGlite costs seconds, and every suite uses its own URIs or --force. */
let sharedStore: { store: Promise<Store>; tmp: ReturnType<typeof tempDir> } | undefined;
function embeddedStore(): Promise<Store> {
  if (!sharedStore) {
    const tmp = tempDir();
    sharedStore = { tmp, store: Store.open(join(tmp.path, 'db')) };
  }
  return sharedStore.store;
}
after(async () => {
  if (!sharedStore) return;
  await (await sharedStore.store).close();
  sharedStore.tmp.cleanup();
});

describe('reading every shared raster agrees with GDAL', { skip: dataMissing() || gdalMissing() }, () => {
  const files = allRasters();
  let refs: Reference[];
  before(() => {
    const sizes = files.map((f) => JSON.parse(execFileSync('gdalinfo', ['-json', f]).toString()).size as [number, number]);
    refs = gdalReference(files.map((path, i) => ({ path, windows: windowsFor(sizes[i][0], sizes[i][1]) })));
  });

  for (const [i, file] of files.entries()) {
    test(relative(DATA_DIR, file), async () => {
      const ref = refs[i];
      const r = await openRaster(file);
      // Without a cache, decode threads write windows directly (shared memory): the path ingest reads by.
      const streamed = await openRaster(file, { cacheBytes: 0 });
      try {
        assert.equal(r.width, ref.width);
        assert.equal(r.height, ref.height);
        assert.equal(r.bandCount, ref.bands);
        assert.equal(r.nodata, ref.nodata);
        r.geotransform.forEach((v, k) => assert.ok(Math.abs(v - ref.geotransform[k]) <= 1e-9 * Math.max(1, Math.abs(v)), `geotransform[${k}] ${v} vs ${ref.geotransform[k]}`));
        for (const [k, [x, y, w, h]] of windowsFor(r.width, r.height).entries()) {
          for (const [path, raster] of [['cached', r], ['streamed', streamed]] as const) {
            const win = await raster.readWindow({ x, y, w, h });
            assert.equal(sampleHash(win.data), ref.windows[k].sha256, `${path} window ${k} [${x},${y},${w},${h}] sums ${win.data.map((d) => Array.from(d as ArrayLike<number>).reduce((a, b) => a + b, 0))} vs ${ref.windows[k].sums}`);
            assert.equal(w * h - win.validCount, ref.windows[k].nodataPixels, `nodata pixels of ${path} window ${k}`);
          }
        }
        assert.ok(ref.corners, 'GDAL sees a CRS');
        const ring = r.footprint().coordinates[0];
        assert.deepEqual(ring[0], ring[ring.length - 1], 'closed ring');
        assert.ok(signedArea(ring) > 0, 'counter-clockwise exterior');
        for (const [name, [lon, lat]] of Object.entries(ref.corners!)) {
          const d = Math.min(...ring.map(([x, y]) => Math.hypot(x - lon, y - lat)));
          assert.ok(d < 1e-6, `${name} corner (${lon}, ${lat}) is ${d} degrees from the footprint`);
        }
      } finally {
        await r.close();
        await streamed.close();
      }
    });
  }

  test('streamed reads (no cache, decoded straight into shared memory) equal cached ones, past the edges too', async () => {
    const cached = await openRaster(ZION);
    const streamed = await openRaster(ZION, { cacheBytes: 0 });
    try {
      const { width, height } = cached;
      for (const win of [
        { x: -10, y: -7, w: 40, h: 30 }, { x: width - 25, y: height - 9, w: 50, h: 20 }, { x: width + 5, y: 0, w: 8, h: 8 },
        { x: 0, y: 100, w: width, h: 64 },
      ]) {
        for (const bands of [undefined, [3, 1]]) {
          const [a, b] = await Promise.all([cached.readWindow(win, bands), streamed.readWindow(win, bands)]);
          assert.equal(sampleHash(b.data), sampleHash(a.data), JSON.stringify(win));
          assert.deepEqual(b.valid, a.valid);
          assert.equal(b.validCount, a.validCount);
        }
      }
    } finally {
      await cached.close();
      await streamed.close();
    }
  });

  test('reading a window twice decodes it once (block cache)', async () => {
    const r = await openRaster(ZION);
    const a = await r.readWindow({ x: 100, y: 100, w: 64, h: 64 }, [3, 1]);
    const before = r.bytesRead;
    const b = await r.readWindow({ x: 100, y: 100, w: 64, h: 64 }, [3, 1]);
    assert.equal(r.bytesRead, before);
    assert.equal(sampleHash(a.data), sampleHash(b.data));
    await r.close();
  });
});

test('tile grid counts for sizes and strides', () => {
  const brute = (w: number, h: number, size: number, stride: number) => {
    let full = 0;
    let edge = 0;
    for (let y = 0; y < h; y += stride) for (let x = 0; x < w; x += stride) (x + size <= w && y + size <= h ? full++ : edge++);
    return { full, edge };
  };
  for (const [w, h, size, stride] of [[934, 723, 32, 32], [934, 723, 64, 48], [1128, 1428, 32, 16], [300, 300, 256, 300], [20, 20, 32, 32], [600, 600, 100, 100]]) {
    const g = tileGrid(w, h, size, stride);
    const b = brute(w, h, size, stride);
    assert.equal(g.cols * g.rows, b.full, `${w}x${h} size ${size} stride ${stride}`);
    assert.equal(g.edgeSkipped, b.edge);
  }
  assert.deepEqual(tileGrid(934, 723, 32, 32), { size: 32, stride: 32, cols: 29, rows: 22, edgeSkipped: 52 });
});

describe('ingest into the catalog', { skip: dataMissing() }, () => {
  let store: Store;
  before(async () => {
    store = await embeddedStore();
  });

  test('tile counts, nodata skips, band stats equal numpy, and re-ingest dedupes', { skip: gdalMissing() }, async () => {
    const s = await ingest(store, [NAIP, ZION], { tileSize: 64, stride: 48, maxNodata: 0.1 });
    assert.equal(s.failed, 0, JSON.stringify(s.rasters));
    assert.equal(s.ingested, 2);
    const refs = gdalReference([{ path: NAIP, stats: true }, { path: ZION, stats: true }]);
    for (const [k, path] of [NAIP, ZION].entries()) {
      const rec = (await store.rasterByUri(path))!;
      const g = tileGrid(rec.width, rec.height, 64, 48);
      const o = s.rasters[k];
      assert.ok(o.status === 'ingested');
      assert.equal(o.tiles + o.skippedNodata, g.cols * g.rows);
      assert.equal(o.skippedEdge, g.edgeSkipped);
      assert.equal((await store.tilesOfRaster(rec.id)).length, o.tiles);
      assert.equal(rec.nodata, k === 0 ? 0 : 65535);
      rec.bandStats.forEach((b, i) => {
        const ref = refs[k].stats![i];
        assert.equal(b.count, ref.count);
        assert.ok(Math.abs(b.mean - ref.mean) < 1e-6 * ref.mean, `band ${i + 1} mean ${b.mean} vs ${ref.mean}`);
        assert.ok(Math.abs(b.std - ref.std) < 1e-6 * ref.std, `band ${i + 1} std`);
        assert.ok(Math.abs(b.p2 - ref.p2) < 1e-9 && Math.abs(b.p98 - ref.p98) < 1e-9, `band ${i + 1} p2/p98 ${b.p2}/${b.p98} vs ${ref.p2}/${ref.p98}`);
      });
      for (const t of await store.tilesOfRaster(rec.id)) assert.ok(t.validFraction >= 0.9);
    }
    const again = await ingest(store, [NAIP]);
    // A different tile size is a different catalog: it re-ingests. The same settings again do nothing.
    assert.equal(again.ingested, 1);
    const same = await ingest(store, [NAIP]);
    assert.equal(same.unchanged, 1);
    assert.equal(same.tilesWritten, 0);
    const forced = await ingest(store, [NAIP], { force: true });
    assert.equal(forced.ingested, 1);
  });

  test('Zion edge tiles hold nodata 65535 and are skipped above --max-nodata', async () => {
    const strict = await ingest(store, [ZION], { tileSize: 128, maxNodata: 0, force: true });
    const loose = await ingest(store, [ZION], { tileSize: 128, maxNodata: 1, force: true });
    const [a, b] = [strict.rasters[0], loose.rasters[0]];
    assert.ok(a.status === 'ingested' && b.status === 'ingested');
    assert.equal(a.tiles + a.skippedNodata, b.tiles);
    const r = await openRaster(ZION);
    const corner = await r.readWindow({ x: 0, y: 0, w: 16, h: 16 });
    await r.close();
    assert.equal(r.nodata, 65535);
    if (corner.validCount < 256) assert.ok(a.skippedNodata > 0);
  });

  test('geographic (EPSG:4326) and band-separate rasters catalog', async () => {
    const s = await ingest(store, [NC, ORBVIEW], { tileSize: 100 });
    assert.equal(s.failed, 0, JSON.stringify(s.rasters));
    const nc = (await store.rasterByUri(NC))!;
    assert.equal(nc.epsg, 4326);
    const orb = (await store.rasterByUri(ORBVIEW))!;
    assert.equal(orb.epsg, 32632);
    assert.equal((await store.tilesOfRaster(orb.id)).length, 36);
    const t = (await store.tilesOfRaster(nc.id))[0];
    assert.ok(signedArea(t.footprint.coordinates[0]) > 0);
    assert.ok(t.bbox[0] <= t.centerLon && t.centerLon <= t.bbox[2] && t.bbox[1] <= t.centerLat && t.centerLat <= t.bbox[3]);
  });
});

describe('overviews: a coarser level of the same file, read and catalogued as GDAL reads it', { skip: dataMissing() || gdalMissing() }, () => {
  // Landsat 7 over Olinda has four overviews (175, 88, 44 and 22 px across), the NAIP quarter quad one.
  const levels: [string, number][] = [[OLINDA, 1], [OLINDA, 2], [OLINDA, 3], [OLINDA, 4], [NAIP, 1]];

  test("each level has GDAL's size, geotransform, footprint and samples", async () => {
    // Every pixel of each level, and a window that straddles blocks.
    const sizes = gdalReference(levels.map(([path, overview]) => ({ path, overview })));
    const windows = sizes.map((r) => [[0, 0, r.width, r.height], [3, 5, 17, 9]]);
    const refs = gdalReference(levels.map(([path, overview], k) => ({ path, overview, windows: windows[k] })));
    const [olinda, naip] = gdalReference([{ path: OLINDA }, { path: NAIP }]);
    for (const [k, [path, overview]] of levels.entries()) {
      const ref = refs[k];
      const r = await openRaster(path, { overview, cacheBytes: 0 });
      const name = `${relative(DATA_DIR, path)} overview ${overview}`;
      try {
        assert.equal(r.overview, overview);
        assert.deepEqual([r.width, r.height, r.bandCount, r.nodata], [ref.width, ref.height, ref.bands, ref.nodata], name);
        r.geotransform.forEach((v, i) => assert.ok(Math.abs(v - ref.geotransform[i]) <= 1e-9 * Math.max(1, Math.abs(v)), `${name}: geotransform[${i}] ${v} vs ${ref.geotransform[i]}`));
        for (const [i, [x, y, w, h]] of windows[k].entries()) {
          assert.equal(sampleHash((await r.readWindow({ x, y, w, h })).data), ref.windows[i].sha256, `${name}: window ${i}`);
        }
        const ring = r.footprint().coordinates[0];
        for (const [corner, [lon, lat]] of Object.entries(ref.corners!)) {
          assert.ok(Math.min(...ring.map(([x, y]) => Math.hypot(x - lon, y - lat))) < 1e-6, `${name}: ${corner} corner`);
        }
      } finally {
        await r.close();
      }
    }
    // As many levels as GDAL counts: the one past them is refused, naming that count.
    for (const [path, ref] of [[OLINDA, olinda], [NAIP, naip]] as const) {
      const n = ref.overviews;
      await assert.rejects(openRaster(path, { overview: n + 1 }), new RegExp(`the file has ${n} overview\\(s\\), 1 to ${n}$`), path);
    }
  });

  test('a level the file lacks, or a bad level, is one clear error', async () => {
    await assert.rejects(openRaster(OLINDA, { overview: 5 }), /^UserError: --overview 5 does not exist: the file has 4 overview\(s\), 1 to 4$/);
    await assert.rejects(openRaster(ZION, { overview: 1 }), /--overview 1 does not exist: the file has no overviews/);
    for (const bad of [-1, 1.5, Number.NaN]) await assert.rejects(openRaster(OLINDA, { overview: bad }), /--overview must be an integer >= 0/);
    for (const bad of [0, -30, Infinity]) await assert.rejects(openRaster(OLINDA, { resolution: bad }), /--resolution must be a positive number/);
    await assert.rejects(openRaster(OLINDA, { overview: 1, resolution: 60 }), /--overview and --resolution both choose the level: give one/);
  });

  test('a target resolution picks the coarsest level whose pixels are no larger', async () => {
    // Olinda's levels: 28.5 m, then 349/175, 349/88, 349/44 and 349/22 times that: 56.84, 113.0, 226.1 and 452.1 m.
    for (const [resolution, level] of [[10, 0], [28.5, 0], [56.8, 0], [56.9, 1], [120, 2], [450, 3], [452.2, 4], [1000, 4]] as const) {
      const r = await openRaster(OLINDA, { resolution });
      assert.equal(r.overview, level, `${resolution} m`);
      await r.close();
    }
  });

  test('ingest at an overview: its own raster beside the full one, tiles on the same ground, stats at that level, only its blocks read', async () => {
    const store = await embeddedStore();
    const full = await ingest(store, [NAIP], { tileSize: 32 });
    const coarse = await ingest(store, [NAIP], { tileSize: 16, overview: 1 });
    assert.equal(coarse.ingested, 1, JSON.stringify(coarse.rasters));
    const [a, b] = [(await store.rasterByUri(NAIP, 0))!, (await store.rasterByUri(NAIP, 1))!];
    assert.ok(full.rasters[0].status !== 'failed' && a.id !== b.id, 'the overview is a raster of its own');
    assert.deepEqual([b.overview, b.width, b.height, b.tileSize], [1, 467, 362, 16]);
    assert.equal((await store.rasterByUri(NAIP))!.id, a.id, 'without a level, the finest');
    // Each overview pixel covers 2 x 2 full ones here, so a 16-px tile at (x, y) lies on the 32-px tile at (2x, 2y).
    const fine = new Map((await store.tilesOfRaster(a.id)).map((t) => [`${t.x},${t.y}`, t]));
    const tiles = await store.tilesOfRaster(b.id);
    assert.ok(tiles.length > 600, `${tiles.length} tiles`);
    let matched = 0;
    for (const t of tiles) {
      const f = fine.get(`${2 * t.x},${2 * t.y}`);
      if (!f) continue;
      matched++;
      t.footprint.coordinates[0].forEach(([lon, lat], i) => {
        const [flon, flat] = f.footprint.coordinates[0][i];
        assert.ok(Math.abs(lon - flon) < 1e-9 && Math.abs(lat - flat) < 1e-9, `tile ${t.x},${t.y} vertex ${i}`);
      });
    }
    assert.ok(matched > 0.9 * tiles.length, `${matched} of ${tiles.length} tiles matched`);
    const [ref] = gdalReference([{ path: NAIP, overview: 1, stats: true }]);
    b.bandStats.forEach((s, i) => {
      assert.equal(s.count, ref.stats![i].count);
      assert.ok(Math.abs(s.mean - ref.stats![i].mean) < 1e-6 * ref.stats![i].mean, `band ${i + 1} mean ${s.mean} vs ${ref.stats![i].mean}`);
    });
    const reopened = await openStoredRaster(b);
    assert.deepEqual([reopened.overview, reopened.width], [1, 467]);
    await reopened.close();
    assert.equal((await ingest(store, [NAIP], { tileSize: 16, overview: 1 })).unchanged, 1);
    assert.equal((await store.rasterByUri(NAIP, 0))!.id, a.id, 're-ingesting a level leaves the others');

    // The coarsest level of a file reads a sliver of what the full resolution does.
    const [top, bottom] = [await ingest(store, [OLINDA], { tileSize: 8 }), await ingest(store, [OLINDA], { tileSize: 8, overview: 4, force: true })];
    assert.ok(top.rasters[0].status === 'ingested' && bottom.rasters[0].status === 'ingested');
    assert.ok(bottom.rasters[0].bytesRead * 20 < top.rasters[0].bytesRead, `overview 4 read ${bottom.rasters[0].bytesRead} bytes, full ${top.rasters[0].bytesRead}`);
  });

  test('CLI: --overview tiles that level; a missing level fails naming the file', async () => {
    const tmp = tempDir();
    try {
      const db = join(tmp.path, 'db');
      const ok = await runCli(['--db', db, 'ingest', OLINDA, '--overview', '2', '--tile-size', '8', '--json']);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(lastJson<IngestSummary>(ok.stdout).tilesWritten, 11 * 11);
      const missing = await runCli(['--db', db, 'ingest', OLINDA, '--overview', '9']);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /L7_ETMs_olinda_brazil\.tif: --overview 9 does not exist: the file has 4 overview\(s\), 1 to 4/);
      const bad = await runCli(['--db', db, 'ingest', OLINDA, '--overview', 'two']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /--overview must be an integer >= 0, got 'two'/);
    } finally {
      tmp.cleanup();
    }
  });
});

const rangeServer = (root: string) => startRangeServer(root);

const tileKey = (t: TileRecord) => JSON.stringify({ ...t, id: 0, rasterId: 0 });

describe('HTTP COG through Range requests', { skip: dataMissing() }, () => {
  test('catalog equals the local file one, with fewer bytes than the file', async () => {
    const { server, base, sent } = await rangeServer(DATA_DIR);
    const store = await embeddedStore();
    try {
      const url = `${base}/naip-northdakota/m_4709963_se_14_1_20090818.tif`;
      const remote = await ingest(store, [url], { tileSize: 32 });
      assert.equal(remote.failed, 0, JSON.stringify(remote.rasters));
      const size = statSync(NAIP).size;
      assert.ok(sent() < size, `transferred ${sent()} bytes of ${size}`);
      const local = await ingest(store, [NAIP], { tileSize: 32, force: true });
      const [r, l] = [(await store.rasterByUri(url))!, (await store.rasterByUri(NAIP))!];
      const strip = (x: typeof r) => ({ ...x, id: 0, uri: '', contentHash: '', ingestedAt: '' });
      assert.deepEqual(strip(r), strip(l));
      assert.deepEqual((await store.tilesOfRaster(r.id)).map(tileKey), (await store.tilesOfRaster(l.id)).map(tileKey));
      assert.equal(local.tilesWritten, remote.tilesWritten);
      // The ETag makes an unchanged remote raster cheap to recognise.
      assert.equal((await ingest(store, [url], { tileSize: 32 })).unchanged, 1);
    } finally {
      server.close();
    }
  });

  test('blocks read together share range requests, and the catalog is the same', async () => {
    const { server, base, requests } = await rangeServer(DATA_DIR);
    const store = await embeddedStore();
    try {
      // 8 bands in 256-pixel tiles: 11 x 9 tiles per band, each its own block.
      const path = join(DATA_DIR, 'northcarolina-sentinel2/s2b_l1c_20181013_B01-B08_stack.tif');
      const raster = await openRaster(path);
      const blocks = Math.ceil(raster.width / raster.blockWidth) * Math.ceil(raster.height / raster.blockHeight) * (raster.interleave === 'band' ? raster.bandCount : 1);
      await raster.close();
      const url = `${base}/northcarolina-sentinel2/s2b_l1c_20181013_B01-B08_stack.tif`;
      const remote = await ingest(store, [url], { tileSize: 32 });
      assert.equal(remote.failed, 0, JSON.stringify(remote.rasters));
      assert.ok(requests() * 5 < blocks, `${requests()} requests for ${blocks} blocks`);
      const local = await ingest(store, [path], { tileSize: 32, force: true });
      assert.equal(local.tilesWritten, remote.tilesWritten);
      const [r, l] = [(await store.rasterByUri(url))!, (await store.rasterByUri(path))!];
      assert.deepEqual(r.bandStats, l.bandStats);
      assert.deepEqual((await store.tilesOfRaster(r.id)).map(tileKey), (await store.tilesOfRaster(l.id)).map(tileKey));
    } finally {
      server.close();
    }
  });

  test('a server that fails in the middle of the blocks fails that raster cleanly', async () => {
    const file = 'zion-landsat8-nlcd/landsat8_zion_20150818_B2B3B4B5.tif';
    const half = statSync(join(DATA_DIR, file)).size / 2;
    const inner = await rangeServer(DATA_DIR);
    // Headers come through; any range reaching into the second half of the file gets a 503.
    const proxy = createServer(async (req, res) => {
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
      if (m && Number(m[2]) >= half) {
        res.writeHead(503).end();
        return;
      }
      const upstream = await fetch(`${inner.base}${req.url}`, { headers: req.headers.range ? { range: req.headers.range } : {} });
      res.writeHead(upstream.status, Object.fromEntries(upstream.headers));
      res.end(Buffer.from(await upstream.arrayBuffer()));
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const store = await embeddedStore();
    try {
      const url = `http://127.0.0.1:${(proxy.address() as { port: number }).port}/${file}`;
      const summary = await ingest(store, [url], { tileSize: 32 });
      assert.equal(summary.failed, 1);
      const [o] = summary.rasters;
      assert.ok(o.status === 'failed' && /HTTP 503/.test(o.error), JSON.stringify(o));
      assert.equal(await store.rasterByUri(url), undefined);
    } finally {
      proxy.close();
      inner.server.close();
    }
  });
});

/** A minimal little-endian classic TIFF (one strip) with whatever tags a bad-input case needs. */
function craftTiff(tags: Record<number, number>, extraGeo?: { epsg: number }, hide: number[] = []): Buffer {
  const base = {
    height: 4, width: 4, BitsPerSample: [8], SampleFormat: [1], SamplesPerPixel: 1, PhotometricInterpretation: 1,
    ...(extraGeo ? { ModelPixelScale: [30, 30, 0], ModelTiepoint: [0, 0, 0, 500000, 4000000, 0], GTModelTypeGeoKey: 1, ProjectedCSTypeGeoKey: extraGeo.epsg } : {}),
  };
  const buf = Buffer.from(writeArrayBuffer(new Uint8Array(16).fill(7), base as never));
  const le = buf[0] === 0x49; // geotiff.js writes big-endian ('MM'); read either
  const u16 = (at: number) => (le ? buf.readUInt16LE(at) : buf.readUInt16BE(at));
  const ifd = le ? buf.readUInt32LE(4) : buf.readUInt32BE(4);
  for (let i = 0; i < u16(ifd); i++) {
    const at = ifd + 2 + i * 12;
    const tag = u16(at);
    // Renaming a tag to a private number hides it (geotiff.js writes georeferencing by default).
    if (hide.includes(tag)) (le ? buf.writeUInt16LE(65000 + i, at) : buf.writeUInt16BE(65000 + i, at));
    if (!(tag in tags)) continue;
    if (u16(at + 2) === 3) (le ? buf.writeUInt16LE(tags[tag], at + 8) : buf.writeUInt16BE(tags[tag], at + 8));
    else (le ? buf.writeUInt32LE(tags[tag], at + 8) : buf.writeUInt32BE(tags[tag], at + 8));
  }
  return buf;
}

describe('bad input: one clear line per file, the batch goes on, nothing left in the store', { skip: dataMissing() }, () => {
  let tmp: ReturnType<typeof tempDir>;
  let files: Record<string, string>;
  let http: Awaited<ReturnType<typeof rangeServer>>;
  let silent: Server;
  let refusedUrl: string;
  before(async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    refusedUrl = `http://127.0.0.1:${(closed.address() as { port: number }).port}/refused.tif`;
    await new Promise((r) => closed.close(r));
    tmp = tempDir();
    const p = (name: string) => join(tmp.path, name);
    files = {};
    const write = (name: string, data: Buffer | string) => {
      writeFileSync(p(name), data);
      files[name] = p(name);
    };
    write('not-a-tiff.tif', 'hello, this is text and not an image\n'.repeat(50));
    write('empty.tif', '');
    write('zero-size.tif', craftTiff({ 256: 0 }, { epsg: 32612 }));
    write('unknown-epsg.tif', craftTiff({}, { epsg: 32999 }));
    write('jpeg2000.tif', craftTiff({ 259: 34712 }, { epsg: 32612 }));
    write('ungeoreferenced.tif', craftTiff({}, undefined, [33550, 33922, 34264, 34735]));
    write('complex.tif', craftTiff({ 339: 5 }, { epsg: 32612 }));
    const zion = readFileSync(ZION);
    write('truncated-half.tif', zion.subarray(0, zion.length >> 1));
    write('truncated-header.tif', zion.subarray(0, 300));
    const flipped = Buffer.from(zion);
    for (let i = 0; i < 64; i++) {
      const at = Math.floor(zion.length * (0.3 + i * 0.01));
      flipped[at] ^= 0xff;
    }
    write('flipped.tif', flipped);
    const naip = Buffer.from(readFileSync(NAIP));
    for (let at = naip.length - 5000; at < naip.length - 4000; at += 10) naip[at] ^= 0x5a;
    write('flipped-naip.tif', naip);
    http = await rangeServer(DATA_DIR);
    silent = createServer(() => {}); // accepts and never answers
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  });
  after(() => {
    http?.server.close();
    silent?.closeAllConnections();
    silent?.close();
    tmp?.cleanup();
  });

  test('each case fails with its own message, in process', async () => {
    const store = await embeddedStore();
    const silentUrl = `http://127.0.0.1:${(silent.address() as { port: number }).port}/x.tif`;
    const cases: [string, RegExp][] = [
      [files['not-a-tiff.tif'], /not a TIFF/],
      [files['empty.tif'], /empty file/],
      [files['zero-size.tif'], /zero-size/],
      [files['unknown-epsg.tif'], /unknown EPSG code 32999/],
      [files['jpeg2000.tif'], /unsupported compression JPEG 2000 \(supported: none, LZW, DEFLATE, PackBits/],
      [files['complex.tif'], /unsupported sample format/],
      [files['ungeoreferenced.tif'], /not georeferenced.*--allow-ungeoreferenced/],
      [files['truncated-half.tif'], /truncated/],
      [files['truncated-header.tif'], /truncated|corrupt/],
      [files['flipped.tif'], /corrupt/],
      [files['flipped-naip.tif'], /corrupt/],
      [join(tmp.path, 'missing.tif'), /no such file/],
      [`${http.base}/nope.tif`, /HTTP 404/],
      [refusedUrl, /cannot fetch it from 127.0.0.1:\d+ \(connection failed or timed out/],
      [silentUrl, /cannot fetch it from 127.0.0.1:\d+ \(connection failed or timed out/],
      ['s3://bucket/key.tif', /unsupported URL scheme 's3:'/],
      ['ftp://example.com/a.tif', /unsupported URL scheme 'ftp:'/],
    ];
    let s: IngestSummary;
    try {
      s = await ingest(store, [...cases.map(([f]) => f), NAIP], { timeoutMs: 1000, force: true });
      assert.equal(s.failed, cases.length, JSON.stringify(s.rasters.filter((r) => r.status !== 'failed')));
      assert.equal(s.ingested, 1, 'the good file after the bad ones is ingested');
      for (const [k, [f, re]] of cases.entries()) {
        const o = s.rasters[k];
        assert.equal(o.status, 'failed', f);
        assert.ok(o.status === 'failed' && re.test(o.error) && !o.error.includes('\n'), `${f}: ${o.status === 'failed' ? o.error : ''}`);
        assert.equal(await store.rasterByUri(o.uri), undefined, `nothing stored for ${f}`);
      }
      const allowed = await ingest(store, [files['ungeoreferenced.tif']], { allowUngeoreferenced: true, tileSize: 2 });
      assert.equal(allowed.ingested, 1);
      const rec = (await store.rasterByUri(files['ungeoreferenced.tif']))!;
      assert.equal(rec.georeferenced, false);
      assert.deepEqual(rec.geotransform, [0, 1, 0, 0, 0, 1]);
      assert.equal((await store.tilesOfRaster(rec.id)).length, 4);
    } finally {
      // the shared store closes after all suites
    }
  });

  test('CLI: a line per failed file naming it, exit code 1, JSON summary; tile renders a PNG', async () => {
    const db = join(tmp.path, 'clidb');
    const res = await runCli(['--db', db, 'ingest', files['truncated-half.tif'], 'gopher://x/y.tif', NAIP, '--tile-size', '64', '--json']);
    assert.equal(res.code, 1, res.stderr);
    const summary = lastJson<IngestSummary>(res.stdout);
    assert.equal(summary.ingested, 1);
    assert.equal(summary.failed, 2);
    assert.ok(typeof summary.seconds === 'number' && summary.tilesWritten > 0 && summary.tilesSkippedEdge > 0);
    assert.equal(summary.inflate, INFLATE_ENGINE);
    const lines = res.stderr.trim().split('\n').filter((l) => l.startsWith('tilevec:'));
    assert.equal(lines.length, 3, res.stderr);
    assert.match(lines[2], /2 of 3 inputs failed/);
    assert.ok(lines[0].includes('truncated-half.tif') && lines[1].includes('gopher://x/y.tif'));

    const png = join(tmp.path, 'tile.png');
    const tileRes = await runCli(['--db', db, 'tile', '1', '--png', png, '--bands', '4,3,2', '--json']);
    assert.equal(tileRes.code, 0, tileRes.stderr);
    const bytes = readFileSync(png);
    assert.equal(bytes.subarray(1, 4).toString(), 'PNG');
    assert.equal(bytes.readUInt32BE(16), 64);
    assert.deepEqual(lastJson(tileRes.stdout).bands, [4, 3, 2]);
  });
});

describe('ingest on the PostgreSQL server engine', async () => {
  const skip = dataMissing() || (await serverSkip());
  test('writes the same catalog as the embedded store', { skip }, async () => {
    const { url, drop } = await freshServerDb();
    const [server, embedded] = [await Store.open(url), await embeddedStore()];
    try {
      const file = join(DATA_DIR, 'virginia-naip-landsat8/naip_va_1m_RGBN.tif');
      const a = await ingest(server, [file]);
      const b = await ingest(embedded, [file], { force: true });
      assert.equal(a.ingested, 1);
      assert.equal(a.tilesWritten, b.tilesWritten);
      const [ra, rb] = [(await server.rasterByUri(file))!, (await embedded.rasterByUri(file))!];
      assert.deepEqual((await server.tilesOfRaster(ra.id)).map(tileKey), (await embedded.tilesOfRaster(rb.id)).map(tileKey));
    } finally {
      await server.close();
      await drop();
    }
  });
});
