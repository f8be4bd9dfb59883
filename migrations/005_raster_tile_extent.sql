-- Each raster's tile count and the lon/lat extent of its tiles, written with the tiles: from them the store
-- estimates how many tiles a bbox overlaps without counting them, to choose between an exact search of those tiles
-- and an HNSW scan.
alter table rasters add column if not exists tile_count integer not null default 0 check (tile_count >= 0);
alter table rasters add column if not exists tiles_min_lon double precision;
alter table rasters add column if not exists tiles_min_lat double precision;
alter table rasters add column if not exists tiles_max_lon double precision;
alter table rasters add column if not exists tiles_max_lat double precision;
update rasters r set tile_count = s.n, tiles_min_lon = s.min_lon, tiles_min_lat = s.min_lat, tiles_max_lon = s.max_lon, tiles_max_lat = s.max_lat
from (select raster_id, count(*)::int as n, min(min_lon) as min_lon, min(min_lat) as min_lat, max(max_lon) as max_lon, max(max_lat) as max_lat
      from tiles group by raster_id) s
where s.raster_id = r.id;
