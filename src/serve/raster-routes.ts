import { createHash } from 'node:crypto';
import { z } from 'zod';
import { HttpProblem } from './problem.ts';
import { route, problems, GEOJSON, type RouteSpec } from './routes.ts';
import { rasterFeature } from './rasters.ts';
import { bboxString, positiveIdParam } from './schemas.ts';
import { featureCollection } from './geojson.ts';
import type { ServeDeps } from './deps.ts';
import type { TileQueries } from './tiles.ts';

const MAX_ZOOM = 24;

const rasterPath = z.object({ id: positiveIdParam('raster') });

const mapTilePath = z.object({
  id: positiveIdParam('raster'),
  z: z.string().regex(/^\d{1,2}$/, 'must be a zoom level').transform(Number).pipe(z.number().int().min(0).max(MAX_ZOOM)),
  x: z.string().regex(/^\d{1,8}$/, 'must be a tile column').transform(Number),
  y: z.string().regex(/^\d{1,8}$/, 'must be a tile row').transform(Number),
}).refine((p) => p.x < 2 ** p.z && p.y < 2 ** p.z, 'x and y must be below 2^z');

const mapTileQuery = z.object({
  bands: z.string().max(40).regex(/^\d{1,5}(,\d{1,5}){0,2}$/, 'must be one band or three, 1-based, comma-separated (e.g. 4,3,2)')
    .transform((s) => s.split(',').map(Number))
    .refine((b) => b.length === 1 || b.length === 3, 'give one band (grey) or three (red, green, blue)')
    .refine((b) => b.every((n) => n >= 1), 'bands are 1-based')
    .optional().describe('1-based source bands for red, green and blue, or one for grey (default 1,2,3 or 1)'),
  resampling: z.enum(['nearest', 'bilinear']).optional().describe('default bilinear'),
}).strict();

const rastersQuery = z.object({ bbox: bboxString.optional() }).strict();

/** The catalogue and its imagery as Web Mercator XYZ tiles. */
export function rasterRoutes(deps: ServeDeps, queries: TileQueries): RouteSpec[] {
  return [
    route({
      method: 'get', path: '/v1/rasters', tag: 'rasters', summary: 'the catalogued rasters with their footprints, dates and XYZ tile templates, in date order',
      query: rastersQuery,
      example: '/v1/rasters?bbox=-99.19,47.0,-99.12,47.04',
      responses: { 200: { description: 'a FeatureCollection of raster footprints', type: GEOJSON }, ...problems(400) },
      handle: async ({ query }) => ({ type: GEOJSON, json: featureCollection(await queries.catalog.features(query.bbox)) }),
    }),
    route({
      method: 'get', path: '/v1/rasters/:id', tag: 'rasters', summary: 'one raster: file, date, size, bands, CRS, footprint, tile count',
      params: rasterPath,
      example: '/v1/rasters/1',
      responses: { 200: { description: 'the raster as a GeoJSON Feature', type: GEOJSON }, ...problems(400, 404) },
      handle: async ({ params }) => {
        const { record, tileCount } = await queries.catalog.get(params.id);
        return { type: GEOJSON, json: rasterFeature(record, tileCount) };
      },
    }),
    route({
      method: 'get', path: '/v1/rasters/:id/tiles/:z/:x/:y.png', tag: 'rasters',
      summary: 'a 256-px Web Mercator XYZ tile rendered from the raster (2-98 % stretch, transparent outside it)',
      params: mapTilePath, query: mapTileQuery,
      example: '/v1/rasters/1/tiles/15/7355/11474.png?bands=4,3,2&resampling=nearest',
      responses: {
        200: { description: 'PNG; cacheable, with an ETag', type: 'image/png' },
        304: { description: 'not modified (If-None-Match)' },
        ...problems(400, 404, 422, 501),
      },
      handle: async ({ params, query, req }) => {
        const { record } = await queries.catalog.get(params.id);
        if (!record.georeferenced) throw new HttpProblem(422, `raster ${record.id} is not georeferenced, so it has no map tiles`);
        const bad = query.bands?.find((b) => b > record.bandCount);
        if (bad !== undefined) throw new HttpProblem(400, `band ${bad} does not exist: raster ${record.id} has ${record.bandCount}`);
        if (!deps.renderMapTile) throw new HttpProblem(501, 'map tiles are not available in this deployment (no renderer)');
        const resampling = query.resampling ?? 'bilinear';
        // The content hash pins the pixels: a re-ingested raster gets a new id, a changed file a new hash.
        const etag = `"${createHash('sha256').update(JSON.stringify([record.contentHash, params, query.bands ?? null, resampling])).digest('base64url').slice(0, 27)}"`;
        const headers = { 'Cache-Control': 'public, max-age=86400', ETag: etag };
        if (req.get('if-none-match')?.split(',').some((t) => t.trim() === etag)) return { status: 304, bytes: new Uint8Array(0), type: 'image/png', headers };
        const bytes = await deps.renderMapTile(record.id, params, { bands: query.bands, resampling });
        return { bytes, type: 'image/png', headers };
      },
    }),
  ];
}
