import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { UserError } from '../errors.ts';
import type { RasterRecord, Store } from '../store/index.ts';
import { classMapGeoJson, classMapRaster, writeClassGeoTiff } from './class-map.ts';
import { classifierModel, classifyTiles } from './classify-tiles.ts';
import type { SavedClassifier } from './saved-classifier.ts';

/** An ingested raster by id, URI, file URL or path. */
export async function resolveRaster(store: Store, ref: string): Promise<RasterRecord> {
  if (/^\d+$/.test(ref)) return store.raster(Number(ref));
  for (const uri of [ref, pathToFileURL(resolve(ref)).href, resolve(ref)]) {
    const r = await store.rasterByUri(uri);
    if (r) return r;
  }
  throw new UserError(`raster '${ref}' is not ingested (see tilevec db status; ingest it first)`);
}

/**
 * Classifies a raster's embedded tiles with a saved classifier and writes the class map to `out`: a GeoTIFF at
 * tile resolution (.tif) or tile footprints as GeoJSON (.geojson). `model`, when given, must be the classifier's.
 */
export async function predictClassMap(store: Store, saved: SavedClassifier, opts: { raster: string; out: string; model?: string }): Promise<{ out: string; raster: string; tiles: number; classified: number }> {
  const out = resolve(opts.out);
  const format = /\.tiff?$/i.test(out) ? 'geotiff' : /\.(geo)?json$/i.test(out) ? 'geojson' : null;
  const model = await classifierModel(store, saved, opts.model);
  const raster = await resolveRaster(store, opts.raster);
  if (!format) throw new UserError(`--out must end in .tif or .geojson, got ${opts.out}`);
  const tiles = await store.tilesOfRaster(raster.id);
  const have = await store.embeddedTileIds(model.id);
  const embedded = tiles.filter((t) => have.has(t.id));
  if (embedded.length === 0) throw new UserError(`no tile of this raster has an embedding for model '${model.name}'; run tilevec embed first`);
  const predictions = await classifyTiles(store, saved, { tileIds: embedded.map((t) => t.id) });
  if (format === 'geotiff') writeClassGeoTiff(out, classMapRaster(raster, tiles, predictions, saved.metadata.classes));
  else writeFileSync(out, JSON.stringify(classMapGeoJson(tiles, predictions)));
  return { out, raster: raster.uri, tiles: tiles.length, classified: predictions.length };
}
