import { resolve } from 'node:path';
import { UserError, NotFoundError } from '../errors.ts';
import { defaultModelsDir } from '../config.ts';
import { isServerUrl, type Engine, type Sql } from './engine.ts';
import { PgliteEngine } from './pglite-engine.ts';
import { PostgresEngine } from './postgres-engine.ts';
import { migrate, migrationLevel, type MigrateResult } from './migrate.ts';
import { modelDirOf, storedModelPath } from './model-paths.ts';
import { VECTOR_TYPES, type BBox, type LabelRecord, type LabelSetRecord, type ModelRecord, type NewLabelSet, type NewModel, type NewRaster, type NewTile, type RasterRecord, type StoreStatus, type TileRecord, type VectorType } from './records.ts';

const INSERT_CHUNK = 2000;
// The first key of the advisory lock that serialises HNSW builds (the second is the model's id).
const INDEX_BUILD_LOCK = 739_182;

/** pgvector's upper bound on hnsw.ef_search. */
const MAX_EF_SEARCH = 1000;
/**
 * A bbox estimated to overlap at most this many tiles is searched exactly, from the tiles the bbox index finds:
 * cheaper than an iterative HNSW scan, which walks far through the graph before it has k tiles inside a small area.
 * The two cost the same near 15-20k tiles in a catalogue of a million (bench:scale).
 */
const PREFILTER_TILES = 15_000;
/** Below this many tiles the exact search runs without parallel workers, which take longer to start than it takes. */
const SERIAL_PREFILTER_TILES = 5000;

const rasterColumns = `id, uri, content_hash as "contentHash", size_bytes as "sizeBytes", width, height, band_count as "bandCount",
  dtype, nodata, epsg, crs_def as "crsDef", geotransform, georeferenced, footprint, band_stats as "bandStats",
  tile_size as "tileSize", stride, ingested_at::text as "ingestedAt", acquired_on::text as "acquiredOn", acquired_from as "acquiredFrom", overview`;

const tileColumns = `id, raster_id as "rasterId", x, y, size, footprint, center_lon as "centerLon", center_lat as "centerLat",
  array[min_lon, min_lat, max_lon, max_lat] as bbox, valid_fraction as "validFraction"`;

const labelSetColumns = `id, name, source, classes, created_at::text as "createdAt"`;

const modelColumns = `id, name, backbone, dim, bands, tile_size as "tileSize", normalization, metrics,
  artifact_path as "artifactPath", vector_type as "vectorType", created_at::text as "createdAt"`;

/** The bbox overlap test that tiles_bbox_idx serves; $n..$n+3 are minLon, minLat, maxLon, maxLat. */
function bboxOverlaps(first: number): string {
  return `box(point(min_lon, min_lat), point(max_lon, max_lat)) && box(point($${first}, $${first + 1}), point($${first + 2}, $${first + 3}))`;
}

/**
 * pgvector's text form of a vector. Nine significant digits are exact for the float4 that pgvector stores (it parses
 * with strtof), and are cheaper to print and to parse than the up to 17 that String() writes for a double.
 */
export function vectorLiteral(v: ArrayLike<number>): string {
  const parts: string[] = new Array(v.length);
  for (let i = 0; i < v.length; i++) {
    if (!Number.isFinite(v[i])) throw new UserError(`vector component ${i} is not a finite number`);
    parts[i] = v[i].toPrecision(9);
  }
  return `[${parts.join(',')}]`;
}

export function parseVector(text: string): Float32Array {
  return Float32Array.from(text.slice(1, -1).split(','), Number);
}

export interface OpenStoreOptions {
  /** Apply pending migrations on open (default true); `db status` opens without. */
  migrate?: boolean;
  /** Create an embedded database whose directory does not exist (default true); read-only commands refuse instead. */
  create?: boolean;
  /** Model directories inside it are recorded relative to it (default: `models` beside an embedded database). */
  modelsDir?: string;
  /** How long to wait for another process that holds an embedded database (default 60 s). */
  lockWaitMs?: number;
  /**
   * On a PostgreSQL server, cancel any statement that runs longer than this (its `statement_timeout`), so that
   * the service's query deadline also frees the server. PGlite runs in-process and cannot be interrupted.
   */
  statementTimeoutMs?: number;
}

/**
 * The one store every stage reads and writes: typed records over either engine. Methods take and return plain
 * records; SQL stays in here and in migrations/.
 */
export class Store {
  private constructor(readonly engine: Engine, private readonly modelsDir: string) {}

  static async open(db: string, opts: OpenStoreOptions = {}): Promise<Store> {
    const engine = isServerUrl(db)
      ? await PostgresEngine.open(db, { statementTimeoutMs: opts.statementTimeoutMs })
      : await PgliteEngine.open(db, { lockWaitMs: opts.lockWaitMs, create: opts.create });
    const store = new Store(engine, resolve(opts.modelsDir ?? defaultModelsDir(db)));
    try {
      await store.requireVectorExtension();
      if (opts.migrate ?? true) await store.migrate();
    } catch (err) {
      await engine.close();
      throw err;
    }
    return store;
  }

  close(): Promise<void> {
    return this.engine.close();
  }

  private async requireVectorExtension(): Promise<void> {
    const rows = await this.engine.query(`select 1 from pg_available_extensions where name = 'vector'`);
    if (rows.length === 0) {
      throw new UserError(
        `the PostgreSQL server at ${this.engine.location} has no 'vector' extension (pgvector); install it ` +
          `(on Debian: scripts/setup-postgres.sh, or the postgresql-<version>-pgvector package) and run 'tilevec db migrate' again`,
      );
    }
  }

  migrate(): Promise<MigrateResult> {
    return migrate(this.engine);
  }

  async status(): Promise<StoreStatus> {
    const { level, pending } = await migrationLevel(this.engine);
    const [{ version, standby }] = await this.engine.query<{ version: string; standby: boolean }>(`select current_setting('server_version') as version, pg_is_in_recovery() as standby`);
    const [ext] = await this.engine.query<{ installed: string | null; available: string | null }>(
      `select (select extversion from pg_extension where extname = 'vector') as installed,
              (select default_version from pg_available_extensions where name = 'vector') as available`,
    );
    const counts = { rasters: 0, tiles: 0, models: 0, embeddings: 0, labelSets: 0, labels: 0, jobs: 0 };
    if (level > 0) {
      const tables: [keyof typeof counts, string][] = [
        ['rasters', 'rasters'], ['tiles', 'tiles'], ['models', 'models'], ['embeddings', 'embeddings'],
        ['labelSets', 'label_sets'], ['labels', 'labels'], ['jobs', 'jobs'],
      ];
      const [row] = await this.engine.query<Record<string, number>>(
        `select ${tables.map(([key, table]) => `(select count(*) from ${table})::int as "${key}"`).join(', ')}`,
      );
      Object.assign(counts, row);
    }
    return {
      engine: this.engine.kind,
      location: this.engine.location,
      postgresVersion: version,
      pgvectorVersion: ext.installed ?? `${ext.available} (available; run tilevec db migrate to install it)`,
      migrationLevel: level,
      pendingMigrations: pending,
      standby,
      counts,
    };
  }

  // ---- rasters and tiles ----

  /** The raster ingested from `uri` at `overview`; without a level, the finest one ingested. */
  async rasterByUri(uri: string, overview?: number): Promise<RasterRecord | undefined> {
    return overview === undefined
      ? (await this.engine.query<RasterRecord>(`select ${rasterColumns} from rasters where uri = $1 order by overview limit 1`, [uri]))[0]
      : (await this.engine.query<RasterRecord>(`select ${rasterColumns} from rasters where uri = $1 and overview = $2`, [uri, overview]))[0];
  }

  async raster(id: number): Promise<RasterRecord> {
    const row = (await this.engine.query<RasterRecord>(`select ${rasterColumns} from rasters where id = $1`, [id]))[0];
    if (!row) throw new NotFoundError(`raster ${id} does not exist`);
    return row;
  }

  listRasters(): Promise<RasterRecord[]> {
    return this.engine.query<RasterRecord>(`select ${rasterColumns} from rasters order by id`);
  }

  /**
   * Writes a raster and all its tiles in one transaction, replacing any raster with the same URI and overview
   * level: a failure leaves the store as it was. The tiles are read a chunk at a time, so a generator can make them
   * as they are written.
   */
  async replaceRaster(raster: NewRaster, tiles: Iterable<NewTile>): Promise<number> {
    const overview = raster.overview ?? 0;
    return this.engine.transaction(async (tx) => {
      await tx.query('delete from rasters where uri = $1 and overview = $2', [raster.uri, overview]);
      const [{ id }] = await tx.query<{ id: number }>(
        `insert into rasters (uri, content_hash, size_bytes, width, height, band_count, dtype, nodata, epsg, crs_def,
           geotransform, georeferenced, footprint, band_stats, tile_size, stride, acquired_on, acquired_from, overview)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) returning id`,
        [raster.uri, raster.contentHash, raster.sizeBytes, raster.width, raster.height, raster.bandCount, raster.dtype,
          raster.nodata, raster.epsg, raster.crsDef, raster.geotransform, raster.georeferenced,
          JSON.stringify(raster.footprint), JSON.stringify(raster.bandStats), raster.tileSize, raster.stride,
          raster.acquiredOn ?? null, raster.acquiredFrom ?? null, overview],
      );
      let chunk: NewTile[] = [];
      let count = 0;
      let extent: BBox | undefined;
      for (const tile of tiles) {
        const b = tile.bbox;
        chunk.push(tile);
        count++;
        extent = extent ? [Math.min(extent[0], b[0]), Math.min(extent[1], b[1]), Math.max(extent[2], b[2]), Math.max(extent[3], b[3])] : [b[0], b[1], b[2], b[3]];
        if (chunk.length === INSERT_CHUNK) {
          await insertTiles(tx, id, chunk);
          chunk = [];
        }
      }
      if (chunk.length > 0) await insertTiles(tx, id, chunk);
      if (extent) {
        await tx.query('update rasters set tile_count = $2, tiles_min_lon = $3, tiles_min_lat = $4, tiles_max_lon = $5, tiles_max_lat = $6 where id = $1', [id, count, ...extent]);
      }
      return id;
    });
  }

  /** How many tiles each raster has, by raster id (rasters without tiles are absent). */
  async tileCounts(): Promise<Map<number, number>> {
    const rows = await this.engine.query<{ r: number; n: number }>('select raster_id as r, count(*)::int as n from tiles group by raster_id');
    return new Map(rows.map((row) => [Number(row.r), row.n]));
  }

  async deleteRaster(id: number): Promise<void> {
    await this.engine.query('delete from rasters where id = $1', [id]);
  }

  async tile(id: number): Promise<TileRecord> {
    const row = (await this.engine.query<TileRecord>(`select ${tileColumns} from tiles where id = $1`, [id]))[0];
    if (!row) throw new NotFoundError(`tile ${id} does not exist`);
    return row;
  }

  /** The tiles with these ids, in id order; ids that name no tile are left out. */
  tilesByIds(ids: readonly number[]): Promise<TileRecord[]> {
    return this.engine.query<TileRecord>(`select ${tileColumns} from tiles where id = any($1::bigint[]) order by id`, [ids]);
  }

  tilesOfRaster(rasterId: number): Promise<TileRecord[]> {
    return this.engine.query<TileRecord>(`select ${tileColumns} from tiles where raster_id = $1 order by id`, [rasterId]);
  }

  /** A raster's tile ids in order, for splitting its embedding into blocks. */
  async tileIdsOfRaster(rasterId: number): Promise<number[]> {
    return (await this.engine.query<{ id: number }>('select id from tiles where raster_id = $1 order by id', [rasterId])).map((r) => r.id);
  }

  /** A raster's tiles with ids in [firstId, lastId]: one queued block of embedding work. */
  tilesOfRasterInRange(rasterId: number, firstId: number, lastId: number): Promise<TileRecord[]> {
    return this.engine.query<TileRecord>(`select ${tileColumns} from tiles where raster_id = $1 and id between $2 and $3 order by id`, [rasterId, firstId, lastId]);
  }

  /** Tiles overlapping `bbox` (all tiles when it is absent), in id order after `afterId`, for keyset paging. */
  tilesInBbox(bbox: BBox | undefined, opts: { limit: number; afterId?: number }): Promise<TileRecord[]> {
    const params: unknown[] = [opts.afterId ?? 0, opts.limit];
    const where = bbox ? `and ${bboxOverlaps(3)}` : '';
    if (bbox) params.push(...bbox);
    return this.engine.query<TileRecord>(`select ${tileColumns} from tiles where id > $1 ${where} order by id limit $2`, params);
  }

  /** The tiles of the same pixel window on each of `rasterIds` (co-registered dates of one place), in raster id order. */
  tilesAtWindow(rasterIds: number[], win: { x: number; y: number; size: number }): Promise<TileRecord[]> {
    return this.engine.query<TileRecord>(
      `select ${tileColumns} from tiles where raster_id = any($1::bigint[]) and x = $2 and y = $3 and size = $4 order by raster_id`,
      [rasterIds, win.x, win.y, win.size],
    );
  }

  /**
   * The windows whose embeddings moved most between two co-registered rasters: the `to` raster's tiles, each with
   * the same window's tile on `from` and the L2 distance between their vectors, largest first. Exact: a join of
   * the two dates' vectors, optionally within a bbox.
   */
  windowChanges(model: Pick<ModelRecord, 'id' | 'dim'>, from: number, to: number, opts: { k: number; bbox?: BBox }): Promise<(TileRecord & { fromTileId: number; distance: number })[]> {
    const dim = Math.trunc(model.dim);
    const modelId = Math.trunc(model.id);
    const params: unknown[] = [from, to, opts.k];
    let where = 'a.raster_id = $1';
    if (opts.bbox) {
      where += ' and box(point(a.min_lon, a.min_lat), point(a.max_lon, a.max_lat)) && box(point($4, $5), point($6, $7))';
      params.push(...opts.bbox);
    }
    return this.engine.query<TileRecord & { fromTileId: number; distance: number }>(
      `select ${tileColumns}, c.from_id as "fromTileId", c.distance from tiles join (
         select b.id as to_id, a.id as from_id, (ea.embedding::vector(${dim}) <-> eb.embedding::vector(${dim}))::float8 as distance
         from tiles a join tiles b on b.raster_id = $2 and b.x = a.x and b.y = a.y and b.size = a.size
         join embeddings ea on ea.model_id = ${modelId} and ea.tile_id = a.id
         join embeddings eb on eb.model_id = ${modelId} and eb.tile_id = b.id
         where ${where}
         order by distance desc limit $3) c on tiles.id = c.to_id
       order by c.distance desc, tiles.id`,
      params,
    ).then((rows) => rows.map((r) => ({ ...r, fromTileId: Number(r.fromTileId) })));
  }

  /** Tiles whose bbox contains the point; callers that need exact footprint containment refine with turf. */
  tilesAt(lon: number, lat: number): Promise<TileRecord[]> {
    return this.engine.query<TileRecord>(`select ${tileColumns} from tiles where ${bboxOverlaps(1)} order by id`, [lon, lat, lon, lat]);
  }

  // ---- models ----

  async registerModel(model: NewModel): Promise<ModelRecord> {
    const rows = await this.engine.query<ModelRecord>(
      `insert into models (name, backbone, dim, bands, tile_size, normalization, metrics, artifact_path)
       values ($1, $2, $3, $4, $5, $6, $7, $8)
       on conflict (name) do update set backbone = excluded.backbone, dim = excluded.dim, bands = excluded.bands,
         tile_size = excluded.tile_size, normalization = excluded.normalization, metrics = excluded.metrics,
         artifact_path = excluded.artifact_path, created_at = now()
       returning ${modelColumns}`,
      [model.name, JSON.stringify(model.backbone), model.dim, model.bands, model.tileSize,
        JSON.stringify(model.normalization), JSON.stringify(model.metrics), storedModelPath(model.artifactPath, this.modelsDir)],
    );
    return this.located(rows)[0];
  }

  async listModels(): Promise<ModelRecord[]> {
    return this.located(await this.engine.query<ModelRecord>(`select ${modelColumns} from models order by created_at desc, id desc`));
  }

  /** Models with their recorded directories resolved against this store's models directory. */
  private located(rows: ModelRecord[]): ModelRecord[] {
    return rows.map((m) => ({ ...m, artifactPath: modelDirOf(m.artifactPath, this.modelsDir) }));
  }

  /** A model by name, or the latest one when no name is given. */
  async model(name?: string): Promise<ModelRecord> {
    const rows = name
      ? await this.engine.query<ModelRecord>(`select ${modelColumns} from models where name = $1`, [name])
      : await this.engine.query<ModelRecord>(`select ${modelColumns} from models order by created_at desc, id desc limit 1`);
    if (!rows[0]) throw new NotFoundError(name ? `model '${name}' does not exist (see tilevec models)` : 'no model is registered yet; run tilevec train first');
    return this.located(rows)[0];
  }

  /** Removes a model with its vectors and its index. */
  async removeModel(name: string): Promise<void> {
    const model = await this.model(name);
    await this.engine.transaction(async (tx) => {
      await tx.query(`drop index if exists ${embeddingIndexName(model.id)}`);
      await tx.query('delete from models where id = $1', [model.id]);
    });
  }

  // ---- embeddings ----

  /** Inserts or replaces vectors keyed by (model, tile), so a rerun never duplicates a row. */
  async upsertEmbeddings(model: Pick<ModelRecord, 'id' | 'dim'>, rows: { tileId: number; vector: ArrayLike<number> }[]): Promise<void> {
    for (const r of rows) {
      if (r.vector.length !== model.dim) throw new UserError(`embedding for tile ${r.tileId} has ${r.vector.length} dimensions; the model has ${model.dim}`);
    }
    for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
      const chunk = rows.slice(i, i + INSERT_CHUNK);
      await this.engine.query(
        `insert into embeddings (model_id, tile_id, embedding)
         select $1, t, v::vector from unnest($2::bigint[], $3::text[]) as u(t, v)
         on conflict (model_id, tile_id) do update set embedding = excluded.embedding`,
        [model.id, chunk.map((r) => r.tileId), chunk.map((r) => vectorLiteral(r.vector))],
      );
    }
  }

  /**
   * Builds the model's HNSW index if it is missing (pgvector keeps it current on later upserts), then refreshes the
   * planner's statistics: with counts from before a model's vectors arrived, the planner can judge its partial index
   * not worth using and fall back to sorting every vector.
   */
  async ensureEmbeddingIndex(model: Pick<ModelRecord, 'id' | 'dim' | 'vectorType'>, opts: { m?: number; efConstruction?: number } = {}): Promise<void> {
    const m = Math.trunc(opts.m ?? 16);
    const ef = Math.trunc(opts.efConstruction ?? 64);
    const type = vectorType(model);
    await this.engine.transaction(async (tx) => {
      // Queue workers that finish a model's last units together both build; the second waits, then finds the index.
      await tx.query('select pg_advisory_xact_lock($1::int, $2::int)', [INDEX_BUILD_LOCK, model.id]);
      // DDL cannot take parameters; every interpolated value here is an integer checked above or by the schema.
      await tx.query(
        `create index if not exists ${embeddingIndexName(model.id)} on embeddings
         using hnsw ((embedding::${type}(${Math.trunc(model.dim)})) ${type}_l2_ops) with (m = ${m}, ef_construction = ${ef})
         where model_id = ${Math.trunc(model.id)}`,
      );
    });
    await this.engine.exec('analyze embeddings');
  }

  /**
   * Sets how the model's HNSW index holds its vectors. An index of the other type is dropped, so that the next
   * ensureEmbeddingIndex builds the new one; the vectors themselves are untouched.
   */
  async setVectorType(model: Pick<ModelRecord, 'id' | 'name' | 'vectorType'>, type: VectorType): Promise<ModelRecord> {
    if (!VECTOR_TYPES.includes(type)) throw new UserError(`vector type must be one of ${VECTOR_TYPES.join(', ')}, got '${type}'`);
    if (type !== model.vectorType) {
      await this.engine.transaction(async (tx) => {
        await tx.query(`drop index if exists ${embeddingIndexName(model.id)}`);
        await tx.query('update models set vector_type = $2 where id = $1', [model.id, type]);
      });
    }
    return this.model(model.name);
  }

  /** Drops the model's HNSW index before a big load (ensureEmbeddingIndex builds it again); true if there was one. */
  async dropEmbeddingIndex(model: Pick<ModelRecord, 'id'>): Promise<boolean> {
    const [row] = await this.engine.query<{ n: number }>(`select count(*)::int as n from pg_indexes where indexname = $1`, [embeddingIndexName(model.id)]);
    if (row.n === 0) return false;
    await this.engine.exec(`drop index if exists ${embeddingIndexName(model.id)}`);
    return true;
  }

  async embedding(modelId: number, tileId: number): Promise<Float32Array> {
    const rows = await this.engine.query<{ v: string }>('select embedding::text as v from embeddings where model_id = $1 and tile_id = $2', [modelId, tileId]);
    if (!rows[0]) throw new NotFoundError(`tile ${tileId} has no embedding for model ${modelId}`);
    return parseVector(rows[0].v);
  }

  /** A model's vectors by tile id: all of them, or those of `tileIds` (tiles without one are absent). */
  async embeddingsOf(modelId: number, tileIds?: number[]): Promise<Map<number, Float32Array>> {
    const rows = tileIds
      ? await this.engine.query<{ t: number; v: string }>('select tile_id as t, embedding::text as v from embeddings where model_id = $1 and tile_id = any($2::bigint[])', [modelId, tileIds])
      : await this.engine.query<{ t: number; v: string }>('select tile_id as t, embedding::text as v from embeddings where model_id = $1', [modelId]);
    return new Map(rows.map((r) => [Number(r.t), parseVector(r.v)]));
  }

  async embeddedTileIds(modelId: number): Promise<Set<number>> {
    const rows = await this.engine.query<{ t: number }>('select tile_id as t from embeddings where model_id = $1', [modelId]);
    return new Set(rows.map((r) => r.t));
  }

  /**
   * The k tiles nearest by Euclidean distance through the model's HNSW index, to a vector or to a stored tile's own
   * vector (that tile itself left out), optionally limited to a bbox and excluding tiles or the query's raster;
   * whole tiles with `distance`, in one statement (after a bbox's tile estimate). Iterative index scans keep
   * filtered queries from coming back short. The search is exact when asked, when k is past the index's reach, and
   * when the bbox overlaps about PREFILTER_TILES tiles or fewer. A tile query with no vector for the model finds
   * nothing.
   */
  async nearestTiles(
    model: Pick<ModelRecord, 'id' | 'dim' | 'vectorType'>,
    query: { vector: ArrayLike<number> } | { tileId: number },
    opts: { k: number; bbox?: BBox; excludeTileIds?: number[]; excludeQueryRaster?: boolean; exact?: boolean },
  ): Promise<(TileRecord & { distance: number })[]> {
    const dim = Math.trunc(model.dim);
    // The model id is written into the text, not bound: a prepared statement's generic plan can then still match the
    // model's partial HNSW index (a bound $n could be any model). Both are integers, so nothing is interpolated raw.
    const modelId = Math.trunc(model.id);
    const byTile = 'tileId' in query;
    if (!byTile && query.vector.length !== model.dim) throw new UserError(`query vector has ${query.vector.length} dimensions; the model has ${model.dim}`);
    const excludeTileIds = [...(opts.excludeTileIds ?? []), ...(byTile ? [query.tileId] : [])];
    const rows = opts.k + excludeTileIds.length;
    const inBbox = opts.bbox === undefined ? Infinity : await this.estimateTilesIn(opts.bbox);
    const exact = opts.exact || rows > MAX_EF_SEARCH || inBbox <= PREFILTER_TILES;
    // A scalar subquery keeps the HNSW index usable (pgvector's "neighbours of a row" form). The index orders by
    // its own type; the distance returned, and an exact search's order, are the exact float32 ones.
    const type = vectorType(model);
    const queryAs = (t: VectorType) => (byTile ? `(select embedding::${t}(${dim}) from embeddings where model_id = ${modelId} and tile_id = $1)` : `$1::${t}(${dim})`);
    const target = queryAs('vector');
    const params: unknown[] = [byTile ? query.tileId : vectorLiteral(query.vector), opts.k, excludeTileIds];
    // A tile without a vector must find nothing, not every row at a null distance.
    let where = `e.model_id = ${modelId} and not (e.tile_id = any($3::bigint[]))${byTile ? ` and ${target} is not null` : ''}`;
    if (byTile && opts.excludeQueryRaster) where += ' and t.raster_id <> (select raster_id from tiles where id = $1)';
    if (opts.bbox) {
      where += ` and ${bboxOverlaps(4)}`;
      params.push(...opts.bbox);
    }
    const from = `from embeddings e join tiles t on t.id = e.tile_id where ${where}`;
    const distance = `(e.embedding::vector(${dim}) <-> ${target})::float8 as distance`;
    type Found = TileRecord & { distance: number };
    if (exact) {
      // The sort carries only ids and distances; the k winners' tiles are read after it.
      const search = (db: Sql) => db.query<Found>(
        `select ${tileColumns}, n.distance from (select e.tile_id, ${distance} ${from} order by ${exactDistance(dim, target)} limit $2) n
         join tiles on tiles.id = n.tile_id order by n.distance`,
        params,
        { prepare: true },
      );
      if (inBbox > SERIAL_PREFILTER_TILES) return search(this.engine);
      return this.engine.transaction(async (tx) => {
        await tx.query(`select set_config('max_parallel_workers_per_gather', '0', true)`, [], { prepare: true });
        return search(tx);
      });
    }
    const sql = exactOrder(type, `select ${tileColumns}, ${distance} ${from} order by e.embedding::${type}(${dim}) <-> ${queryAs(type)} limit $2`);
    return this.searchIndex(rows, !!(opts.bbox || opts.excludeQueryRaster), (db) => db.query<Found>(sql, params, { prepare: true }));
  }

  /**
   * About how many tiles overlap the bbox, without counting them (a count costs as much as the search it would
   * choose): each raster's tile count times the share of its tiles' extent that the bbox covers, as if its tiles
   * were spread evenly over that extent, which a raster's tile grid is.
   */
  async estimateTilesIn(bbox: BBox): Promise<number> {
    const [{ n }] = await this.engine.query<{ n: number }>(
      `select coalesce(sum(tile_count
          * greatest(0, least(tiles_max_lon, $3) - greatest(tiles_min_lon, $1)) / nullif(tiles_max_lon - tiles_min_lon, 0)
          * greatest(0, least(tiles_max_lat, $4) - greatest(tiles_min_lat, $2)) / nullif(tiles_max_lat - tiles_min_lat, 0)), 0)::float8 as n
       from rasters where tiles_min_lon <= $3 and tiles_max_lon >= $1 and tiles_min_lat <= $4 and tiles_max_lat >= $2`,
      [...bbox],
      { prepare: true },
    );
    return n;
  }

  /**
   * The embedding distance from one tile's vector to each of `tileIds` under the model, by tile id; tiles without a
   * vector for the model are absent, and so is everything when the query tile has none.
   */
  async distancesFrom(model: Pick<ModelRecord, 'id' | 'dim'>, fromTileId: number, tileIds: readonly number[]): Promise<Map<number, number>> {
    const dim = Math.trunc(model.dim);
    const rows = await this.engine.query<{ id: number; distance: number }>(
      `select e.tile_id as id, (e.embedding::vector(${dim}) <-> q.embedding::vector(${dim}))::float8 as distance
       from embeddings e, embeddings q
       where e.model_id = $1 and q.model_id = $1 and q.tile_id = $2 and e.tile_id = any($3::bigint[])`,
      [model.id, fromTileId, tileIds],
    );
    return new Map(rows.map((r) => [Number(r.id), r.distance]));
  }

  /** How many of the model's vectors a filter keeps: tiles in `bbox`, optionally not on `notRasterOfTile`'s raster. */
  async countEmbedded(model: Pick<ModelRecord, 'id'>, opts: { bbox?: BBox; notRasterOfTile?: number }): Promise<number> {
    const params: unknown[] = [];
    let where = `e.model_id = ${Math.trunc(model.id)}`;
    if (opts.notRasterOfTile !== undefined) {
      params.push(opts.notRasterOfTile);
      where += ' and t.raster_id <> (select raster_id from tiles where id = $1)';
    }
    if (opts.bbox) {
      where += ` and ${bboxOverlaps(params.length + 1)}`;
      params.push(...opts.bbox);
    }
    const [{ n }] = await this.engine.query<{ n: number }>(`select count(*)::int as n from embeddings e join tiles t on t.id = e.tile_id where ${where}`, params);
    return n;
  }

  /**
   * The k tiles with the highest linear score w·x over the model's vectors (pgvector's negative inner product),
   * optionally within a bbox and leaving out tiles. Exact: a scan of the model's vectors, as no index orders by an
   * arbitrary direction; with `dot` the inner product of each.
   */
  async topByInnerProduct(
    model: Pick<ModelRecord, 'id' | 'dim'>,
    weights: ArrayLike<number>,
    opts: { k: number; bbox?: BBox; excludeTileIds?: number[] },
  ): Promise<(TileRecord & { dot: number })[]> {
    const dim = Math.trunc(model.dim);
    if (weights.length !== model.dim) throw new UserError(`weight vector has ${weights.length} dimensions; the model has ${model.dim}`);
    const params: unknown[] = [vectorLiteral(weights), opts.k, opts.excludeTileIds ?? []];
    let where = `e.model_id = ${Math.trunc(model.id)} and not (e.tile_id = any($3::bigint[]))`;
    if (opts.bbox) {
      where += ` and ${bboxOverlaps(4)}`;
      params.push(...opts.bbox);
    }
    return this.engine.query<TileRecord & { dot: number }>(
      `select ${tileColumns}, (-(e.embedding::vector(${dim}) <#> $1::vector(${dim})))::float8 as dot
       from embeddings e join tiles t on t.id = e.tile_id where ${where}
       order by e.embedding::vector(${dim}) <#> $1::vector(${dim}) limit $2`,
      params,
    );
  }

  /**
   * Runs an HNSW search that must yield `rows` candidates per query, at most pgvector's ef_search ceiling. With no
   * filter and at most pgvector's default ef_search (40) of them, the plain statement suffices, so the common query
   * skips the settings transaction and its extra round trips. Otherwise ef_search is raised, and iterative scans keep
   * filtered queries whole.
   */
  private searchIndex<T>(rows: number, filtered: boolean, run: (sql: Sql) => Promise<T>): Promise<T> {
    if (!filtered && rows <= 40) return run(this.engine);
    return this.engine.transaction(async (tx) => {
      await tx.query(`select set_config('hnsw.ef_search', $1, true), set_config('hnsw.iterative_scan', 'strict_order', true)`, [String(Math.max(40, rows))], { prepare: true });
      return run(tx);
    });
  }

  /**
   * For each of several stored tiles, its k nearest tiles (itself left out), in one statement: what many concurrent
   * similarity requests cost as one round trip and one wake-up of the server instead of one each. The answers
   * equal `nearestTiles` per tile without filters; a tile without a vector gets an empty list.
   */
  async nearestTilesOfEach(model: Pick<ModelRecord, 'id' | 'dim' | 'vectorType'>, tileIds: number[], k: number): Promise<(TileRecord & { distance: number })[][]> {
    const dim = Math.trunc(model.dim);
    const modelId = Math.trunc(model.id);
    const type = vectorType(model);
    const queryAs = (t: VectorType) => `(select embedding::${t}(${dim}) from embeddings where model_id = ${modelId} and tile_id = q.tile_id)`;
    const target = queryAs('vector');
    // Past the index's reach each tile's neighbours are sorted exactly.
    const exact = k + 1 > MAX_EF_SEARCH;
    const order = exact ? exactDistance(dim, target) : `e.embedding::${type}(${dim}) <-> ${queryAs(type)}`;
    // The outer order re-sorts each tile's neighbours by their exact distance, whatever order the index gave.
    const sql = `select q.ord::int as ord, n.* from unnest($1::bigint[]) with ordinality as q(tile_id, ord) cross join lateral (
        select ${tileColumns}, (e.embedding::vector(${dim}) <-> ${target})::float8 as distance
        from embeddings e join tiles t on t.id = e.tile_id
        where e.model_id = ${modelId} and e.tile_id <> q.tile_id and ${target} is not null
        order by ${order} limit $2) n
      order by q.ord, n.distance`;
    type Row = TileRecord & { distance: number; ord: number };
    const rows = exact ? await this.engine.query<Row>(sql, [tileIds, k]) : await this.searchIndex(k + 1, false, (db) => db.query<Row>(sql, [tileIds, k], { prepare: true }));
    const out: (TileRecord & { distance: number })[][] = tileIds.map(() => []);
    for (const { ord, ...row } of rows) out[ord - 1].push(row);
    return out;
  }

  // ---- label sets ----

  /** Writes a label set and its labels in one transaction, replacing any set of the same name. */
  async replaceLabelSet(set: NewLabelSet, labels: LabelRecord[]): Promise<LabelSetRecord> {
    return this.engine.transaction(async (tx) => {
      await tx.query('delete from label_sets where name = $1', [set.name]);
      const [row] = await tx.query<LabelSetRecord>(
        `insert into label_sets (name, source, classes) values ($1, $2, $3) returning ${labelSetColumns}`,
        [set.name, set.source, JSON.stringify(set.classes)],
      );
      for (let i = 0; i < labels.length; i += INSERT_CHUNK) {
        const chunk = labels.slice(i, i + INSERT_CHUNK);
        await tx.query(
          `insert into labels (label_set_id, tile_id, class_id, purity)
           select $1, * from unnest($2::bigint[], $3::int[], $4::real[])`,
          [row.id, chunk.map((l) => l.tileId), chunk.map((l) => l.classId), chunk.map((l) => l.purity)],
        );
      }
      return row;
    });
  }

  async labelSet(name: string): Promise<LabelSetRecord> {
    const row = (await this.engine.query<LabelSetRecord>(`select ${labelSetColumns} from label_sets where name = $1`, [name]))[0];
    if (!row) throw new NotFoundError(`label set '${name}' does not exist (import one with tilevec labels import)`);
    return row;
  }

  listLabelSets(): Promise<LabelSetRecord[]> {
    return this.engine.query<LabelSetRecord>(`select ${labelSetColumns} from label_sets order by id`);
  }

  /** The labels of a set, in tile id order. */
  async labelsOf(labelSetId: number): Promise<LabelRecord[]> {
    const rows = await this.engine.query<LabelRecord>(
      `select tile_id as "tileId", class_id as "classId", purity from labels where label_set_id = $1 order by tile_id`,
      [labelSetId],
    );
    return rows.map((r) => ({ tileId: Number(r.tileId), classId: r.classId, purity: r.purity }));
  }
}

/** The model's index type, checked before it is written into SQL. */
function vectorType(model: Pick<ModelRecord, 'vectorType'>): VectorType {
  if (!VECTOR_TYPES.includes(model.vectorType)) throw new Error(`unknown vector type '${model.vectorType}'`);
  return model.vectorType;
}

/**
 * The order of an exact search: the float32 distance to `target`, plus 0 so that it is no longer the expression the
 * HNSW index orders by. The planner then reads the filter's rows (through the bbox index where there is one) and
 * sorts them, instead of an index scan that a filter or a large k would cut short.
 */
function exactDistance(dim: number, target: string): string {
  return `(e.embedding::vector(${dim}) <-> ${target}) + 0`;
}

/**
 * An index search's statement: `inner` orders by the index's own distance; a halfvec index's float16 order is then
 * re-sorted by the exact float32 distance the rows carry, so answers come back in exact order either way.
 */
function exactOrder(type: VectorType, inner: string): string {
  return type === 'vector' ? inner : `select * from (${inner}) r order by distance`;
}

export function embeddingIndexName(modelId: number): string {
  return `embeddings_hnsw_model_${Math.trunc(modelId)}`;
}

async function insertTiles(sql: Sql, rasterId: number, tiles: NewTile[]): Promise<void> {
  if (tiles.length === 0) return;
  const col = <T>(f: (t: NewTile) => T) => tiles.map(f);
  await sql.query(
    `insert into tiles (raster_id, x, y, size, footprint, center_lon, center_lat, min_lon, min_lat, max_lon, max_lat, valid_fraction)
     select $1, * from unnest($2::int[], $3::int[], $4::int[], $5::jsonb[], $6::float8[], $7::float8[], $8::float8[], $9::float8[],
       $10::float8[], $11::float8[], $12::real[])`,
    [rasterId, col((t) => t.x), col((t) => t.y), col((t) => t.size), col((t) => JSON.stringify(t.footprint)),
      col((t) => t.centerLon), col((t) => t.centerLat), col((t) => t.bbox[0]), col((t) => t.bbox[1]),
      col((t) => t.bbox[2]), col((t) => t.bbox[3]), col((t) => t.validFraction)],
  );
}
