import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DATA_DIR, dataMissing, lastJson, runCli, tempDir, type CliResult } from './helpers.ts';

const zion = join(DATA_DIR, 'zion-landsat8-nlcd');
const IMAGE = join(zion, 'landsat8_zion_20150818_B2B3B4B5.tif');
const NLCD = join(zion, 'nlcd2011_zion_8class_on_landsat_grid.tif');
const CLASSES = '{"1":"water","2":"developed","3":"barren","4":"forest","5":"shrubland","6":"herbaceous","7":"cultivated","8":"wetlands"}';
const PNG_SIGNATURE = '89504e470d0a1a0a';

/** Exit 0, or fail with the child's stderr. */
function ok(r: CliResult): CliResult {
  assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr.slice(-2000)}`);
  return r;
}

/** A user error: exit 1 and one line on stderr, no stack trace. */
function userError(r: CliResult, message: RegExp): void {
  assert.notEqual(r.code, 0, r.stdout);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], message);
}

test('numeric options refuse an empty value rather than reading it as 0', async () => {
  const dir = tempDir();
  try {
    for (const [args, message] of [
      [['labels', 'import', 'x.tif', '--name', 'n', '--min-purity', ''], /--min-purity must be a number from 0 to 1, got ''/],
      [['classify', 'train', '--labels', 'n', '--seed', ' '], /--seed must be an integer, got ' '/],
    ] as const) {
      const r = await runCli([...args, '--db', join(dir.path, 'db')]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, message);
    }
  } finally {
    dir.cleanup();
  }
});

/**
 * The whole classification path through the real CLI on the Zion scene: ingest, a model trained for a few steps,
 * embed, NLCD label import, classify train, classify predict (GeoTIFF read back by GDAL, GeoJSON) and evaluate.
 * The model is far too briefly trained to be good; accuracy is bench/quality.ts's business.
 */
describe('classification CLI on Zion (Landsat 8 + NLCD)', { skip: dataMissing() }, () => {
  let dir: ReturnType<typeof tempDir>;
  let db: string;
  let env: NodeJS.ProcessEnv;
  let classifierFile: string;
  const cli = (args: string[], timeoutMs = 120_000) => runCli([...args, '--db', db], { env, timeoutMs });

  before(async () => {
    dir = tempDir('tilevec-classify-cli-');
    db = join(dir.path, 'db');
    env = { TILEVEC_MODELS_DIR: join(dir.path, 'models'), TILEVEC_LOG_LEVEL: 'error' };
    ok(await cli(['ingest', IMAGE, '--tile-size', '32', '--json']));
    ok(await cli(['train', '--backbone', 'tiny', '--tile-size', '32', '--dim', '16', '--triplets', '32', '--batch', '16', '--name', 'quick', '--json'], 300_000));
    ok(await cli(['embed', '--model', 'quick', '--json']));
  });
  after(() => dir?.cleanup());

  test('labels import: NLCD majority classes for the Landsat tiles; labels that miss the imagery give both extents', async () => {
    const r = lastJson<{ labelled: number; tiles: number; perClass: { id: number; name: string; tiles: number }[] }>(ok(await cli(['labels', 'import', NLCD, '--name', 'nlcd', '--classes', CLASSES, '--json'])).stdout);
    assert.equal(r.tiles, 1540);
    assert.equal(r.labelled, 1370);
    assert.equal(r.perClass.find((c) => c.name === 'forest')?.tiles, 853);
    const far = join(DATA_DIR, 'northcarolina-sentinel2', 'ccap_labels_outerbanks_30m_no_matching_imagery.tif');
    userError(await cli(['labels', 'import', far, '--name', 'far']), /covers \[-76\.\d+.*overlaps none.*landsat8_zion_20150818_B2B3B4B5\.tif \[-113\.\d+/);
  });

  test('classify train saves the classifier where serve finds it, with confusion matrix PNG and JSON', async () => {
    const r = lastJson<{ cv: Record<string, { accuracy: number; confusion: number[][] }>; files: Record<string, string> }>(
      ok(await cli(['classify', 'train', '--labels', 'nlcd', '--model', 'quick', '--classifier', 'logreg', '--cv', '3', '--json'])).stdout);
    classifierFile = r.files.classifier;
    assert.equal(classifierFile, join(dir.path, 'classifiers', 'nlcd-quick-logreg.json'));
    for (const split of ['random', 'spatial']) assert.ok(r.cv[split].accuracy > 0.3 && r.cv[split].accuracy <= 1, `${split} ${r.cv[split].accuracy}`);
    const confusion = JSON.parse(readFileSync(r.files.confusionJson, 'utf8'));
    assert.equal(confusion.split, 'spatial');
    assert.equal(confusion.confusion.flat().reduce((a: number, b: number) => a + b, 0), 1370);
    for (const png of [r.files.confusionPng, r.files.embeddingMapPng]) assert.equal(readFileSync(png).subarray(0, 8).toString('hex'), PNG_SIGNATURE);
  });

  test('classify predict: a GeoTIFF class map with a colour table that GDAL reads, and GeoJSON', async () => {
    const tif = join(dir.path, 'map.tif');
    ok(await cli(['classify', 'predict', '--classifier', classifierFile, '--raster', IMAGE, '--out', tif]));
    const info = JSON.parse(execFileSync('gdalinfo', ['-json', tif], { encoding: 'utf8' }));
    assert.deepEqual(info.size, [35, 44], 'one pixel per 32 px tile of the 1128 × 1428 scene');
    assert.equal(info.geoTransform[1], 960);
    assert.equal(info.geoTransform[5], -960);
    assert.match(info.coordinateSystem.wkt, /UTM zone 12N/);
    const band = info.bands[0];
    assert.equal(band.colorInterpretation, 'Palette');
    assert.equal(band.noDataValue, 255);
    assert.ok(band.colorTable.entries.length >= 8);
    const geojson = join(dir.path, 'map.geojson');
    ok(await cli(['classify', 'predict', '--classifier', classifierFile, '--raster', IMAGE, '--out', geojson]));
    const fc = JSON.parse(readFileSync(geojson, 'utf8'));
    assert.equal(fc.features.length, 1540);
    for (const f of fc.features.slice(0, 50)) assert.ok([3, 4, 5, 7].includes(f.properties.classId), JSON.stringify(f.properties));
  });

  test('a classifier applied to another model\'s embeddings is refused', async () => {
    userError(await cli(['classify', 'predict', '--classifier', classifierFile, '--raster', IMAGE, '--out', join(dir.path, 'x.tif'), '--model', 'other']),
      /trained on embeddings of model 'quick'; it cannot be applied to embeddings of model 'other'/);
    assert.equal(existsSync(join(dir.path, 'x.tif')), false);
  });

  test('evaluate: one table, last line JSON with accuracy per feature set, classifier and split, and search precision', async () => {
    const r = ok(await cli(['evaluate', '--labels', 'nlcd', '--model', 'quick', '--cv', '3', '--classifiers', 'logreg,knn'], 240_000));
    assert.match(r.stdout, /tilevec:quick\s+16\s+logreg\s+spatial/);
    assert.match(r.stdout, /random-init-backbone\s+16\s+knn\s+random/);
    assert.match(r.stdout, /Random splits .* leak/);
    assert.match(r.stdout, /search by example: label precision@10/);
    const json = lastJson<{ accuracy: Record<string, Record<string, Record<string, number>>>; search: Record<string, number>; tiles: number; skipped: unknown[] }>(r.stdout);
    assert.deepEqual(Object.keys(json.search).sort(), Object.keys(json.accuracy).sort());
    // Forest and shrubland are most of the scene, so any sensible features find the query's class most of the time.
    for (const precision of Object.values(json.search)) assert.ok(precision > 0.5 && precision <= 1, `${precision}`);
    assert.equal(json.tiles, 1370);
    assert.deepEqual(json.skipped, []);
    assert.deepEqual(Object.keys(json.accuracy).sort(), ['band-mean-std', 'random-init-backbone', 'raw-pixel-pca', 'tilevec:quick']);
    for (const set of Object.values(json.accuracy)) {
      assert.deepEqual(Object.keys(set).sort(), ['knn', 'logreg']);
      for (const bySplit of Object.values(set)) for (const split of ['random', 'spatial']) assert.ok(bySplit[split] > 0.3 && bySplit[split] <= 1);
    }
  });
});
