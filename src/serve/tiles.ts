import type { Feature, FeatureCollection, Polygon } from 'geojson';
import type { BBox, ModelRecord, Neighbor, Store, TileRecord } from '../store/index.ts';
import { booleanPointInPolygon, point } from '@turf/turf';
import { NotFoundError } from '../errors.ts';

export type TileFeature = Feature<Polygon, TileProperties>;

export interface TileProperties {
  id: number;
  rasterId: number;
  x: number;
  y: number;
  size: number;
  centerLon: number;
  centerLat: number;
  validFraction: number;
  thumbnail: string;
  distance?: number;
}

export function tileFeature(t: TileRecord, distance?: number): TileFeature {
  return {
    type: 'Feature',
    id: t.id,
    bbox: t.bbox,
    geometry: t.footprint,
    properties: {
      id: t.id, rasterId: t.rasterId, x: t.x, y: t.y, size: t.size, centerLon: t.centerLon, centerLat: t.centerLat,
      validFraction: t.validFraction, thumbnail: `/v1/tiles/${t.id}/thumbnail.png`,
      ...(distance === undefined ? {} : { distance }),
    },
  };
}

export interface NeighborOptions {
  k: number;
  bbox?: BBox;
  excludeTileIds?: number[];
  excludeRasterId?: number;
}

/** A ranked result: the features in distance order, with what was asked as foreign members. */
export type RankedCollection = FeatureCollection<Polygon, TileProperties> & { model: string; query: Record<string, unknown> };

/** The queries behind the similarity routes, over the store, with the service's default model. */
export class TileQueries {
  constructor(private readonly store: Store, private readonly defaultModel?: string) {}

  model(name?: string): Promise<ModelRecord> {
    return this.store.model(name ?? this.defaultModel);
  }

  async ranked(model: ModelRecord, vector: ArrayLike<number>, opts: NeighborOptions, query: Record<string, unknown>): Promise<RankedCollection> {
    const neighbors = await this.store.nearest(model, vector, opts);
    return { type: 'FeatureCollection', features: await this.featuresOf(neighbors), model: model.name, query };
  }

  /** Tiles most similar to one tile, never the tile itself. */
  async similar(tileId: number, opts: { k: number; model?: string; bbox?: BBox; excludeSameRaster?: boolean }): Promise<RankedCollection> {
    const [tile, model] = await Promise.all([this.store.tile(tileId), this.model(opts.model)]);
    const vector = await this.store.embedding(model.id, tile.id);
    return this.ranked(model, vector, {
      k: opts.k, bbox: opts.bbox, excludeTileIds: [tile.id], excludeRasterId: opts.excludeSameRaster ? tile.rasterId : undefined,
    }, { tileId: tile.id, k: opts.k, bbox: opts.bbox ?? null, excludeSameRaster: opts.excludeSameRaster ?? false });
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

  /** Tiles most similar to the tile under a point, never that tile. */
  async similarToPoint(lon: number, lat: number, opts: { k: number; model?: string; bbox?: BBox; excludeSameRaster?: boolean }): Promise<RankedCollection> {
    const model = await this.model(opts.model);
    const { tile, vector } = await this.embeddedTileAt(model, lon, lat);
    return this.ranked(model, vector, {
      k: opts.k, bbox: opts.bbox, excludeTileIds: [tile.id], excludeRasterId: opts.excludeSameRaster ? tile.rasterId : undefined,
    }, { lon, lat, tileId: tile.id, k: opts.k, bbox: opts.bbox ?? null, excludeSameRaster: opts.excludeSameRaster ?? false });
  }

  /** Tiles whose footprint contains the point (the store's test is bbox-level). */
  async tilesAt(lon: number, lat: number): Promise<TileRecord[]> {
    const p = point([lon, lat]);
    return (await this.store.tilesAt(lon, lat)).filter((t) => booleanPointInPolygon(p, t.footprint));
  }

  /** Nearest to z(a) - z(b) + z(c), leaving out a, b and c themselves. */
  async analogy(ids: { a: number; b: number; c: number }, opts: { k: number; model?: string; bbox?: BBox }): Promise<RankedCollection> {
    const model = await this.model(opts.model);
    const [za, zb, zc] = await Promise.all([ids.a, ids.b, ids.c].map((id) => this.store.tile(id).then(() => this.store.embedding(model.id, id))));
    const target = za.map((v, i) => v - zb[i] + zc[i]);
    return this.ranked(model, target, { k: opts.k, bbox: opts.bbox, excludeTileIds: [ids.a, ids.b, ids.c] },
      { ...ids, k: opts.k, bbox: opts.bbox ?? null });
  }

  private async featuresOf(neighbors: Neighbor[]): Promise<TileFeature[]> {
    const tiles = new Map((await this.store.tilesByIds(neighbors.map((n) => n.tileId))).map((t) => [t.id, t]));
    // A tile deleted between the two queries drops out rather than failing the request.
    return neighbors.flatMap((n) => {
      const t = tiles.get(n.tileId);
      return t ? [tileFeature(t, n.distance)] : [];
    });
  }
}
