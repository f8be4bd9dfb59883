-- A raster can be ingested from one of its overviews (a coarser level of the same file), so a raster is its URI
-- and its level: 0 is full resolution, n the file's n-th largest overview.
alter table rasters add column if not exists overview integer not null default 0 check (overview >= 0);
alter table rasters drop constraint if exists rasters_uri_key;
create unique index if not exists rasters_uri_overview_key on rasters (uri, overview);
