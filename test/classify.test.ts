import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import proj4 from 'proj4';
import { Store, type NewRaster, type NewTile } from '../src/store/index.ts';
import { crsFromEpsg } from '../src/ingest/index.ts';
import {
  classMapRaster, classifyTiles, labelledTiles, classificationMetrics, createClassifier, crossValidate, deserializeClassifier, fitPca, importLabels,
  labelTilesFromFeatures, majorityLabel, acceptLabel, overlapNeighbours, serializeClassifier, spatialFolds, randomFolds, tilesOverlap,
  writeClassGeoTiff, CLASSIFIER_KINDS, type TilePlace,
} from '../src/classify/index.ts';
import { shuffled, uniform } from '../src/rng.ts';
import { UserError } from '../src/errors.ts';
import { gdalMissing, tempDir } from './helpers.ts';

/** Gaussian blobs: class c is centred at 3 on axis c, noise elsewhere. */
function blobs(n: number, d: number, k: number, seed = 1) {
  const r = uniform(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(r() || 1e-12)) * Math.cos(2 * Math.PI * r());
  const rows: Float32Array[] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % k;
    rows.push(Float32Array.from({ length: d }, (_, j) => (j === c ? 4 : 0) + gauss()));
    labels.push(10 + c); // class ids need not start at 0
  }
  return { rows, labels };
}

/** A w×h grid of tiles of `size` px at `stride` on a UTM 12N raster with 30 m pixels, with WGS84 footprints. */
function utmTiles(cols: number, rows: number, size: number, stride: number, gt = [300000, 30, 0, 4150000, 0, -30]): NewTile[] {
  const toLonLat = proj4(crsFromEpsg(32612).proj4, 'WGS84');
  const tiles: NewTile[] = [];
  for (let j = 0; j < rows; j++) {
    for (let i = 0; i < cols; i++) {
      const x = i * stride;
      const y = j * stride;
      const ring = [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]].map(([c, r]) => toLonLat.forward([gt[0] + c * gt[1], gt[3] + r * gt[5]]));
      const lons = ring.map((p) => p[0]);
      const lats = ring.map((p) => p[1]);
      const bbox: [number, number, number, number] = [Math.min(...lons), Math.min(...lats), Math.max(...lons), Math.max(...lats)];
      tiles.push({ x, y, size, footprint: { type: 'Polygon', coordinates: [ring] }, centerLon: (bbox[0] + bbox[2]) / 2, centerLat: (bbox[1] + bbox[3]) / 2, bbox, validFraction: 1 });
    }
  }
  return tiles;
}

function utmRaster(uri: string, width: number, height: number, tileSize: number, stride: number, gt = [300000, 30, 0, 4150000, 0, -30]): NewRaster {
  const toLonLat = proj4(crsFromEpsg(32612).proj4, 'WGS84');
  const ring = [[0, 0], [width, 0], [width, height], [0, height], [0, 0]].map(([c, r]) => toLonLat.forward([gt[0] + c * gt[1], gt[3] + r * gt[5]]));
  return {
    uri, contentHash: 'x', sizeBytes: 1, width, height, bandCount: 1, dtype: 'uint8', nodata: null, epsg: 32612, crsDef: null, geotransform: gt,
    georeferenced: true, footprint: { type: 'Polygon', coordinates: [ring] }, bandStats: [], tileSize, stride,
  };
}

describe('classifiers', () => {
  const { rows, labels } = blobs(300, 12, 3);
  const tiles: TilePlace[] = rows.map((_, i) => ({ rasterId: 1, x: (i % 20) * 32, y: Math.floor(i / 20) * 32, size: 32, bbox: [i % 20, Math.floor(i / 20), (i % 20) + 1, Math.floor(i / 20) + 1] }));
  for (const kind of CLASSIFIER_KINDS) {
    test(`${kind} learns a separable problem and does clearly worse on shuffled labels`, () => {
      const real = crossValidate(rows, labels, tiles, { classifier: kind, split: 'random', folds: 5 });
      const control = crossValidate(rows, shuffled(labels, uniform(9)), tiles, { classifier: kind, split: 'random', folds: 5 });
      assert.ok(real.accuracy > 0.95, `${kind} accuracy ${real.accuracy}`);
      assert.ok(control.accuracy < 0.5, `${kind} shuffled-label accuracy ${control.accuracy}`);
      const model = createClassifier(kind, { seed: 3 }).fit(rows, labels);
      assert.deepEqual(model.classes, [10, 11, 12]);
      const proba = model.predictProba(rows.slice(0, 5));
      for (const p of proba) assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-9);
      const back = deserializeClassifier(serializeClassifier(model, { model: { id: 1, name: 'm' }, featureSet: 'embedding', dim: 12, classes: [] }));
      assert.deepEqual(back.classifier.predict(rows), model.predict(rows), 'JSON round trip changes predictions');
      assert.equal(back.metadata.model?.name, 'm');
    });
  }

  test('random forest is deterministic for a seed', () => {
    const a = createClassifier('rf', { seed: 5, trees: 10 }).fit(rows, labels).predictProba(rows.slice(0, 20));
    const b = createClassifier('rf', { seed: 5, trees: 10 }).fit(rows, labels).predictProba(rows.slice(0, 20));
    assert.deepEqual(a, b);
  });
});

describe('metrics, PCA, majority', () => {
  test('metrics match a hand count', () => {
    const m = classificationMetrics([1, 1, 1, 2, 2, 3], [1, 1, 2, 2, 2, 1]);
    assert.deepEqual(m.confusion, [[2, 1, 0], [0, 2, 0], [1, 0, 0]]);
    assert.equal(m.accuracy, 4 / 6);
    assert.deepEqual(m.perClass.map((p) => [p.precision, p.recall]), [[2 / 3, 2 / 3], [2 / 3, 1], [0, 0]]);
    assert.ok(Math.abs(m.macroF1 - (2 / 3 + 0.8 + 0) / 3) < 1e-12);
  });

  test('PCA finds the axis of largest variance', () => {
    const r = uniform(2);
    const rows = Array.from({ length: 400 }, () => {
      const t = r() * 10;
      return [t, 2 * t + r() * 0.01, r() * 0.1, 5];
    });
    const pca = fitPca(rows, 2);
    const axis = pca.components[0];
    assert.ok(Math.abs(Math.abs(axis[1] / axis[0]) - 2) < 0.01, `axis ${axis}`);
    assert.ok(pca.variance[0] > 100 * pca.variance[1]);
    const wide = fitPca(Array.from({ length: 60 }, () => Array.from({ length: 300 }, () => r())), 5);
    assert.equal(wide.components.length, 5);
  });

  test('majority label and purity from arrays', () => {
    const valid = (v: number) => v !== 255;
    assert.deepEqual(majorityLabel([1, 1, 2, 255], valid), { classId: 1, purity: 2 / 3, validCount: 3, sampleCount: 4 });
    assert.equal(majorityLabel([255, 255], valid), null);
    assert.equal(majorityLabel([2, 1], valid)!.classId, 1, 'ties go to the lower id');
    assert.equal(acceptLabel(majorityLabel([1, 2, 3, 1], valid), { minPurity: 0.6 }), false);
    assert.equal(acceptLabel(majorityLabel([1, 255, 255, 255], valid), {}), false, 'a sliver of labels labels nothing');
  });
});

test('a class map of 250,000 tiles (past where spreading them into Math.min overflowed the stack)', () => {
  const [cols, rows, size, stride] = [500, 500, 32, 16];
  const raster = { ...utmRaster('big.tif', 8100, 8100, size, stride), id: 1, ingestedAt: '', acquiredOn: null, acquiredFrom: null, overview: 0 };
  // The grid starts at the second column and row: the map's origin is the first tile's, not the raster's.
  const tiles = Array.from({ length: cols * rows }, (_, i) => ({ id: i + 1, x: (1 + (i % cols)) * stride, y: (1 + Math.floor(i / cols)) * stride }));
  const predictions = tiles.map((t) => ({ tileId: t.id, classId: t.id % 3, className: '', probability: 1 }));
  const map = classMapRaster(raster, tiles as never, predictions, [{ id: 0, name: 'a' }, { id: 1, name: 'b' }, { id: 2, name: 'c' }]);
  assert.equal(map.width, cols);
  assert.equal(map.height, rows);
  // Pixel (0, 0) is centred on the tile at (16, 16): its corner is 8 px in, 16 + 8 = 24 px from the raster's.
  assert.deepEqual(map.geotransform, [300000 + 24 * 30, 16 * 30, 0, 4150000 - 24 * 30, 0, -16 * 30]);
  for (const i of [0, 1, cols, cols * rows - 1]) assert.equal(map.bands[0][i], tiles[i].id % 3);
  assert.throws(() => classMapRaster(raster, [], [], []), /has no tiles/);
});

describe('spatial folds', () => {
  // Overlapping tiles: 32 px at stride 16, two rasters of the same place (a second date).
  const tiles: TilePlace[] = [];
  for (const rasterId of [1, 2]) {
    for (let j = 0; j < 20; j++) for (let i = 0; i < 20; i++) tiles.push({ rasterId, x: i * 16, y: j * 16, size: 32, bbox: [i * 16 + 0.001 * rasterId, -(j * 16 + 32), i * 16 + 32, -(j * 16)] });
  }
  test('no tile overlaps a tile on the other side of any fold, and random folds do leak', () => {
    const folds = spatialFolds(tiles, 5, { blockTiles: 3 });
    const neighbours = overlapNeighbours(tiles);
    for (const fold of folds) {
      const test = new Set(fold.test);
      assert.ok(fold.test.length > 0 && fold.train.length > 0);
      for (const i of fold.train) {
        assert.ok(!test.has(i));
        for (const j of neighbours[i]) assert.ok(!test.has(j), `train tile ${i} overlaps test tile ${j}`);
      }
      for (const i of fold.train) for (const j of fold.test) if (tilesOverlap(tiles[i], tiles[j])) assert.fail(`tiles ${i} and ${j} overlap across the split`);
    }
    const leaks = randomFolds(tiles.length, 5).some((fold) => fold.train.some((i) => neighbours[i].some((j) => fold.test.includes(j))));
    assert.ok(leaks, 'random folds should leak through overlapping tiles');
  });
  test('too few blocks is a user error', () => {
    assert.throws(() => spatialFolds(tiles.slice(0, 4), 5), UserError);
  });
});

describe('store-backed import, class map and classification', () => {
  let dir: ReturnType<typeof tempDir>;
  let store: Store;
  let rasterId: number;
  before(async () => {
    dir = tempDir('tilevec-classify-');
    store = await Store.open(join(dir.path, 'db'));
    // 4×3 tiles of 10 px (stride 10) on a 40×30 px raster.
    rasterId = await store.replaceRaster(utmRaster(join(dir.path, 'image.tif'), 40, 30, 10, 10), utmTiles(4, 3, 10, 10));
  });
  after(async () => {
    await store?.close();
    dir?.cleanup();
  });

  test('a hand-checked label raster on a 2× finer grid labels tiles by majority and purity', async () => {
    // Label raster at 15 m: each 10 px tile covers 20×20 label pixels. Tile column i gets class i+1 except:
    // tile (0,0) is 60% class 7 / 40% class 1 (majority 7), tile (1,1) is all nodata, tile (2,2) is 45/45/10 (below 0.5).
    const w = 80, h = 60;
    const values = new Uint8Array(w * h);
    for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) values[r * w + c] = Math.floor(c / 20) + 1;
    for (let r = 0; r < 20; r++) for (let c = 0; c < 12; c++) values[r * w + c] = 7;
    for (let r = 20; r < 40; r++) for (let c = 20; c < 40; c++) values[r * w + c] = 255;
    for (let r = 40; r < 60; r++) for (let c = 40; c < 60; c++) values[r * w + c] = r < 49 ? 4 : r < 58 ? 5 : 6;
    const path = join(dir.path, 'labels.tif');
    writeClassGeoTiff(path, { width: w, height: h, bands: [values], geotransform: [300000, 15, 0, 4150000, 0, -15], epsg: 32612, geographic: false, nodata: 255, colors: new Map() });
    const result = await importLabels(store, path, { name: 'hand', classNames: { 1: 'water', 2: 'forest', 3: 'shrub', 4: 'barren', 5: 'crops', 6: 'wetland', 7: 'developed' } });
    const labels = await store.labelsOf(result.labelSet.id);
    const tiles = await store.tilesOfRaster(rasterId);
    const byXY = new Map(labels.map((l) => { const t = tiles.find((t) => t.id === l.tileId)!; return [`${t.x / 10},${t.y / 10}`, l]; }));
    assert.equal(byXY.get('0,0')?.classId, 7);
    assert.ok(Math.abs(byXY.get('0,0')!.purity - 0.6) < 1e-6);
    assert.equal(byXY.has('1,1'), false, 'all-nodata tile has no label');
    assert.equal(byXY.has('2,2'), false, 'tile below purity has no label');
    assert.equal(byXY.get('3,0')?.classId, 4);
    assert.equal(byXY.get('1,2')?.classId, 2);
    assert.equal(labels.length, 10);
    assert.equal(result.labelSet.classes.find((c) => c.id === 7)?.name, 'developed');
    // The labelled tiles come back by id (one store query), in id order, with their classes.
    const labelled = await labelledTiles(store, 'hand');
    assert.deepEqual(labelled.tiles, tiles.filter((t) => labels.some((l) => l.tileId === t.id)));
    assert.deepEqual(labelled.classIds, labelled.tiles.map((t) => labels.find((l) => l.tileId === t.id)!.classId));
    assert.deepEqual(await store.tilesByIds([tiles[3].id, 999_999, tiles[1].id]), [tiles[1], tiles[3]]);
  });

  test('hand-checked polygons label tiles by containment; a missing class field is an error', async () => {
    const tiles = await store.tilesOfRaster(rasterId);
    const tile = (i: number, j: number) => tiles.find((t) => t.x === i * 10 && t.y === j * 10)!;
    // A polygon exactly over tile (1,0) and the left half of (2,0): (1,0) is fully covered, (2,0) half (coverage 0.5).
    const toLonLat = proj4(crsFromEpsg(32612).proj4, 'WGS84');
    const ring = [[300300, 4150000], [300750, 4150000], [300750, 4149700], [300300, 4149700], [300300, 4150000]].map((p) => toLonLat.forward(p));
    const features = [{ type: 'Feature' as const, properties: { kind: 'marsh' }, geometry: { type: 'Polygon' as const, coordinates: [ring] } },
      { type: 'Feature' as const, properties: { kind: 'sand' }, geometry: { type: 'Point' as const, coordinates: tile(3, 2).footprint.coordinates[0][0].map((v, k) => v + (k === 0 ? 0.0005 : -0.0005)) } }];
    const labels = labelTilesFromFeatures(features, (f) => (f.properties?.kind === 'marsh' ? 1 : 2), tiles, { minPurity: 0.5, minValidFraction: 0.6 });
    assert.deepEqual(labels.map((l) => l.tileId).sort(), [tile(1, 0).id, tile(3, 2).id].sort());
    assert.equal(labels.find((l) => l.tileId === tile(3, 2).id)?.classId, 2);
    const gj = join(dir.path, 'labels.geojson');
    writeFileSync(gj, JSON.stringify({ type: 'FeatureCollection', features }));
    await assert.rejects(importLabels(store, gj, { name: 'poly', classField: 'landcover' }), /no class field 'landcover'.*kind/);
    const ok = await importLabels(store, gj, { name: 'poly', classField: 'kind' });
    assert.deepEqual(ok.labelSet.classes, [{ id: 1, name: 'marsh' }, { id: 2, name: 'sand' }]);
  });

  test('labels that do not overlap the rasters: the error gives both extents', async () => {
    const far = join(dir.path, 'far.tif');
    writeClassGeoTiff(far, { width: 4, height: 4, bands: [new Uint8Array(16).fill(1)], geotransform: [600000, 30, 0, 4500000, 0, -30], epsg: 32612, geographic: false, nodata: 255, colors: new Map() });
    await assert.rejects(importLabels(store, far, { name: 'far' }), (err: Error) => {
      assert.ok(err instanceof UserError);
      assert.match(err.message, /covers \[-109\.8\d+, 40\.6\d+.*overlaps none.*image\.tif \[-113\.2\d+, 37\.4\d+/);
      return true;
    });
  });

  test('class map GeoTIFF round-trips through GDAL: georeferencing, values, colour table', { skip: gdalMissing() }, async () => {
    const raster = await store.raster(rasterId);
    const tiles = await store.tilesOfRaster(rasterId);
    const predictions = tiles.slice(0, 11).map((tile, i) => ({ tileId: tile.id, classId: [3, 7, 12][i % 3], className: '', probability: 1 }));
    const map = classMapRaster(raster, tiles, predictions, [{ id: 3, name: 'a' }, { id: 7, name: 'b' }, { id: 12, name: 'c' }]);
    const out = join(dir.path, 'map.tif');
    writeClassGeoTiff(out, map);
    const info = JSON.parse(execFileSync('/usr/bin/python3', ['-c', `
import json
from osgeo import gdal, osr
d = gdal.Open(${JSON.stringify(out)})
b = d.GetRasterBand(1)
ct = b.GetColorTable()
srs = osr.SpatialReference(wkt=d.GetProjection()); srs.AutoIdentifyEPSG()
print(json.dumps({"gt": d.GetGeoTransform(), "epsg": srs.GetAuthorityCode(None), "values": b.ReadAsArray().tolist(), "nodata": b.GetNoDataValue(),
  "interp": gdal.GetColorInterpretationName(b.GetColorInterpretation()), "colors": [list(ct.GetColorEntry(v)) for v in (3, 7, 12)]}))
`], { encoding: 'utf8' }));
    assert.deepEqual(info.gt, [300000, 300, 0, 4150000, 0, -300]);
    assert.equal(info.epsg, '32612');
    assert.deepEqual(info.values, [[3, 7, 12, 3], [7, 12, 3, 7], [12, 3, 7, 255]]);
    assert.equal(info.nodata, 255);
    assert.equal(info.interp, 'Palette');
    assert.deepEqual(info.colors, [[31, 119, 180, 255], [255, 127, 14, 255], [44, 160, 44, 255]]);
  });

  test('classifyTiles predicts stored embeddings and refuses another model\'s', async () => {
    const tiles = await store.tilesOfRaster(rasterId);
    const mk = (name: string, dim: number) => store.registerModel({ name, backbone: {}, dim, bands: [1], tileSize: 10, normalization: {}, metrics: {}, artifactPath: '' });
    const a = await mk('model-a', 3);
    await mk('model-b', 3);
    const vec = (t: { x: number }) => (t.x < 20 ? [1, 0, 0] : [0, 1, 0]);
    await store.upsertEmbeddings(a, tiles.map((t) => ({ tileId: t.id, vector: vec(t) })));
    const classifier = createClassifier('logreg').fit(tiles.map(vec), tiles.map((t) => (t.x < 20 ? 1 : 2)));
    const saved = deserializeClassifier(serializeClassifier(classifier, { model: { id: a.id, name: 'model-a' }, featureSet: 'embedding', dim: 3, classes: [{ id: 1, name: 'west' }, { id: 2, name: 'east' }] }));
    const byIds = await classifyTiles(store, saved, { tileIds: tiles.map((t) => t.id) });
    assert.deepEqual(byIds.map((p) => p.className), tiles.map((t) => (t.x < 20 ? 'west' : 'east')));
    const byBbox = await classifyTiles(store, saved, { bbox: tiles[0].bbox });
    assert.ok(byBbox.some((p) => p.tileId === tiles[0].id && p.className === 'west'));
    await assert.rejects(classifyTiles(store, saved, { tileIds: [tiles[0].id] }, { model: 'model-b' }), /trained on embeddings of model 'model-a'.*model 'model-b'/);
    const baseline = deserializeClassifier(serializeClassifier(classifier, { model: null, featureSet: 'band-mean-std', dim: 3, classes: [] }));
    await assert.rejects(classifyTiles(store, baseline, { tileIds: [tiles[0].id] }), /band-mean-std/);
  });
});
