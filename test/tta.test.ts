import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { exportBackboneOnnx, ONNX_INPUT, ONNX_OUTPUT } from '../src/embed/index.ts';
import { createBackbone, type RevBiFPN } from '../src/model/index.ts';

before(async () => {
  await tf.setBackend('cpu');
});

const small = { tileSize: 32, bands: 3, stemBlock: 2, widths: [12, 8, 8, 8], extraLayers: 0, blocksPerLayer: 1, neckWidths: [8, 8, 8, 16], dim: 16 };

/** The eight orientations of NHWC tiles, by tfjs's reverse and transpose (the reference for the ONNX Slices). */
function orientations(x: tf.Tensor4D): tf.Tensor4D[] {
  const upright = [x, tf.reverse(x, 2), tf.reverse(x, 1), tf.reverse(x, [1, 2])];
  return [...upright, ...upright.map((t) => tf.transpose(t, [0, 2, 1, 3]))];
}

async function onnxEmbed(model: RevBiFPN, x: tf.Tensor4D, options: Parameters<typeof exportBackboneOnnx>[1]): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(exportBackboneOnnx(model, options));
  try {
    const out = await session.run({ [ONNX_INPUT]: new ort.Tensor('float32', x.dataSync() as Float32Array, x.shape) });
    return out[ONNX_OUTPUT].data as Float32Array;
  } finally {
    await session.release();
  }
}

const maxDiff = (a: Float32Array, b: Float32Array) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));

describe('test-time augmentation (tta d4)', () => {
  for (const unitEmbeddings of [false, true]) {
    test(`the exported graph is the mean of the backbone over the eight orientations${unitEmbeddings ? ', then unit length' : ''}`, async () => {
      const model = createBackbone(small, { seed: 5 });
      const x = tf.randomNormal([3, 32, 32, 3], 0, 1, 'float32', 4) as tf.Tensor4D;
      try {
        const actual = await onnxEmbed(model, x, { tta: 'd4', unitEmbeddings });
        const expected = tf.tidy(() => {
          const mean = tf.mean(tf.stack(orientations(x).map((t) => model.apply(t))), 0);
          return (unitEmbeddings ? tf.div(mean, tf.norm(mean, 2, 1, true)) : mean).dataSync() as Float32Array;
        });
        assert.equal(actual.length, 3 * 16);
        const scale = Math.max(...expected.map(Math.abs));
        assert.ok(maxDiff(actual, expected) <= 1e-4 * scale, `max |ORT - tfjs| = ${maxDiff(actual, expected)} of ${scale}`);
      } finally {
        x.dispose();
        model.dispose();
      }
    });
  }

  test('every orientation of a tile gets the same vector with d4, and not without', async () => {
    const model = createBackbone(small, { seed: 6 });
    const x = tf.randomNormal([1, 32, 32, 3], 0, 1, 'float32', 8) as tf.Tensor4D;
    const turned = orientations(x);
    const batch = tf.concat(turned) as tf.Tensor4D;
    try {
      for (const tta of ['d4', 'none'] as const) {
        const z = await onnxEmbed(model, batch, { tta });
        const first = z.subarray(0, 16);
        const spread = Math.max(...turned.map((_, i) => maxDiff(z.subarray(i * 16, (i + 1) * 16), first)));
        const scale = Math.max(...first.map(Math.abs));
        if (tta === 'd4') assert.ok(spread <= 1e-4 * scale, `d4: the orientations differ by ${spread} of ${scale}`);
        else assert.ok(spread > 1e-2 * scale, `without tta a random network should see orientation (spread ${spread})`);
      }
    } finally {
      for (const t of [x, batch, ...turned.slice(1)]) t.dispose();
      model.dispose();
    }
  });
});
