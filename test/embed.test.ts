import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { Store, embeddingIndexName } from '../src/store/index.ts';
import { ingest } from '../src/ingest/index.ts';
import { openTripletSampling } from '../src/sampling/index.ts';
import { initBackend, MODEL_FILES } from '../src/train/index.ts';
import { EmbeddingSession, embeddingFileNames, exportModelOnnx, readBatch, readOnnx } from '../src/embed/index.ts';
import type { RasterRecord } from '../src/store/index.ts';
import { IngestRasterSource, TripletDataset } from '../src/sampling/index.ts';
import { CLI, DATA_DIR, GDAL_PY, ROOT, dataMissing, gdalMissing, lastJson, lzwBomb, runCli, tempDir } from './helpers.ts';
import { craft, DEFLATE, LZW, zeros } from './crafted-tiff.ts';
import { makeModelDir } from './model-fixtures.ts';

const ZION = join(DATA_DIR, 'zion-landsat8-nlcd/landsat8_zion_20150818_B2B3B4B5.tif');
const NAIP = join(DATA_DIR, 'naip-northdakota/m_4709963_se_14_1_20090818.tif');

describe('embedding with ONNX Runtime', { skip: dataMissing() }, () => {
  const tmp = tempDir();
  const db = join(tmp.path, 'db');
  const modelDir = join(tmp.path, 'zion-model');
  let totalTiles = 0;
  before(async () => {
    await initBackend('cpu');
    const store = await Store.open(db);
    try {
      const s = await ingest(store, [ZION, NAIP], { tileSize: 32 });
      assert.equal(s.ingested, 2);
      totalTiles = s.tilesWritten;
      await makeModelDir(store, modelDir, 'zion-test', 1, [1, 2, 3, 4]);
    } finally {
      await store.close();
    }
  });
  after(() => tmp.cleanup());

  test('ONNX Runtime and tfjs agree on real tiles within 1e-4 of the embedding norm', async () => {
    const onnxPath = join(tmp.path, 'parity.onnx');
    exportModelOnnx(modelDir, onnxPath);
    const session = await EmbeddingSession.create(readOnnx(onnxPath));
    assert.deepEqual(session.info.bands, [1, 2, 3, 4]);
    assert.equal(session.info.dim, 24);
    const store = await Store.open(db);
    const { loadModel } = await import('../src/train/index.ts');
    const { backbone, normalization } = loadModel(modelDir);
    try {
      const raster = await store.raster(1);
      const tiles = (await store.tilesOfRaster(1)).filter((_, i) => i % 97 === 0).slice(0, 16);
      const source = await IngestRasterSource.open(raster);
      const input = await readBatch(new TripletDataset([source], normalization), raster.id, tiles);
      await source.close();
      const ort = await session.embed(input, tiles.length);
      const reference = tf.tidy(() => backbone.apply(tf.tensor4d(input, [tiles.length, 32, 32, 4])).dataSync() as Float32Array);
      let worst = 0;
      for (let t = 0; t < tiles.length; t++) {
        const a = ort.subarray(t * 24, (t + 1) * 24);
        const b = reference.subarray(t * 24, (t + 1) * 24);
        const norm = Math.hypot(...b);
        const maxAbs = Math.max(...a.map((v, i) => Math.abs(v - b[i])));
        worst = Math.max(worst, maxAbs / norm);
      }
      assert.ok(worst <= 1e-4, `max |ORT - tfjs| / ‖z‖ = ${worst}`);
      assert.ok(ort.some((v) => v !== 0));
    } finally {
      backbone.dispose();
      await session.release();
      await store.close();
    }
  });

  test('an interrupted embed resumes to the same table as an uninterrupted one', async () => {
    // Reference: a second database with the same catalog (same tile ids), embedded in one go.
    const refDb = join(tmp.path, 'ref-db');
    const store = await Store.open(refDb);
    try {
      await ingest(store, [ZION, NAIP], { tileSize: 32 });
    } finally {
      await store.close();
    }
    const full = await runCli(['embed', '--db', refDb, '--model', modelDir, '--batch', '32', '--json'], { timeoutMs: 600_000 });
    assert.equal(full.code, 0, full.stderr);
    assert.equal(lastJson<{ tilesEmbedded: number }>(full.stdout).tilesEmbedded, totalTiles);

    // Kill -9 after a few batches have been stored, then resume.
    await new Promise<void>((resolvePromise, reject) => {
      const child = spawn(process.execPath, [CLI, 'embed', '--db', db, '--model', modelDir, '--batch', '32', '--log-level', 'debug'], { cwd: ROOT });
      let batches = 0;
      child.stderr.on('data', (d: Buffer) => {
        batches += (d.toString().match(/embedded batch/g) ?? []).length;
        if (batches >= 5) child.kill('SIGKILL');
      });
      child.on('exit', (_code, signal) => (signal === 'SIGKILL' ? resolvePromise() : reject(new Error('embed finished before it could be killed'))));
    });
    // The resumed run also moves the model's index to halfvec: the vectors stay, the index is rebuilt.
    const resumed = await runCli(['embed', '--db', db, '--model', modelDir, '--batch', '32', '--vector-type', 'halfvec', '--json'], { timeoutMs: 600_000 });
    assert.equal(resumed.code, 0, resumed.stderr);
    const summary = lastJson<{ tilesEmbedded: number; tilesAlreadyDone: number }>(resumed.stdout);
    assert.ok(summary.tilesAlreadyDone >= 5 * 32, `${summary.tilesAlreadyDone} tiles survived the kill`);
    assert.equal(summary.tilesEmbedded + summary.tilesAlreadyDone, totalTiles);

    const dump = async (path: string) => {
      const s = await Store.open(path);
      try {
        return await s.engine.query<{ tile_id: number; v: string }>('select tile_id, embedding::text as v from embeddings order by tile_id');
      } finally {
        await s.close();
      }
    };
    const indexed = await Store.open(db);
    try {
      const model = (await indexed.listModels())[0];
      assert.equal(model.vectorType, 'halfvec');
      const [def] = await indexed.engine.query<{ indexdef: string }>('select indexdef from pg_indexes where indexname = $1', [embeddingIndexName(model.id)]);
      assert.match(def.indexdef, /halfvec_l2_ops/);
    } finally {
      await indexed.close();
    }
    const [a, b] = [await dump(db), await dump(refDb)];
    assert.equal(a.length, totalTiles, 'nothing missing, nothing duplicated');
    assert.deepEqual(a.map((r) => r.tile_id), b.map((r) => r.tile_id));
    let worst = 0;
    a.forEach((r, i) => {
      const x = r.v.slice(1, -1).split(',').map(Number);
      const y = b[i].v.slice(1, -1).split(',').map(Number);
      x.forEach((v, k) => (worst = Math.max(worst, Math.abs(v - y[k]))));
    });
    assert.ok(worst <= 1e-6, `vectors equal (max difference ${worst})`);
  });

  test('exports: GeoParquet reads back with hyparquet, with the raster date and the 1.1 bbox covering column', async () => {
    const parquet = join(tmp.path, 'e.parquet');
    const r = await runCli(['export', '--db', db, '--model', 'zion-test', '--format', 'geoparquet', '--out', parquet, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const { readFileSync } = await import('node:fs');
    const bytes = readFileSync(parquet);
    const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    const meta = parquetMetadata(file);
    const geo = JSON.parse(meta.key_value_metadata!.find((kv) => kv.key === 'geo')!.value!);
    assert.equal(geo.version, '1.1.0');
    assert.equal(geo.primary_column, 'geometry');
    assert.equal(geo.columns.geometry.encoding, 'WKB');
    assert.deepEqual(geo.columns.geometry.covering, { bbox: { xmin: ['bbox', 'xmin'], ymin: ['bbox', 'ymin'], xmax: ['bbox', 'xmax'], ymax: ['bbox', 'ymax'] } });
    // The schema as hyparquet reads it: a DATE column and a struct of four DOUBLEs.
    const date = meta.schema.find((e) => e.name === 'date')!;
    assert.equal(date.type, 'INT32');
    assert.equal(date.converted_type, 'DATE');
    const bboxAt = meta.schema.findIndex((e) => e.name === 'bbox');
    assert.equal(meta.schema[bboxAt].num_children, 4);
    assert.deepEqual(meta.schema.slice(bboxAt + 1, bboxAt + 5).map((e) => [e.name, e.type]), [['xmin', 'DOUBLE'], ['ymin', 'DOUBLE'], ['xmax', 'DOUBLE'], ['ymax', 'DOUBLE']]);
    const rows = await parquetReadObjects({ file });
    assert.equal(rows.length, totalTiles);
    const store = await Store.open(db);
    try {
      const row = rows.find((x) => Number(x.tile_id) === 700)!;
      const tile = await store.tile(700);
      assert.equal(row.x, tile.x);
      assert.equal(row.raster_uri, (await store.raster(tile.rasterId)).uri);
      const vector = await store.embedding(1, 700);
      for (let d = 0; d < 24; d++) assert.equal(row[`emb_${String(d).padStart(3, '0')}`], vector[d]);
      // hyparquet decodes the GeoParquet WKB column itself: an independent reader of our encoding.
      assert.deepEqual(row.geometry, tile.footprint);
      assert.deepEqual(row.bbox, { xmin: tile.bbox[0], ymin: tile.bbox[1], xmax: tile.bbox[2], ymax: tile.bbox[3] });
      // Each raster's acquisition date, as the file names give them (Zion 2015-08-18, NAIP 2009-08-18).
      const dates = new Map<number, string>();
      for (const x of rows) dates.set(x.raster_id, (x.date as Date).toISOString().slice(0, 10));
      assert.deepEqual([...dates].sort(), [[1, '2015-08-18'], [2, '2009-08-18']]);
      for (const raster of await store.listRasters()) assert.equal(dates.get(raster.id), raster.acquiredOn?.slice(0, 10));
      for (const x of rows) {
        assert.ok(x.bbox.xmin <= x.bbox.xmax && x.bbox.ymin <= x.bbox.ymax);
        assert.ok(x.bbox.xmin >= geo.columns.geometry.bbox[0] && x.bbox.ymax <= geo.columns.geometry.bbox[3]);
      }
    } finally {
      await store.close();
    }
  });

  test('exports: GDAL opens the embedding raster georeferenced, with band names and the model in its metadata, named after its source', { skip: gdalMissing() }, async () => {
    const tif = join(tmp.path, 'zion-embedding.tif');
    const g = await runCli(['export', '--db', db, '--model', 'zion-test', '--format', 'geotiff', '--rasters', '1', '--out', tif]);
    assert.equal(g.code, 0, g.stderr);
    // All rasters into a folder: one file per source, named after it and the model.
    const folder = join(tmp.path, 'embeddings');
    const all = await runCli(['export', '--db', db, '--model', 'zion-test', '--format', 'geotiff', '--out', folder, '--json']);
    assert.equal(all.code, 0, all.stderr);
    const names = ['landsat8_zion_20150818_B2B3B4B5.zion-test.emb.tif', 'm_4709963_se_14_1_20090818.zion-test.emb.tif'];
    assert.deepEqual(readdirSync(folder).sort(), names);
    assert.deepEqual(lastJson(all.stdout).files, names.map((n) => join(folder, n)));
    const naip = JSON.parse(execFileSync('gdalinfo', ['-json', join(folder, names[1])], { encoding: 'utf8' }));
    assert.equal(naip.metadata[''].TILEVEC_SOURCE, NAIP);
    assert.equal(naip.metadata[''].TILEVEC_ACQUIRED, '2009-08-18');
    // One raster into an existing folder is named the same way.
    const one = join(tmp.path, 'one');
    mkdirSync(one);
    assert.equal((await runCli(['export', '--db', db, '--model', 'zion-test', '--format', 'geotiff', '--rasters', '2', '--out', one])).code, 0);
    assert.deepEqual(readdirSync(one), [names[1]]);
    // The CLI runs above hold the database; the checks below read it.
    const store = await Store.open(db);
    try {
      const info = JSON.parse(execFileSync('gdalinfo', ['-json', tif], { encoding: 'utf8' }));
      const raster = await store.raster(1);
      assert.equal(info.bands.length, 24);
      assert.deepEqual(info.size, [Math.floor(raster.width / 32), Math.floor(raster.height / 32)]);
      assert.deepEqual(info.geoTransform, [raster.geotransform[0], 960, 0, raster.geotransform[3], 0, -960]);
      assert.match(info.coordinateSystem.wkt, /ID\["EPSG",32612\]\]$/);
      // GDAL reads tag 42112 back: a description per band, the model and the source in the dataset metadata.
      assert.deepEqual(info.bands.map((b: { description?: string }) => b.description), Array.from({ length: 24 }, (_, d) => `emb_${String(d).padStart(3, '0')}`));
      const md = info.metadata[''];
      assert.equal(md.TILEVEC_MODEL, 'zion-test');
      assert.equal(md.TILEVEC_SOURCE, raster.uri);
      assert.equal(md.TILEVEC_INPUT_BANDS, '1,2,3,4');
      assert.equal(md.TILEVEC_ACQUIRED, '2015-08-18');
      // The value at tile (x=64, y=32) is its embedding.
      const t = (await store.tilesOfRaster(1)).find((x) => x.x === 64 && x.y === 32)!;
      const v = await store.embedding(1, t.id);
      const out = execFileSync(GDAL_PY, ['-c', `from osgeo import gdal; d=gdal.Open('${tif}'); print(','.join(str(float(d.GetRasterBand(b+1).ReadAsArray()[1,2])) for b in range(24)))`], { encoding: 'utf8' });
      assert.deepEqual(out.trim().split(',').map(Number), Array.from(v));
    } finally {
      await store.close();
    }
  });

  test('bad input: foreign bands, a missing model, a corrupt ONNX file', async () => {
    // A model that reads 6 bands cannot embed 4-band rasters.
    const store = await Store.open(db);
    const wide = join(tmp.path, 'six-band');
    try {
      await makeModelDir(store, wide, 'six-band', 1, [1, 2, 3, 4]);
      const { readFileSync } = await import('node:fs');
      const card = JSON.parse(readFileSync(join(wide, MODEL_FILES.card), 'utf8'));
      card.bands = [1, 2, 3, 4, 5, 6];
      writeFileSync(join(wide, MODEL_FILES.card), JSON.stringify(card));
    } finally {
      await store.close();
    }
    const bands = await runCli(['embed', '--db', db, '--model', wide]);
    assert.equal(bands.code, 1);
    assert.match(bands.stderr, /^tilevec: model 'six-band' reads bands 1,2,3,4,5,6 but raster 1 \(.*\) has 4/);

    const badType = await runCli(['embed', '--db', db, '--vector-type', 'int8']);
    assert.equal(badType.code, 1);
    assert.match(badType.stderr, /--vector-type must be one of vector, halfvec, got 'int8'/);

    const missing = await runCli(['embed', '--db', db, '--model', 'no-such-model']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^tilevec: model 'no-such-model' does not exist \(see tilevec models\)/);

    const onnx = join(modelDir, MODEL_FILES.onnx);
    writeFileSync(onnx, Buffer.from('definitely not protobuf'));
    const later = new Date(Date.now() + 60_000);
    utimesSync(onnx, later, later);
    const corrupt = await runCli(['embed', '--db', db, '--model', modelDir]);
    assert.equal(corrupt.code, 1);
    assert.match(corrupt.stderr, /^tilevec: .*model\.onnx is not a valid ONNX model/);
    assert.equal(corrupt.stderr.trim().split('\n').length, 1);
    assert.ok(existsSync(onnx));
  });
});

describe('chip search embeds an uploaded GeoTIFF on the fly', { skip: dataMissing() }, () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  test('a chip cut from a catalog tile finds that tile first; bad chips are 422, and the answer says how the chip was read', async () => {
    const { startServer } = await import('../src/serve/index.ts');
    const { ChipEmbedder, embed } = await import('../src/embed/index.ts');
    const { loadConfig } = await import('../src/config.ts');
    await initBackend('cpu');
    const store = await Store.open(join(tmp.path, 'db'));
    const chips = new ChipEmbedder(store);
    const server = await startServer({ store, config: loadConfig({ db: join(tmp.path, 'db') }, {}), embedChip: (tiff, model) => chips.embed(tiff, model) }, { port: 0 });
    try {
      await ingest(store, [ZION, NAIP], { tileSize: 32 });
      await makeModelDir(store, join(tmp.path, 'model'), 'chip-model', 1, [1, 2, 3, 4]);
      await embed(store, { model: join(tmp.path, 'model') });
      await makeModelDir(store, join(tmp.path, 'naip-model'), 'naip-model', 2, [1, 2, 3, 4]);
      await embed(store, { model: join(tmp.path, 'naip-model') });
      const tile = (await store.tilesOfRaster(1)).find((t) => t.x === 320 && t.y === 640)!;
      const chip = join(tmp.path, 'chip.tif');
      execFileSync('gdal_translate', ['-q', '-srcwin', '320', '640', '32', '32', ZION, chip]);
      const post = async (bytes: Uint8Array, model = 'chip-model', bbox?: string) => {
        const form = new FormData();
        form.append('chip', new Blob([bytes], { type: 'image/tiff' }), 'chip.tif');
        form.append('k', '3');
        form.append('model', model);
        if (bbox) form.append('bbox', bbox);
        return fetch(`${server.url}/v1/search`, { method: 'POST', body: form });
      };
      type Answer = { features: { id: number; properties: { distance: number } }[]; warnings: string[] };
      const { readFileSync } = await import('node:fs');
      const res = await post(readFileSync(chip));
      assert.equal(res.status, 200, await res.clone().text());
      const body = (await res.json()) as Answer;
      assert.equal(body.features[0].id, tile.id);
      assert.ok(body.features[0].properties.distance < 1e-3, `distance ${body.features[0].properties.distance}`);
      assert.deepEqual(body.warnings, [], 'a tile-sized chip of the model\'s own sensor and scale needs no warning');

      // A 16-bit 30 m Landsat chip for a model of 8-bit 5 m NAIP: refused, naming the difference.
      const landsatForNaip = await post(readFileSync(chip), 'naip-model');
      assert.equal(landsatForNaip.status, 422);
      assert.match(((await landsatForNaip.json()) as { detail: string }).detail, /^the chip's samples are uint16, but model 'naip-model' was trained on uint8 rasters/);

      // A NAIP chip at 20 m (a 128-px window shrunk to 32): answered, with a warning that names both pixel sizes.
      const naipTile = (await store.tilesOfRaster(2)).find((t) => t.x === 320 && t.y === 320)!;
      const coarse = join(tmp.path, 'coarse.tif');
      execFileSync('gdal_translate', ['-q', '-srcwin', '320', '320', '128', '128', '-outsize', '32', '32', NAIP, coarse]);
      const coarseRes = await post(readFileSync(coarse), 'naip-model');
      assert.equal(coarseRes.status, 200, await coarseRes.clone().text());
      assert.deepEqual((await coarseRes.json() as Answer).warnings, [
        "the chip's pixels are 20 m, 4.0x those of model 'naip-model' (5.0 m): the neighbours may say little; resample the chip to about 5.0 m",
      ]);

      // A 64-px chip centred on a tile: its centre is embedded, and the answer says so. The search is confined to
      // the tile's centre point, so the check is exact: HNSW may miss a match among the near-identical vectors
      // that an untrained model gives two rasters' worth of tiles.
      const wide = join(tmp.path, 'wide.tif');
      execFileSync('gdal_translate', ['-q', '-srcwin', String(naipTile.x - 16), String(naipTile.y - 16), '64', '64', NAIP, wide]);
      const centre = [naipTile.centerLon - 1e-6, naipTile.centerLat - 1e-6, naipTile.centerLon + 1e-6, naipTile.centerLat + 1e-6].join(',');
      const wideRes = await post(readFileSync(wide), 'naip-model', centre);
      assert.equal(wideRes.status, 200, await wideRes.clone().text());
      const wideBody = (await wideRes.json()) as Answer;
      assert.equal(wideBody.features[0].id, naipTile.id);
      assert.ok(wideBody.features[0].properties.distance < 1e-3, `distance ${wideBody.features[0].properties.distance}`);
      assert.deepEqual(wideBody.warnings, ["the chip is 64x64 px; only its central 32x32 px (from x 16, y 16) was embedded, as model 'naip-model' reads 32-px tiles"]);

      // A per-raster model scales a chip by the chip's own statistics: a tile's chip is answered; a chip with a band
      // of nodata only has no statistics, and is a 422 that says so.
      await makeModelDir(store, join(tmp.path, 'per-raster'), 'per-raster', 1, [1, 2, 3, 4], 'raster');
      await embed(store, { model: join(tmp.path, 'per-raster') });
      const tileChipWhole = join(tmp.path, 'tile-whole.tif');
      execFileSync('gdal_translate', ['-q', '-srcwin', String(tile.x), String(tile.y), '32', '32', ZION, tileChipWhole]);
      const ownStats = await post(readFileSync(tileChipWhole), 'per-raster');
      assert.equal(ownStats.status, 200, await ownStats.clone().text());
      const empty = join(tmp.path, 'empty.tif');
      execFileSync('gdal_create', ['-q', '-of', 'GTiff', '-outsize', '32', '32', '-bands', '4', '-ot', 'UInt16', '-a_nodata', '0', '-burn', '0', empty]);
      const emptyRes = await post(readFileSync(empty), 'per-raster');
      assert.equal(emptyRes.status, 422, await emptyRes.clone().text());
      assert.match(((await emptyRes.json()) as { detail: string }).detail, /^the chip has a band with no valid pixels; model 'per-raster' normalizes each chip by its own statistics/);

      const small = join(tmp.path, 'small.tif');
      execFileSync('gdal_translate', ['-q', '-srcwin', '0', '0', '16', '16', ZION, small]);
      const tooSmall = await post(readFileSync(small));
      assert.equal(tooSmall.status, 422);
      assert.match(((await tooSmall.json()) as { detail: string }).detail, /chip is 16x16 px; model 'chip-model' needs at least 32x32/);
      const garbage = await post(new TextEncoder().encode('not a tiff at all'));
      assert.equal(garbage.status, 415);
      const truncated = await post(readFileSync(chip).subarray(0, 300));
      assert.equal(truncated.status, 422, await truncated.clone().text());
      assert.match(((await truncated.json()) as { detail: string }).detail, /not a readable GeoTIFF/);

      // Hostile chips through the route, for a one-band 8-bit model so that they reach decoding: each is a 422
      // naming what is wrong, and the service's memory stays near where it was.
      await makeModelDir(store, join(tmp.path, 'one-band'), 'one-band', 2, [1]);
      await embed(store, { model: join(tmp.path, 'one-band') });
      const postTo = async (bytes: Uint8Array) => {
        const form = new FormData();
        form.append('chip', new Blob([bytes], { type: 'image/tiff' }), 'chip.tif');
        form.append('model', 'one-band');
        return fetch(`${server.url}/v1/search`, { method: 'POST', body: form });
      };
      const rssBefore = process.memoryUsage().rss;
      const bombs: [string, Uint8Array, RegExp][] = [
        ['a 512-px strip inflating to 256 MiB', craft({ width: 512, height: 512, rowsPerStrip: 512, compression: DEFLATE, streams: [zeros(256 * 2 ** 20)], strips: [0] }), /inflates past the block's 262144 bytes/],
        ['a 64-px strip storing 64 times its size', craft({ width: 64, height: 64, rowsPerStrip: 64, compression: DEFLATE, streams: [zeros(256 * 2 ** 20)], strips: [0] }), /stores \d+ bytes, more than its 4096 decoded bytes can need/],
        ['an LZW strip decoding far past its block', craft({ width: 64, height: 64, rowsPerStrip: 64, compression: LZW, streams: [lzwBomb(3800)], strips: [0] }), /LZW stream decodes past the block's 4096 bytes/],
        ['a 65536 x 65536 chip of one shared stream', craft({ width: 65536, height: 65536, rowsPerStrip: 16, compression: DEFLATE, streams: [zeros(4096)], strips: new Array(4096).fill(0) }), /not a readable GeoTIFF|at most 512x512/],
      ];
      for (const [what, bytes, reason] of bombs) {
        for (let round = 0; round < 3; round++) {
          const res = await postTo(bytes);
          const text = await res.text();
          assert.equal(res.status, 422, `${what}: ${text}`);
          assert.match(text, reason, what);
        }
      }
      const grown = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
      assert.ok(grown < 256, `the service grew by ${grown.toFixed(0)} MiB over twelve hostile chips`);
    } finally {
      await server.close();
      await chips.close();
      await store.close();
    }
  });
});

// Pure: runs without the shared imagery.
test('export file names: after the source, unique where two sources share a name', () => {
  const r = (id: number, uri: string) => ({ id, uri }) as RasterRecord;
  const names = embeddingFileNames([r(1, '/a/2019/scene.tif'), r(2, '/a/2020/scene.tif'), r(3, 'https://example.com/c/m%20x.TIF?sig=1'), r(4, '/b/SCENE.tiff')], 'my model/v2');
  assert.deepEqual([...names.values()], ['scene-r1.my_model_v2.emb.tif', 'scene-r2.my_model_v2.emb.tif', 'm_x.my_model_v2.emb.tif', 'SCENE-r4.my_model_v2.emb.tif']);
  assert.equal(new Set(names.values()).size, 4);
});
