import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { exportBackboneOnnx, ONNX_INPUT, ONNX_OUTPUT } from '../src/embed/index.ts';
import { normalizationFromStats } from '../src/sampling/index.ts';
import { createBackbone, resolveBackboneConfig, streamSize, streamWidths, type BackboneConfig, type HeadPooling } from '../src/model/index.ts';
import { loadModel, MODEL_FILES, modelTensors, writeCard, type ModelCard } from '../src/train/model-dir.ts';
import { writeTensorFile } from '../src/train/tensor-file.ts';

before(async () => {
  await tf.setBackend('cpu');
});

const small = (stemBlock: number, headPooling: HeadPooling = 'coarsest'): Partial<BackboneConfig> => ({
  tileSize: 32, bands: 3, stemBlock, headPooling, widths: [stemBlock === 1 ? 4 : stemBlock * stemBlock * 3, 8, 8, 8], extraLayers: 0, blocksPerLayer: 1, neckWidths: [8, 8, 8, 16], dim: 16,
});

describe('stem block', () => {
  test('stream 0 runs at tile / stemBlock, and each band is kept once per block cell', () => {
    const x2 = resolveBackboneConfig('tiny', { tileSize: 64, stemBlock: 2 });
    assert.deepEqual([0, 1, 2, 3].map((h) => streamSize(x2, h)), [32, 16, 8, 4]);
    assert.equal(streamWidths(x2)[0], 16, '4 bands x 2 x 2');
    const x4 = resolveBackboneConfig('tiny', { tileSize: 64 });
    assert.equal(x4.stemBlock, 4, 'the reference stem stays the default');
    assert.deepEqual([0, 1, 2, 3].map((h) => streamSize(x4, h)), [16, 8, 4, 2]);
    assert.equal(streamWidths(resolveBackboneConfig('tiny', { stemBlock: 2, bands: 8 }))[0], 32, '8 bands x 2 x 2');
    const x1 = resolveBackboneConfig('tiny', { tileSize: 32, stemBlock: 1, bands: 7 });
    assert.deepEqual([0, 1, 2, 3].map((h) => streamSize(x1, h)), [32, 16, 8, 4]);
    assert.equal(streamWidths(x1)[0], 16, '7 bands repeated up to the preset width');
    assert.equal(streamWidths(resolveBackboneConfig('tiny', { tileSize: 32, stemBlock: 1, bands: 17 }))[0], 18, 'odd band counts round up: blocks split channels in halves');
  });

  test('pyramid pooling adds one bias-free projection per finer level; the coarsest level alone is the reference head', () => {
    const pyramid = createBackbone(small(2, 'pyramid'), { seed: 1 });
    const reference = createBackbone(small(2), { seed: 1 });
    try {
      const extra = pyramid.head.weightNames().filter((n) => !reference.head.weightNames().includes(n));
      assert.deepEqual(extra, ['head.pool0.project.kernel', 'head.pool1.project.kernel', 'head.pool2.project.kernel']);
      // With the finer projections at zero the pyramid head is the reference head.
      for (const n of extra) pyramid.params.get(n).assign(tf.zerosLike(pyramid.params.get(n)));
      for (const n of reference.head.weightNames()) pyramid.params.get(n).assign(reference.params.get(n));
      const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 2) as tf.Tensor4D;
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(pyramid.apply(x), reference.apply(x)))).dataSync()[0]);
      x.dispose();
      assert.ok(diff < 1e-6, `zeroed pyramid projections change the embedding by ${diff}`);
    } finally {
      pyramid.dispose();
      reference.dispose();
    }
  });

  test('bad stem blocks and head poolings get clear errors', () => {
    assert.throws(() => resolveBackboneConfig('tiny', { headPooling: 'max' as HeadPooling }), /headPooling must be one of coarsest, pyramid, got max/);
    assert.throws(() => resolveBackboneConfig('tiny', { stemBlock: 3 }), /stemBlock must be one of 1, 2, 4, got 3/);
    assert.throws(() => resolveBackboneConfig('tiny', { stemBlock: 2, widths: [6, 16, 32, 48] }), /widths\[0\] must be a multiple of 4 \(space-to-depth x2/);
  });

  const cases = [[1, 'coarsest', false], [2, 'coarsest', false], [4, 'coarsest', false], [2, 'pyramid', false], [2, 'coarsest', true]] as const;
  for (const [stemBlock, headPooling, unitEmbeddings] of cases) {
    test(`the ONNX export computes what tfjs computes (stem block ${stemBlock}, ${headPooling} pooling${unitEmbeddings ? ', unit embeddings' : ''})`, async () => {
      const model = createBackbone(small(stemBlock, headPooling), { seed: 7 });
      const x = tf.randomNormal([5, 32, 32, 3], 0, 1, 'float32', 9) as tf.Tensor4D;
      try {
        const session = await ort.InferenceSession.create(exportBackboneOnnx(model, { unitEmbeddings }));
        const data = x.dataSync() as Float32Array;
        const out = await session.run({ [ONNX_INPUT]: new ort.Tensor('float32', data, [5, 32, 32, 3]) });
        const actual = out[ONNX_OUTPUT].data as Float32Array;
        const expected = tf.tidy(() => {
          const z = model.apply(x);
          return (unitEmbeddings ? tf.div(z, tf.norm(z, 2, 1, true)) : z).dataSync() as Float32Array;
        });
        const scale = Math.max(...expected.map(Math.abs));
        const worst = Math.max(...actual.map((v, i) => Math.abs(v - expected[i])));
        assert.ok(worst <= 1e-4 * scale, `max |ORT - tfjs| = ${worst} of ${scale}`);
        await session.release();
      } finally {
        x.dispose();
        model.dispose();
      }
    });
  }

  test('a model directory written before the stem block and head pooling were recorded loads as the x4 stem and coarsest head it was', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tilevec-stem-'));
    const model = createBackbone(small(4), { seed: 3 });
    try {
      const { stemBlock: _s, headPooling: _h, ...oldConfig } = model.config;
      const normalization = normalizationFromStats([{ id: 1, label: 'a.tif', bandStats: [1, 2, 3].map((band) => ({ band, count: 100, mean: 0, std: 1, min: -3, max: 3, p2: -2, p98: 2 })) }], [1, 2, 3], 'zscore');
      writeTensorFile(join(dir, MODEL_FILES.weights), { format: 'tilevec-weights/1', backbone: oldConfig, normalization }, modelTensors(model));
      const card = {
        format: 'tilevec-model-card/1', name: 'old', backbone: oldConfig, bands: [1, 2, 3], normalization, tileSize: 32, dim: 16, training: {},
        rasters: [], metrics: {}, seed: 3, versions: { tilevec: 'test' }, wallSeconds: 0, createdAt: new Date().toISOString(),
      } as unknown as ModelCard;
      writeCard(dir, card);
      const loaded = loadModel(dir);
      assert.equal(loaded.backbone.config.stemBlock, 4);
      assert.equal(loaded.backbone.config.headPooling, 'coarsest');
      const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 4) as tf.Tensor4D;
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(loaded.backbone.apply(x), model.apply(x)))).dataSync()[0]);
      assert.equal(diff, 0);
      x.dispose();
      loaded.backbone.dispose();
    } finally {
      model.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
