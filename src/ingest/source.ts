import { open, stat, type FileHandle } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.ts';
import { logger } from '../log.ts';
import { batched } from '../batched.ts';
import { coalesceRanges, type ByteRange } from './coalesce.ts';

export interface Slice {
  offset: number;
  length: number;
}

/**
 * Random access to a raster's bytes, in the shape geotiff.js's `GeoTIFF.fromSource` expects. Reads past the end
 * come back short (the TIFF parser reads headers speculatively); block reads check `size` themselves.
 */
export interface ByteSource {
  readonly uri: string;
  /** Total size in bytes. */
  readonly size: number;
  /** Bytes read so far (for HTTP, bytes transferred). */
  readonly bytesRead: number;
  /** A cheap identity of the content (ETag, or Last-Modified plus size), or null when there is none. */
  readonly validator: string | null;
  readonly fileSize: number;
  /**
   * A local file's open descriptor. Decode threads share the process's descriptors, so they read blocks through
   * it themselves, sparing the main thread a copy of every block; it stays valid until `close`.
   */
  readonly fd?: number;
  fetch(slices: Slice[], signal?: AbortSignal): Promise<ArrayBuffer[]>;
  close(): Promise<void>;
}

export interface SourceOptions {
  /** Per-request timeout for HTTP sources (default 30 s). */
  timeoutMs?: number;
  /** When set, HTTP redirects are followed only to these hosts (the service's ingest.allowHosts). */
  allowHosts?: string[];
}

/**
 * Opens a local path, a file:// URL or an http(s):// URL. Any other scheme is a UserError, so that a typo such as
 * `s3://...` or `ftp://...` fails with a message instead of being looked up as a file.
 */
export async function openSource(uri: string, opts: SourceOptions = {}): Promise<ByteSource> {
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]+):\/\//.exec(uri)?.[1]?.toLowerCase();
  if (scheme === 'http' || scheme === 'https') return HttpSource.open(uri, opts.timeoutMs ?? 30_000, opts.allowHosts);
  if (scheme === 'file') return FileSource.open(fileURLToPath(uri));
  if (scheme) throw new UserError(`unsupported URL scheme '${scheme}:' (use a file path, file://, http:// or https://)`);
  return FileSource.open(resolve(uri));
}

/** The canonical form stored as a raster's URI: absolute paths for files, the URL itself otherwise. */
export function canonicalUri(input: string): string {
  if (/^file:\/\//i.test(input)) return fileURLToPath(input);
  if (/^[a-zA-Z][a-zA-Z0-9+.-]+:\/\//.test(input)) return input;
  return resolve(input);
}

class FileSource implements ByteSource {
  bytesRead = 0;
  readonly validator = null;

  private constructor(readonly uri: string, private readonly handle: FileHandle, readonly size: number) {}

  static async open(path: string): Promise<FileSource> {
    let info;
    try {
      info = await stat(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new UserError(code === 'ENOENT' ? 'no such file' : `cannot read it (${code ?? String(err)})`);
    }
    if (!info.isFile()) throw new UserError('not a regular file');
    return new FileSource(path, await open(path, 'r'), info.size);
  }

  get fileSize(): number {
    return this.size;
  }

  get fd(): number {
    return this.handle.fd;
  }

  fetch(slices: Slice[]): Promise<ArrayBuffer[]> {
    return Promise.all(slices.map((s) => this.read(s)));
  }

  private async read({ offset, length }: Slice): Promise<ArrayBuffer> {
    const n = Math.max(0, Math.min(length, this.size - offset));
    // Unzeroed: the read fills it, and a short read is cut to what arrived.
    const buf = Buffer.allocUnsafeSlow(n);
    if (n > 0) {
      const { bytesRead } = await this.handle.read(buf, 0, n, offset);
      this.bytesRead += bytesRead;
      if (bytesRead < n) return buf.buffer.slice(0, bytesRead);
    }
    return buf.buffer;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

/** Small reads (TIFF headers, IFDs, offset arrays) are served from cached pages of this size. */
const PAGE = 64 * 1024;
const MAX_PAGES = 32;
/**
 * Ranges asked for in the same turn of the event loop (a window's blocks, a strip's pages) go out together: those
 * closer than MERGE_GAP share one request, up to MAX_REQUEST_BYTES. A round trip costs more than 64 KiB of transfer;
 * the cap keeps a wide strip in a few parallel requests, so its blocks still decode while the rest arrives.
 * bench:ingest-http: 4x fewer requests than one per block, at the same throughput.
 */
const MERGE_GAP = 64 * 1024;
const MAX_REQUEST_BYTES = 4 * 2 ** 20;

class HttpSource implements ByteSource {
  bytesRead = 0;
  private readonly pages = new Map<number, Promise<Uint8Array>>();
  /** Ranges asked for in one turn of the event loop, sent as merged requests. */
  private readonly fetchRange = batched((ranges: ByteRange[]) => Promise.resolve(this.sendMerged(ranges)), Infinity);

  private constructor(readonly uri: string, readonly size: number, readonly validator: string | null, private readonly timeoutMs: number, private readonly allowHosts?: string[]) {}

  static async open(url: string, timeoutMs: number, allowHosts?: string[]): Promise<HttpSource> {
    // One ranged GET both proves the server honours Range and tells the size (Content-Range: bytes 0-0/SIZE).
    const res = await request(url, 'bytes=0-0', timeoutMs, allowHosts);
    const range = contentRange(res);
    if (res.status !== 206 || !range || range.start !== 0 || range.end !== 0) {
      await res.body?.cancel();
      throw new UserError(`the server does not honour HTTP Range requests (answered ${res.status} to a ranged GET); download the file and ingest the local copy`);
    }
    await readBody(res, 1);
    const total = range.total;
    const etag = res.headers.get('etag');
    const modified = res.headers.get('last-modified');
    const validator = etag ? `etag:${etag}` : modified ? `modified:${modified};size:${total}` : null;
    const source = new HttpSource(url, total, validator, timeoutMs, allowHosts);
    source.bytesRead = 1;
    return source;
  }

  get fileSize(): number {
    return this.size;
  }

  fetch(slices: Slice[]): Promise<ArrayBuffer[]> {
    return Promise.all(slices.map((s) => (s.length < PAGE ? this.fromPages(s) : this.range(s.offset, s.length).then(copyBuffer))));
  }

  /** The bytes of [offset, offset + length), clipped to the file; sent together with its neighbours. */
  private range(offset: number, length: number): Promise<Uint8Array> {
    const end = Math.min(offset + length, this.size);
    if (end <= offset) return Promise.resolve(new Uint8Array(0));
    return this.fetchRange({ start: offset, end });
  }

  /** Each range's bytes, from one request per group of neighbouring ranges; a failed request fails its group only. */
  private sendMerged(ranges: ByteRange[]): Promise<Uint8Array>[] {
    const out: Promise<Uint8Array>[] = [];
    for (const merged of coalesceRanges(ranges, MERGE_GAP, MAX_REQUEST_BYTES)) {
      const body = this.get(merged);
      for (const i of merged.members) out[i] = body.then((b) => b.subarray(ranges[i].start - merged.start, ranges[i].end - merged.start));
    }
    return out;
  }

  private async get({ start, end }: ByteRange): Promise<Uint8Array> {
    const res = await request(this.uri, `bytes=${start}-${end - 1}`, this.timeoutMs, this.allowHosts);
    const range = contentRange(res);
    if (res.status !== 206 || !range || range.start !== start || range.end > end - 1) {
      await res.body?.cancel();
      throw new UserError(`HTTP ${res.status} for a range of ${this.uri}${range ? ` (bytes ${range.start}-${range.end} instead of ${start}-${end - 1})` : ''}`);
    }
    const body = await readBody(res, end - start);
    this.bytesRead += body.length;
    return body;
  }

  private async fromPages({ offset, length }: Slice): Promise<ArrayBuffer> {
    const out = new Uint8Array(Math.max(0, Math.min(length, this.size - offset)));
    for (let done = 0; done < out.length; ) {
      const pageNo = Math.floor((offset + done) / PAGE);
      const page = await this.page(pageNo);
      const from = offset + done - pageNo * PAGE;
      const n = Math.min(out.length - done, page.length - from);
      if (n <= 0) break;
      out.set(page.subarray(from, from + n), done);
      done += n;
    }
    return out.buffer;
  }

  private page(n: number): Promise<Uint8Array> {
    let p = this.pages.get(n);
    if (!p) {
      // A page cut from a larger merged response is copied, so the cache does not keep the whole response alive.
      p = this.range(n * PAGE, PAGE).then((bytes) => new Uint8Array(copyBuffer(bytes)));
      p.catch(() => this.pages.delete(n));
      this.pages.set(n, p);
      if (this.pages.size > MAX_PAGES) this.pages.delete(this.pages.keys().next().value!);
    }
    return p;
  }

  async close(): Promise<void> {
    this.pages.clear();
  }
}

function copyBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? (bytes.buffer as ArrayBuffer) : bytes.slice().buffer;
}

/** Content-Range: bytes START-END/TOTAL, or null when absent or malformed. */
function contentRange(res: Response): { start: number; end: number; total: number } | null {
  const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.headers.get('content-range')?.trim() ?? '');
  return m ? { start: Number(m[1]), end: Number(m[2]), total: Number(m[3]) } : null;
}

/**
 * The body of a ranged response, read as a stream and cut off past `maxBytes` (what was asked for): a server, even
 * an allowed one, must not make the ingest buffer more than the range it requested.
 */
async function readBody(res: Response, maxBytes: number): Promise<Uint8Array> {
  const tooLong = () => new UserError(`the server sent more than the ${maxBytes} bytes asked for`);
  const declared = res.headers.get('content-length');
  if (declared !== null && Number(declared) > maxBytes) {
    await res.body?.cancel();
    throw tooLong();
  }
  const out = new Uint8Array(maxBytes);
  let length = 0;
  if (!res.body) return out.subarray(0, 0);
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (length + value.length > maxBytes) {
      await reader.cancel();
      throw tooLong();
    }
    out.set(value, length);
    length += value.length;
  }
  return out.subarray(0, length);
}

/**
 * Whether a URL's host is on the allow-list: an entry `host:port` allows that port, a bare `host` only the
 * scheme's default port (80 or 443), so an entry never opens every port of a machine.
 */
export function hostAllowed(url: URL, allowHosts: string[]): boolean {
  const host = url.hostname.toLowerCase();
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return allowHosts.some((entry) => {
    const e = entry.toLowerCase();
    return e === `${host}:${port}` || (e === host && url.port === '');
  });
}

const MAX_REDIRECTS = 5;

/**
 * A range request. With an allow-list, redirects are followed by hand so that every hop's host is checked: an
 * allowed host must not be able to send the ingest somewhere else.
 */
async function request(url: string, range: string, timeoutMs: number, allowHosts?: string[]): Promise<Response> {
  let res: Response;
  let target = url;
  for (let hop = 0; ; hop++) {
    try {
      res = await fetch(target, { headers: { range }, signal: AbortSignal.timeout(timeoutMs), redirect: allowHosts ? 'manual' : 'follow' });
    } catch (err) {
      // One message whatever went wrong, so that errors cannot tell a closed port from an open one; the log has the detail.
      logger().warn({ url: target, error: networkDetail(err) }, 'fetch failed');
      throw new UserError(`cannot fetch it from ${new URL(target).host} (connection failed or timed out after ${timeoutMs / 1000} s)`, { cause: err });
    }
    const location = res.headers.get('location');
    if (!allowHosts || res.status < 300 || res.status >= 400 || !location) break;
    await res.body?.cancel();
    if (hop === MAX_REDIRECTS) throw new UserError(`more than ${MAX_REDIRECTS} redirects`);
    const next = new URL(location, target);
    if (!/^https?:$/.test(next.protocol) || !hostAllowed(next, allowHosts)) {
      throw new UserError(`redirected to ${next.host}, which is not in ingest.allowHosts`);
    }
    target = next.toString();
  }
  if (res.status >= 400) {
    await res.body?.cancel();
    throw new UserError(`HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`);
  }
  return res;
}

function networkDetail(err: unknown): string {
  const e = err as { name?: string; cause?: { code?: string; message?: string } };
  return [e.name, e.cause?.code, e.cause?.message ?? (err instanceof Error ? err.message : String(err))].filter(Boolean).join(': ');
}
