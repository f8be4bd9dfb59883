import { z } from 'zod';
import { encodeGeoParquet } from '../embed/index.ts';
import type { TileRecord } from '../store/index.ts';
import { featureCollection } from './geojson.ts';
import type { ServeDeps } from './deps.ts';
import { HttpProblem } from './problem.ts';
import { route, problems, GEOJSON, type RouteSpec } from './routes.ts';
import { modelName, tileIdValue } from './schemas.ts';
import type { TileQueries } from './tiles.ts';

/** Tiles one export or label set may name: a generous search session, and a bounded request. */
export const MAX_FOUND_TILES = 10_000;
export const GEOPARQUET = 'application/vnd.apache.parquet';
/** Where a label set saved from the explorer came from, in `tilevec classify labels list`. */
export const EXPLORER_SOURCE = 'tilevec explorer';

const labelText = (what: string) => z.string().trim().min(1).max(200).regex(/^[^\u0000-\u001f\u007f]+$/, `${what} must not contain control characters`);

const exportBody = z.object({
  tileIds: z.array(tileIdValue).min(1).max(MAX_FOUND_TILES).describe('the found tiles, in the order the file should list them'),
  format: z.enum(['geojson', 'geoparquet']).default('geojson'),
  model: modelName.optional().describe('geoparquet: whose embeddings the file carries (default: the default model)'),
}).strict();

const labelSetBody = z.object({
  name: labelText('the name'),
  positives: z.array(tileIdValue).min(1).max(MAX_FOUND_TILES),
  negatives: z.array(tileIdValue).max(MAX_FOUND_TILES).default([]),
  classes: z.tuple([labelText('a class name'), labelText('a class name')]).default(['match', 'other'])
    .describe('names of the positive and the negative class'),
  replace: z.boolean().default(false).describe('overwrite a label set of the same name'),
}).strict().superRefine((b, ctx) => {
  const positives = new Set(b.positives);
  const both = b.negatives.filter((id) => positives.has(id));
  if (both.length) ctx.addIssue({ code: 'custom', path: ['negatives'], message: `tiles ${both.slice(0, 5).join(', ')} are marked both ways` });
  if (b.classes[0] === b.classes[1]) ctx.addIssue({ code: 'custom', path: ['classes'], message: 'the two classes need different names' });
});

/** What search by example found, taken away: as GeoJSON or GeoParquet, or as a label set `tilevec classify train` reads. */
export function foundTileRoutes(deps: ServeDeps, queries: TileQueries): RouteSpec[] {
  const { store } = deps;

  /** The tiles in the order asked, or a 404 naming the ids that name no tile. */
  async function tilesInOrder(ids: number[]): Promise<TileRecord[]> {
    const unique = [...new Set(ids)];
    const byId = new Map((await store.tilesByIds(unique)).map((t) => [t.id, t]));
    const missing = unique.filter((id) => !byId.has(id));
    if (missing.length) throw new HttpProblem(404, `no tile ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` (and ${missing.length - 5} more)` : ''}`);
    return unique.map((id) => byId.get(id)!);
  }

  return [
    route({
      method: 'post', path: '/v1/tiles/export', tag: 'tiles',
      summary: 'found tiles as a GeoJSON FeatureCollection, or as GeoParquet with their embeddings (the rows tilevec export writes)',
      example: '/v1/tiles/export', exampleBody: { tileIds: [12, 40, 7], format: 'geojson' },
      body: exportBody,
      responses: {
        200: { description: 'the tiles, as a download', type: `${GEOJSON} | ${GEOPARQUET}` },
        ...problems(400, 404, 413, 415),
      },
      handle: async ({ body }) => {
        if (body === undefined) throw new HttpProblem(415, 'send application/json');
        const tiles = await tilesInOrder(body.tileIds);
        if (body.format === 'geojson') {
          return { type: GEOJSON, json: featureCollection(await queries.features(tiles)) };
        }
        const model = await queries.model(body.model);
        const vectors = await store.embeddingsOf(model.id, tiles.map((t) => t.id));
        const unembedded = tiles.filter((t) => !vectors.has(t.id)).map((t) => t.id);
        if (unembedded.length) throw new HttpProblem(404, `tiles ${unembedded.slice(0, 5).join(', ')} have no embedding under model '${model.name}'`);
        const rasters = new Map((await store.listRasters()).map((r) => [r.id, r]));
        const rows = tiles.map((tile) => ({ tile, raster: rasters.get(tile.rasterId)!, vector: vectors.get(tile.id)! }));
        const bytes = new Uint8Array(encodeGeoParquet(rows, model.dim, model.name));
        return { bytes, type: GEOPARQUET, headers: { 'Content-Disposition': 'attachment; filename="found-tiles.parquet"' } };
      },
    }),
    route({
      method: 'post', path: '/v1/label-sets', tag: 'classify', auth: true,
      summary: 'save marked tiles as a two-class label set (positives, negatives) that tilevec classify train --labels reads',
      example: '/v1/label-sets', exampleBody: { name: 'farmsteads', positives: [12, 40], negatives: [7], classes: ['farmstead', 'other'] },
      body: labelSetBody,
      responses: {
        201: { description: 'the label set, its class counts and the command that trains on it' },
        ...problems(400, 401, 403, 404, 409, 413, 415),
      },
      handle: async ({ body }) => {
        if (body === undefined) throw new HttpProblem(415, 'send application/json');
        // Checked before anything is written, so a bad id leaves no label set behind.
        await tilesInOrder([...body.positives, ...body.negatives]);
        const existing = (await store.listLabelSets()).find((l) => l.name === body.name);
        if (existing && !body.replace) throw new HttpProblem(409, `a label set named '${body.name}' exists (send "replace": true to overwrite it)`);
        const classes = [{ id: 1, name: body.classes[0] }, { id: 0, name: body.classes[1] }];
        const labels = [
          ...[...new Set(body.positives)].map((tileId) => ({ tileId, classId: 1, purity: 1 })),
          ...[...new Set(body.negatives)].map((tileId) => ({ tileId, classId: 0, purity: 1 })),
        ];
        const set = await store.replaceLabelSet({ name: body.name, source: EXPLORER_SOURCE, classes }, labels);
        return {
          status: 201,
          json: {
            id: set.id, name: set.name, classes,
            counts: { [body.classes[0]]: labels.filter((l) => l.classId === 1).length, [body.classes[1]]: labels.filter((l) => l.classId === 0).length },
            train: `tilevec classify train --labels ${JSON.stringify(set.name)}`,
          },
        };
      },
    }),
  ];
}
