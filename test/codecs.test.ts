/**
 * Block decoding against independently built blocks: samples laid out by hand, predictor-encoded and compressed
 * with Node's zlib, then decoded and compared plane by plane; and blocks GDAL wrote (LZW, predictor 3, big-endian)
 * against GDAL's own reading of them. The same checks run twice: with the native codecs
 * (libdeflate, C de-interleave) where they are built, and in a child process with TILEVEC_NATIVE_CODECS=0, on the
 * JavaScript and zlib path that machines without libdeflate-dev use.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { deflateSync } from 'node:zlib';
import { COMPRESSION, INFLATE_ENGINE, copyBlockRect, decodeBlock, type BlockCodec, type BlockRect } from '../src/ingest/codecs.ts';
import { decodeJob } from '../src/ingest/decode-job.ts';
import { GDAL_PY, ROOT, gdalMissing, lzwBomb, tempDir } from './helpers.ts';

const inChild = process.env.TILEVEC_CODECS_CHILD === '1';

/** Deterministic samples: plane s, pixel p. */
const sampleAt = (s: number, p: number, bytes: number) => ((p * 2654435761 + s * 40503) >>> 0) % 2 ** Math.min(32, 8 * bytes);

/** Interleaved little-endian bytes of `samples` planes, with TIFF predictor 2 applied when asked. */
function storedBlock(width: number, rows: number, samples: number, bytes: number, predictor: number): { planes: number[][]; raw: Uint8Array } {
  const pixels = width * rows;
  const planes = Array.from({ length: samples }, (_, s) => Array.from({ length: pixels }, (_, p) => sampleAt(s, p, bytes)));
  const raw = new Uint8Array(pixels * samples * bytes);
  const view = new DataView(raw.buffer);
  const mask = 2 ** (8 * bytes);
  for (let p = 0; p < pixels; p++) {
    for (let s = 0; s < samples; s++) {
      // Horizontal differencing: each sample minus the same sample of the pixel to its left, modulo 2^bits.
      const left = predictor === 2 && p % width !== 0 ? planes[s][p - 1] : 0;
      const v = (planes[s][p] - left + mask) % mask;
      const at = (p * samples + s) * bytes;
      if (bytes === 1) view.setUint8(at, v);
      else if (bytes === 2) view.setUint16(at, v, true);
      else view.setUint32(at, v, true);
    }
  }
  return { planes, raw };
}

function planesOf(decoded: Uint8Array, samples: number, bytes: number, pixels: number): number[][] {
  const view = new DataView(decoded.buffer, decoded.byteOffset, decoded.byteLength);
  return Array.from({ length: samples }, (_, s) => Array.from({ length: pixels }, (_, p) => {
    const at = (s * pixels + p) * bytes;
    return bytes === 1 ? view.getUint8(at) : bytes === 2 ? view.getUint16(at, true) : view.getUint32(at, true);
  }));
}

/** Each window band holds its expected block plane inside `rect`, pixel for pixel. */
function assertRectCopied(bands: ArrayLike<number>[], expected: number[][], blockWidth: number, rect: BlockRect): void {
  for (let y = 0; y < rect.height; y++) {
    for (let x = 0; x < rect.width; x++) {
      const p = (rect.blockY + y) * blockWidth + rect.blockX + x;
      const o = (rect.windowY + y) * rect.windowWidth + rect.windowX + x;
      bands.forEach((band, k) => assert.equal(band[o], expected[k][p], `band ${k} at window pixel ${o}`));
    }
  }
}

interface GdalCase { name: string; dtype: 'uint8' | 'uint16' | 'int16' | 'uint32' | 'float32' | 'float64'; samples: number; compress: 'LZW' | 'DEFLATE' | 'NONE'; predictor: number; endian: 'LITTLE' | 'BIG' }
const BYTES = { uint8: 1, uint16: 2, int16: 2, uint32: 4, float32: 4, float64: 8 } as const;

/** Each case's one strip as GDAL stored it, and GDAL's reading of it (planes, little-endian), from test/fixtures/codec_blocks.py. */
function gdalBlocks(cases: GdalCase[]): { littleEndian: boolean; stored: string; expected: string }[] {
  const dir = tempDir('tilevec-codecs-');
  try {
    return JSON.parse(execFileSync(GDAL_PY, [join(ROOT, 'test/fixtures/codec_blocks.py')], { input: JSON.stringify({ dir: dir.path, cases }), maxBuffer: 16 << 20 }).toString());
  } finally {
    dir.cleanup();
  }
}

describe(`block decoding (${INFLATE_ENGINE})`, () => {
  if (process.env.CI === 'true' && !inChild) {
    test('CI reads with the native codecs that npm ci built', () => assert.equal(INFLATE_ENGINE, 'libdeflate'));
  }

  for (const samples of [1, 3, 4]) {
    for (const bytes of [1, 2, 4]) {
      for (const compression of [COMPRESSION.deflate, COMPRESSION.none]) {
        test(`${samples} sample(s) of ${8 * bytes} bits, ${compression === COMPRESSION.none ? 'uncompressed' : 'DEFLATE'}, predictor 1 and 2`, () => {
          for (const predictor of [1, 2]) {
            // 37 x 5: widths that are not multiples of the 16-pixel SIMD step, so the scalar tails run too.
            const width = 37;
            const rows = 5;
            const { planes, raw } = storedBlock(width, rows, samples, bytes, predictor);
            const stored = compression === COMPRESSION.none ? raw.slice() : new Uint8Array(deflateSync(raw));
            const codec: BlockCodec = { compression, predictor, bytesPerSample: bytes, samples, width, rows, littleEndian: true };
            const decoded = decodeBlock(codec, stored);
            assert.equal(decoded.byteOffset, 0, 'the block starts its buffer, so it can be transferred');
            assert.deepEqual(planesOf(decoded, samples, bytes, width * rows), planes);
          }
        });
      }
    }
  }

  test('a reused buffer is decoded into when it is large enough, and ignored when not', () => {
    const { planes, raw } = storedBlock(64, 64, 4, 1, 1);
    const codec: BlockCodec = { compression: COMPRESSION.deflate, predictor: 1, bytesPerSample: 1, samples: 4, width: 64, rows: 64, littleEndian: true };
    const spare = new ArrayBuffer(raw.length + 100);
    new Uint8Array(spare).fill(0xee);
    const into = decodeBlock(codec, new Uint8Array(deflateSync(raw)), spare);
    assert.equal(into.buffer, spare);
    assert.deepEqual(planesOf(into, 4, 1, 64 * 64), planes);
    const small = new ArrayBuffer(16);
    const fresh = decodeBlock(codec, new Uint8Array(deflateSync(raw)), small);
    assert.notEqual(fresh.buffer, small);
    assert.deepEqual(planesOf(fresh, 4, 1, 64 * 64), planes);
  });

  test('a last strip encoded at full height decodes to its rows, and a corrupt one is an error', () => {
    const { planes, raw } = storedBlock(16, 4, 3, 1, 1);
    const padded = new Uint8Array(16 * 6 * 3);
    padded.set(raw);
    const codec: BlockCodec = { compression: COMPRESSION.deflate, predictor: 1, bytesPerSample: 1, samples: 3, width: 16, rows: 4, maxBytes: padded.length, littleEndian: true };
    assert.deepEqual(planesOf(decodeBlock(codec, new Uint8Array(deflateSync(padded))), 3, 1, 64), planes);
    const corrupt = new Uint8Array(deflateSync(raw));
    corrupt.fill(0xff, 2, 12);
    assert.throws(() => decodeBlock(codec, corrupt), /invalid|incorrect|corrupt|unexpected/i);
    assert.throws(() => decodeBlock(codec, new Uint8Array(deflateSync(raw.subarray(0, 100)))), /corrupt block: decoded 100 bytes, expected 192/);
  });

  test('a stream that inflates past the block is refused, DEFLATE and LZW alike, without decoding it whole', () => {
    const codec: BlockCodec = { compression: COMPRESSION.deflate, predictor: 1, bytesPerSample: 1, samples: 1, width: 64, rows: 64, littleEndian: true };
    // 256 MiB of zeros in about 256 KiB: a decompression bomb for a 4 KiB block.
    const bomb = new Uint8Array(deflateSync(new Uint8Array(256 * 2 ** 20)));
    const rss = process.memoryUsage().rss;
    assert.throws(() => decodeBlock(codec, bomb), /inflates past the block's 4096 bytes/);
    assert.throws(() => decodeBlock({ ...codec, rows: 32, maxBytes: 4096 }, bomb), /inflates past the block's 4096 bytes/);
    assert.throws(() => decodeBlock({ ...codec, compression: COMPRESSION.lzw }, lzwBomb(3000)), /LZW stream decodes past the block's 4096 bytes/);
    assert.ok(process.memoryUsage().rss - rss < 64 * 2 ** 20, 'the bombs were not inflated');
  });

  test('copyBlockRect crops a plane rectangle into a window, whole runs and row by row', () => {
    const { planes, raw } = storedBlock(8, 6, 2, 2, 1);
    const block = decodeBlock({ compression: COMPRESSION.none, predictor: 1, bytesPerSample: 2, samples: 2, width: 8, rows: 6, littleEndian: true }, raw.slice());
    for (const rect of [
      { blockX: 2, blockY: 1, width: 5, height: 3, windowX: 1, windowY: 2, windowWidth: 7 },
      { blockX: 0, blockY: 2, width: 8, height: 4, windowX: 0, windowY: 1, windowWidth: 8 },
    ]) {
      const windows = [new Uint16Array(7 * 8), new Uint16Array(7 * 8)];
      copyBlockRect(block, { width: 8, samples: 2, bytesPerSample: 2 }, rect, [1, 0], windows);
      assertRectCopied(windows, [planes[1], planes[0]], 8, rect);
    }
  });

  test('a job with a target writes the block part straight into shared window bands', () => {
    const { planes, raw } = storedBlock(40, 30, 4, 2, 2);
    const codec: BlockCodec = { compression: COMPRESSION.deflate, predictor: 2, bytesPerSample: 2, samples: 4, width: 40, rows: 30, littleEndian: true };
    const rect = { blockX: 3, blockY: 5, width: 30, height: 20, windowX: 2, windowY: 1, windowWidth: 33 };
    const shared = new SharedArrayBuffer(2 * 2 * 33 * 22);
    const bands = [new Uint16Array(shared, 0, 33 * 22), new Uint16Array(shared, 2 * 33 * 22, 33 * 22)];
    for (let round = 0; round < 2; round++) {
      assert.equal(decodeJob(codec, { bytes: new Uint8Array(deflateSync(raw)) }, { rect, planes: [3, 0], bands }), undefined);
      assertRectCopied(bands, [planes[3], planes[0]], 40, rect);
      assert.equal(bands[0][0], 0, 'outside the rectangle stays as it was');
    }
  });

  describe('blocks that GDAL wrote: LZW, the floating-point predictor, big-endian files', { skip: gdalMissing() }, () => {
    const cases: GdalCase[] = [
      { name: 'lzw-u8x3', dtype: 'uint8', samples: 3, compress: 'LZW', predictor: 1, endian: 'LITTLE' },
      { name: 'lzw-u16-pred2', dtype: 'uint16', samples: 1, compress: 'LZW', predictor: 2, endian: 'LITTLE' },
      { name: 'lzw-f32x2-pred3', dtype: 'float32', samples: 2, compress: 'LZW', predictor: 3, endian: 'LITTLE' },
      { name: 'deflate-f32-pred3', dtype: 'float32', samples: 1, compress: 'DEFLATE', predictor: 3, endian: 'LITTLE' },
      { name: 'deflate-f64x2-pred3', dtype: 'float64', samples: 2, compress: 'DEFLATE', predictor: 3, endian: 'LITTLE' },
      { name: 'be-u16x2', dtype: 'uint16', samples: 2, compress: 'NONE', predictor: 1, endian: 'BIG' },
      { name: 'be-lzw-i16-pred2', dtype: 'int16', samples: 1, compress: 'LZW', predictor: 2, endian: 'BIG' },
      { name: 'be-deflate-u32x3-pred2', dtype: 'uint32', samples: 3, compress: 'DEFLATE', predictor: 2, endian: 'BIG' },
      { name: 'be-deflate-f32x4-pred3', dtype: 'float32', samples: 4, compress: 'DEFLATE', predictor: 3, endian: 'BIG' },
      { name: 'be-lzw-f64-pred3', dtype: 'float64', samples: 1, compress: 'LZW', predictor: 3, endian: 'BIG' },
    ];
    const blocks = gdalMissing() ? [] : gdalBlocks(cases);
    for (const [k, c] of cases.entries()) {
      test(`${c.name}: decodes to the samples GDAL reads`, () => {
        const b = blocks[k];
        assert.equal(b.littleEndian, c.endian === 'LITTLE', 'GDAL wrote the byte order asked for');
        const codec: BlockCodec = {
          compression: { LZW: COMPRESSION.lzw, DEFLATE: COMPRESSION.deflate, NONE: COMPRESSION.none }[c.compress],
          predictor: c.predictor, bytesPerSample: BYTES[c.dtype], samples: c.samples, width: 37, rows: 10, littleEndian: b.littleEndian,
        };
        const decoded = decodeBlock(codec, new Uint8Array(Buffer.from(b.stored, 'base64')));
        assert.ok(Buffer.from(decoded).equals(Buffer.from(b.expected, 'base64')), `${c.name} differs from GDAL`);
      });
    }
  });

  if (!inChild) {
    test('the same checks pass on the JavaScript and zlib path (TILEVEC_NATIVE_CODECS=0)', () => {
      // Without NODE_TEST_CONTEXT, which would make the child report to this runner instead of printing TAP.
      const { NODE_TEST_CONTEXT: _, ...env } = process.env;
      const child = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', 'test/codecs.test.ts'], {
        cwd: ROOT, encoding: 'utf8', env: { ...env, TILEVEC_NATIVE_CODECS: '0', TILEVEC_CODECS_CHILD: '1' },
      });
      assert.equal(child.status, 0, child.stdout + child.stderr);
      assert.match(child.stdout, /block decoding \(zlib\)/);
      assert.match(child.stdout, /# fail 0/);
    });
  }
});
