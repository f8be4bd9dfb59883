-- The catalog, the models and their vectors. Runs unchanged on PGlite and on PostgreSQL 15+ with pgvector.
create extension if not exists vector;

create table rasters (
  id            bigserial primary key,
  uri           text not null unique,
  content_hash  text not null,
  size_bytes    bigint not null,
  width         integer not null check (width > 0),
  height        integer not null check (height > 0),
  band_count    integer not null check (band_count > 0),
  dtype         text not null,
  nodata        double precision,
  epsg          integer,
  crs_def       text,
  -- GDAL order: x0, pixel width, row rotation, y0, column rotation, pixel height (negative for north-up).
  geotransform  double precision[] not null check (cardinality(geotransform) = 6),
  georeferenced boolean not null default true,
  footprint     jsonb not null,
  band_stats    jsonb not null,
  tile_size     integer not null check (tile_size > 0),
  stride        integer not null check (stride > 0),
  ingested_at   timestamptz not null default now()
);

create table tiles (
  id             bigserial primary key,
  raster_id      bigint not null references rasters(id) on delete cascade,
  x              integer not null,
  y              integer not null,
  size           integer not null check (size > 0),
  footprint      jsonb not null,
  center_lon     double precision not null,
  center_lat     double precision not null,
  min_lon        double precision not null,
  min_lat        double precision not null,
  max_lon        double precision not null,
  max_lat        double precision not null,
  valid_fraction real not null check (valid_fraction between 0 and 1),
  unique (raster_id, x, y, size)
);
-- A GiST index over the bbox as a core `box`, so bbox filters are indexed without PostGIS on both engines.
create index tiles_bbox_idx on tiles using gist (box(point(min_lon, min_lat), point(max_lon, max_lat)));

create table models (
  id            bigserial primary key,
  name          text not null unique,
  backbone      jsonb not null,
  dim           integer not null check (dim between 1 and 2000),
  bands         integer[] not null,
  tile_size     integer not null check (tile_size > 0),
  normalization jsonb not null,
  metrics       jsonb not null default '{}',
  artifact_path text not null,
  created_at    timestamptz not null default now()
);

-- One row per (model, tile). The column has no fixed dimension so models of any width coexist; each model gets
-- its own partial HNSW index over `embedding::vector(dim)` (see the store's ensureEmbeddingIndex).
create table embeddings (
  model_id  bigint not null references models(id) on delete cascade,
  tile_id   bigint not null references tiles(id) on delete cascade,
  embedding vector not null,
  primary key (model_id, tile_id)
);
create index embeddings_tile_idx on embeddings (tile_id);

create table label_sets (
  id         bigserial primary key,
  name       text not null unique,
  source     text not null,
  classes    jsonb not null,
  created_at timestamptz not null default now()
);

create table labels (
  label_set_id bigint not null references label_sets(id) on delete cascade,
  tile_id      bigint not null references tiles(id) on delete cascade,
  class_id     integer not null,
  purity       real not null check (purity between 0 and 1),
  primary key (label_set_id, tile_id)
);

-- Resumable units of work: a key names the unit, so rerunning the same work finds what is already done.
create table jobs (
  id         bigserial primary key,
  kind       text not null,
  key        text not null unique,
  status     text not null check (status in ('queued', 'running', 'done', 'failed')),
  params     jsonb not null default '{}',
  progress   jsonb not null default '{}',
  error      text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
