/**
 * JPEG (TIFF compression 7) through geotiff.js's pure-JavaScript baseline JPEG decoder (it needs no canvas, so it
 * runs on the decode threads), with the file's JPEGTables. Blocks stored as YCbCr (photometric 6, as GDAL writes
 * aerial RGB with PHOTOMETRIC=YCBCR) are converted to RGB here with the JFIF full-range equations, as libjpeg does.
 * geotiff.js upsamples subsampled chroma by replication where libjpeg interpolates, so values differ from GDAL's
 * by a few levels at chroma edges; JPEG is lossy anyway, and the tests state the tolerance.
 */
import { createRequire } from 'node:module';

type JpegDecoderClass = new (params: { JPEGTables?: Uint8Array; tileWidth: number; tileHeight: number; predictor: number; bitsPerSample: number; planarConfiguration: number }) => {
  decodeBlock(buffer: ArrayBuffer): ArrayBuffer;
};

let Decoder: JpegDecoderClass | undefined;

function decoderClass(): JpegDecoderClass {
  if (Decoder) return Decoder;
  const require = createRequire(import.meta.url);
  const geotiff = require.resolve('geotiff');
  // geotiff.js exports only its entry point; its decoder modules sit beside it.
  Decoder = (createRequire(geotiff)('./compression/jpeg.js') as { default: JpegDecoderClass }).default;
  return Decoder;
}

export function jpegDecode(stored: Uint8Array, expected: number, limit: number, tables: Uint8Array | undefined, ycbcr: boolean, target: () => Uint8Array): Uint8Array {
  const D = decoderClass();
  let decoded: Uint8Array;
  try {
    const decoder = new D({ JPEGTables: tables, tileWidth: 0, tileHeight: 0, predictor: 1, bitsPerSample: 8, planarConfiguration: 1 });
    const copy = stored.slice();
    decoded = new Uint8Array(decoder.decodeBlock(copy.buffer));
  } catch (err) {
    throw new Error(`corrupt JPEG stream: ${(err as Error).message ?? err}`);
  }
  if (decoded.length > limit) throw new Error(`the JPEG stream decodes to ${decoded.length} bytes, past the block's ${limit}`);
  const out = decoded.length <= expected ? target() : new Uint8Array(decoded.length);
  if (ycbcr) {
    for (let i = 0; i + 2 < decoded.length; i += 3) {
      const y = decoded[i], cb = decoded[i + 1] - 128, cr = decoded[i + 2] - 128;
      out[i] = clamp(y + 1.402 * cr);
      out[i + 1] = clamp(y - 0.344136 * cb - 0.714136 * cr);
      out[i + 2] = clamp(y + 1.772 * cb);
    }
  } else {
    out.set(decoded);
  }
  return out.subarray(0, decoded.length);
}

function clamp(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
}
