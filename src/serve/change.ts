import { z } from 'zod';
import { coRegistered } from '../sampling/index.ts';
import type { RasterRecord } from '../store/index.ts';
import { HttpProblem } from './problem.ts';
import { featureCollection } from './geojson.ts';
import { route, problems, GEOJSON, type RouteSpec } from './routes.ts';
import { bboxString, DEFAULT_K, modelName, type Schemas } from './schemas.ts';
import type { TileQueries } from './tiles.ts';
import { rasterSummary } from './rasters.ts';

/** Date order, undated rasters last, then by id: the order of a timeline. */
function byDate(a: RasterRecord, b: RasterRecord): number {
  return (rasterSummary(a, 0).date ?? '9999').localeCompare(rasterSummary(b, 0).date ?? '9999') || a.id - b.id;
}

function l2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s);
}

/**
 * Change over time on co-registered rasters (same CRS and pixel grid within a pixel, `coRegistered`): a window's
 * timeline across every date, and the windows that changed most between two dates.
 */
export function changeRoutes(s: Schemas, queries: TileQueries): RouteSpec[] {
  const changeQuery = z.object({
    from: z.string().regex(/^[1-9]\d{0,15}$/, 'must be a raster id').transform(Number).describe('raster id of the earlier date'),
    to: z.string().regex(/^[1-9]\d{0,15}$/, 'must be a raster id').transform(Number).describe('raster id of the later date'),
    bbox: bboxString.optional(),
    k: s.similarQuery.shape.k,
    model: modelName.optional(),
  }).strict();

  return [
    route({
      method: 'get', path: '/v1/tiles/:id/timeline', tag: 'change',
      summary: 'the same window on every co-registered date, with the embedding distance to this tile and to the previous date',
      params: s.tilePath, query: z.object({ model: modelName.optional() }).strict(),
      example: '/v1/tiles/1/timeline',
      responses: { 200: { description: 'the window\'s tiles in date order', type: GEOJSON }, ...problems(400, 404) },
      handle: async ({ params, query }) => {
        const model = await queries.model(query.model);
        const tile = await queries.store.tile(params.id);
        const rasters = [...(await queries.catalog.all()).values()].map((r) => r.record);
        const own = rasters.find((r) => r.id === tile.rasterId)!;
        const stack = rasters.filter((r) => r.id === own.id || coRegistered(own, r)).sort(byDate);
        const tiles = await queries.store.tilesAtWindow(stack.map((r) => r.id), tile);
        const order = new Map(stack.map((r, i) => [r.id, i]));
        tiles.sort((a, b) => order.get(a.rasterId)! - order.get(b.rasterId)!);
        const vectors = await queries.store.embeddingsOf(model.id, tiles.map((t) => t.id));
        const queryVector = vectors.get(tile.id);
        const features = await queries.features(tiles);
        let previous: Float32Array | undefined;
        for (const [i, t] of tiles.entries()) {
          const v = vectors.get(t.id);
          Object.assign(features[i].properties, {
            distanceToQuery: v && queryVector ? l2(v, queryVector) : null,
            distanceToPrevious: v && previous ? l2(v, previous) : null,
          });
          if (v) previous = v;
        }
        return { type: GEOJSON, json: featureCollection(features, { model: model.name, query: { tileId: tile.id }, dates: stack.length }) };
      },
    }),
    route({
      method: 'get', path: '/v1/change', tag: 'change',
      summary: 'the windows that changed most between two co-registered dates, ranked by embedding distance, largest first',
      query: changeQuery,
      example: '/v1/change?from=1&to=2&k=10',
      responses: {
        200: { description: 'the later date\'s tiles with distance and fromTileId', type: GEOJSON },
        ...problems(400, 404, 422),
      },
      handle: async ({ query }) => {
        if (query.from === query.to) throw new HttpProblem(400, 'from and to must be different rasters');
        const model = await queries.model(query.model);
        const [from, to] = await Promise.all([queries.catalog.get(query.from), queries.catalog.get(query.to)]);
        if (!coRegistered(from.record, to.record)) {
          throw new HttpProblem(422, `rasters ${query.from} and ${query.to} are not co-registered dates of one place (CRS or pixel size differ, or their grids lie a pixel or more apart)`);
        }
        const k = query.k ?? DEFAULT_K;
        const found = await queries.store.windowChanges(model, query.from, query.to, { k, bbox: query.bbox });
        const features = await queries.features(found, found.map((t) => t.distance));
        features.forEach((f, i) => { Object.assign(f.properties, { fromTileId: found[i].fromTileId }); });
        return { type: GEOJSON, json: featureCollection(features, { model: model.name, query: { from: query.from, to: query.to, k, bbox: query.bbox ?? null }, complete: true }) };
      },
    }),
  ];
}
