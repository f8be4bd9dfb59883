/**
 * WebP (TIFF compression 50001, as GDAL writes 3- and 4-band Byte imagery with COMPRESS=WEBP) through libwebp
 * compiled to WebAssembly in `@cwasm/webp`: synchronous, so it runs on the decode threads, and without a canvas.
 * It always decodes to RGBA; 3-band blocks keep RGB. The size comes from the stream's header and is checked against
 * the block's limit before anything is decoded, so a forged header cannot make libwebp allocate a huge image.
 */
import { createRequire } from 'node:module';

type WebpModule = { decode(input: Uint8Array): { width: number; height: number; data: Uint8ClampedArray } };

let webp: WebpModule | undefined;

function decoder(): WebpModule {
  webp ??= createRequire(import.meta.url)('@cwasm/webp') as WebpModule;
  return webp;
}

/** Width and height from a WebP stream's RIFF header (simple lossy VP8, lossless VP8L or extended VP8X), or null. */
export function webpSize(b: Uint8Array): { width: number; height: number } | null {
  const text = (at: number) => String.fromCharCode(b[at], b[at + 1], b[at + 2], b[at + 3]);
  if (b.length < 30 || text(0) !== 'RIFF' || text(8) !== 'WEBP') return null;
  const chunk = text(12);
  if (chunk === 'VP8X') {
    return { width: 1 + (b[24] | (b[25] << 8) | (b[26] << 16)), height: 1 + (b[27] | (b[28] << 8) | (b[29] << 16)) };
  }
  if (chunk === 'VP8L' && b[20] === 0x2f) {
    const bits = b[21] | (b[22] << 8) | (b[23] << 16) | (b[24] << 24);
    return { width: 1 + (bits & 0x3fff), height: 1 + ((bits >>> 14) & 0x3fff) };
  }
  if (chunk === 'VP8 ' && b[23] === 0x9d && b[24] === 0x01 && b[25] === 0x2a) {
    return { width: (b[26] | (b[27] << 8)) & 0x3fff, height: (b[28] | (b[29] << 8)) & 0x3fff };
  }
  return null;
}

export function webpDecode(stored: Uint8Array, expected: number, limit: number, samples: number, target: () => Uint8Array): Uint8Array {
  if (samples !== 3 && samples !== 4) throw new Error(`unsupported WebP block of ${samples} sample(s) per pixel (3 or 4)`);
  const size = webpSize(stored);
  if (!size) throw new Error('corrupt WebP stream: no RIFF WEBP header with a VP8, VP8L or VP8X chunk');
  const bytes = size.width * size.height * samples;
  if (bytes > limit) throw new Error(`the WebP stream decodes to ${bytes} bytes, past the block's ${limit}`);
  let rgba: Uint8ClampedArray;
  try {
    rgba = decoder().decode(stored).data;
  } catch (err) {
    throw new Error(`corrupt WebP stream: ${(err as Error).message ?? err}`);
  }
  if (rgba.length !== size.width * size.height * 4) throw new Error('corrupt WebP stream: its image differs from its header');
  const out = bytes <= expected ? target() : new Uint8Array(bytes);
  if (samples === 4) out.set(rgba.subarray(0, bytes));
  else for (let i = 0, j = 0; j < bytes; i += 4, j += 3) {
    out[j] = rgba[i];
    out[j + 1] = rgba[i + 1];
    out[j + 2] = rgba[i + 2];
  }
  return out.subarray(0, bytes);
}
