/**
 * TIFF's LZW (compression 5): MSB-first codes of 9 to 12 bits with the "early change" that libtiff writes.
 * Written here rather than borrowed from geotiff.js so the decode worker needs nothing but Node built-ins.
 */
const CLEAR = 256;
const END = 257;
const MAX_CODES = 4096;

/** Decodes into a buffer of `expectedBytes`, grown up to `maxBytes`; a stream that decodes to more is an error. */
export function lzwDecode(src: Uint8Array, expectedBytes: number, maxBytes = expectedBytes): Uint8Array {
  const prefix = new Int32Array(MAX_CODES);
  const suffix = new Uint8Array(MAX_CODES);
  const first = new Uint8Array(MAX_CODES);
  const length = new Uint16Array(MAX_CODES);
  for (let i = 0; i < 256; i++) {
    prefix[i] = -1;
    suffix[i] = i;
    first[i] = i;
    length[i] = 1;
  }
  let out = new Uint8Array(expectedBytes);
  let pos = 0;
  let bitPos = 0;
  const totalBits = src.length * 8;
  let codeLen = 9;
  let next = 258;
  let prev = -1;

  while (bitPos + codeLen <= totalBits) {
    const b = bitPos >>> 3;
    const chunk = (src[b] << 16) | ((src[b + 1] ?? 0) << 8) | (src[b + 2] ?? 0);
    const code = (chunk >>> (24 - (bitPos & 7) - codeLen)) & ((1 << codeLen) - 1);
    bitPos += codeLen;
    if (code === END) break;
    if (code === CLEAR) {
      codeLen = 9;
      next = 258;
      prev = -1;
      continue;
    }
    if (code > next || (code === next && prev < 0) || (code >= 258 && code < next && length[code] === 0)) {
      throw new Error('corrupt LZW data (code out of sequence)');
    }
    if (prev >= 0 && next < MAX_CODES) {
      // The new entry is prev's string plus the first byte of this code's string (of prev's own, for KwKwK).
      prefix[next] = prev;
      suffix[next] = code === next ? first[prev] : first[code];
      first[next] = first[prev];
      length[next] = length[prev] + 1;
      next++;
    }
    const n = length[code];
    if (pos + n > maxBytes) throw new Error(`the LZW stream decodes past the block's ${maxBytes} bytes`);
    if (pos + n > out.length) {
      const grown = new Uint8Array(Math.min(Math.max(out.length * 2, pos + n), maxBytes));
      grown.set(out);
      out = grown;
    }
    for (let i = n - 1, k = code; i >= 0; i--, k = prefix[k]) out[pos + i] = suffix[k];
    pos += n;
    prev = code;
    if (next + 1 >= 1 << codeLen && codeLen < 12) codeLen++;
  }
  return out.subarray(0, pos);
}
