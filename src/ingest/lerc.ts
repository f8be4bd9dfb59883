/**
 * LERC (TIFF compression 34887) through the `lerc` package (version 3, pure JavaScript and synchronous, installed
 * with geotiff.js), so it runs on the decode threads. GDAL's LERC_DEFLATE and LERC_ZSTD wrap the LERC blob in a
 * further DEFLATE or ZSTD stream, named by the LercParameters tag. LERC returns native-endian samples.
 */
import { createRequire } from 'node:module';
import { inflateSync } from 'node:zlib';
import { zstdDecode } from './zstd.ts';

type LercModule = { decode(buffer: ArrayBuffer, opts: { returnPixelInterleavedDims?: boolean }): { pixels: ArrayBufferView[] } };
let Lerc: LercModule | undefined;

function lerc(): LercModule {
  Lerc ??= createRequire(createRequire(import.meta.url).resolve('geotiff'))('lerc') as LercModule;
  return Lerc;
}

/** `additional`: LercParameters' second value: 0 none, 1 DEFLATE, 2 ZSTD. */
export function lercDecode(stored: Uint8Array, expected: number, limit: number, additional: number, target: () => Uint8Array): Uint8Array {
  let blob: Uint8Array;
  if (additional === 0) blob = stored.slice();
  else if (additional === 1) blob = new Uint8Array(inflateSync(stored, { maxOutputLength: 4 * limit + 4096 }));
  else if (additional === 2) blob = zstdDecode(stored, 4 * limit + 4096, 4 * limit + 4096, () => new Uint8Array(4 * limit + 4096)).slice();
  else throw new Error(`unsupported LERC additional compression ${additional}`);
  let pixels: ArrayBufferView;
  try {
    pixels = lerc().decode(blob.buffer.slice(blob.byteOffset, blob.byteOffset + blob.length) as ArrayBuffer, { returnPixelInterleavedDims: true }).pixels[0];
  } catch (err) {
    throw new Error(`corrupt LERC stream: ${(err as Error).message ?? err}`);
  }
  if (!pixels) throw new Error('corrupt LERC stream: no pixels');
  const bytes = new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.byteLength);
  if (bytes.length > limit) throw new Error(`the LERC stream decodes to ${bytes.length} bytes, past the block's ${limit}`);
  const out = bytes.length <= expected ? target() : new Uint8Array(bytes.length);
  out.set(bytes);
  return out.subarray(0, bytes.length);
}
