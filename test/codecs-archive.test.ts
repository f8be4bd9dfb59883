/**
 * The codecs that real archives use, on files GDAL writes at test time from a small window of the shared imagery
 * (never committed): tilevec's read of each is compared with GDAL's own read of the same file, exactly for the
 * lossless codecs. Codecs tilevec does not decode yet must fail with an error naming them and listing what is
 * supported.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { COMPRESSION, decodeBlock, packBitsDecode, supportedCompressions } from '../src/ingest/codecs.ts';
import { openRaster } from '../src/ingest/index.ts';
import { DATA_DIR, GDAL_PY, dataMissing, gdalMissing, tempDir } from './helpers.ts';

const NAIP = join(DATA_DIR, 'naip-northdakota/m_4709963_se_14_1_20090818.tif');
const W = 150;
const H = 97;

/** GDAL's read of every band of `path`, as raw native-endian bytes, band after band. */
function gdalBands(path: string): Buffer {
  const py = 'import sys; from osgeo import gdal; d = gdal.Open(sys.argv[1]); sys.stdout.buffer.write(d.ReadAsArray().tobytes())';
  return execFileSync(GDAL_PY, ['-c', py, path], { maxBuffer: 64 * 2 ** 20 });
}

function translate(out: string, options: string[]): void {
  execFileSync('gdal_translate', ['-q', '-srcwin', '100', '200', String(W), String(H), ...options, NAIP, out]);
}

async function tilevecBands(path: string): Promise<Buffer> {
  const r = await openRaster(path, { cacheBytes: 0 });
  try {
    const win = await r.readWindow({ x: 0, y: 0, w: r.width, h: r.height });
    return Buffer.concat(win.data.map((d) => Buffer.from(d.buffer, d.byteOffset, d.byteLength)));
  } finally {
    await r.close();
  }
}

describe('PackBits and ZSTD blocks', () => {
  test('runs, literals and the no-op header decode as TIFF 6.0 says', () => {
    const stored = new Uint8Array([0xfe, 7, 2, 1, 2, 3, 0x80, 0xff, 9]);
    const out = packBitsDecode(stored, 8, 8, () => new Uint8Array(8));
    assert.deepEqual([...out], [7, 7, 7, 1, 2, 3, 9, 9]);
  });

  test('a corrupt stream is a clear error, never a read past the block', () => {
    const codec = { compression: COMPRESSION.packBits, predictor: 1, bytesPerSample: 1, samples: 1, width: 4, rows: 2, littleEndian: true };
    assert.throws(() => decodeBlock(codec, new Uint8Array([5, 1, 2])), /corrupt PackBits stream: a literal run of 6 bytes passes the end/);
    assert.throws(() => decodeBlock(codec, new Uint8Array([0x81])), /corrupt PackBits stream: a repeat run has no byte/);
    assert.throws(() => decodeBlock(codec, new Uint8Array([0x81, 1, 0x81, 1])), /PackBits stream decodes past the block's 8 bytes/);
    assert.throws(() => decodeBlock(codec, new Uint8Array([0x02, 1, 2, 3])), /corrupt block: decoded 3 bytes, expected 8/);
  });

  test('a corrupt JPEG stream is a clear error', () => {
    const codec = { compression: COMPRESSION.jpeg, predictor: 1, bytesPerSample: 1, samples: 3, width: 8, rows: 8, littleEndian: true };
    assert.throws(() => decodeBlock(codec, new Uint8Array([0xff, 0xd8, 0xff, 0xc0, 0, 3, 1, 2, 3])), /corrupt JPEG stream/);
  });

  test('a corrupt LERC stream is a clear error', () => {
    const codec = { compression: COMPRESSION.lerc, predictor: 1, bytesPerSample: 1, samples: 1, width: 8, rows: 8, littleEndian: true };
    assert.throws(() => decodeBlock(codec, new Uint8Array([0x43, 0x6e, 0x74, 0x5a, 1, 2, 3, 4, 5, 6])), /corrupt LERC stream/);
  });

  test('a corrupt WebP stream, or a header claiming more than the block, is a clear error before decoding', () => {
    const codec = { compression: COMPRESSION.webp, predictor: 1, bytesPerSample: 1, samples: 3, width: 8, rows: 8, littleEndian: true };
    const riff = (chunk: string, body: number[]) => Uint8Array.from([...Buffer.from('RIFF'), 0, 0, 0, 0, ...Buffer.from('WEBP'), ...Buffer.from(chunk), 0, 0, 0, 0, ...body, ...new Array(16).fill(0)]);
    assert.throws(() => decodeBlock(codec, new Uint8Array(40)), /corrupt WebP stream: no RIFF WEBP header/);
    // VP8L: signature 0x2f, then 14-bit width - 1 and height - 1: 16384 x 16384 pixels.
    assert.throws(() => decodeBlock(codec, riff('VP8L', [0x2f, 0xff, 0xff, 0xff, 0x0f])), /the WebP stream decodes to 805306368 bytes, past the block's 192/);
    assert.throws(() => decodeBlock(codec, riff('VP8L', [0x2f, 0x07, 0xc0, 0x01, 0x00])), /corrupt WebP stream: Failed to decode/);
  });

  test('a corrupt ZSTD stream is a clear error', () => {
    const codec = { compression: COMPRESSION.zstd, predictor: 1, bytesPerSample: 1, samples: 1, width: 4, rows: 2, littleEndian: true };
    assert.throws(() => decodeBlock(codec, new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 9, 9, 9, 9])), /corrupt ZSTD stream/);
  });
});

describe('files GDAL writes with the archive codecs', { skip: dataMissing() || gdalMissing() }, () => {
  let tmp: ReturnType<typeof tempDir>;
  before(() => {
    tmp = tempDir('tilevec-codecs-');
  });
  after(() => tmp?.cleanup());

  const lossless: [string, string[]][] = [
    ['PackBits, stripped', ['-co', 'COMPRESS=PACKBITS']],
    ['ZSTD, stripped', ['-co', 'COMPRESS=ZSTD']],
    ['ZSTD, tiled, predictor 2', ['-co', 'COMPRESS=ZSTD', '-co', 'PREDICTOR=2', '-co', 'TILED=YES', '-co', 'BLOCKXSIZE=64', '-co', 'BLOCKYSIZE=32']],
    ['LERC, stripped', ['-co', 'COMPRESS=LERC']],
    ['LERC_DEFLATE, tiled', ['-co', 'COMPRESS=LERC_DEFLATE', '-co', 'TILED=YES', '-co', 'BLOCKXSIZE=64', '-co', 'BLOCKYSIZE=32']],
    ['LERC_ZSTD, band-interleaved', ['-co', 'COMPRESS=LERC_ZSTD', '-co', 'INTERLEAVE=BAND']],
    ['PackBits, tiled, band-interleaved', ['-co', 'COMPRESS=PACKBITS', '-co', 'TILED=YES', '-co', 'BLOCKXSIZE=64', '-co', 'BLOCKYSIZE=32', '-co', 'INTERLEAVE=BAND']],
    ['WebP lossless, RGBN, tiled', ['-co', 'COMPRESS=WEBP', '-co', 'WEBP_LOSSLESS=TRUE', '-co', 'TILED=YES', '-co', 'BLOCKXSIZE=64', '-co', 'BLOCKYSIZE=32']],
    ['WebP lossless, RGB, stripped', ['-b', '1', '-b', '2', '-b', '3', '-co', 'COMPRESS=WEBP', '-co', 'WEBP_LOSSLESS=TRUE']],
  ];
  for (const [name, options] of lossless) {
    test(`${name}: the same samples as GDAL reads`, async () => {
      const path = join(tmp.path, `${name.replace(/\W+/g, '-')}.tif`);
      translate(path, options);
      const ours = await tilevecBands(path);
      const gdal = gdalBands(path);
      assert.equal(ours.length, W * H * (options.includes('-b') ? 3 : 4));
      assert.ok(ours.equals(gdal), `${name}: tilevec's samples differ from GDAL's`);
    });
  }

  // Tolerances, measured on this window: YCbCr max 7, mean 0.33 (geotiff.js replicates subsampled chroma where
  // libjpeg interpolates); 4-band JPEG max 1, mean 0.06 (IDCT rounding).
  const lossy: [string, string[], number, number, number][] = [
    ['JPEG-in-YCbCr, RGB, tiled', ['-b', '1', '-b', '2', '-b', '3', '-co', 'COMPRESS=JPEG', '-co', 'PHOTOMETRIC=YCBCR', '-co', 'TILED=YES', '-co', 'BLOCKXSIZE=64', '-co', 'BLOCKYSIZE=64'], 3, 12, 0.75],
    ['JPEG, 4 bands, stripped', ['-co', 'COMPRESS=JPEG'], 4, 2, 0.2],
    ['WebP lossy, RGB, tiled', ['-b', '1', '-b', '2', '-b', '3', '-co', 'COMPRESS=WEBP', '-co', 'TILED=YES', '-co', 'BLOCKXSIZE=64', '-co', 'BLOCKYSIZE=64'], 3, 0, 0],
  ];
  for (const [name, options, bands, maxTol, meanTol] of lossy) {
    test(`${name}: within the stated tolerance of GDAL's read`, async () => {
      const path = join(tmp.path, `${name.replace(/\W+/g, '-')}.tif`);
      translate(path, options);
      const ours = await tilevecBands(path);
      const gdal = gdalBands(path);
      assert.equal(ours.length, W * H * bands);
      let max = 0, sum = 0;
      for (let i = 0; i < ours.length; i++) {
        const d = Math.abs(ours[i] - gdal[i]);
        if (d > max) max = d;
        sum += d;
      }
      const mean = sum / ours.length;
      console.log(`${name}: |tilevec - GDAL| max ${max}, mean ${mean.toFixed(3)}`);
      assert.ok(max <= maxTol && mean <= meanTol, `${name}: max ${max} (tolerance ${maxTol}), mean ${mean} (tolerance ${meanTol})`);
    });
  }

  const notYet: [string, string[], string][] = [
    ['LZMA', ['-co', 'COMPRESS=LZMA'], 'LZMA'],
  ];
  for (const [name, options, codec] of notYet) {
    test(`${name}: refused with an error naming the codec and listing the supported ones`, async () => {
      const path = join(tmp.path, `${name}.tif`);
      translate(path, options);
      const listed = supportedCompressions().join(', ');
      await assert.rejects(openRaster(path), (err: Error) => err.message === `unsupported compression ${codec} (supported: ${listed})`);
    });
  }
});
