/**
 * The ingest stage: GeoTIFF / COG rasters from files or HTTP(S) into a georeferenced tile catalog, and the raster
 * access later stages share (windowed reads with a block cache, georeferencing, footprints, tile rendering).
 */
export { ingest, type IngestOptions, type IngestProgress, type IngestSummary, type RasterOutcome } from './ingest.ts';
export {
  openRaster, openStoredRaster, Raster, newSampleArray,
  type Dtype, type PixelWindow, type RasterInfo, type RasterOptions, type SampleArray, type WindowData,
} from './raster.ts';
export { interleave } from './interleave.ts';
export { crsFromEpsg, crsFromGeoKeys, toWgs84, WGS84, type Crs } from './crs.ts';
export { applyGeotransform, crsToPixel, geotransformFromTags, polygonBbox, signedArea, windowFootprint, PIXEL_SPACE, type Geotransform } from './georef.ts';
export { tileGrid, gridWindow, tileResolutionGeotransform, type TileGrid } from './grid.ts';
export { BandStatsAccumulator } from './stats.ts';
export { renderWindowPng, encodePng, stretchRanges, defaultRenderBands, type RenderOptions } from './render.ts';
export { acquisitionDate, dateFromFileName, type AcquisitionDate } from './acquisition-date.ts';
export { DecodePool, sharedDecodePool } from './decode-pool.ts';
export { openSource, canonicalUri, hostAllowed, type ByteSource, type SourceOptions } from './source.ts';
export { expandInputs } from './inputs.ts';
export { encodeGeoTiff, type GeoTiffImage } from './write-geotiff.ts';
