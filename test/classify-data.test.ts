import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import proj4 from 'proj4';
import { Store, type NewTile } from '../src/store/index.ts';
import { bandStatsFeatures, crossValidate, importLabels, majorityLabel, tilePixelReader } from '../src/classify/index.ts';
import { WGS84, openRaster } from '../src/ingest/index.ts';
import { UserError } from '../src/errors.ts';
import { DATA_DIR, dataMissing, tempDir } from './helpers.ts';

const zion = join(DATA_DIR, 'zion-landsat8-nlcd');
const nc = join(DATA_DIR, 'northcarolina-sentinel2');
const va = join(DATA_DIR, 'virginia-naip-landsat8');

/**
 * Registers a real raster with a regular tile grid, as ingest would (ingest is another stage; these tests need
 * only the catalogue rows): footprints are the tile corners carried to lon/lat.
 */
async function registerGrid(store: Store, path: string, size: number, stride: number, area?: { x0: number; y0: number; x1: number; y1: number }): Promise<number> {
  const r = await openRaster(path);
  await r.close();
  const toWgs = proj4(r.crs!.proj4, WGS84);
  const gt = r.geotransform;
  const lonLat = (c: number, row: number) => toWgs.forward([gt[0] + c * gt[1], gt[3] + row * gt[5]]);
  const ring = (x: number, y: number, w: number, h: number) => [[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]].map(([c, row]) => lonLat(c, row));
  const tiles: NewTile[] = [];
  const { x0, y0, x1, y1 } = area ?? { x0: 0, y0: 0, x1: r.width, y1: r.height };
  for (let y = y0; y + size <= y1; y += stride) {
    for (let x = x0; x + size <= x1; x += stride) {
      const coords = ring(x, y, size, size);
      const bbox: [number, number, number, number] = [Math.min(...coords.map((p) => p[0])), Math.min(...coords.map((p) => p[1])), Math.max(...coords.map((p) => p[0])), Math.max(...coords.map((p) => p[1]))];
      tiles.push({ x, y, size, footprint: { type: 'Polygon', coordinates: [coords] }, centerLon: (bbox[0] + bbox[2]) / 2, centerLat: (bbox[1] + bbox[3]) / 2, bbox, validFraction: 1 });
    }
  }
  return store.replaceRaster({
    uri: path, contentHash: 'test', sizeBytes: 1, width: r.width, height: r.height, bandCount: r.bandCount, dtype: 'uint16', nodata: r.nodata,
    epsg: r.epsg, crsDef: r.crs!.proj4, geotransform: [...gt], georeferenced: true, footprint: { type: 'Polygon', coordinates: [ring(0, 0, r.width, r.height)] },
    bandStats: Array.from({ length: r.bandCount }, (_, i) => ({ band: i + 1, count: 1, min: 0, max: 1, mean: 0, std: 1, p2: 0, p98: 1 })), tileSize: size, stride,
  }, tiles);
}

describe('real label data', { skip: dataMissing() }, () => {
  let dir: ReturnType<typeof tempDir>;
  let store: Store;
  before(async () => {
    dir = tempDir('tilevec-classify-data-');
    store = await Store.open(join(dir.path, 'db'));
  });
  after(async () => {
    await store?.close();
    dir?.cleanup();
  });

  test('Zion NLCD on the Landsat grid: tiles take the majority class of their pixels, and band statistics classify them', async () => {
    const rasterId = await registerGrid(store, join(zion, 'landsat8_zion_20150818_B2B3B4B5.tif'), 32, 32);
    const nlcdPath = join(zion, 'nlcd2011_zion_8class_on_landsat_grid.tif');
    const result = await importLabels(store, nlcdPath, { name: 'nlcd', classNames: { 1: 'water', 2: 'developed', 3: 'barren', 4: 'forest', 5: 'shrubland', 6: 'herbaceous', 7: 'cultivated', 8: 'wetlands' } });
    const labels = await store.labelsOf(result.labelSet.id);
    assert.ok(labels.length > 800, `only ${labels.length} of ${result.tiles} tiles labelled`);
    for (const l of labels) assert.ok(l.classId >= 1 && l.classId <= 8 && l.purity >= 0.5);
    // Independent check: the label raster is on the image grid, so a tile's majority is that of the same window.
    const nlcd = await openRaster(nlcdPath);
    const tiles = await store.tilesOfRaster(rasterId);
    for (const l of labels.filter((_, i) => i % 97 === 0)) {
      const t = tiles.find((t) => t.id === l.tileId)!;
      const [window] = (await nlcd.readWindow({ x: t.x, y: t.y, w: 32, h: 32 }, [1])).data;
      const expected = majorityLabel(window, (v) => v !== 255)!;
      assert.equal(l.classId, expected.classId);
      assert.ok(Math.abs(l.purity - expected.purity) < 1e-6);
    }
    await nlcd.close();
    const byId = new Map(tiles.map((t) => [t.id, t]));
    const labelled = labels.map((l) => byId.get(l.tileId)!);
    const features = await bandStatsFeatures(tilePixelReader((id) => store.raster(id)))(labelled);
    const spatial = crossValidate(features, labels.map((l) => l.classId), labelled, { classifier: 'logreg', split: 'spatial', folds: 5 });
    const majorityShare = Math.max(...result.perClass.map((c) => c.tiles)) / labels.length;
    assert.ok(spatial.accuracy > majorityShare - 0.05, `band statistics accuracy ${spatial.accuracy} vs majority class share ${majorityShare}`);
  });

  test('CCAP labels that do not overlap the Sentinel-2 image: the error gives both extents', async () => {
    await registerGrid(store, join(nc, 's2b_l1c_20181013_B01-B08_stack.tif'), 64, 64);
    await assert.rejects(importLabels(store, join(nc, 'ccap_labels_outerbanks_30m_no_matching_imagery.tif'), { name: 'ccap' }), (err: Error) => {
      assert.ok(err instanceof UserError, String(err));
      // The label raster (Albers, user-defined CRS) lies around 75-76°W, 35-36°N; the image near 76.6°W, 34.6°N.
      assert.match(err.message, /covers \[-76\.\d+, 34\.9\d+, -75\.2\d+, 36\.1\d+\].*overlaps none.*s2b_l1c_20181013_B01-B08_stack\.tif \[-76\.71619, 34\.56746, -76\.47998, 34\.73014\]/);
      return true;
    });
  });

  test('rcr_landcover.shp (EPSG:32618 polygons) labels Sentinel-2 tiles after reprojection to lon/lat', async () => {
    // The hand-drawn polygons are small (130 to 9900 m²), so 8-px (64 m) tiles over the reserve only.
    await registerGrid(store, join(nc, 's2b_l1c_20181013_B01-B08_stack.tif'), 8, 8, { x0: 120, y0: 200, x1: 1000, y1: 720 });
    const shp = join(nc, 'rcr_landcover.shp');
    await assert.rejects(importLabels(store, shp, { name: 'rcr', classField: 'landcover' }), /no class field 'landcover'.*Classname, Classvalue/);
    const result = await importLabels(store, shp, { name: 'rcr', classField: 'Classname' });
    assert.deepEqual(result.labelSet.classes.map((c) => c.name), ['Emergent Wetland', 'Forested Wetland', 'Herbaceous', 'Sand', 'Subtidal Haline', 'WetSand']);
    assert.ok(result.labelled > 0, 'no Sentinel-2 tile labelled from the polygons');
    const tiles = new Map((await store.tilesInBbox(undefined, { limit: 100000 })).map((t) => [t.id, t]));
    for (const l of await store.labelsOf(result.labelSet.id)) {
      const t = tiles.get(l.tileId)!;
      assert.ok(t.centerLon > -76.70 && t.centerLon < -76.60 && t.centerLat > 34.68 && t.centerLat < 34.72, `tile ${t.id} at ${t.centerLon}, ${t.centerLat} is outside the Rachel Carson Reserve`);
    }
  });

  test('Elkton GeoJSON polygons label Landsat tiles; the class comes from the id field', async () => {
    await registerGrid(store, join(va, 'landsat8_elkton_va_B1-7_9-11.tif'), 8, 8);
    const result = await importLabels(store, join(va, 'landsat8_elkton_va_labels.geojson'), { name: 'elkton', classField: 'id', classNames: { 0: 'field', 1: 'forest', 2: 'town' } });
    assert.deepEqual(result.labelSet.classes, [{ id: 0, name: 'field' }, { id: 1, name: 'forest' }, { id: 2, name: 'town' }]);
    assert.ok(result.labelled >= 3, `${result.labelled} Elkton tiles labelled`);
  });
});
