/**
 * A static file server on 127.0.0.1 that honours single Range requests (and HEAD) and counts the requests it
 * answers and the bytes it sends, for the HTTP ingest tests and bench. With a latency it waits that long before
 * answering each request, like a distant object store.
 *
 * Run as a script it serves in a process of its own (so that serving costs the bench's readers no time on their
 * thread), prints its port once listening, and answers GET /__stats with the counts as JSON, resetting them.
 * Usage: range-server.ts ROOT LATENCY_MS
 */
import { createServer, type Server } from 'node:http';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface RangeServer {
  server: Server;
  base: string;
  /** Bytes of file content sent so far. */
  sent(): number;
  /** Requests answered so far (GET and HEAD, the stats route excepted). */
  requests(): number;
}

export function startRangeServer(root: string, opts: { latencyMs?: number; statsRoute?: boolean } = {}): Promise<RangeServer> {
  let stats = { requests: 0, bytes: 0 };
  const server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    if (opts.statsRoute && url.pathname === '/__stats') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats));
      stats = { requests: 0, bytes: 0 };
      return;
    }
    stats.requests++;
    setTimeout(() => {
      const path = join(root, decodeURIComponent(url.pathname));
      if (!existsSync(path) || !statSync(path).isFile()) {
        res.writeHead(404).end();
        return;
      }
      const { size, mtimeMs } = statSync(path);
      // The ETag changes with the file, so a client can tell a rewritten file from the one it read.
      const headers = { 'accept-ranges': 'bytes', etag: `"${size}-${mtimeMs}"` };
      const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      if (req.method === 'HEAD') {
        res.writeHead(200, { ...headers, 'content-length': size }).end();
        return;
      }
      if (!range) {
        res.writeHead(req.headers.range ? 416 : 200, { ...headers, 'content-length': req.headers.range ? 0 : size });
        if (req.headers.range) res.end();
        else createReadStream(path).on('data', (c) => (stats.bytes += c.length)).pipe(res);
        return;
      }
      const start = Number(range[1]);
      const end = Math.min(range[2] ? Number(range[2]) : size - 1, size - 1);
      res.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${end}/${size}`, 'content-length': end - start + 1 });
      createReadStream(path, { start, end }).on('data', (c) => (stats.bytes += c.length)).pipe(res);
    }, opts.latencyMs ?? 0);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const port = (server.address() as { port: number }).port;
    resolve({ server, base: `http://127.0.0.1:${port}`, sent: () => stats.bytes, requests: () => stats.requests });
  }));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const running = await startRangeServer(process.argv[2], { latencyMs: Number(process.argv[3] ?? 0), statsRoute: true });
  console.log((running.server.address() as { port: number }).port);
}
