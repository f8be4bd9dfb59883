import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import { gzipSync } from 'node:zlib';
import express, { type Express, type Request, type Response } from 'express';
import { createLogger } from '../log.ts';
import { UserError } from '../errors.ts';
import { VERSION } from '../version.ts';
import { classifyRoutes } from './classify-route.ts';
import { rasterRoutes } from './raster-routes.ts';
import { changeRoutes } from './change.ts';
import { foundTileRoutes } from './found-tiles.ts';
import { cors, requireToken, securityHeaders } from './access.ts';
import { createMetrics } from './metrics.ts';
import { openApiDocument } from './openapi.ts';
import { HttpProblem, errorHandler, sendProblem } from './problem.ts';
import { buildRoutes, type Reply, type RouteSpec } from './routes.ts';
import { schemasFor } from './schemas.ts';
import { TileQueries } from './tiles.ts';
import { mountUi } from './ui.ts';

import { DEFAULT_LIMITS, type ServeDeps } from './deps.ts';

export { DEFAULT_LIMITS, type ServeDeps, type ServeLimits } from './deps.ts';

/**
 * Rejects with a 503 when `work` outlives the deadline, and aborts the signal it was given so that the work stops
 * too; the reply of a late handler is dropped, never written.
 */
function withDeadline<T>(start: (signal: AbortSignal) => Promise<T>, ms: number): Promise<T> {
  const abandon = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      abandon.abort();
      reject(new HttpProblem(503, `the query took longer than ${ms} ms and was abandoned`, {}, { 'Retry-After': '1' }));
    }, ms);
  });
  const work = start(abandon.signal);
  work.catch(() => {}); // a late failure after the deadline has nobody to tell
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

function send(req: Request, res: Response, reply: Reply): void {
  if ('bytes' in reply) {
    for (const [k, v] of Object.entries(reply.headers ?? {})) res.setHeader(k, v);
    if (reply.status === 304) {
      res.status(304).end();
      return;
    }
    res.status(reply.status ?? 200).type(reply.type).send(Buffer.from(reply.bytes.buffer, reply.bytes.byteOffset, reply.bytes.byteLength));
  } else {
    const body = JSON.stringify(reply.json);
    res.status(reply.status ?? 200).type(reply.type ?? 'application/json').vary('Accept-Encoding');
    // Tile pages and results are repetitive JSON that gzip shrinks about tenfold; small answers are not worth it.
    if (body.length >= GZIP_MIN_BYTES && req.acceptsEncodings('gzip') === 'gzip') {
      res.setHeader('Content-Encoding', 'gzip');
      res.send(gzipSync(body, { level: 6 }));
    } else {
      res.send(body);
    }
  }
}

const GZIP_MIN_BYTES = 1024;

export interface ServeApp extends Express {
  /** The route table the app serves and documents. */
  routes: RouteSpec[];
}

export function createApp(deps: ServeDeps): ServeApp {
  const { config } = deps;
  const logger = deps.logger ?? createLogger('silent');
  const limits = { ...DEFAULT_LIMITS, ...deps.limits };
  const schemas = schemasFor(config.serve.maxK);
  const queries = new TileQueries(deps.store, deps.model);
  const metrics = createMetrics();

  const app = express() as unknown as ServeApp;
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(metrics.middleware, securityHeaders, cors(config.serve.corsOrigins));

  const routes: RouteSpec[] = [
    ...buildRoutes(deps, schemas, queries),
    ...classifyRoutes(deps),
    ...rasterRoutes(deps, queries),
    ...changeRoutes(schemas, queries),
    ...foundTileRoutes(deps, queries),
    {
      method: 'get', path: '/metrics', tag: 'ops', summary: 'Prometheus metrics, with latency histograms per route', example: '/metrics',
      responses: { 200: { description: 'metrics', type: 'text/plain' } },
      handle: async () => ({ bytes: Buffer.from(await metrics.registry.metrics()), type: metrics.registry.contentType }),
    },
    {
      method: 'get', path: '/openapi.json', tag: 'ops', summary: 'this OpenAPI 3.1 document', example: '/openapi.json',
      responses: { 200: { description: 'OpenAPI document' } },
      handle: async () => ({ json: openApi }),
    },
  ];
  const openApi = openApiDocument(routes, { version: VERSION });
  app.routes = routes;

  const jsonBody = express.json({ limit: limits.jsonBytes });
  const multipartBody = express.raw({ type: 'multipart/form-data', limit: limits.chipBytes });
  const guard = requireToken(config.serve.token);
  for (const r of routes) {
    const middleware = [
      ...(r.auth ? [guard] : []),
      ...(r.body ? [jsonBody] : []),
      ...(r.multipart ? [multipartBody] : []),
    ];
    app[r.method](r.path, ...middleware, async (req: Request, res: Response) => {
      // Query schemas are strict, so a misspelt parameter is a 400 rather than silently ignored; so is any on a route that takes none.
      const unknown = r.query ? [] : Object.keys(req.query as object);
      if (unknown.length) throw new HttpProblem(400, `unknown query parameter${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}: this route takes none`);
      const input = {
        params: r.params ? r.params.parse(req.params) : undefined,
        query: r.query ? r.query.parse(req.query) : undefined,
        // Only a JSON body goes through the body schema; multipart bodies are the handler's to parse.
        body: r.body && req.is('application/json') ? r.body.parse(req.body) : undefined,
        req,
      };
      send(req, res, await withDeadline((signal) => r.handle({ ...input, signal }), config.serve.queryTimeoutMs));
    });
  }
  // A known path with the wrong method is a 405 that says what the path takes, not a bare 404.
  for (const path of new Set(routes.map((r) => r.path))) {
    const allow = routes.filter((r) => r.path === path).map((r) => r.method.toUpperCase());
    if (allow.includes('GET')) allow.push('HEAD');
    app.all(path, (req, res) => sendProblem(req, res, { status: 405, detail: `${req.method} is not allowed here; use ${allow.join(', ')}`, headers: { Allow: allow.join(', ') } }));
  }

  mountUi(app);
  app.use((req, res) => sendProblem(req, res, { status: 404, detail: `no route for ${req.method} ${req.path}` }));
  app.use(errorHandler(logger));
  return app;
}

export interface RunningServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** Listens on host:port (port 0 picks a free one); close() stops accepting and ends idle keep-alive sockets. */
export async function startServer(deps: ServeDeps, where: { host?: string; port?: number } = {}): Promise<RunningServer> {
  const app = createApp(deps);
  const { headersTimeoutMs, keepAliveTimeoutMs, maxConnections, queryTimeoutMs } = deps.config.serve;
  // Slow clients must not hold sockets forever; queries have their own, shorter deadline. Node checks the header and
  // request deadlines only every connectionsCheckingInterval (30 s by default), so it is tied to the header limit.
  const server = createServer({
    headersTimeout: headersTimeoutMs,
    requestTimeout: Math.max(30_000, queryTimeoutMs + 5_000, headersTimeoutMs),
    keepAliveTimeout: keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.min(1000, headersTimeoutMs),
  }, app);
  server.maxConnections = maxConnections;
  // Node's header deadline starts with the first byte: a connection that never sends one would stay open. Once a
  // request has arrived, the request deadline and then keepAliveTimeout take over.
  server.on('connection', (socket) => socket.setTimeout(headersTimeoutMs));
  server.on('request', (req) => req.socket.setTimeout(0));
  const host = where.host ?? deps.config.serve.host;
  const port = where.port ?? deps.config.serve.port;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(listenError(err as NodeJS.ErrnoException, host, port)));
    server.listen(port, host, () => resolve());
  });
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${(server.address() as AddressInfo).port}`;
  return {
    server,
    url,
    close: () => new Promise<void>((resolve, reject) => {
      server.close((err) => (err ? reject(err) : resolve()));
      server.closeIdleConnections();
    }),
  };
}
/** The listen failures a user causes, as one line saying what to do; anything else stays as it is. */
function listenError(err: NodeJS.ErrnoException, host: string, port: number): Error {
  switch (err.code) {
    case 'EADDRINUSE': return new UserError(`port ${port} on ${host} is already in use by another process; pass --port 0 to pick a free one, or another --port`);
    case 'EACCES': return new UserError(`no permission to listen on port ${port} (ports below 1024 need privileges); pass --port 0 to pick a free one, or a port above 1023`);
    case 'EADDRNOTAVAIL': case 'ENOTFOUND': return new UserError(`cannot listen on ${host}: it is not an address of this machine; pass --host 127.0.0.1 or 0.0.0.0`);
    default: return err;
  }
}

export { RasterThumbnails } from './thumbnails.ts';
export { OpenRasters } from './open-rasters.ts';
export { RasterMapTiles } from './map-tiles.ts';
