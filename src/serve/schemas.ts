import { z } from 'zod';

/**
 * Request schemas. Query and path values arrive as strings, so their schemas take strings with a strict pattern
 * (no '0x10', '', ' 1' or '1e999' sneaking through Number()) and then check the parsed value; OpenAPI documents
 * the string side. Every schema is bounded, so no input reaches the database that it could choke on.
 */

export const DEFAULT_K = 10;
export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 1000;
/** The widest vector a model may have (the models table's check). */
export const MAX_DIM = 2000;
/** The most tiles one feedback search may mark of each kind. */
export const MAX_MARKS = 500;
const FLOAT32_MAX = 3.4e38;

export const tileIdValue = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const lonValue = z.number().min(-180).max(180);
const latValue = z.number().min(-90).max(90);
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,3})?$/;

const decimalString = z.string().max(40).regex(DECIMAL, 'must be a decimal number').transform(Number);
const intString = z.string().regex(/^\d{1,16}$/, 'must be a non-negative integer').transform(Number);

export const bboxValue = z.tuple([lonValue, latValue, lonValue, latValue])
  .refine((b) => b[0] <= b[2] && b[1] <= b[3], 'bbox must be minLon,minLat,maxLon,maxLat with min <= max');

export const bboxString = z.string().max(200)
  .transform((s, ctx) => {
    const parts = s.split(',');
    if (parts.length !== 4 || !parts.every((p) => DECIMAL.test(p.trim()))) {
      ctx.addIssue({ code: 'custom', message: 'bbox must be four comma-separated numbers: minLon,minLat,maxLon,maxLat' });
      return z.NEVER;
    }
    return parts.map(Number);
  })
  .pipe(bboxValue)
  .describe('minLon,minLat,maxLon,maxLat in WGS84 degrees; results overlap it');

const boolString = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
export const modelName = z.string().min(1).max(200).regex(/^[^\u0000-\u001f\u007f]+$/, 'must not contain control characters').describe('model name; the default model when absent');

/** A positive integer id in a path, e.g. a raster's. */
export function positiveIdParam(what: string) {
  return z.string().regex(/^[1-9]\d{0,15}$/, `must be a positive integer ${what} id`).transform(Number).pipe(tileIdValue);
}

export const tileIdParam = z.string().regex(/^[1-9]\d{0,15}$/, 'must be a positive integer tile id').transform(Number).pipe(tileIdValue);

export function kValue(maxK: number) {
  return z.number().int().min(1).max(maxK).describe(`how many tiles to return, 1..${maxK} (default ${DEFAULT_K})`);
}

export function schemasFor(maxK: number) {
  const kQuery = intString.pipe(kValue(maxK)).describe(`how many tiles to return, 1..${maxK} (default ${DEFAULT_K})`);
  const float32 = z.number().min(-FLOAT32_MAX).max(FLOAT32_MAX);

  const tilePath = z.object({ id: tileIdParam });

  const tilesQuery = z.object({
    bbox: bboxString.optional(),
    limit: intString.pipe(z.number().int().min(1).max(MAX_PAGE)).optional().describe(`page size, 1..${MAX_PAGE} (default ${DEFAULT_PAGE})`),
    cursor: z.string().max(100).optional().describe('the nextCursor of the previous page'),
    distanceTo: intString.pipe(tileIdValue).optional().describe("give each tile its embedding distance to this tile (the map's similarity layer); tiles without a vector get none"),
    model: modelName.optional().describe('the model for distanceTo (default: the service default)'),
  }).strict();

  const pointQuery = z.object({
    lon: decimalString.pipe(lonValue).describe('longitude in degrees'),
    lat: decimalString.pipe(latValue).describe('latitude in degrees'),
  }).strict();

  const similarQuery = z.object({
    k: kQuery.optional(),
    model: modelName.optional(),
    bbox: bboxString.optional(),
    excludeSameRaster: boolString.optional().describe('leave out tiles from the query tile\'s raster (default false)'),
  }).strict();

  const common = {
    k: kValue(maxK).optional(),
    model: modelName.optional(),
    bbox: bboxValue.optional().describe('[minLon, minLat, maxLon, maxLat]; results overlap it'),
  };

  const searchBody = z.object({
    tileId: tileIdValue.optional().describe('search near this tile\'s embedding'),
    lon: lonValue.optional().describe('with lat: search near the tile covering this point'),
    lat: latValue.optional(),
    vector: z.array(float32).min(1).max(MAX_DIM).optional().describe('search near this embedding (the model\'s dimension)'),
    excludeSameRaster: z.boolean().optional().describe('with tileId or lon/lat: leave out tiles from the query tile\'s raster'),
    positives: z.array(tileIdValue).min(1).max(MAX_MARKS).optional().describe('tiles marked relevant: search by example with feedback'),
    negatives: z.array(tileIdValue).max(MAX_MARKS).optional().describe('with positives: tiles marked not relevant'),
    ...common,
  }).strict().superRefine((b, ctx) => {
    const byPoint = b.lon !== undefined || b.lat !== undefined;
    if (byPoint && (b.lon === undefined || b.lat === undefined)) ctx.addIssue({ code: 'custom', message: 'lon and lat go together' });
    const modes = [b.tileId !== undefined, byPoint, b.vector !== undefined, b.positives !== undefined].filter(Boolean).length;
    if (modes !== 1) ctx.addIssue({ code: 'custom', message: 'give exactly one of tileId, lon and lat, vector, or positives' });
    if (b.negatives !== undefined && b.positives === undefined) ctx.addIssue({ code: 'custom', path: ['negatives'], message: 'negatives go with positives' });
    if (b.positives && b.excludeSameRaster) ctx.addIssue({ code: 'custom', path: ['excludeSameRaster'], message: 'feedback search has no single query raster' });
    const both = b.positives?.filter((id) => b.negatives?.includes(id));
    if (both?.length) ctx.addIssue({ code: 'custom', path: ['negatives'], message: `tiles ${both.join(', ')} are marked both positive and negative` });
    // pgvector sums squared differences in single precision: past FLOAT32_MAX every distance would be infinite.
    if (b.vector !== undefined && b.vector.reduce((sum, x) => sum + x * x, 0) > FLOAT32_MAX) {
      ctx.addIssue({ code: 'custom', path: ['vector'], message: `the vector's squared norm exceeds ${FLOAT32_MAX}, so its distances would overflow single precision` });
    }
    if (b.vector !== undefined && b.excludeSameRaster) ctx.addIssue({ code: 'custom', path: ['excludeSameRaster'], message: 'a vector query has no raster' });
  }).describe('exactly one of tileId, lon+lat, vector, or positives (with optional negatives)');

  /** The text fields that ride along with a multipart chip upload. */
  const chipFields = z.object({
    k: kQuery.optional(),
    model: modelName.optional(),
    bbox: bboxString.optional(),
  }).strict();

  const analogyBody = z.object({
    a: tileIdValue.describe('tile id of a'),
    b: tileIdValue.describe('tile id of b'),
    c: tileIdValue.describe('tile id of c'),
    ...common,
  }).strict().describe('tiles nearest z(a) - z(b) + z(c), never a, b or c');

  const ingestBody = z.object({
    inputs: z.array(z.string().min(1).max(2048).regex(/^[^\u0000-\u001f\u007f]+$/, 'must not contain control characters'))
      .min(1).max(100).describe('absolute file or directory paths under ingest.roots, or http(s) URLs on ingest.allowHosts'),
    tileSize: z.number().int().min(1).max(4096).optional(),
    stride: z.number().int().min(1).max(4096).optional(),
    maxNodata: z.number().min(0).max(1).optional(),
    bands: z.array(z.number().int().min(1).max(65_535)).min(1).max(256).optional(),
    force: z.boolean().optional(),
    overview: z.number().int().min(0).max(63).optional().describe("the file's n-th largest overview instead of its full resolution (0)"),
    resolution: z.number().positive().finite().optional().describe('or the coarsest level whose pixels are no larger than this, in CRS units'),
  }).strict().describe('rasters to ingest: queued for workers on a PostgreSQL server, run in the request on the embedded engine');

  return { tilePath, tilesQuery, pointQuery, similarQuery, searchBody, chipFields, analogyBody, ingestBody };
}

export type Schemas = ReturnType<typeof schemasFor>;
export type SearchBody = z.infer<Schemas['searchBody']>;
export type AnalogyBody = z.infer<Schemas['analogyBody']>;

/** Cursors are opaque to clients: base64url of the last id they saw, versioned so the format can change. */
export function encodeCursor(lastId: number): string {
  return Buffer.from(`t1:${lastId}`).toString('base64url');
}

export function decodeCursor(cursor: string): number | undefined {
  const m = /^t1:([1-9]\d{0,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  const id = m ? Number(m[1]) : NaN;
  return Number.isSafeInteger(id) ? id : undefined;
}
