/**
 * A static file server for the HTTP ingest bench, in a process of its own so that serving costs neither reader
 * time on its own thread. It honours single Range requests (and HEAD), waits LATENCY_MS before answering each
 * request, like a distant object store, and counts requests and bytes: GET /__stats answers them as JSON and
 * resets them. Prints its port on stdout once listening. Usage: range-server.ts ROOT LATENCY_MS
 */
import { createServer } from 'node:http';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';

const [root, latency] = [process.argv[2], Number(process.argv[3] ?? 0)];
let stats = { requests: 0, bytes: 0 };

const server = createServer((req, res) => {
  const url = new URL(req.url!, 'http://x');
  if (url.pathname === '/__stats') {
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
    const size = statSync(path).size;
    const headers = { 'accept-ranges': 'bytes', etag: `"${size}"` };
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
  }, latency);
});
server.listen(0, '127.0.0.1', () => console.log((server.address() as { port: number }).port));
