import { extname, resolve } from 'node:path';
import { UserError } from '../errors.ts';
import { openRaster } from '../ingest/index.ts';
import type { LabelSetRecord, Store } from '../store/index.ts';
import { featureClasses } from './feature-classes.ts';
import type { LabelClass, TileLabel } from './labels-types.ts';
import { labelTilesFromRaster } from './raster-labels.ts';
import { readVectorLabels } from './read-vector-labels.ts';
import { labelTilesFromFeatures } from './vector-labels.ts';

export interface ImportLabelsOptions {
  name: string;
  /** Property holding the class, for GeoJSON and shapefiles (default 'class'). */
  classField?: string;
  minPurity?: number;
  /** Least labelled share of a tile's footprint (default 0.5). */
  minCoverage?: number;
  /** Class names by class id (or ids by name, for text class fields): the `--classes` JSON map. */
  classNames?: Record<string, string>;
}

export interface ImportLabelsResult {
  labelSet: LabelSetRecord;
  labelled: number;
  tiles: number;
  perClass: { id: number; name: string; tiles: number }[];
}

/** Labels the stored tiles from a label raster, GeoJSON or shapefile, and saves them as a label set. */
export async function importLabels(store: Store, path: string, opts: ImportLabelsOptions): Promise<ImportLabelsResult> {
  const rasters = await store.listRasters();
  const sets = await Promise.all(rasters.map(async (raster) => ({ raster, tiles: await store.tilesOfRaster(raster.id) })));
  const allTiles = sets.flatMap((s) => s.tiles);
  if (allTiles.length === 0) throw new UserError('no tiles are ingested yet; run tilevec ingest first');
  const thresholds = { minPurity: opts.minPurity ?? 0.5, minValidFraction: opts.minCoverage ?? 0.5 };
  const names = opts.classNames ?? {};
  let labels: TileLabel[];
  let classes: LabelClass[];
  if (['.tif', '.tiff'].includes(extname(path).toLowerCase())) {
    const raster = await openRaster(path);
    const declared = Object.keys(names).map(Number).filter(Number.isInteger);
    try {
      labels = await labelTilesFromRaster(raster, sets, { ...thresholds, classIds: declared.length ? new Set(declared) : undefined });
    } finally {
      await raster.close();
    }
    classes = [...new Set(labels.map((l) => l.classId))].sort((a, b) => a - b).map((id) => ({ id, name: names[String(id)] ?? `class ${id}` }));
  } else {
    const fc = await readVectorLabels(path);
    const mapping = featureClasses(fc.features, opts.classField ?? 'class', names);
    labels = labelTilesFromFeatures(fc.features, mapping.classOf, allTiles, thresholds);
    classes = mapping.classes;
  }
  if (labels.length === 0) {
    throw new UserError(`no tile reached the purity (${thresholds.minPurity}) and coverage (${thresholds.minValidFraction}) thresholds; lower --min-purity or --min-coverage`);
  }
  const labelSet = await store.replaceLabelSet({ name: opts.name, source: resolve(path), classes }, labels);
  const counts = new Map<number, number>();
  for (const l of labels) counts.set(l.classId, (counts.get(l.classId) ?? 0) + 1);
  return { labelSet, labelled: labels.length, tiles: allTiles.length, perClass: classes.map((c) => ({ ...c, tiles: counts.get(c.id) ?? 0 })) };
}
