import type { Request } from 'express';
import { z } from 'zod';
import type { ModelRecord } from '../store/index.ts';
import { HttpProblem } from './problem.ts';
import { DEFAULT_K, DEFAULT_PAGE, decodeCursor, encodeCursor, type Schemas } from './schemas.ts';
import { looksLikeTiff, parseMultipart } from './multipart.ts';
import type { TileQueries } from './tiles.ts';
import { featureCollection } from './geojson.ts';
import type { ServeDeps } from './deps.ts';
import { confineIngestInputs } from './access.ts';
import { ingest } from '../ingest/index.ts';
import { JobQueue, planIngest } from '../queue/index.ts';
import { IngestJobs } from './ingest-jobs.ts';

/** What a handler returns; the dispatcher writes it, so a handler that outlives its deadline writes nothing. */
export type Reply =
  | { json: unknown; type?: string; status?: number }
  | { bytes: Uint8Array; type: string; headers?: Record<string, string>; status?: number };

type Out<T> = T extends z.ZodType ? z.output<T> : undefined;

export interface RouteSpec<P = unknown, Q = unknown, B = unknown> {
  method: 'get' | 'post';
  /** Express path syntax (`:id`); OpenAPI gets `{id}`. */
  path: string;
  summary: string;
  tag: string;
  params?: z.ZodType<P>;
  query?: z.ZodType<Q>;
  /** A JSON request body. */
  body?: z.ZodType<B>;
  /** Also takes a multipart/form-data upload (the chip search). */
  multipart?: { fields: z.ZodType; fileField: string; description: string };
  /** Needs `Authorization: Bearer <serve.token>`. */
  auth?: boolean;
  /** A request that works against the demo catalogue: a path with its query, and the body for POST routes. */
  example?: string;
  exampleBody?: unknown;
  /** Documented answers by status; OpenAPI is generated from these. */
  responses: Record<number, { description: string; type?: string; schema?: Record<string, unknown> }>;
  /** `body` is the parsed JSON body, or undefined when the request sent none (or sent multipart). */
  /** `signal` aborts when the request's deadline has passed and its answer is a 503. */
  handle(input: { params: P; query: Q; body: B | undefined; req: Request; signal: AbortSignal }): Promise<Reply>;
}

/** Keeps each spec's handler typed by its own schemas while the table holds them all. */
export function route<PS extends z.ZodType | undefined = undefined, QS extends z.ZodType | undefined = undefined, BS extends z.ZodType | undefined = undefined>(
  spec: Omit<RouteSpec<Out<PS>, Out<QS>, Out<BS>>, 'params' | 'query' | 'body'> & { params?: PS; query?: QS; body?: BS },
): RouteSpec {
  return spec as unknown as RouteSpec;
}

export const GEOJSON = 'application/geo+json';
const featureCollectionSchema = { $ref: '#/components/schemas/TileFeatureCollection' };
export const problems = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, { description: PROBLEM_TEXT[c], type: 'application/problem+json' }]));
const PROBLEM_TEXT: Record<number, string> = {
  400: 'invalid request', 401: 'missing or wrong bearer token', 403: 'admin routes are disabled (no serve.token)',
  404: 'no such tile, raster, model or embedding', 409: 'a label set of that name exists', 413: 'body too large', 415: 'unsupported content type',
  422: 'a well-formed request this data cannot answer (e.g. rasters that are not dates of one place)',
  501: 'not available in this deployment', 503: 'not ready, or the query timed out',
};

export function buildRoutes(deps: ServeDeps, s: Schemas, queries: TileQueries): RouteSpec[] {
  const { store } = deps;
  // Opened on the first queued ingest; it shares the store's pool and runs no timers, so it needs no closing.
  let queue: Promise<JobQueue> | undefined;
  const ingestJobs = new IngestJobs();
  return [
    route({
      method: 'get', path: '/healthz', tag: 'ops', summary: 'liveness: the process answers',
      example: '/healthz',
      responses: { 200: { description: 'alive' } },
      handle: async () => ({ json: { status: 'ok' } }),
    }),
    route({
      method: 'get', path: '/readyz', tag: 'ops', summary: 'readiness: the store answers and a model is loaded',
      example: '/readyz',
      responses: { 200: { description: 'ready' }, ...problems(503) },
      handle: async () => {
        let model: ModelRecord;
        try {
          // Straight to the store, not the model cache: this is the check that the store answers.
          model = await store.model(deps.model);
        } catch (err) {
          throw new HttpProblem(503, `not ready: ${(err as Error).message}`);
        }
        return { json: { status: 'ready', engine: store.engine.kind, model: model.name, dim: model.dim } };
      },
    }),
    route({
      method: 'get', path: '/v1/models', tag: 'models', summary: 'the registered models, latest first',
      example: '/v1/models',
      responses: { 200: { description: 'models' } },
      handle: async () => ({
        json: {
          models: (await store.listModels()).map((m) => ({
            name: m.name, dim: m.dim, bands: m.bands, tileSize: m.tileSize, backbone: m.backbone, metrics: m.metrics, createdAt: m.createdAt,
          })),
        },
      }),
    }),
    route({
      method: 'get', path: '/v1/tiles', tag: 'tiles', summary: 'page through tiles, optionally inside a bbox',
      example: '/v1/tiles?bbox=-99.19,47.0,-99.12,47.04&limit=100',
      query: s.tilesQuery,
      responses: { 200: { description: 'a page of tiles; nextCursor is null on the last page', type: GEOJSON, schema: featureCollectionSchema }, ...problems(400) },
      handle: async ({ query }) => {
        const afterId = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
        if (query.cursor !== undefined && afterId === undefined) throw new HttpProblem(400, 'cursor is not one this service issued');
        const limit = query.limit ?? DEFAULT_PAGE;
        const tiles = await store.tilesInBbox(query.bbox, { limit, afterId });
        const nextCursor = tiles.length === limit ? encodeCursor(tiles[tiles.length - 1].id) : null;
        if (query.distanceTo === undefined) {
          if (query.model !== undefined) throw new HttpProblem(400, 'model applies only with distanceTo');
          return { type: GEOJSON, json: featureCollection(await queries.features(tiles), { nextCursor }) };
        }
        const model = await queries.model(query.model);
        const distances = await store.distancesFrom(model, query.distanceTo, tiles.map((t) => t.id));
        // The similarity layer: a query tile without a vector is a 404, not a page of tiles without distances.
        if (distances.size === 0) await store.embedding(model.id, query.distanceTo);
        const features = await queries.features(tiles, tiles.map((t) => distances.get(t.id)));
        return { type: GEOJSON, json: featureCollection(features, { nextCursor, distanceTo: { tileId: query.distanceTo, model: model.name } }) };
      },
    }),
    route({
      method: 'get', path: '/v1/tiles/at', tag: 'tiles', summary: 'the tiles whose footprint covers a point',
      example: '/v1/tiles/at?lon=-99.16&lat=47.02',
      query: s.pointQuery,
      responses: { 200: { description: 'covering tiles (possibly none)', type: GEOJSON, schema: featureCollectionSchema }, ...problems(400) },
      handle: async ({ query }) => ({
        type: GEOJSON, json: featureCollection(await queries.features(await queries.tilesAt(query.lon, query.lat))),
      }),
    }),
    route({
      method: 'get', path: '/v1/tiles/:id', tag: 'tiles', summary: 'one tile as a GeoJSON Feature',
      example: '/v1/tiles/1',
      params: s.tilePath,
      responses: { 200: { description: 'the tile', type: GEOJSON }, ...problems(400, 404) },
      handle: async ({ params }) => ({ type: GEOJSON, json: (await queries.features([await store.tile(params.id)]))[0] }),
    }),
    route({
      method: 'get', path: '/v1/tiles/:id/similar', tag: 'search', summary: 'the k tiles nearest this one in embedding space, never itself',
      example: '/v1/tiles/1/similar?k=10&excludeSameRaster=true',
      params: s.tilePath, query: s.similarQuery,
      responses: { 200: { description: 'neighbours ordered by distance', type: GEOJSON, schema: featureCollectionSchema }, ...problems(400, 404, 422, 503) },
      handle: async ({ params, query }) => ({
        type: GEOJSON,
        json: await queries.similar(params.id, { k: query.k ?? DEFAULT_K, model: query.model, bbox: query.bbox, excludeSameRaster: query.excludeSameRaster }),
      }),
    }),
    route({
      method: 'get', path: '/v1/tiles/:id/thumbnail.png', tag: 'tiles', summary: 'a PNG rendering of the tile',
      example: '/v1/tiles/1/thumbnail.png',
      params: s.tilePath,
      responses: { 200: { description: 'PNG', type: 'image/png' }, ...problems(400, 404, 501) },
      handle: async ({ params }) => {
        const tile = await store.tile(params.id);
        if (!deps.renderThumbnail) throw new HttpProblem(501, 'thumbnails are not available in this deployment (no tile renderer)');
        const bytes = await deps.renderThumbnail(tile);
        // Tile ids are never reused (re-ingesting a raster gives new ids), so a thumbnail can be cached.
        return { bytes, type: 'image/png', headers: { 'Cache-Control': 'public, max-age=3600' } };
      },
    }),
    route({
      method: 'post', path: '/v1/search', tag: 'search',
      summary: 'nearest tiles to a tile, a point, a vector, an uploaded GeoTIFF chip (multipart field "chip"), or search by example with positives and negatives',
      example: '/v1/search', exampleBody: { positives: [12, 40], negatives: [7], k: 20 },
      body: s.searchBody,
      multipart: { fields: s.chipFields, fileField: 'chip', description: 'a GeoTIFF chip in part "chip", with optional text parts k, model and bbox' },
      responses: { 200: { description: 'neighbours ordered by distance', type: GEOJSON, schema: featureCollectionSchema }, ...problems(400, 404, 413, 415, 422, 501, 503) },
      handle: async ({ body, req, signal }) => {
        if (req.is('multipart/form-data')) return { type: GEOJSON, json: await chipSearch(req, signal) };
        if (body === undefined) throw new HttpProblem(415, 'send application/json or multipart/form-data');
        const opts = { k: body.k ?? DEFAULT_K, model: body.model, bbox: body.bbox, excludeSameRaster: body.excludeSameRaster };
        if (body.positives) return { type: GEOJSON, json: await queries.feedback({ positives: body.positives, negatives: body.negatives ?? [] }, opts) };
        if (body.tileId !== undefined) return { type: GEOJSON, json: await queries.similar(body.tileId, opts) };
        if (body.lon !== undefined && body.lat !== undefined) return { type: GEOJSON, json: await queries.similarToPoint(body.lon, body.lat, opts) };
        const model = await queries.model(body.model);
        return { type: GEOJSON, json: await queries.ranked(model, body.vector!, { k: opts.k, bbox: opts.bbox }, { vector: true, k: opts.k, bbox: opts.bbox ?? null }) };
      },
    }),
    route({
      method: 'post', path: '/v1/analogy', tag: 'search', summary: 'the tiles nearest z(a) - z(b) + z(c), never a, b or c',
      example: '/v1/analogy', exampleBody: { a: 1, b: 2, c: 3, k: 10 },
      body: s.analogyBody,
      responses: { 200: { description: 'neighbours ordered by distance', type: GEOJSON, schema: featureCollectionSchema }, ...problems(400, 404, 415, 422, 503) },
      handle: async ({ body }) => {
        if (body === undefined) throw new HttpProblem(415, 'send application/json');
        return { type: GEOJSON, json: await queries.analogy(body, { k: body.k ?? DEFAULT_K, model: body.model, bbox: body.bbox }) };
      },
    }),
    route({
      method: 'post', path: '/v1/ingest', tag: 'admin', auth: true,
      example: '/v1/ingest', exampleBody: { inputs: ['/data/naip/m_4709963_se_14_1_20090818.tif'] },
      summary: 'ingest rasters under ingest.roots or from ingest.allowHosts: queued on a PostgreSQL server, run in the request on the embedded engine',
      body: s.ingestBody,
      responses: { 200: { description: 'queued job ids, or the ingest summary' }, ...problems(400, 401, 403, 413, 415) },
      handle: async ({ body }) => {
        if (body === undefined) throw new HttpProblem(415, 'send application/json');
        const inputs = await confineIngestInputs(body.inputs, deps.config.ingest);
        const options = {
          tileSize: body.tileSize, stride: body.stride, maxNodata: body.maxNodata, bands: body.bands, force: body.force, overview: body.overview, resolution: body.resolution,
          allowHosts: deps.config.ingest.allowHosts, maxPixels: deps.config.ingest.maxPixels, maxTiles: deps.config.ingest.maxTiles,
        };
        // In the request it would outlive the query deadline and land after a 503 said it was abandoned: a job says
        // what is true, and is polled. Jobs run one at a time, as the embedded engine writes one at a time anyway.
        if (store.engine.kind !== 'postgres') {
          const id = ingestJobs.start(() => ingest(store, inputs, options));
          return { status: 202, json: { job: id, state: 'running', poll: `/v1/ingest/jobs/${id}` } };
        }
        queue ??= JobQueue.open(store, deps.config.queue).catch((err) => { queue = undefined; throw err; });
        const { units } = await planIngest(inputs, options);
        const jobs = await (await queue).enqueue(units);
        return { json: { queued: jobs.length, jobs } };
      },
    }),
    route({
      method: 'get', path: '/v1/ingest/jobs/:id', tag: 'admin', auth: true, summary: 'an embedded-engine ingest job: running, done with its summary, or failed',
      example: '/v1/ingest/jobs/0b5c3c9e-4f0a-4b8e-9c55-3f1d2a7e6b10',
      params: z.object({ id: z.string().uuid() }),
      responses: { 200: { description: 'the job' }, ...problems(400, 401, 403, 404) },
      handle: async ({ params }) => ({ json: ingestJobs.get(params.id) }),
    }),
    route({
      method: 'get', path: '/v1/admin/status', tag: 'admin', summary: 'store status: engine, migration level, row counts', auth: true,
      example: '/v1/admin/status',
      responses: { 200: { description: 'status' }, ...problems(401, 403) },
      handle: async () => ({ json: await store.status() }),
    }),
  ];

  async function chipSearch(req: Request, signal: AbortSignal) {
    const parts = parseMultipart(req.body as Buffer, req.get('content-type') ?? '');
    const chip = parts.filter((p) => p.name === 'chip');
    if (chip.length !== 1) throw new HttpProblem(400, 'send exactly one file part named "chip"');
    const fields = s.chipFields.parse(Object.fromEntries(parts.filter((p) => p.name !== 'chip').map((p) => [p.name, p.data.toString('utf8')])));
    if (!looksLikeTiff(chip[0].data)) throw new HttpProblem(415, 'the chip is not a TIFF file');
    const model = await queries.model(fields.model);
    if (!deps.embedChip) throw new HttpProblem(501, 'chip search is not available in this deployment (no embedding runtime)');
    const { vector, warnings } = await deps.embedChip(new Uint8Array(chip[0].data), model, signal);
    const k = fields.k ?? DEFAULT_K;
    const ranked = await queries.ranked(model, vector, { k, bbox: fields.bbox }, { chip: chip[0].filename ?? true, k, bbox: fields.bbox ?? null });
    return { ...ranked, warnings };
  }
}
