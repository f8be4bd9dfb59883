import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { Store } from '../src/store/index.ts';
import { ingest } from '../src/ingest/index.ts';
import { openTripletSampling } from '../src/sampling/index.ts';
import { EmbeddingSession, exportModelOnnx, readOnnx } from '../src/embed/index.ts';
import { initBackend, loadModel, readCard, createBackbone, tripletLoss, MODEL_FILES, type TripletLossOptions } from '../src/train/index.ts';
import { readTensorFile } from '../src/train/tensor-file.ts';
import { DATA_DIR, dataMissing, lastJson, runCli, tempDir, CLI, ROOT } from './helpers.ts';
import { describeHang, reportFlags } from './hang-report.ts';

const ZION = join(DATA_DIR, 'zion-landsat8-nlcd/landsat8_zion_20150818_B2B3B4B5.tif');
// Small enough for CI on 2 cores: tiny backbone at 32 px, no extra layers.
const SMALL = ['--backbone', 'tiny', '--tile-size', '32', '--depth', '0', '--dim', '32', '--batch', '4'];

/** An HWC tile turned a quarter counter-clockwise: out[y][x] = in[x][size - 1 - y]. */
function quarterTurn(tile: Float32Array, size: number, bands: number): Float32Array {
  const out = new Float32Array(tile.length);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++)
      for (let b = 0; b < bands; b++) out[(y * size + x) * bands + b] = tile[(x * size + (size - 1 - y)) * bands + b];
  return out;
}

describe('training on a stack of dates', { skip: dataMissing() }, () => {
  test('co-registered dates train with temporal positives, no projector and InfoNCE at temperature 0.2, as measured best there; --tta and --width go into the card and the ONNX graph', async () => {
    const dir = tempDir();
    try {
      const db = join(dir.path, 'db');
      const dates = ['20090818', '20100629'].map((d) => join(DATA_DIR, `naip-northdakota/m_4709963_se_14_1_${d}.tif`));
      assert.equal((await runCli(['ingest', ...dates, '--db', db, '--json'])).code, 0);
      const out = join(dir.path, 'stack');
      const bad = await runCli(['train', '--db', db, '--out', out, ...SMALL, '--triplets', '8', '--tta', 'd8']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /--tta must be one of none, d4, got 'd8'/);
      const r = await runCli(['train', '--db', db, '--out', out, ...SMALL, '--triplets', '8', '--tta', 'd4', '--width', '2', '--json'], { timeoutMs: 600_000 });
      assert.equal(r.code, 0, r.stderr);
      const card = readCard(out);
      assert.deepEqual([card.backbone.widths, card.backbone.neckWidths], [[32, 32, 64, 96], [32, 32, 64, 160]], 'twice the tiny preset\'s [16, 16, 32, 48] and [16, 16, 32, 80]');
      assert.deepEqual(card.embedding, { unitLength: true, distance: 'cosine', tta: 'd4' });
      // The exported graph averages over orientations: a tile and its quarter turn embed alike.
      await initBackend('wasm');
      const session = await EmbeddingSession.create(readOnnx(exportModelOnnx(out, join(dir.path, 'stack.onnx')).path));
      const tile = Float32Array.from({ length: 32 * 32 * 4 }, (_, i) => Math.sin(i * 0.37) + (i % 7) / 7);
      const [z, turned] = [await session.embed(tile, 1), await session.embed(quarterTurn(tile, 32, 4), 1)];
      await session.release();
      const worst = Math.max(...z.map((v, i) => Math.abs(v - turned[i])));
      assert.ok(worst < 1e-5, `a quarter turn moves the d4 embedding by ${worst}`);
      assert.equal((card.training.loss as TripletLossOptions).temperature, 0.2);
      assert.ok((card.training.sampling as { temporalProbability: number }).temporalProbability > 0);
    } finally {
      dir.cleanup();
    }
  });
});

describe('training on the Zion Landsat 8 raster', { skip: dataMissing() }, () => {
  const dir = tempDir();
  const db = join(dir.path, 'db');
  before(async () => {
    const store = await Store.open(db);
    try {
      const summary = await ingest(store, [ZION], { tileSize: 32 });
      assert.equal(summary.ingested, 1);
    } finally {
      await store.close();
    }
  });
  after(() => dir.cleanup());

  test('a short run lowers the loss on a fixed held-out batch, and registers the model', async () => {
    const out = join(dir.path, 'short');
    const r = await runCli(['train', '--db', db, '--out', out, ...SMALL, '--triplets', '96', '--lr', '0.003', '--seed', '1', '--json'], { timeoutMs: 600_000 });
    assert.equal(r.code, 0, r.stderr);
    const summary = lastJson<{ steps: number; modelId: number; name: string }>(r.stdout);
    assert.equal(summary.steps, 24);
    for (const file of Object.values(MODEL_FILES).filter((f) => f !== MODEL_FILES.onnx)) assert.ok(existsSync(join(out, file)), `${file} written`);
    assert.match(readFileSync(join(out, MODEL_FILES.lossCurve), 'utf8'), /^<svg[^>]*>[\s\S]*<path d="M/);

    await initBackend('wasm');
    const trained = loadModel(out);
    const store = await Store.open(db);
    const sampling = await openTripletSampling(store, { tileSize: 32, seed: 'held-out', augment: false });
    try {
      const model = await store.model(summary.name);
      assert.equal(model.id, summary.modelId);
      assert.deepEqual(model.bands, [1, 2, 3, 4]);
      assert.deepEqual(model.normalization, trained.normalization);
      const card = trained.card;
      assert.equal(card.rasters.length, 1);
      assert.match(card.rasters[0].contentHash, /^sha256:[0-9a-f]{64}$/);
      assert.equal(card.seed, 1);
      assert.equal(card.backbone.projector, 'mlp', 'one date trains with the projector by default');
      assert.equal((card.training.loss as TripletLossOptions).temperature, 0.1, 'and with the projector InfoNCE is at temperature 0.1');
      assert.deepEqual(card.embedding, { unitLength: true, distance: 'cosine', tta: 'none' }, 'the default InfoNCE objective makes unit embeddings');

      // The same 32 unseen triplets through the untrained (same seed) and the trained backbone, in eval mode.
      const loader = sampling.loader({ batchSize: 32, batches: 1 });
      const batch = (await loader.next()).value!;
      const [b, h, w, c] = batch.shape;
      const x = tf.tensor4d([...batch.anchor, ...batch.neighbor, ...batch.distant], [3 * b, h, w, c]);
      const untrained = createBackbone(trained.card.backbone, { seed: 1 });
      const objective = { ...(card.training.loss as TripletLossOptions), l2: 0 };
      // The objective as training sees it: on the projector's output where the model has one (eval mode).
      const lossOf = (m: typeof untrained) => tf.tidy(() => tripletLoss(m.head.trainingOutput(m.forwardStreams(x, { training: false }), { training: false }), objective).dataSync()[0]);
      const before = lossOf(untrained);
      const after = lossOf(trained.backbone);
      // InfoNCE starts near chance, log(2B) = 4.16 here, and 24 steps take off about 4 % (the hinge took off 10 %).
      assert.ok(after < before * 0.97, `held-out ${objective.objective} loss ${before.toFixed(3)} -> ${after.toFixed(3)}`);

      // Inference emits what the card says: unit vectors, so the store's L2 search ranks by angle.
      const session = await EmbeddingSession.create(readOnnx(exportModelOnnx(out, join(dir.path, 'short.onnx')).path));
      const vectors = await session.embed(batch.anchor, b);
      await session.release();
      const dim = card.dim;
      for (let t = 0; t < b; t++) assert.ok(Math.abs(Math.hypot(...vectors.subarray(t * dim, (t + 1) * dim)) - 1) < 1e-5, `tile ${t} embedding is not unit length`);
      untrained.dispose();
      trained.backbone.dispose();
      x.dispose();
    } finally {
      await sampling.close();
      await store.close();
    }
  });

  test('a run killed mid-way and resumed ends with the same weights as an uninterrupted run', async () => {
    const args = (out: string) => ['train', '--db', db, '--out', out, ...SMALL, '--triplets', '32', '--seed', '7', '--checkpoint-every', '1', '--name', 'resume-check', '--json'];
    const straight = join(dir.path, 'straight');
    const r1 = await runCli(args(straight), { timeoutMs: 600_000 });
    assert.equal(r1.code, 0, r1.stderr);

    const killed = join(dir.path, 'killed');
    // Kill -9 once the checkpoint of step 3 is on disk, then resume.
    await new Promise<void>((resolvePromise, reject) => {
      const reports = tempDir('tilevec-report-');
      const child = spawn(process.execPath, [...reportFlags(reports.path), CLI, ...args(killed)], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      // A run that never reaches step 3 would otherwise hang the suite: say what it was doing instead.
      const stuck = setTimeout(async () => {
        const diagnosis = await describeHang(child.pid!, reports.path);
        child.removeAllListeners('exit');
        child.kill('SIGKILL');
        clearInterval(timer);
        reports.cleanup();
        reject(new Error(`the run did not reach step 3 in 5 minutes:\n${diagnosis}\nits stderr: ${stderr.slice(-2000)}`));
      }, 300_000);
      const timer = setInterval(() => {
        const path = join(killed, MODEL_FILES.checkpoint);
        if (!existsSync(path)) return;
        try {
          if ((readTensorFile<{ step: number }>(path).header.step ?? 0) >= 3) child.kill('SIGKILL');
        } catch { /* mid-rename: look again */ }
      }, 50);
      child.on('exit', (code, signal) => {
        clearInterval(timer);
        clearTimeout(stuck);
        reports.cleanup();
        if (signal === 'SIGKILL') resolvePromise();
        else reject(new Error(`the run finished (code ${code}) before it could be killed: ${stderr}`));
      });
    });
    const stopped = readTensorFile<{ step: number }>(join(killed, MODEL_FILES.checkpoint)).header.step;
    assert.ok(stopped >= 3 && stopped < 8, `killed at step ${stopped}`);
    const r2 = await runCli([...args(killed), '--resume'], { timeoutMs: 600_000 });
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(lastJson<{ resumedFrom: number }>(r2.stdout).resumedFrom, stopped);

    const a = readTensorFile(join(straight, MODEL_FILES.weights)).tensors;
    const b = readTensorFile(join(killed, MODEL_FILES.weights)).tensors;
    assert.deepEqual([...a.keys()], [...b.keys()]);
    let maxDiff = 0;
    for (const [name, t] of a) {
      const u = b.get(name)!.data;
      for (let i = 0; i < t.data.length; i++) maxDiff = Math.max(maxDiff, Math.abs(t.data[i] - u[i]));
    }
    assert.equal(maxDiff, 0, 'bit-identical weights on the same backend');
  });

  test('an incompatible resume, foreign bands and a missing backend are clear errors', async () => {
    const out = join(dir.path, 'straight');
    const wrongDim = await runCli(['train', '--db', db, '--out', out, ...SMALL, '--dim', '16', '--triplets', '32', '--seed', '7', '--resume']);
    assert.equal(wrongDim.code, 1);
    assert.match(wrongDim.stderr, /^tilevec: cannot resume from .*checkpoint\.bin: it comes from an incompatible configuration \(backbone\.dim: checkpoint 32, now 16\)/);

    const wrongBands = await runCli(['train', '--db', db, '--out', out, ...SMALL, '--bands', '1,2,3', '--triplets', '32', '--seed', '7', '--resume']);
    assert.equal(wrongBands.code, 1);
    assert.match(wrongBands.stderr, /incompatible configuration/);

    const noSuchBand = await runCli(['train', '--db', db, '--out', join(dir.path, 'x'), ...SMALL, '--bands', '1,9']);
    assert.equal(noSuchBand.code, 1);
    assert.match(noSuchBand.stderr, /band 9 does not exist in every raster/);

    const tooNarrow = await runCli(['train', '--db', db, '--out', join(dir.path, 'w'), ...SMALL, '--width', '0.5']);
    assert.equal(tooNarrow.code, 1);
    assert.match(tooNarrow.stderr, /^tilevec: invalid backbone config "tiny": - widths entries must be even integers >= 2 .*got \[0, 0, 16, 16\]/);
    assert.equal(tooNarrow.stderr.trim().split('\n').length, 1);

    const backend = await runCli(['train', '--db', db, '--out', join(dir.path, 'y'), ...SMALL, '--backend', 'tensorflow']);
    assert.equal(backend.code, 1);
    assert.match(backend.stderr, /@tensorflow\/tfjs-node/);
    assert.equal(backend.stderr.trim().split('\n').length, 1);

    // A model directory whose weights belong to another architecture.
    const broken = join(dir.path, 'broken');
    cpSync(out, broken, { recursive: true });
    const card = JSON.parse(readFileSync(join(broken, MODEL_FILES.card), 'utf8'));
    card.backbone.dim = 64;
    writeFileSync(join(broken, MODEL_FILES.card), JSON.stringify(card));
    assert.throws(() => loadModel(broken), /the card's .*differs|incompatible/);
  });
});
