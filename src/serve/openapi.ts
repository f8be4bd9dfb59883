import { z } from 'zod';
import type { RouteSpec } from './routes.ts';

/** Express `/v1/tiles/:id` -> OpenAPI `/v1/tiles/{id}`. */
export function openApiPath(path: string): string {
  return path.replace(/:(\w+)/g, '{$1}');
}

/** The request side of a schema: what clients send (query strings are strings before they are parsed). */
function jsonSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}

function parameters(schema: z.ZodType | undefined, where: 'path' | 'query') {
  if (!schema) return [];
  const obj = jsonSchema(schema) as { properties?: Record<string, Record<string, unknown>>; required?: string[] };
  return Object.entries(obj.properties ?? {}).map(([name, s]) => {
    const { description, ...rest } = s;
    return { name, in: where, required: where === 'path' || (obj.required ?? []).includes(name), description, schema: rest };
  });
}

const problemSchema = {
  type: 'object',
  description: 'RFC 7807 problem details',
  properties: {
    type: { type: 'string' }, title: { type: 'string' }, status: { type: 'integer' }, detail: { type: 'string' }, instance: { type: 'string' },
    errors: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } },
  },
  required: ['type', 'title', 'status', 'detail'],
};

const tileFeatureSchema = {
  type: 'object',
  properties: {
    type: { const: 'Feature' },
    id: { type: 'integer' },
    bbox: { type: 'array', items: { type: 'number' }, minItems: 4, maxItems: 4 },
    geometry: { type: 'object', description: 'GeoJSON Polygon: the tile footprint' },
    properties: {
      type: 'object',
      properties: {
        id: { type: 'integer' }, rasterId: { type: 'integer' }, x: { type: 'integer' }, y: { type: 'integer' }, size: { type: 'integer' },
        rasterName: { type: 'string', description: 'the source raster\'s file name' },
        date: { type: ['string', 'null'], description: 'the source raster\'s acquisition date (ISO), null when unknown' },
        centerLon: { type: 'number' }, centerLat: { type: 'number' }, validFraction: { type: 'number' }, thumbnail: { type: 'string' },
        distance: { type: 'number', description: 'L2 (Euclidean) distance to the query in embedding space, not cosine (ranked results only)' },
        score: { type: 'number', description: 'feedback search by logistic regression: the probability that the tile is relevant' },
      },
    },
  },
};

/** Where the examples point: the service's default address. */
const EXAMPLE_BASE = 'http://127.0.0.1:8080';

/** A curl line that runs a route's example against a local service. */
function curlLine(r: RouteSpec): string {
  const url = `'${EXAMPLE_BASE}${r.example}'`;
  const auth = r.auth ? ` -H "Authorization: Bearer $TILEVEC_TOKEN"` : '';
  if (r.method === 'get') return `curl -s${auth} ${url}`;
  const body = r.exampleBody === undefined ? '' : ` -H 'Content-Type: application/json' -d '${JSON.stringify(r.exampleBody)}'`;
  return `curl -s -X POST${auth}${body} ${url}`;
}

/** The OpenAPI 3.1 document, generated from the same route table and zod schemas that serve the requests. */
export function openApiDocument(routes: RouteSpec[], info: { version: string }): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const content = (type: string | undefined, schema?: Record<string, unknown>) => ({ [type ?? 'application/json']: schema ? { schema } : {} });
    const requestContent: Record<string, unknown> = {};
    if (r.body) requestContent['application/json'] = { schema: jsonSchema(r.body) };
    if (r.multipart) {
      const fields = jsonSchema(r.multipart.fields) as { properties?: Record<string, unknown> };
      requestContent['multipart/form-data'] = {
        schema: {
          type: 'object', description: r.multipart.description, required: [r.multipart.fileField],
          properties: { [r.multipart.fileField]: { type: 'string', contentMediaType: 'image/tiff' }, ...fields.properties },
        },
      };
    }
    if (r.exampleBody !== undefined && requestContent['application/json']) (requestContent['application/json'] as Record<string, unknown>).example = r.exampleBody;
    const exampleQuery = r.example ? new URL(r.example, EXAMPLE_BASE).searchParams : undefined;
    (paths[openApiPath(r.path)] ??= {})[r.method] = {
      summary: r.summary,
      tags: [r.tag],
      operationId: `${r.method}${openApiPath(r.path).replace(/[{}]/g, '').replace(/[^a-zA-Z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
      parameters: [...parameters(r.params, 'path'), ...parameters(r.query, 'query')]
        .map((p) => (p.in === 'query' && exampleQuery?.has(p.name) ? { ...p, example: exampleQuery.get(p.name) } : p)),
      ...(r.example ? { 'x-codeSamples': [{ lang: 'curl', source: curlLine(r) }] } : {}),
      ...(Object.keys(requestContent).length ? { requestBody: { required: true, content: requestContent } } : {}),
      ...(r.auth ? { security: [{ bearer: [] }] } : {}),
      responses: Object.fromEntries(Object.entries(r.responses).map(([status, resp]) => [status, {
        description: resp.description,
        content: resp.type === 'application/problem+json' ? content(resp.type, { $ref: '#/components/schemas/Problem' }) : content(resp.type, resp.schema),
      }])),
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'tilevec', version: info.version, description: 'Similar tiles, analogies and search over geospatial tile embeddings. Distances are L2 (Euclidean) in embedding space. Coordinates are WGS84, rounded to 7 decimals. JSON answers are gzip-compressed for clients that send Accept-Encoding: gzip.' },
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Problem: problemSchema,
        TileFeature: tileFeatureSchema,
        TileFeatureCollection: {
          type: 'object',
          properties: {
            type: { const: 'FeatureCollection' },
            features: { type: 'array', items: { $ref: '#/components/schemas/TileFeature' } },
            model: { type: 'string', description: 'the model that ranked the results' },
            query: { type: 'object', description: 'what was asked' },
            bbox: { type: 'array', items: { type: 'number' }, description: 'the union of the features\' bboxes (RFC 7946)' },
            nextCursor: { type: ['string', 'null'], description: 'paging: pass as cursor for the next page' },
            complete: { type: 'boolean', description: 'filtered searches only: false when the index could not fill k within the filter' },
            method: { enum: ['rocchio', 'logistic'], description: 'feedback searches only: how the results were ranked' },
            warnings: { type: 'array', items: { type: 'string' }, description: 'chip search: how the chip was read (a centre crop, a pixel size far from the model\'s)' },
          },
        },
      },
    },
  };
}
