import { createRequire } from 'node:module';
import { inflateSync } from 'node:zlib';
import { lzwDecode } from './lzw.ts';
import { jpegDecode } from './jpeg.ts';
import { lercDecode } from './lerc.ts';
import { zstdDecode } from './zstd.ts';
import { webpDecode } from './webp.ts';

interface NativeCodecs {
  inflateInto(src: Uint8Array, dst: Uint8Array): number;
  deinterleave(src: Uint8Array, dst: Uint8Array, samples: number, bytesPerSample: number): void;
}

/**
 * tilevec's optional addon (native/codecs.c, built at install by scripts/build-native.mjs where Debian's
 * libdeflate-dev is present): libdeflate, about twice as fast as zlib on whole TIFF blocks, and a C de-interleave.
 * Undefined where it is not built, or where TILEVEC_NATIVE_CODECS=0 turns it off; JavaScript and Node's zlib then
 * do the same work.
 */
const native = ((): NativeCodecs | undefined => {
  if (process.env.TILEVEC_NATIVE_CODECS === '0') return undefined;
  try {
    return createRequire(import.meta.url)('../../native/build/tilevec_codecs.node') as NativeCodecs;
  } catch {
    return undefined;
  }
})();

/** Which library inflates DEFLATE blocks in this process. */
export const INFLATE_ENGINE: 'libdeflate' | 'zlib' = native ? 'libdeflate' : 'zlib';

/** TIFF Compression tag values of the built-in codecs. */
export const COMPRESSION = { none: 1, lzw: 5, deflate: 8, packBits: 32773, adobeDeflate: 32946, jpeg: 7, lerc: 34887, zstd: 50000, webp: 50001 } as const;

/**
 * One codec: turns a block's stored bytes into its raw (still predicted, file-endian, interleaved) samples.
 * `target()` is a buffer of `expected` bytes that a codec may fill and return (saving a copy); a codec may
 * instead return a buffer of its own. No codec may produce more than `limit` bytes: a stream that would is a
 * decompression bomb or a corrupt block, and an error. Runs on the decode threads, so it must be synchronous.
 */
export interface Codec {
  name: string;
  decode(stored: Uint8Array, expected: number, limit: number, target: () => Uint8Array, codec: BlockCodec): Uint8Array;
}

/** The codec registry, keyed by TIFF Compression code (as geotiff.js's addDecoder). */
const REGISTRY = new Map<number, Codec>();

/**
 * Registers a codec for one or more compression codes. A module that registers codecs must be imported by the
 * decode threads too (decode-job.ts imports this module, which registers the built-in ones).
 */
export function registerCodec(codes: number | number[], codec: Codec): void {
  for (const code of Array.isArray(codes) ? codes : [codes]) REGISTRY.set(code, codec);
}

/** The registered codec for a compression code, or undefined. */
export function codecFor(code: number): Codec | undefined {
  return REGISTRY.get(code);
}

/** The names of the registered codecs, each once, in registration order: what an "unsupported" error lists. */
export function supportedCompressions(): string[] {
  return [...new Set([...REGISTRY.values()].map((c) => c.name))];
}

export function compressionName(code: number): string {
  const registered = REGISTRY.get(code);
  if (registered) return registered.name;
  const names: Record<number, string> = {
    1: 'none', 2: 'CCITT RLE', 3: 'CCITT G3', 4: 'CCITT G4', 5: 'LZW', 6: 'old JPEG', 7: 'JPEG', 8: 'DEFLATE',
    32773: 'PackBits', 32946: 'DEFLATE', 34712: 'JPEG 2000', 34887: 'LERC', 34925: 'LZMA', 50000: 'ZSTD', 50001: 'WebP',
  };
  return names[code] ?? `code ${code}`;
}

export function isSupportedCompression(code: number): boolean {
  return REGISTRY.has(code);
}

/** The error for a compression code no codec is registered for, listing the ones that are. */
export function unsupportedCompression(code: number): Error {
  return new Error(`unsupported compression ${compressionName(code)} (supported: ${supportedCompressions().join(', ')})`);
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
  /**
   * The most bytes the stream may inflate to (default: the block's own size). The last strip may be encoded at
   * the full strip height, so for strips this is a whole strip; a stream that holds more is refused.
   */
  maxBytes?: number;
  littleEndian: boolean;
  /** JPEG: the file's JPEGTables (quantisation and Huffman tables the blocks share). */
  tables?: Uint8Array;
  /** JPEG: blocks hold YCbCr (photometric 6), converted to RGB as they decode. */
  ycbcr?: boolean;
  /** LERC: the further compression of the LERC blob (LercParameters' second value: 0 none, 1 DEFLATE, 2 ZSTD). */
  lercAdditional?: number;
}

/**
 * Decodes one block into native-endian samples, predictor undone, band by band: all of the block's pixels of its
 * first sample, then of the second, and so on (pixel-interleaved blocks are de-interleaved here, on the decode
 * thread). The result is a view from byte 0 of a buffer that this call owns (it may be a few bytes longer than
 * the block), so it can be transferred; `copyBlockRect` then copies rows of it into the destination window.
 */
export function decodeBlock(codec: BlockCodec, stored: Uint8Array, spare?: ArrayBuffer): Uint8Array {
  const { width, rows, samples, bytesPerSample } = codec;
  const expected = width * rows * samples * bytesPerSample;
  const limit = Math.max(codec.maxBytes ?? expected, expected);
  // The result goes to `spare` (a buffer the caller reuses) when it is large enough.
  const output = () => (spare && spare.byteLength >= expected ? new Uint8Array(spare, 0, expected) : new Uint8Array(expected));
  // Interleaved samples are an intermediate that the de-interleave copies out of, so they go to reused scratch.
  const raw = decompress(codec, stored, expected, limit, samples > 1 ? () => scratch(expected) : output);
  if (raw.length < expected) {
    throw new Error(`corrupt block: decoded ${raw.length} bytes, expected ${expected}`);
  }
  // Typed views of the samples need an aligned start, and a transferable result its own buffer: zlib's small
  // outputs are views into Node's shared pool, so those are copied out.
  const bytes = raw.byteOffset === 0 ? raw.subarray(0, expected) : new Uint8Array(raw.subarray(0, expected));
  if (codec.predictor === 3) {
    undoFloatPredictor(bytes, width * samples * bytesPerSample, rows, samples, bytesPerSample);
  } else {
    if (!codec.littleEndian && bytesPerSample > 1) swapBytes(bytes, bytesPerSample);
    if (codec.predictor === 2) undoHorizontalPredictor(bytes, width, rows, samples, bytesPerSample);
    else if (codec.predictor !== 1) throw new Error(`unsupported TIFF predictor ${codec.predictor}`);
  }
  return samples > 1 ? toPlanes(bytes, samples, bytesPerSample, output()) : bytes;
}

/** A buffer that grows to the largest size asked of it and is handed out again: each call's view replaces the last. */
export function reusableBuffer(): (bytes: number) => Uint8Array {
  let buffer = new Uint8Array(0);
  return (bytes) => {
    if (buffer.length < bytes) buffer = new Uint8Array(bytes);
    return buffer.subarray(0, bytes);
  };
}

/** This thread's buffer for interleaved samples, reused from block to block. */
const scratch = reusableBuffer();

function decompress(block: BlockCodec, stored: Uint8Array, expected: number, limit: number, target: () => Uint8Array): Uint8Array {
  const codec = REGISTRY.get(block.compression);
  if (!codec) throw unsupportedCompression(block.compression);
  return codec.decode(stored, expected, limit, target, block);
}

/**
 * Inflates into `target()` where the native decoder can; otherwise returns a new buffer (zlib), up to `limit`.
 */
function inflate(stored: Uint8Array, expected: number, limit: number, target: () => Uint8Array): Uint8Array {
  if (native) {
    const out = target();
    // libdeflate never writes past `out`; -1 means the stream holds more than the block.
    const written = native.inflateInto(stored, out);
    if (written >= 0) return out.subarray(0, written);
    if (limit === expected) throw inflatesPast(limit);
    // A last strip encoded at full height: zlib below decodes it, up to the limit.
  }
  // One output chunk one byte larger than the limit: zlib fills it in one pass and Node returns a view of it,
  // instead of concatenating 16 KiB chunks (a whole extra copy of the block).
  try {
    return inflateSync(stored, { chunkSize: Math.max(limit + 1, 64), maxOutputLength: limit });
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw inflatesPast(limit);
    throw err;
  }
}

/**
 * PackBits (TIFF 6.0 section 9): a signed header byte n; 0..127 copies the next n+1 bytes, -1..-127 repeats the
 * next byte 1-n times, -128 is a no-op. Decodes into `target()`, up to `limit` bytes.
 */
export function packBitsDecode(stored: Uint8Array, expected: number, limit: number, target: () => Uint8Array): Uint8Array {
  let out = limit > expected ? new Uint8Array(limit) : target();
  let o = 0;
  const n = stored.length;
  for (let i = 0; i < n;) {
    const h = (stored[i++] << 24) >> 24;
    if (h >= 0) {
      const count = h + 1;
      if (i + count > n) throw new Error(`corrupt PackBits stream: a literal run of ${count} bytes passes the end of the block's ${n} stored bytes`);
      if (o + count > out.length) throw new Error(`the PackBits stream decodes past the block's ${limit} bytes`);
      out.set(stored.subarray(i, i + count), o);
      i += count;
      o += count;
    } else if (h !== -128) {
      const count = 1 - h;
      if (i >= n) throw new Error('corrupt PackBits stream: a repeat run has no byte to repeat');
      if (o + count > out.length) throw new Error(`the PackBits stream decodes past the block's ${limit} bytes`);
      out.fill(stored[i++], o, o + count);
      o += count;
    }
  }
  return out.subarray(0, o);
}

registerCodec(COMPRESSION.none, { name: 'none', decode: (stored) => stored });
registerCodec(COMPRESSION.lzw, { name: 'LZW', decode: (stored, expected, limit) => lzwDecode(stored, expected, limit) });
registerCodec([COMPRESSION.deflate, COMPRESSION.adobeDeflate], { name: 'DEFLATE', decode: inflate });
registerCodec(COMPRESSION.packBits, { name: 'PackBits', decode: packBitsDecode });
registerCodec(COMPRESSION.jpeg, { name: 'JPEG', decode: (stored, expected, limit, target, block) => jpegDecode(stored, expected, limit, block.tables, block.ycbcr === true, target) });
registerCodec(COMPRESSION.lerc, { name: 'LERC', decode: (stored, expected, limit, target, block) => lercDecode(stored, expected, limit, block.lercAdditional ?? 0, target) });
registerCodec(COMPRESSION.zstd, { name: 'ZSTD', decode: zstdDecode });
registerCodec(COMPRESSION.webp, { name: 'WebP', decode: (stored, expected, limit, target, block) => webpDecode(stored, expected, limit, block.samples, target) });

function inflatesPast(limit: number): Error {
  return new Error(`the DEFLATE stream inflates past the block's ${limit} bytes`);
}

/** Pixel-interleaved samples to planes, into `out` (as long as `bytes`). */
function toPlanes(bytes: Uint8Array, samples: number, bytesPerSample: number, out: Uint8Array): Uint8Array {
  if (native) {
    native.deinterleave(bytes, out, samples, bytesPerSample);
  } else if (bytesPerSample === 1 && samples === 4 && bytes.length % 16 === 0) {
    fourBytePixelsToPlanes(new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2), out);
  } else {
    const src = samplesOf(bytes, bytesPerSample);
    const dst = samplesOf(out, bytesPerSample);
    const pixels = src.length / samples;
    for (let s = 0; s < samples; s++) {
      for (let p = 0, i = s, o = s * pixels; p < pixels; p++, i += samples, o++) dst[o] = src[i];
    }
  }
  return out;
}

/**
 * Four uint8 samples per pixel (NAIP's RGBN), a multiple of four pixels: 32-bit loads and stores, four pixels at a
 * time, instead of strided byte copies. Sample 0 is the low byte on the little-endian hosts Node runs on.
 */
function fourBytePixelsToPlanes(src: Uint32Array, out: Uint8Array): void {
  const pixels = src.length;
  const words = new Uint32Array(out.buffer, out.byteOffset, out.length >>> 2);
  const planeWords = pixels >>> 2;
  for (let p = 0, q = 0; p < pixels; p += 4, q++) {
    const p0 = src[p], p1 = src[p + 1], p2 = src[p + 2], p3 = src[p + 3];
    words[q] = (p0 & 0xff) | ((p1 & 0xff) << 8) | ((p2 & 0xff) << 16) | (p3 << 24);
    words[q + planeWords] = ((p0 >>> 8) & 0xff) | (p1 & 0xff00) | ((p2 & 0xff00) << 8) | ((p3 & 0xff00) << 16);
    words[q + 2 * planeWords] = ((p0 >>> 16) & 0xff) | ((p1 >>> 8) & 0xff00) | (p2 & 0xff0000) | ((p3 & 0xff0000) << 8);
    words[q + 3 * planeWords] = (p0 >>> 24) | ((p1 >>> 16) & 0xff00) | ((p2 >>> 8) & 0xff0000) | (p3 & 0xff000000);
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
function undoHorizontalPredictor(bytes: Uint8Array, width: number, rows: number, samples: number, bytesPerSample: number): void {
  const rowLen = width * samples;
  const { buffer, byteOffset } = bytes;
  if (bytesPerSample === 1) {
    const v = bytes;
    for (let r = 0; r < rows; r++) for (let i = r * rowLen + samples, end = (r + 1) * rowLen; i < end; i++) v[i] += v[i - samples];
  } else if (bytesPerSample === 2) {
    const v = new Uint16Array(buffer, byteOffset, rowLen * rows);
    for (let r = 0; r < rows; r++) for (let i = r * rowLen + samples, end = (r + 1) * rowLen; i < end; i++) v[i] += v[i - samples];
  } else if (bytesPerSample === 4) {
    const v = new Uint32Array(buffer, byteOffset, rowLen * rows);
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


/** Where a rectangle of one decoded block lands in a window. */
export interface BlockRect {
  /** Top-left pixel of the rectangle inside the block. */
  blockX: number;
  blockY: number;
  width: number;
  height: number;
  /** Top-left pixel of the rectangle inside the window, and the window's width. */
  windowX: number;
  windowY: number;
  windowWidth: number;
}

/** Where a decoded block's part goes: plane `planes[k]` of `rect` into window band `bands[k]`. */
export interface BlockTarget {
  rect: BlockRect;
  planes: number[];
  /** The window's band arrays; shared memory when another thread writes them. */
  bands: ArrayBufferView[];
}

type Samples = Uint8Array | Uint16Array | Uint32Array | Float64Array;
const SAMPLE_VIEWS = { 1: Uint8Array, 2: Uint16Array, 4: Uint32Array, 8: Float64Array } as const;

function samplesOf(view: ArrayBufferView, bytesPerSample: number): Samples {
  const View = SAMPLE_VIEWS[bytesPerSample as keyof typeof SAMPLE_VIEWS];
  return new View(view.buffer as ArrayBuffer, view.byteOffset, view.byteLength / bytesPerSample);
}

/**
 * Copies `rect` of a decoded block (`decodeBlock`'s layout: one plane per sample) into window-sized band arrays,
 * plane `planes[k]` into `bands[k]`, row by row. Samples are moved as raw bits (through unsigned views), so any
 * dtype of the block's sample size works.
 */
export function copyBlockRect(block: Uint8Array, codec: Pick<BlockCodec, 'width' | 'samples' | 'bytesPerSample'>, rect: BlockRect, planes: number[], bands: ArrayBufferView[]): void {
  const { width: blockWidth, samples, bytesPerSample } = codec;
  const planeBytes = block.length / samples;
  for (let k = 0; k < planes.length; k++) {
    const src = samplesOf(block.subarray(planes[k] * planeBytes, (planes[k] + 1) * planeBytes), bytesPerSample);
    const dst = samplesOf(bands[k], bytesPerSample);
    if (rect.width === blockWidth && rect.width === rect.windowWidth) {
      // Whole rows on both sides: the rectangle is one contiguous run.
      const s = rect.blockY * blockWidth;
      dst.set(src.subarray(s, s + rect.height * blockWidth) as never, rect.windowY * rect.windowWidth + rect.windowX);
      continue;
    }
    for (let y = 0; y < rect.height; y++) {
      const s = (rect.blockY + y) * blockWidth + rect.blockX;
      dst.set(src.subarray(s, s + rect.width) as never, (rect.windowY + y) * rect.windowWidth + rect.windowX);
    }
  }
}
