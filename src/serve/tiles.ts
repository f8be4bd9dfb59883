import type { Feature, FeatureCollection, Polygon } from 'geojson';
import type { BBox, ModelRecord, RasterRecord, Store, TileRecord } from '../store/index.ts';
import { booleanPointInPolygon, point } from '@turf/turf';
import { NotFoundError, UserError } from '../errors.ts';
import { batched } from '../batched.ts';
import { featureCollection, roundBbox, roundCoordinates, roundDegree } from './geojson.ts';
import { RasterCatalog, rasterSummary } from './rasters.ts';
import { chooseMethod, relevanceScore, rocchioQuery, sigmoid, type FeedbackMethod } from './feedback.ts';

export type TileFeature = Feature<Polygon, TileProperties>;

export interface TileProperties {
  id: number;
  rasterId: number;
  /** The source raster's file name and acquisition date (null when it has none). */
  rasterName: string;
  date: string | null;
  x: number;
  y: number;
  size: number;
  centerLon: number;
  centerLat: number;
  validFraction: number;
  thumbnail: string;
  distance?: number;
  /** Feedback search by classifier: the probability that the tile is relevant. */
  score?: number;
}

/** What a tile feature says about its raster. */
export interface RasterLabel {
  name: string;
  date: string | null;
}

export function tileFeature(t: TileRecord, raster: RasterLabel, distance?: number): TileFeature {
  return {
    type: 'Feature',
    id: t.id,
    bbox: roundBbox(t.bbox),
    geometry: roundCoordinates(t.footprint),
    properties: {
      id: t.id, rasterId: t.rasterId, rasterName: raster.name, date: raster.date, x: t.x, y: t.y, size: t.size,
      centerLon: roundDegree(t.centerLon), centerLat: roundDegree(t.centerLat),
      validFraction: t.validFraction, thumbnail: `/v1/tiles/${t.id}/thumbnail.png`,
      ...(distance === undefined ? {} : { distance }),
    },
  };
}

export interface NeighborOptions {
  k: number;
  bbox?: BBox;
  excludeTileIds?: number[];
}

/** A ranked result: the features in distance order, with what was asked as foreign members. */
export type RankedCollection = FeatureCollection<Polygon, TileProperties> & { model: string; query: Record<string, unknown>; complete?: boolean };

type Neighbours = (TileRecord & { distance: number })[];

/** How long a looked-up model is reused: models change rarely, and the lookup would otherwise cost every request a query. */
const MODEL_TTL_MS = 2000;
/** The most vectors a filtered query searches exactly when the index came back short of k. */
export const EXACT_FILTER_LIMIT = 50_000;

/** The queries behind the similarity routes, over the store, with the service's default model. */
export class TileQueries {
  private readonly models = new Map<string, { model: Promise<ModelRecord>; expires: number }>();
  private readonly nearestBatchers = new Map<string, (tileId: number) => Promise<Neighbours>>();

  readonly catalog: RasterCatalog;

  constructor(readonly store: Store, private readonly defaultModel?: string) {
    this.catalog = new RasterCatalog(store);
  }

  /** Tiles as features, each with its raster's name and date; `distances` in the same order (ranked results, the similarity layer). */
  async features(tiles: TileRecord[], distances?: (number | undefined)[]): Promise<TileFeature[]> {
    const rasters = await this.catalog.all();
    const labels = new Map<number, RasterLabel>();
    const label = (id: number): RasterLabel => {
      let l = labels.get(id);
      if (!l) {
        const r = rasters.get(id);
        labels.set(id, (l = r ? rasterLabel(r.record) : { name: `raster ${id}`, date: null }));
      }
      return l;
    };
    return tiles.map((t, i) => tileFeature(t, label(t.rasterId), distances?.[i]));
  }

  /** A ranked result: the features in distance order, with what was asked as foreign members. */
  async collection(model: ModelRecord, found: (TileRecord & { distance: number })[], query: Record<string, unknown>, extra: { complete?: boolean } = {}): Promise<RankedCollection> {
    // An overflowing distance would be written as null, which no client can rank by.
    if (found.some((t) => !Number.isFinite(t.distance))) {
      throw new UserError(`distances to this query overflow single precision (model '${model.name}' has vectors too large to compare with it)`, { status: 422 });
    }
    const features = await this.features(found, found.map((t) => t.distance));
    return featureCollection(features, { model: model.name, query, ...extra }) as RankedCollection;
  }

  /** The named model, or the default: cached briefly, failures not at all. */
  model(name?: string): Promise<ModelRecord> {
    const key = name ?? this.defaultModel ?? '';
    const hit = this.models.get(key);
    if (hit && hit.expires > Date.now()) return hit.model;
    const model = this.store.model(key || undefined);
    this.models.set(key, { model, expires: Date.now() + MODEL_TTL_MS });
    model.catch(() => this.models.delete(key));
    return model;
  }

  async ranked(model: ModelRecord, vector: ArrayLike<number>, opts: NeighborOptions, query: Record<string, unknown>): Promise<RankedCollection> {
    const { found, complete } = await this.nearest(model, { vector }, opts);
    return this.collection(model, found, query, complete);
  }

  /** Tiles most similar to one tile, never the tile itself. */
  async similar(tileId: number, opts: { k: number; model?: string; bbox?: BBox; excludeSameRaster?: boolean }): Promise<RankedCollection> {
    const model = await this.model(opts.model);
    const { found, complete } = opts.bbox || opts.excludeSameRaster
      ? await this.nearest(model, { tileId }, { k: opts.k, bbox: opts.bbox, excludeQueryRaster: opts.excludeSameRaster })
      : { found: await this.batchedNearest(model, tileId, opts.k), complete: {} };
    // Nothing found: say why when the tile or its vector is missing (these throw 404s), else it is a true empty answer.
    if (found.length === 0) await this.store.tile(tileId).then(() => this.store.embedding(model.id, tileId));
    return this.collection(model, found, { tileId, k: opts.k, bbox: opts.bbox ?? null, excludeSameRaster: opts.excludeSameRaster ?? false }, complete);
  }

  /**
   * Nearest tiles through the index, and for a filtered query (bbox or raster) whether k was filled as far as the
   * filter allows. Iterative index scans stop at hnsw.max_scan_tuples, so a filter that keeps few tiles can come
   * back short: then a filter that keeps at most EXACT_FILTER_LIMIT vectors is searched exactly, and a larger
   * one answers `complete: false`.
   */
  private async nearest(model: ModelRecord, query: { vector: ArrayLike<number> } | { tileId: number }, opts: { k: number; bbox?: BBox; excludeTileIds?: number[]; excludeQueryRaster?: boolean }): Promise<{ found: Neighbours; complete: { complete?: boolean } }> {
    const found = await this.store.nearestTiles(model, query, opts);
    if (!opts.bbox && !opts.excludeQueryRaster) return { found, complete: {} };
    if (found.length >= opts.k) return { found, complete: { complete: true } };
    const queryTile = 'tileId' in query ? query.tileId : undefined;
    const kept = await this.store.countEmbedded(model, { bbox: opts.bbox, notRasterOfTile: opts.excludeQueryRaster ? queryTile : undefined });
    if (kept > EXACT_FILTER_LIMIT) return { found, complete: { complete: false } };
    return { found: await this.store.nearestTiles(model, query, { ...opts, exact: true }), complete: { complete: true } };
  }

  /** Unfiltered similarity requests that arrive together go to the store as one statement, per model and k. */
  private batchedNearest(model: ModelRecord, tileId: number, k: number): Promise<Neighbours> {
    const key = `${model.id}/${k}`;
    let load = this.nearestBatchers.get(key);
    if (!load) {
      load = batched((tileIds: number[]) => this.store.nearestTilesOfEach(model, tileIds, k));
      this.nearestBatchers.set(key, load);
    }
    return load(tileId);
  }

  /** Tiles most similar to the tile under a point, never that tile. */
  async similarToPoint(lon: number, lat: number, opts: { k: number; model?: string; bbox?: BBox; excludeSameRaster?: boolean }): Promise<RankedCollection> {
    const model = await this.model(opts.model);
    const { tile } = await this.embeddedTileAt(model, lon, lat);
    const { found, complete } = await this.nearest(model, { tileId: tile.id }, { k: opts.k, bbox: opts.bbox, excludeQueryRaster: opts.excludeSameRaster });
    return this.collection(model, found, { lon, lat, tileId: tile.id, k: opts.k, bbox: opts.bbox ?? null, excludeSameRaster: opts.excludeSameRaster ?? false }, complete);
  }

  /** The tile under a point that best stands for it: of those covering it and embedded, the one centred closest. */
  async embeddedTileAt(model: ModelRecord, lon: number, lat: number): Promise<{ tile: TileRecord; vector: Float32Array }> {
    const covering = (await this.tilesAt(lon, lat))
      .sort((a, b) => Math.hypot(a.centerLon - lon, a.centerLat - lat) - Math.hypot(b.centerLon - lon, b.centerLat - lat));
    for (const tile of covering) {
      try {
        return { tile, vector: await this.store.embedding(model.id, tile.id) };
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
      }
    }
    throw new NotFoundError(covering.length ? `no tile covering ${lon},${lat} has an embedding for model '${model.name}'` : `no tile covers ${lon},${lat}`);
  }

  /** Tiles whose footprint contains the point (the store's test is bbox-level). */
  async tilesAt(lon: number, lat: number): Promise<TileRecord[]> {
    const p = point([lon, lat]);
    return (await this.store.tilesAt(lon, lat)).filter((t) => booleanPointInPolygon(p, t.footprint));
  }

  /**
   * Search by example with feedback: a Rocchio query vector through the index while marks are few, a logistic
   * regression of positives against negatives over every vector once there are enough of both. Marked tiles are
   * never results; the answer says which method ranked it.
   */
  async feedback(marks: { positives: number[]; negatives: number[] }, opts: { k: number; model?: string; bbox?: BBox }): Promise<RankedCollection & { method: FeedbackMethod }> {
    const model = await this.model(opts.model);
    const marked = [...marks.positives, ...marks.negatives];
    const vectors = await this.store.embeddingsOf(model.id, marked);
    const missing = marked.filter((id) => !vectors.has(id));
    if (missing.length) throw new NotFoundError(`tile${missing.length > 1 ? 's' : ''} ${missing.slice(0, 10).join(', ')} ha${missing.length > 1 ? 've' : 's'} no embedding for model '${model.name}'`);
    const pos = marks.positives.map((id) => vectors.get(id)!);
    const neg = marks.negatives.map((id) => vectors.get(id)!);
    const method = chooseMethod(pos.length, neg.length);
    const query = { ...marks, k: opts.k, bbox: opts.bbox ?? null };
    const filter = { k: opts.k, bbox: opts.bbox, excludeTileIds: marked };
    if (method === 'rocchio') {
      const { found, complete } = await this.nearest(model, { vector: rocchioQuery(pos, neg) }, filter);
      return { ...(await this.collection(model, found, query, complete)), method };
    }
    const { weights, bias } = relevanceScore(pos, neg);
    const found = await this.store.topByInnerProduct(model, weights, filter);
    const features = await this.features(found);
    features.forEach((f, i) => { f.properties.score = sigmoid(found[i].dot + bias); });
    return { ...featureCollection(features, { model: model.name, query }), method, complete: true } as RankedCollection & { method: FeedbackMethod };
  }

  /** Nearest to z(a) - z(b) + z(c), leaving out a, b and c themselves. */
  async analogy(ids: { a: number; b: number; c: number }, opts: { k: number; model?: string; bbox?: BBox }): Promise<RankedCollection> {
    const model = await this.model(opts.model);
    const [za, zb, zc] = await Promise.all([ids.a, ids.b, ids.c].map((id) => this.store.tile(id).then(() => this.store.embedding(model.id, id))));
    const target = za.map((v, i) => v - zb[i] + zc[i]);
    return this.ranked(model, target, { k: opts.k, bbox: opts.bbox, excludeTileIds: [ids.a, ids.b, ids.c] },
      { ...ids, k: opts.k, bbox: opts.bbox ?? null });
  }
}

export function rasterLabel(r: RasterRecord): RasterLabel {
  const summary = rasterSummary(r, 0);
  return { name: summary.name, date: summary.date };
}
