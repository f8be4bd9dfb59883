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
 * Decodes one block into native-endian samples in the stored layout (pixel-interleaved when `samples` > 1),
 * predictor undone. The result is a view from byte 0 of a buffer that this call owns (it may be a few bytes
 * longer than the block), so it can be transferred; `copyBlockRect` then lays samples out band by band
 * straight into the destination window.
 */
export function decodeBlock(codec: BlockCodec, stored: Uint8Array): Uint8Array {
  const { width, rows, samples, bytesPerSample } = codec;
  const expected = width * rows * samples * bytesPerSample;
  const raw = decompress(codec.compression, stored, expected);
  if (raw.length < expected) {
    throw new Error(`corrupt block: decoded ${raw.length} bytes, expected ${expected}`);
  }
  // Typed views of the samples need an aligned start; every decoder here returns offset 0, but stay safe.
  const bytes = raw.byteOffset === 0 ? raw.subarray(0, expected) : raw.slice(0, expected);
  if (codec.predictor === 3) {
    undoFloatPredictor(bytes, width * samples * bytesPerSample, rows, samples, bytesPerSample);
  } else {
    if (!codec.littleEndian && bytesPerSample > 1) swapBytes(bytes, bytesPerSample);
    if (codec.predictor === 2) undoHorizontalPredictor(bytes, width, rows, samples, bytesPerSample);
    else if (codec.predictor !== 1) throw new Error(`unsupported TIFF predictor ${codec.predictor}`);
  }
  return bytes;
}

function decompress(compression: number, stored: Uint8Array, expected: number): Uint8Array {
  switch (compression) {
    case COMPRESSION.none:
      return stored;
    case COMPRESSION.deflate:
    case COMPRESSION.adobeDeflate:
      // One output chunk one byte larger than the block: zlib fills it in one pass and Node returns a view of
      // it, instead of concatenating 16 KiB chunks (a whole extra copy of the block).
      return inflateSync(stored, { chunkSize: Math.max(expected + 1, 64) });
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

type Samples = Uint8Array | Uint16Array | Uint32Array | Float64Array;
const SAMPLE_VIEWS = { 1: Uint8Array, 2: Uint16Array, 4: Uint32Array, 8: Float64Array } as const;

function samplesOf(view: ArrayBufferView, bytesPerSample: number): Samples {
  const View = SAMPLE_VIEWS[bytesPerSample as keyof typeof SAMPLE_VIEWS];
  return new View(view.buffer as ArrayBuffer, view.byteOffset, view.byteLength / bytesPerSample);
}

/**
 * Copies `rect` of a decoded block (`decodeBlock`'s layout) into window-sized band arrays, sample `planes[k]` of
 * each pixel into `bands[k]`: de-interleaving and cropping in one pass, with no intermediate block-sized copy.
 * Samples are moved as raw bits (through unsigned views), so any dtype of the block's sample size works.
 */
export function copyBlockRect(block: Uint8Array, codec: Pick<BlockCodec, 'width' | 'samples' | 'bytesPerSample'>, rect: BlockRect, planes: number[], bands: ArrayBufferView[]): void {
  const { width: blockWidth, samples, bytesPerSample } = codec;
  const src = samplesOf(block, bytesPerSample);
  const out = bands.map((b) => samplesOf(b, bytesPerSample));
  if (samples === 1) {
    copyRows(src, out[0], blockWidth, rect);
  } else if (bytesPerSample === 1 && samples === 4 && planes.join() === '0,1,2,3') {
    copyFourBytePixels(new Uint32Array(block.buffer, block.byteOffset, block.length >>> 2), out as Uint8Array[], blockWidth, rect);
  } else {
    for (let k = 0; k < planes.length; k++) copyStrided(src, out[k], blockWidth, samples, planes[k], rect);
  }
}

function copyRows(src: Samples, dst: Samples, blockWidth: number, r: BlockRect): void {
  for (let y = 0; y < r.height; y++) {
    const s = (r.blockY + y) * blockWidth + r.blockX;
    dst.set(src.subarray(s, s + r.width) as never, (r.windowY + y) * r.windowWidth + r.windowX);
  }
}

function copyStrided(src: Samples, dst: Samples, blockWidth: number, samples: number, plane: number, r: BlockRect): void {
  for (let y = 0; y < r.height; y++) {
    let s = ((r.blockY + y) * blockWidth + r.blockX) * samples + plane;
    for (let o = (r.windowY + y) * r.windowWidth + r.windowX, end = o + r.width; o < end; o++, s += samples) dst[o] = src[s];
  }
}

/**
 * Four uint8 bands, all wanted (NAIP's RGBN): 32-bit loads and stores, four pixels at a time, instead of strided
 * byte copies. Sample 0 is the low byte on the little-endian hosts Node runs on. Band arrays start 4-byte aligned.
 */
function copyFourBytePixels(src: Uint32Array, bands: Uint8Array[], blockWidth: number, r: BlockRect): void {
  const [b0, b1, b2, b3] = bands;
  const [w0, w1, w2, w3] = bands.map((b) => new Uint32Array(b.buffer, b.byteOffset, b.length >>> 2));
  const onePixel = (o: number, v: number) => {
    b0[o] = v;
    b1[o] = v >>> 8;
    b2[o] = v >>> 16;
    b3[o] = v >>> 24;
  };
  for (let y = 0; y < r.height; y++) {
    let s = (r.blockY + y) * blockWidth + r.blockX;
    let o = (r.windowY + y) * r.windowWidth + r.windowX;
    const end = o + r.width;
    for (; o < end && (o & 3) !== 0; o++, s++) onePixel(o, src[s]);
    for (; o + 4 <= end; o += 4, s += 4) {
      const p0 = src[s], p1 = src[s + 1], p2 = src[s + 2], p3 = src[s + 3];
      const q = o >>> 2;
      w0[q] = (p0 & 0xff) | ((p1 & 0xff) << 8) | ((p2 & 0xff) << 16) | (p3 << 24);
      w1[q] = ((p0 >>> 8) & 0xff) | (p1 & 0xff00) | ((p2 & 0xff00) << 8) | ((p3 & 0xff00) << 16);
      w2[q] = ((p0 >>> 16) & 0xff) | ((p1 >>> 8) & 0xff00) | (p2 & 0xff0000) | ((p3 & 0xff0000) << 8);
      w3[q] = (p0 >>> 24) | ((p1 >>> 16) & 0xff00) | ((p2 >>> 8) & 0xff0000) | (p3 & 0xff000000);
    }
    for (; o < end; o++, s++) onePixel(o, src[s]);
  }
}
