import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { acquisitionDate, dateFromFileName } from '../src/ingest/acquisition-date.ts';
import { crsFromEpsg, ingest, openRaster, type Raster } from '../src/ingest/index.ts';
import { Store } from '../src/store/index.ts';
import { startServer, OpenRasters, RasterMapTiles, RasterThumbnails, type RunningServer } from '../src/serve/index.ts';
import { mercatorTileBounds, warpToMercator, type Resampling } from '../src/serve/map-tiles.ts';
import { testConfig } from './serve-fixtures.ts';
import { DATA_DIR, dataMissing, tempDir } from './helpers.ts';

const NAIP = join(DATA_DIR, 'naip-northdakota');
const NAIP_2009 = join(NAIP, 'm_4709963_se_14_1_20090818.tif');
const NAIP_2010 = join(NAIP, 'm_4709963_se_14_1_20100629.tif');
const ZION = join(DATA_DIR, 'zion-landsat8-nlcd/landsat8_zion_20150818_B2B3B4B5.tif');

describe('acquisition dates', () => {
  test('file names: NAIP, Landsat and Sentinel products; digits that are not a date are not one', () => {
    assert.equal(dateFromFileName('/d/m_4709963_se_14_1_20090818.tif'), '2009-08-18');
    assert.equal(dateFromFileName('https://h/x/landsat8_zion_20150818_B2B3B4B5.tif?sig=1'), '2015-08-18');
    assert.equal(dateFromFileName('s2b_l1c_20181013_B01-B08_stack.tif'), '2018-10-13');
    assert.equal(dateFromFileName('scene-2021-03-04.tif'), '2021-03-04');
    assert.equal(dateFromFileName('LC80380342015230LGN00.tif'), null, 'a run of 14 digits holds no date');
    assert.equal(dateFromFileName('tile_20091399.tif'), null, 'month 13');
    assert.equal(dateFromFileName('/data/20090818/plain.tif'), null, 'only the file name counts');
  });

  test('GDAL metadata comes first, the TIFF DateTime tag last', () => {
    const xml = '<GDALMetadata><Item name="CLOUD">3</Item><Item name="ACQUISITIONDATE">2012-07-31T17:01:02Z</Item></GDALMetadata>';
    assert.deepEqual(acquisitionDate('m_1_20090818.tif', { gdalMetadata: xml, dateTime: '2020:01:02 03:04:05' }), { date: '2012-07-31', source: 'gdal-metadata' });
    assert.deepEqual(acquisitionDate('m_1_20090818.tif', { dateTime: '2020:01:02 03:04:05' }), { date: '2009-08-18', source: 'file-name' });
    assert.deepEqual(acquisitionDate('plain.tif', { dateTime: '2020:01:02 03:04:05' }), { date: '2020-01-02', source: 'tiff-datetime' });
    assert.equal(acquisitionDate('plain.tif', { gdalMetadata: '<GDALMetadata><Item name="DATE">soon</Item></GDALMetadata>' }), null);
  });

  test('read from real files written by GDAL: metadata item, DateTime tag, file name', { skip: dataMissing() }, async () => {
    const dir = tempDir('tilevec-dates-');
    try {
      const withItem = join(dir.path, 'plain-a.tif');
      const withTag = join(dir.path, 'plain-b.tif');
      execFileSync('gdal_translate', ['-q', '-mo', 'ACQUISITIONDATE=2011-05-06', NAIP_2009, withItem]);
      execFileSync('gdal_translate', ['-q', '-mo', 'TIFFTAG_DATETIME=2013:02:03 04:05:06', NAIP_2009, withTag]);
      const named = join(dir.path, 'copy_20140720.tif');
      copyFileSync(NAIP_2009, named);
      const dates = await Promise.all([withItem, withTag, named].map(async (p) => {
        const r = await openRaster(p);
        await r.close();
        return r.acquired;
      }));
      assert.deepEqual(dates, [
        { date: '2011-05-06', source: 'gdal-metadata' },
        { date: '2013-02-03', source: 'tiff-datetime' },
        { date: '2014-07-20', source: 'file-name' },
      ]);
    } finally {
      dir.cleanup();
    }
  });
});

/** The XYZ tile containing a WGS84 point. */
function tileAt(lon: number, lat: number, z: number): { z: number; x: number; y: number } {
  const n = 2 ** z;
  const rad = (lat * Math.PI) / 180;
  return { z, x: Math.floor(((lon + 180) / 360) * n), y: Math.floor(((1 - Math.log(Math.tan(rad) + 1 / Math.cos(rad)) / Math.PI) / 2) * n) };
}

/** gdalwarp of the same tile bounds to EPSG:3857, exact transformer, kernels not widened when downsampling; bands + alpha. */
async function gdalTile(src: string, tile: { z: number; x: number; y: number }, resampling: Resampling, bands: number[], dir: string) {
  const out = join(dir, `gdal-${tile.z}-${tile.x}-${tile.y}-${resampling}.tif`);
  execFileSync('gdalwarp', ['-q', '-overwrite', '-t_srs', 'EPSG:3857', '-te', ...mercatorTileBounds(tile.z, tile.x, tile.y).map(String), '-ts', '256', '256',
    '-r', resampling === 'nearest' ? 'near' : 'bilinear', '-et', '0', '-wo', 'XSCALE=1', '-wo', 'YSCALE=1', '-dstalpha', '-ot', 'Float32', src, out]);
  const raster = await openRaster(out, { cacheBytes: 0 });
  try {
    const all = await raster.readWindow({ x: 0, y: 0, w: 256, h: 256 });
    return { data: bands.map((b) => all.data[b - 1]), alpha: all.data[all.data.length - 1] };
  } finally {
    await raster.close();
  }
}

interface Comparison { both: number; maskAgreement: number; meanAbs: number; p99Abs: number; exactShare: number }

async function compareWithGdal(raster: Raster, src: string, tile: { z: number; x: number; y: number }, resampling: Resampling, bands: number[], dir: string): Promise<Comparison> {
  const mine = await warpToMercator(raster, tile, { bands, resampling });
  assert.ok(mine, 'the tile touches the raster');
  const ref = await gdalTile(src, tile, resampling, bands, dir);
  let agree = 0;
  const diffs: number[] = [];
  for (let p = 0; p < 256 * 256; p++) {
    const gdalValid = ref.alpha[p] > 0;
    if (gdalValid === (mine.valid[p] === 1)) agree++;
    if (!gdalValid || !mine.valid[p]) continue;
    for (let b = 0; b < bands.length; b++) diffs.push(Math.abs(mine.data[b][p] - ref.data[b][p]));
  }
  diffs.sort((a, b) => a - b);
  return {
    both: diffs.length / bands.length,
    maskAgreement: agree / (256 * 256),
    meanAbs: diffs.reduce((s, d) => s + d, 0) / diffs.length,
    p99Abs: diffs[Math.floor(diffs.length * 0.99)],
    exactShare: diffs.filter((d) => d < 1e-3).length / diffs.length,
  };
}

describe('XYZ tiles against gdalwarp', { skip: dataMissing() }, () => {
  const dir = tempDir('tilevec-xyz-');
  let naip: Raster;
  let zion: Raster;
  before(async () => {
    naip = await openRaster(NAIP_2009);
    zion = await openRaster(ZION);
  });
  after(async () => {
    await naip?.close();
    await zion?.close();
    dir.cleanup();
  });

  // NAIP at 5 m near 47° N: zoom 14 is ~6.5 m a map pixel (downsampling), 16 ~1.6 m (upsampling).
  for (const z of [14, 16]) {
    test(`NAIP zoom ${z}, nearest: the same source pixel almost everywhere`, async () => {
      const c = await compareWithGdal(naip, NAIP_2009, tileAt(-99.16, 47.02, z), 'nearest', [1, 2, 3, 4], dir.path);
      console.log(`NAIP z${z} nearest`, JSON.stringify(c));
      assert.ok(c.both > 10_000, 'most of the tile is compared');
      assert.ok(c.maskAgreement >= 0.995, `coverage agrees on ${c.maskAgreement}`);
      // Exact agreement but for pixels whose centre falls within MAX_APPROX_ERROR of a source pixel edge.
      assert.ok(c.exactShare >= 0.99, `identical samples: ${c.exactShare}`);
    });
    test(`NAIP zoom ${z}, bilinear: within resampling tolerance`, async () => {
      const c = await compareWithGdal(naip, NAIP_2009, tileAt(-99.16, 47.02, z), 'bilinear', [1, 2, 3, 4], dir.path);
      console.log(`NAIP z${z} bilinear`, JSON.stringify(c));
      assert.ok(c.maskAgreement >= 0.99, `coverage agrees on ${c.maskAgreement}`);
      assert.ok(c.meanAbs <= 0.05, `mean |difference| ${c.meanAbs} DN`);
      assert.ok(c.p99Abs <= 0.5, `99th percentile |difference| ${c.p99Abs} DN`);
    });
  }

  test('a tile on the raster edge is transparent outside it, as GDAL leaves it empty (Zion, UTM 12N, uint16 with nodata)', async () => {
    // The raster's north-west corner, so the tile is part raster, part outside.
    const [lon, lat] = zion.pixelToLonLat(0, 0);
    const c = await compareWithGdal(zion, ZION, tileAt(lon, lat, 13), 'nearest', [3, 2, 1], dir.path);
    console.log('Zion edge z13 nearest', JSON.stringify(c));
    assert.ok(c.both > 1000 && c.both < 256 * 256 * 0.9, `part of the tile is covered (${c.both} px)`);
    assert.ok(c.maskAgreement >= 0.995, `coverage agrees on ${c.maskAgreement}`);
    assert.ok(c.exactShare >= 0.99, `identical samples: ${c.exactShare}`);
  });

  test('a tile far from the raster is null, and a zoom that would read too many source pixels is a 422', async () => {
    assert.equal(await warpToMercator(naip, tileAt(10, 10, 12), { bands: [1], resampling: 'nearest' }), null);
    // A fake raster of 100k x 100k pixels at 1 m in Web Mercator: zoom 8 would read all of it.
    const huge = { width: 100_000, height: 100_000, crs: crsFromEpsg(3857), geotransform: [0, 1, 0, 100_000, 0, -1], readWindow: () => { throw new Error('must not read'); } } as unknown as Raster;
    await assert.rejects(warpToMercator(huge, { z: 8, x: 128, y: 127 }, { bands: [1], resampling: 'nearest' }), (err: Error & { status?: number }) => err.status === 422 && /zoom 8 is too far out/.test(err.message));
  });
});

describe('raster routes over an ingested catalogue', { skip: dataMissing() }, () => {
  let store: Store;
  let server: RunningServer;
  let rasters: OpenRasters;
  let ids: number[];

  before(async () => {
    store = await Store.open('memory://');
    const summary = await ingest(store, [NAIP_2009, NAIP_2010, ZION], { tileSize: 64 });
    ids = summary.rasters.map((r) => ('rasterId' in r ? r.rasterId : NaN));
    rasters = new OpenRasters(store);
    const thumbnails = new RasterThumbnails(store, rasters);
    const mapTiles = new RasterMapTiles(rasters);
    server = await startServer({
      store, config: testConfig(), renderThumbnail: (t) => thumbnails.render(t), renderMapTile: (id, t, o) => mapTiles.render(id, t, o),
    });
  });
  after(async () => {
    await server?.close();
    await rasters?.close();
    await store?.close();
  });

  test('GET /v1/rasters lists names, dates, sizes, bands, CRS, footprints, tile counts, in date order', async () => {
    const res = await fetch(`${server.url}/v1/rasters`);
    assert.equal(res.status, 200);
    const body = await res.json() as { bbox: number[]; features: { id: number; bbox: number[]; properties: Record<string, unknown> }[] };
    assert.deepEqual(body.features.map((f) => f.properties.date), ['2009-08-18', '2010-06-29', '2015-08-18']);
    const first = body.features[0].properties;
    const tiles = await store.tilesOfRaster(ids[0]);
    assert.deepEqual(
      { name: first.name, dateSource: first.dateSource, width: first.width, height: first.height, bandCount: first.bandCount, dtype: first.dtype, epsg: first.epsg, tileCount: first.tileCount },
      { name: 'm_4709963_se_14_1_20090818.tif', dateSource: 'file-name', width: 934, height: 724, bandCount: 4, dtype: 'uint8', epsg: 26914, tileCount: tiles.length },
    );
    assert.equal(first.tiles, `/v1/rasters/${ids[0]}/tiles/{z}/{x}/{y}.png`);
    assert.deepEqual(first.zoom, { min: 0, max: 15 }, '5 m NAIP: zoom 15 is the first at least as fine');
    // The collection's bbox is the union of the footprints'.
    assert.deepEqual(body.bbox, [0, 1, 2, 3].map((i) => (i < 2 ? Math.min : Math.max)(...body.features.map((f) => f.bbox[i]))));
    const nearNaip = await (await fetch(`${server.url}/v1/rasters?bbox=-99.2,47,-99.1,47.1`)).json() as { features: unknown[] };
    assert.equal(nearNaip.features.length, 2, 'the bbox filter keeps the two NAIP dates');
  });

  test('GET /v1/rasters/{id}; unknown id 404, bad id 400, unknown parameter 400', async () => {
    const one = await (await fetch(`${server.url}/v1/rasters/${ids[2]}`)).json() as { properties: Record<string, unknown> };
    assert.equal(one.properties.name, 'landsat8_zion_20150818_B2B3B4B5.tif');
    assert.equal((await fetch(`${server.url}/v1/rasters/999999`)).status, 404);
    assert.equal((await fetch(`${server.url}/v1/rasters/abc`)).status, 400);
    assert.equal((await fetch(`${server.url}/v1/rasters?bbx=1,2,3,4`)).status, 400);
  });

  test('tile features carry rasterId, raster name and date, with coordinates rounded to 7 decimals', async () => {
    const page = await (await fetch(`${server.url}/v1/tiles?limit=3`)).json() as { features: { geometry: { coordinates: number[][][] }; properties: Record<string, unknown> }[] };
    const p = page.features[0].properties;
    assert.deepEqual([p.rasterId, p.rasterName, p.date], [ids[0], 'm_4709963_se_14_1_20090818.tif', '2009-08-18']);
    for (const v of page.features.flatMap((f) => f.geometry.coordinates.flat(2))) assert.equal(Math.round(v * 1e7) / 1e7, v);
  });

  test('map tile PNG: 256 px, transparent outside the raster, the stored stretch, cache headers and 304', async () => {
    const [lon, lat] = naip().pixelToLonLat(naip().width, naip().height);
    const tile = tileAt(lon, lat, 15); // the raster's south-east corner: partly outside
    const url = `${server.url}/v1/rasters/${ids[0]}/tiles/${tile.z}/${tile.x}/${tile.y}.png`;
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/png');
    assert.match(res.headers.get('cache-control') ?? '', /max-age=\d+/);
    const etag = res.headers.get('etag')!;
    assert.ok(etag);
    const png = PNG.sync.read(Buffer.from(await res.arrayBuffer()));
    assert.deepEqual([png.width, png.height], [256, 256]);
    let transparent = 0;
    for (let p = 3; p < png.data.length; p += 4) if (png.data[p] === 0) transparent++;
    assert.ok(transparent > 1000 && transparent < 256 * 256 - 1000, `part transparent (${transparent} px)`);
    // The PNG is the warped samples through the raster's stored p2..p98 stretch.
    const record = await store.raster(ids[0]);
    const raw = (await warpToMercator(naip(), tile, { bands: [1, 2, 3], resampling: 'bilinear' }))!;
    const s = record.bandStats[0];
    const p0 = raw.valid.indexOf(1);
    assert.equal(png.data[p0 * 4], Math.round(255 * Math.min(1, Math.max(0, (raw.data[0][p0] - s.p2) / (s.p98 - s.p2)))));
    const again = await fetch(url, { headers: { 'If-None-Match': etag } });
    assert.equal(again.status, 304);
    const falseColour = await fetch(`${url}?bands=4,3,2&resampling=nearest`);
    assert.equal(falseColour.status, 200);
    assert.notEqual(falseColour.headers.get('etag'), etag);
    const outside = PNG.sync.read(Buffer.from(await (await fetch(`${server.url}/v1/rasters/${ids[0]}/tiles/15/0/0.png`)).arrayBuffer()));
    assert.ok(outside.data.every((v, i) => i % 4 !== 3 || v === 0), 'a tile away from the raster is all transparent');
  });

  let naipRaster: Raster | undefined;
  const naip = () => naipRaster!;
  before(async () => { naipRaster = await openRaster(NAIP_2009); });
  after(async () => { await naipRaster?.close(); });

  test('map tile errors: band out of range 400, bad zoom or column 400, unknown raster 404', async () => {
    const base = `${server.url}/v1/rasters/${ids[0]}/tiles`;
    assert.equal((await fetch(`${base}/15/7355/11474.png?bands=5,3,2`)).status, 400);
    assert.equal((await fetch(`${base}/15/7355/11474.png?bands=1,2`)).status, 400);
    assert.equal((await fetch(`${base}/25/0/0.png`)).status, 400);
    assert.equal((await fetch(`${base}/3/8/0.png`)).status, 400);
    assert.equal((await fetch(`${base}/15/7355/11474.png?colour=red`)).status, 400);
    assert.equal((await fetch(`${server.url}/v1/rasters/424242/tiles/15/7355/11474.png`)).status, 404);
  });
});
