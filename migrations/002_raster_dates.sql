-- When each raster was acquired (from GDAL metadata, the file name or the TIFF DateTime tag), and where that was read.
alter table rasters add column if not exists acquired_on date;
alter table rasters add column if not exists acquired_from text check (acquired_from in ('gdal-metadata', 'file-name', 'tiff-datetime'));
-- The timeline and change queries find a window's tile on another date by its raster and pixel window.
create index if not exists tiles_window_idx on tiles (x, y, size);
