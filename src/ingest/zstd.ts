/**
 * ZSTD (TIFF compression 50000) through the WebAssembly build of zstd in `zstddec`, which geotiff.js (a
 * dependency) installs. zstddec only instantiates asynchronously and keeps its instance private, while tilevec's
 * decode threads decode synchronously; so the module's embedded WebAssembly is compiled here, synchronously, once
 * per thread, on first use. Output is bounded by the block's limit: zstd never writes past the capacity it is given.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/** The part of the WebAssembly global used here (tsconfig's lib has no WebAssembly types; Node has the global). */
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
};

interface ZstdExports {
  memory: { buffer: ArrayBuffer };
  malloc(n: number): number;
  free(p: number): void;
  ZSTD_decompress(dst: number, cap: number, src: number, size: number): number;
  ZSTD_isError(code: number): number;
}

let zstd: ZstdExports | undefined;

function instance(): ZstdExports {
  if (zstd) return zstd;
  const require = createRequire(createRequire(import.meta.url).resolve('geotiff'));
  const text = readFileSync(require.resolve('zstddec').replace(/[^/\\]+$/, 'zstddec.cjs'), 'utf8');
  const base64 = /wasm\s*=\s*['"]([A-Za-z0-9+/=]+)['"]/.exec(text)?.[1];
  if (!base64) throw new Error('ZSTD: the zstddec package holds no WebAssembly build of zstd');
  const inst = new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(base64, 'base64')), { env: { emscripten_notify_memory_growth: () => {} } });
  zstd = inst.exports as unknown as ZstdExports;
  return zstd;
}

export function zstdDecode(stored: Uint8Array, expected: number, limit: number, target: () => Uint8Array): Uint8Array {
  const z = instance();
  const src = z.malloc(stored.length);
  const dst = z.malloc(limit);
  if (!src || !dst) throw new Error('ZSTD: out of WebAssembly memory');
  try {
    new Uint8Array(z.memory.buffer, src, stored.length).set(stored);
    const written = z.ZSTD_decompress(dst, limit, src, stored.length);
    if (z.ZSTD_isError(written)) throw new Error(`corrupt ZSTD stream (or it decodes past the block's ${limit} bytes)`);
    const n = written >>> 0;
    const out = n <= expected ? target() : new Uint8Array(n);
    out.set(new Uint8Array(z.memory.buffer, dst, n));
    return out.subarray(0, n);
  } finally {
    z.free(src);
    z.free(dst);
  }
}
