import type { ModelRecord, NewRaster, NewTile, Store } from '../src/store/index.ts';
import { loadConfig, type Config } from '../src/config.ts';

/** Seeded, so a failure reproduces. */
export function rng(seed: number): () => number {
  return () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

const square = (x0: number, y0: number, d: number) => ({
  type: 'Polygon' as const,
  coordinates: [[[x0, y0], [x0 + d, y0], [x0 + d, y0 + d], [x0, y0 + d], [x0, y0]]],
});

export const TILE_DEG = 0.01;

/** Raster r is a side x side block of tiles; the rasters sit in a row from (-110, 37) eastwards, a quarter-raster apart. */
export function rasterOrigin(r: number, side: number): [number, number] {
  return [-110 + r * side * TILE_DEG * 1.25, 37];
}

function syntheticRaster(r: number, side: number): { raster: NewRaster; tiles: NewTile[] } {
  const [lon0, lat0] = rasterOrigin(r, side);
  const tiles: NewTile[] = [];
  for (let row = 0; row < side; row++) {
    for (let col = 0; col < side; col++) {
      const lon = lon0 + col * TILE_DEG;
      const lat = lat0 + row * TILE_DEG;
      tiles.push({
        x: col * 32, y: row * 32, size: 32, footprint: square(lon, lat, TILE_DEG), centerLon: lon + TILE_DEG / 2, centerLat: lat + TILE_DEG / 2,
        bbox: [lon, lat, lon + TILE_DEG, lat + TILE_DEG], validFraction: 1,
      });
    }
  }
  const raster: NewRaster = {
    uri: `synthetic://raster-${r}`, contentHash: `hash-${r}`, sizeBytes: 1, width: side * 32, height: side * 32, bandCount: 4, dtype: 'uint16',
    nodata: null, epsg: 4326, crsDef: null, geotransform: [lon0, TILE_DEG / 32, 0, lat0, 0, TILE_DEG / 32], georeferenced: true,
    footprint: square(lon0, lat0, side * TILE_DEG), bandStats: [], tileSize: 32, stride: 32,
  };
  return { raster, tiles };
}

export interface SyntheticWorld {
  model: ModelRecord;
  rasterIds: number[];
  /** Every tile id with its vector, as stored. */
  vectors: Map<number, Float32Array>;
  rasterOf: Map<number, number>;
}

/**
 * How synthetic vectors are drawn. `uniform`: each component uniform in [-1, 1], every direction equally spread,
 * the hardest case for an HNSW index. `embedding-like`: Gaussian with variance falling as 1/i² along the i-th axis,
 * the spectrum of real tilevec embeddings (the demo model's 128-d vectors of 6380 NAIP tiles put 90 % of their
 * variance in 6 principal components and 99 % in 32; 1/i² gives 6 and 31).
 */
export type SyntheticVectors = 'uniform' | 'embedding-like';

function vectorDrawer(kind: SyntheticVectors, dim: number, random: () => number): () => Float32Array {
  if (kind === 'uniform') return () => Float32Array.from({ length: dim }, () => random() * 2 - 1);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  return () => Float32Array.from({ length: dim }, (_, i) => gauss() / (i + 1));
}

/**
 * Synthetic rasters, tiles, a model and random embeddings through the store's own write methods, so the service
 * is tested against the same records real ingests produce.
 */
export async function seedSynthetic(
  store: Store,
  opts: {
    rasters?: number; side?: number; dim?: number; seed?: number; modelName?: string; index?: boolean; withoutEmbedding?: number;
    vectors?: SyntheticVectors;
  } = {},
): Promise<SyntheticWorld> {
  const { rasters = 3, side = 6, dim = 8, seed = 7, modelName = 'synthetic', index = true, withoutEmbedding = 0, vectors = 'uniform' } = opts;
  const random = rng(seed);
  const draw = vectorDrawer(vectors, dim, random);
  const model = await store.registerModel({
    name: modelName, backbone: { kind: 'synthetic' }, dim, bands: [1, 2, 3, 4], tileSize: 32, normalization: {}, metrics: {}, artifactPath: '/dev/null',
  });
  const world: SyntheticWorld = { model, rasterIds: [], vectors: new Map(), rasterOf: new Map() };
  for (let r = 0; r < rasters; r++) {
    const { raster, tiles } = syntheticRaster(r, side);
    const rasterId = await store.replaceRaster(raster, tiles);
    world.rasterIds.push(rasterId);
    const stored = await store.tilesOfRaster(rasterId);
    // The last `withoutEmbedding` tiles of the last raster stay unembedded, to test the 404 for them.
    const embedded = r === rasters - 1 ? stored.slice(0, stored.length - withoutEmbedding) : stored;
    const rows = embedded.map((t) => ({ tileId: t.id, vector: draw() }));
    for (const t of stored) world.rasterOf.set(t.id, rasterId);
    for (const row of rows) world.vectors.set(row.tileId, row.vector);
    await store.upsertEmbeddings(model, rows);
  }
  if (index) await store.ensureEmbeddingIndex(model);
  return world;
}

export function l2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s);
}

/** The exact k nearest by brute force: the reference the service's HNSW answers are checked against. */
export function bruteForce(world: SyntheticWorld, query: ArrayLike<number>, k: number, keep: (tileId: number) => boolean = () => true) {
  return [...world.vectors].filter(([id]) => keep(id)).map(([id, v]) => ({ id, distance: l2(query, v) }))
    .sort((a, b) => a.distance - b.distance).slice(0, k);
}

export function testConfig(overrides: {
  maxK?: number; token?: string; corsOrigins?: string; queryTimeoutMs?: number; headersTimeoutMs?: number; keepAliveTimeoutMs?: number; maxConnections?: number;
} = {}): Config {
  return loadConfig({ db: 'memory://', logLevel: 'silent', serve: { port: 0, ...overrides } }, {});
}

const DATED_SIDE = 6;
const DATED_DEG = 0.01;
const DATED_DIM = 8;

/** A raster of DATED_SIDE x DATED_SIDE 32-px tiles at (lon0, 37), on a grid that every raster at the same origin shares. */
function datedRaster(name: string, date: string | null, lon0: number): { raster: NewRaster; tiles: NewTile[] } {
  const deg = DATED_DEG;
  const square = (x: number, y: number) => ({ type: 'Polygon' as const, coordinates: [[[x, y], [x + deg, y], [x + deg, y + deg], [x, y + deg], [x, y]]] });
  const tiles: NewTile[] = [];
  for (let row = 0; row < DATED_SIDE; row++) {
    for (let col = 0; col < DATED_SIDE; col++) {
      const [lon, lat] = [lon0 + col * deg, 37 + row * deg];
      tiles.push({ x: col * 32, y: row * 32, size: 32, footprint: square(lon, lat), centerLon: lon + deg / 2, centerLat: lat + deg / 2, bbox: [lon, lat, lon + deg, lat + deg], validFraction: 1 });
    }
  }
  const raster: NewRaster = {
    uri: `synthetic://${name}`, contentHash: name, sizeBytes: 1, width: DATED_SIDE * 32, height: DATED_SIDE * 32, bandCount: 4, dtype: 'uint8', nodata: null,
    epsg: 4326, crsDef: '+proj=longlat +datum=WGS84 +no_defs', geotransform: [lon0, deg / 32, 0, 37, 0, deg / 32], georeferenced: true,
    footprint: square(lon0, 37), bandStats: [], tileSize: 32, stride: 32, acquiredOn: date, acquiredFrom: date ? 'gdal-metadata' : null,
  };
  return { raster, tiles };
}

/**
 * Three co-registered dates of one place (2010, 2012, 2014, inserted out of date order, so an order by date is not
 * an order by id) and one raster elsewhere, with model 'm': every date's vector is its window's base plus a little
 * noise, and the `changed` windows ("x,y") jump by 5 from 2012 on.
 */
export async function seedDatedStack(store: Store, changed: Set<string>): Promise<{ ids: Record<'y2010' | 'y2012' | 'y2014' | 'elsewhere', number>; vectors: Map<number, Float32Array> }> {
  const model = await store.registerModel({ name: 'm', backbone: {}, dim: DATED_DIM, bands: [1, 2, 3, 4], tileSize: 32, normalization: {}, metrics: {}, artifactPath: '/dev/null' });
  const random = rng(5);
  const base = new Map<string, Float32Array>();
  const ids = {} as Record<'y2010' | 'y2012' | 'y2014' | 'elsewhere', number>;
  const vectors = new Map<number, Float32Array>();
  for (const [name, date, lon0] of [['y2012', '2012-07-31', -110], ['y2010', '2010-06-29', -110], ['y2014', '2014-07-20', -110], ['elsewhere', '2011-01-01', -100]] as const) {
    const { raster, tiles } = datedRaster(name, date, lon0);
    ids[name] = await store.replaceRaster(raster, tiles);
    const rows = (await store.tilesOfRaster(ids[name])).map((t) => {
      const key = `${t.x},${t.y}`;
      if (!base.has(key)) base.set(key, Float32Array.from({ length: DATED_DIM }, () => random() * 2 - 1));
      const jump = name !== 'y2010' && changed.has(key) ? 5 : 0;
      return { tileId: t.id, vector: base.get(key)!.map((v, j) => v + (j === 0 ? jump : 0) + 0.01 * (random() - 0.5)) };
    });
    for (const r of rows) vectors.set(r.tileId, r.vector);
    await store.upsertEmbeddings(model, rows);
  }
  await store.ensureEmbeddingIndex(model);
  return { ids, vectors };
}
