import { existsSync } from 'node:fs';
import { z } from 'zod';
import { classifierPath, classifiersDir, classifyTiles, loadClassifier } from '../classify/index.ts';
import { NotFoundError } from '../errors.ts';
import { HttpProblem } from './problem.ts';
import type { RouteSpec } from './routes.ts';
import { bboxValue, tileIdValue } from './schemas.ts';
import type { ServeDeps } from './deps.ts';

/** Most tile ids one request may name; a bbox query has no such cap beyond the query deadline. */
export const MAX_CLASSIFY_TILE_IDS = 10_000;

export const classifyBody = z.object({
  classifier: z.string().min(1).max(200).describe('name of a classifier saved in the classifiers directory (file name without .json)'),
  tileIds: z.array(tileIdValue).min(1).max(MAX_CLASSIFY_TILE_IDS).optional(),
  bbox: bboxValue.optional().describe('[minLon, minLat, maxLon, maxLat]; every embedded tile that overlaps it'),
  model: z.string().min(1).max(200).optional().describe('must be the model the classifier was trained on; checked when given'),
}).strict().refine((b) => (b.tileIds === undefined) !== (b.bbox === undefined), 'give exactly one of tileIds and bbox');

/**
 * POST /v1/classify: applies a saved classifier to stored embeddings of tiles named by id or by bbox. Classifiers
 * are looked up by name in `classifiersDir(config)` (where `tilevec classify train` saves them), never by path.
 */
export function classifyRoutes(deps: ServeDeps): RouteSpec[] {
  const dir = classifiersDir(deps.config);
  const spec: RouteSpec<unknown, unknown, z.output<typeof classifyBody>> = {
    method: 'post', path: '/v1/classify', tag: 'classify',
    summary: 'land-cover classes of tiles (by id or bbox) from a saved classifier over its model\'s embeddings',
    body: classifyBody,
    example: '/v1/classify', exampleBody: { classifier: 'zion-logreg', bbox: [-113.1, 37.1, -112.9, 37.3] },
    responses: {
      200: { description: 'one prediction per embedded tile: class id, name and probability' },
      400: { description: 'invalid request, or a model other than the classifier\'s', type: 'application/problem+json' },
      404: { description: 'no such classifier, or tiles without an embedding', type: 'application/problem+json' },
      415: { description: 'unsupported content type', type: 'application/problem+json' },
      422: { description: 'the saved classifier is damaged or of another format', type: 'application/problem+json' },
    },
    handle: async ({ body }) => {
      if (body === undefined) throw new HttpProblem(415, 'send application/json');
      const path = classifierPath(dir, body.classifier);
      if (!existsSync(path)) throw new NotFoundError(`no classifier '${body.classifier}' in the classifiers directory; train one with tilevec classify train`);
      const saved = loadClassifier(path, `classifier '${body.classifier}'`);
      const query = body.tileIds ? { tileIds: body.tileIds } : { bbox: body.bbox! };
      const predictions = await classifyTiles(deps.store, saved, query, { model: body.model });
      return { json: { classifier: body.classifier, model: saved.metadata.model?.name, classes: saved.metadata.classes, predictions } };
    },
  };
  return [spec as unknown as RouteSpec];
}
