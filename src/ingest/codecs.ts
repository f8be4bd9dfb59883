import { inflateSync } from 'node:zlib';
import { lzwDecode } from './lzw.ts';

/** TIFF Compression tag values this reader decodes. */
export const COMPRESSION = { none: 1, lzw: 5, deflate: 8, adobeDeflate: 32946 } as const;
const SUPPORTED_COMPRESSION = new Set<number>(Object.values(COMPRESSION));

export function compressionName(code: number): string {
  const names: Record<number, string> = {
    1: 'none', 2: 'CCITT RLE', 3: 'CCITT G3', 4: 'CCITT G4', 5: 'LZW', 6: 'old JPEG', 7: 'JPEG', 8: 'DEFLATE',
    32773: 'PackBits', 32946: 'DEFLATE', 34712: 'JPEG 2000', 34887: 'LERC', 34925: 'LZMA', 50000: 'ZSTD', 50001: 'WebP',
  };
  return names[code] ?? `code ${code}`;
}

export function isSupportedCompression(code: number): boolean {
  return SUPPORTED_COMPRESSION.has(code);
}

/** Everything needed to turn one stored block's bytes into samples; plain data so it crosses to a worker. */
export interface BlockCodec {
  compression: number;
  /** TIFF Predictor: 1 none, 2 horizontal differencing, 3 floating point. */
  predictor: number;
  bytesPerSample: number;
  /** Samples per pixel stored in this block: all bands for pixel-interleaved files, 1 for band-separate. */
  samples: number;
  /** Block width in pixels (the tile width, or the image width for strips). */
  width: number;
  /** Rows actually stored in this block (the last strip can be short). */
  rows: number;
  littleEndian: boolean;
}

/**
 * Decodes one block into native-endian samples laid out band after band (each band `width * rows` samples),
 * so that window reads copy whole rows instead of picking samples out of pixel-interleaved data.
 */
export function decodeBlock(codec: BlockCodec, stored: Uint8Array): ArrayBuffer {
  const { width, rows, samples, bytesPerSample } = codec;
  const expected = width * rows * samples * bytesPerSample;
  const raw = decompress(codec.compression, stored, expected);
  if (raw.length < expected) {
    throw new Error(`corrupt block: decoded ${raw.length} bytes, expected ${expected}`);
  }
  // Own an aligned buffer of exactly the block: zlib may hand back a view into a shared pool or extra bytes.
  const owned = raw.byteOffset === 0 && raw.byteLength === expected && raw.buffer.byteLength === expected && raw !== stored;
  const bytes: Uint8Array<ArrayBuffer> = owned ? (raw as Uint8Array<ArrayBuffer>) : new Uint8Array(expected);
  if (!owned) bytes.set(raw.subarray(0, expected));
  if (codec.predictor === 3) {
    undoFloatPredictor(bytes, width * samples * bytesPerSample, rows, samples, bytesPerSample);
  } else {
    if (!codec.littleEndian && bytesPerSample > 1) swapBytes(bytes, bytesPerSample);
    if (codec.predictor === 2) undoHorizontalPredictor(bytes.buffer, width, rows, samples, bytesPerSample);
    else if (codec.predictor !== 1) throw new Error(`unsupported TIFF predictor ${codec.predictor}`);
  }
  return samples === 1 ? bytes.buffer : deinterleave(bytes, width * rows, samples, bytesPerSample);
}

function decompress(compression: number, stored: Uint8Array, expected: number): Uint8Array {
  switch (compression) {
    case COMPRESSION.none:
      return stored;
    case COMPRESSION.deflate:
    case COMPRESSION.adobeDeflate:
      return inflateSync(stored);
    case COMPRESSION.lzw:
      return lzwDecode(stored, expected);
    default:
      throw new Error(`unsupported compression ${compressionName(compression)}`);
  }
}

function swapBytes(bytes: Uint8Array, size: number): void {
  for (let i = 0; i + size <= bytes.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = bytes[a];
      bytes[a] = bytes[b];
      bytes[b] = t;
    }
  }
}

/** Cumulative sums along each row. One loop per sample width, so each loop stays monomorphic (and fast) in V8. */
function undoHorizontalPredictor(buffer: ArrayBuffer, width: number, rows: number, samples: number, bytesPerSample: number): void {
  const rowLen = width * samples;
  if (bytesPerSample === 1) {
    const v = new Uint8Array(buffer);
    for (let r = 0; r < rows; r++) for (let i = r * rowLen + samples, end = (r + 1) * rowLen; i < end; i++) v[i] += v[i - samples];
  } else if (bytesPerSample === 2) {
    const v = new Uint16Array(buffer);
    for (let r = 0; r < rows; r++) for (let i = r * rowLen + samples, end = (r + 1) * rowLen; i < end; i++) v[i] += v[i - samples];
  } else if (bytesPerSample === 4) {
    const v = new Uint32Array(buffer);
    for (let r = 0; r < rows; r++) for (let i = r * rowLen + samples, end = (r + 1) * rowLen; i < end; i++) v[i] += v[i - samples];
  } else {
    throw new Error(`predictor 2 with ${bytesPerSample * 8}-bit samples is not supported`);
  }
}

/** TIFF floating-point predictor: bytes of each row were split into planes (most significant first), then differenced. */
function undoFloatPredictor(bytes: Uint8Array, rowBytes: number, rows: number, samples: number, bytesPerSample: number): void {
  const perRow = rowBytes / bytesPerSample;
  const copy = new Uint8Array(rowBytes);
  for (let r = 0; r < rows; r++) {
    const row = bytes.subarray(r * rowBytes, (r + 1) * rowBytes);
    for (let i = samples; i < rowBytes; i++) row[i] = (row[i] + row[i - samples]) & 0xff;
    copy.set(row);
    for (let i = 0; i < perRow; i++) {
      for (let b = 0; b < bytesPerSample; b++) row[i * bytesPerSample + b] = copy[(bytesPerSample - b - 1) * perRow + i];
    }
  }
}

function deinterleave(bytes: Uint8Array, pixels: number, samples: number, bytesPerSample: number): ArrayBuffer {
  const out = new ArrayBuffer(bytes.length);
  const buf = bytes.buffer as ArrayBuffer;
  if (bytesPerSample === 1) {
    const src = new Uint8Array(buf, bytes.byteOffset, pixels * samples);
    const dst = new Uint8Array(out);
    for (let s = 0; s < samples; s++) for (let p = 0, i = s, o = s * pixels; p < pixels; p++, i += samples) dst[o + p] = src[i];
  } else if (bytesPerSample === 2) {
    const src = new Uint16Array(buf, bytes.byteOffset, pixels * samples);
    const dst = new Uint16Array(out);
    for (let s = 0; s < samples; s++) for (let p = 0, i = s, o = s * pixels; p < pixels; p++, i += samples) dst[o + p] = src[i];
  } else if (bytesPerSample === 4) {
    const src = new Uint32Array(buf, bytes.byteOffset, pixels * samples);
    const dst = new Uint32Array(out);
    for (let s = 0; s < samples; s++) for (let p = 0, i = s, o = s * pixels; p < pixels; p++, i += samples) dst[o + p] = src[i];
  } else {
    const src = new Float64Array(buf, bytes.byteOffset, pixels * samples);
    const dst = new Float64Array(out);
    for (let s = 0; s < samples; s++) for (let p = 0, i = s, o = s * pixels; p < pixels; p++, i += samples) dst[o + p] = src[i];
  }
  return out;
}
