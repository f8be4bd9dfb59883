import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { UserError } from '../errors.ts';
import type { RasterRecord, Store, TileRecord } from '../store/index.ts';
import {
  CLASSIFIER_KINDS, SPLIT_KINDS, classifiersDir, classMapGeoJson, classMapRaster, classifierModel, classifyTiles, confusionMatrixPng,
  coRegisteredRasters, createClassifier, crossValidate, embeddingFeatures, embeddingMapPng, evaluateFeatureSets, evaluateTemporal, evaluationFeatureSets, formatEvaluation, formatTemporal,
  importLabels, loadClassifier, saveClassifier, tilePixelReader, writeClassGeoTiff, type ClassifierKind, type CrossValidationResult,
  type LabelClass, type SplitKind,
} from '../classify/index.ts';
import { configFrom, emit, globalOptions, intListOption, intOption, withStore } from './context.ts';

function numberOption(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a number in [${min}, ${max}], got '${value}'`);
    return n;
  };
}

function classesOption(value: string): Record<string, string> {
  try {
    const map = JSON.parse(value);
    if (map && typeof map === 'object' && !Array.isArray(map)) return Object.fromEntries(Object.entries(map).map(([k, v]) => [k, String(v)]));
  } catch {
    // reported below
  }
  throw new InvalidArgumentError(`--classes must be a JSON object mapping class ids to names, like '{"1":"water","2":"forest"}'`);
}

function classifierList(value: string): ClassifierKind[] {
  const kinds = value.split(',').map((k) => k.trim());
  const unknown = kinds.filter((k) => !CLASSIFIER_KINDS.includes(k as ClassifierKind));
  if (unknown.length || kinds.length === 0) throw new InvalidArgumentError(`--classifiers takes ${CLASSIFIER_KINDS.join(', ')}; got '${value}'`);
  return kinds as ClassifierKind[];
}

/** Labelled tiles of a label set, in tile id order, with their class ids. */
async function labelledTiles(store: Store, labelSetName: string) {
  const labelSet = await store.labelSet(labelSetName);
  const labels = await store.labelsOf(labelSet.id);
  const byId = new Map<number, TileRecord>();
  for (const raster of await store.listRasters()) for (const t of await store.tilesOfRaster(raster.id)) byId.set(t.id, t);
  const kept = labels.filter((l) => byId.has(l.tileId));
  return { labelSet, tiles: kept.map((l) => byId.get(l.tileId)!), classIds: kept.map((l) => l.classId) };
}

function formatCv(r: CrossValidationResult, classes: LabelClass[]): string {
  return `${r.split.padEnd(8)} ${r.classifier.padEnd(7)} ${r.folds}-fold  accuracy ${r.accuracy.toFixed(3)}  macro-F1 ${r.macroF1.toFixed(3)}` +
    (r.bufferedOut ? `  (${r.bufferedOut} training rows dropped as overlapping test tiles, summed over folds)` : '') +
    '\n' + r.perClass.map((p) => `    ${(classes.find((c) => c.id === p.classId)?.name ?? String(p.classId)).padEnd(22)} precision ${p.precision.toFixed(3)}  recall ${p.recall.toFixed(3)}  n ${p.support}`).join('\n');
}

async function resolveRaster(store: Store, ref: string): Promise<RasterRecord> {
  if (/^\d+$/.test(ref)) return store.raster(Number(ref));
  for (const uri of [ref, pathToFileURL(resolve(ref)).href, resolve(ref)]) {
    const r = await store.rasterByUri(uri);
    if (r) return r;
  }
  throw new UserError(`raster '${ref}' is not ingested (see tilevec db status; ingest it first)`);
}

export function registerClassifyCommands(program: Command): void {
  const labels = program.command('labels').description('label sets: tiles with land-cover classes');
  labels.command('import <source>')
    .description('label the ingested tiles from a label raster (majority class), GeoJSON or shapefile (containment)')
    .requiredOption('--name <name>', 'label set name (an existing set of this name is replaced)')
    .option('--class-field <field>', 'feature property holding the class (GeoJSON, shapefile)', 'class')
    .option('--min-purity <p>', 'least share of the majority class among a tile\'s labelled pixels', numberOption('--min-purity', 0, 1), 0.5)
    .option('--min-coverage <p>', 'least labelled share of a tile\'s footprint', numberOption('--min-coverage', 0, 1), 0.5)
    .option('--classes <json>', 'class names by id, e.g. \'{"1":"water"}\'', classesOption)
    .action(async (source: string, opts, cmd: Command) => {
      const result = await withStore(configFrom(cmd), (store) =>
        importLabels(store, source, { name: opts.name, classField: opts.classField, minPurity: opts.minPurity, minCoverage: opts.minCoverage, classNames: opts.classes }));
      emit(cmd, result, (r) => [
        `label set '${r.labelSet.name}': ${r.labelled} of ${r.tiles} tiles labelled`,
        ...r.perClass.map((c) => `  ${String(c.id).padStart(6)} ${c.name.padEnd(24)} ${c.tiles} tiles`),
      ].join('\n'));
    });

  const classify = program.command('classify').description('land-cover classifiers on embeddings');
  classify.command('train')
    .description('cross-validate a classifier on a model\'s embeddings (random and spatial splits), then fit it on all labels and save it')
    .requiredOption('--labels <name>', 'label set')
    .option('--model <name>', 'embedding model (default: the latest)')
    .addOption(new Option('--classifier <kind>', 'algorithm').choices(CLASSIFIER_KINDS as string[]).default('logreg'))
    .option('--cv <k>', 'cross-validation folds', intOption('--cv', 2), 5)
    .addOption(new Option('--split <kind>', 'split whose confusion matrix is drawn; both are reported').choices(SPLIT_KINDS as string[]).default('spatial'))
    .option('--block-tiles <n>', 'spatial block side in tiles', intOption('--block-tiles', 1), 5)
    .option('--seed <n>', 'seed for folds and forests', intOption('--seed'), 1)
    .option('--out <file.json>', 'where to save the classifier (default <models dir>/../classifiers/<labels>-<model>-<kind>.json, where tilevec serve finds it by name)')
    .action(async (opts, cmd: Command) => {
      const kind = opts.classifier as ClassifierKind;
      const config = configFrom(cmd);
      const result = await withStore(config, async (store) => {
        const model = await store.model(opts.model);
        const { labelSet, tiles, classIds } = await labelledTiles(store, opts.labels);
        if (tiles.length < opts.cv) throw new UserError(`label set '${labelSet.name}' labels only ${tiles.length} tiles; too few for ${opts.cv} folds`);
        const features = await embeddingFeatures(store, model)(tiles);
        const cv = Object.fromEntries(SPLIT_KINDS.map((split) => [split, crossValidate(features, classIds, tiles, { classifier: kind, split, folds: opts.cv, seed: opts.seed, blockTiles: opts.blockTiles })])) as Record<SplitKind, CrossValidationResult>;
        const classifier = createClassifier(kind, { seed: opts.seed }).fit(features, classIds);
        const out = resolve(opts.out ?? join(classifiersDir(config), `${labelSet.name}-${model.name}-${kind}.json`));
        mkdirSync(dirname(out), { recursive: true });
        saveClassifier(out, classifier, { model: { id: model.id, name: model.name }, featureSet: 'embedding', dim: model.dim, classes: labelSet.classes, labelSet: labelSet.name, trainedAt: new Date().toISOString() });
        const base = out.replace(/\.json$/, '');
        const headline = cv[opts.split as SplitKind];
        const files = { classifier: out, confusionJson: `${base}.confusion.json`, confusionPng: `${base}.confusion.png`, embeddingMapPng: `${base}.embedding-map.png` };
        writeFileSync(files.confusionJson, JSON.stringify({ split: headline.split, classes: labelSet.classes, order: headline.classes, confusion: headline.confusion }, null, 2));
        writeFileSync(files.confusionPng, confusionMatrixPng(headline, labelSet.classes, `${kind} on ${model.name}, ${headline.split} ${opts.cv}-fold CV`));
        writeFileSync(files.embeddingMapPng, embeddingMapPng(features, classIds, labelSet.classes, `${model.name} PCA, ${labelSet.name}`));
        return { model: model.name, labels: labelSet.name, classifier: kind, tiles: tiles.length, classes: labelSet.classes, cv, files };
      });
      emit(cmd, result, (r) => [
        `${r.classifier} on '${r.model}' embeddings, label set '${r.labels}' (${r.tiles} tiles)`,
        formatCv(r.cv.random, r.classes),
        formatCv(r.cv.spatial, r.classes),
        'Random splits leak: overlapping and neighbouring tiles land on both sides, so their score is optimistic. Spatial splits keep whole blocks apart; trust those.',
        `saved ${r.files.classifier}`,
        `confusion matrix ${r.files.confusionPng} and .json; embedding map ${r.files.embeddingMapPng}`,
      ].join('\n'));
    });

  classify.command('predict')
    .description('classify a raster\'s tiles with a saved classifier and write a class map (GeoTIFF at tile resolution, or GeoJSON)')
    .requiredOption('--classifier <file.json>', 'saved classifier')
    .requiredOption('--raster <uri|id>', 'ingested raster')
    .requiredOption('--out <map.tif|map.geojson>', 'output file')
    .option('--model <name>', 'model whose embeddings to read (must be the one the classifier was trained on)')
    .action(async (opts, cmd: Command) => {
      const saved = loadClassifier(opts.classifier);
      const result = await withStore(configFrom(cmd), async (store) => {
        await classifierModel(store, saved, opts.model);
        const raster = await resolveRaster(store, opts.raster);
        const tiles = await store.tilesOfRaster(raster.id);
        const predictions = await classifyTiles(store, saved, { tileIds: (await embeddedTiles(store, saved, tiles)).map((t) => t.id) });
        const out = resolve(opts.out);
        if (/\.tiff?$/i.test(out)) writeClassGeoTiff(out, classMapRaster(raster, tiles, predictions, saved.metadata.classes));
        else if (/\.(geo)?json$/i.test(out)) writeFileSync(out, JSON.stringify(classMapGeoJson(tiles, predictions)));
        else throw new UserError(`--out must end in .tif or .geojson, got ${opts.out}`);
        return { out, raster: raster.uri, tiles: tiles.length, classified: predictions.length };
      });
      emit(cmd, result, (r) => `wrote ${r.out}: ${r.classified} of ${r.tiles} tiles of ${r.raster} classified`);
    });

  program.command('evaluate')
    .description('compare features for land cover and search: embeddings vs a random-initialised backbone, band statistics and raw-pixel PCA')
    .option('--labels <name>', 'label set: land-cover accuracy and search precision@10')
    .option('--temporal', 'same place across the dates of co-registered rasters, and temporal analogies (no labels needed)')
    .option('--rasters <ids>', 'with --temporal: the co-registered rasters (default all)', intListOption('--rasters'))
    .option('--queries <n>', 'with --temporal: queries and analogy quadruples drawn', intOption('--queries', 1), 500)
    .option('--model <name>', 'embedding model (default: the latest, when one exists)')
    .option('--dim <n>', 'PCA dimension when no model gives one', intOption('--dim', 1), 64)
    .option('--cv <k>', 'cross-validation folds', intOption('--cv', 2), 5)
    .option('--block-tiles <n>', 'spatial block side in tiles', intOption('--block-tiles', 1), 5)
    .option('--seed <n>', 'seed for folds, forests and queries', intOption('--seed'), 1)
    .option('--classifiers <list>', `comma-separated subset of ${CLASSIFIER_KINDS.join(',')}`, classifierList, [...CLASSIFIER_KINDS])
    .action(async (opts, cmd: Command) => {
      if (Boolean(opts.labels) === Boolean(opts.temporal)) throw new UserError('tilevec evaluate needs --labels <name> or --temporal, one of the two (see tilevec evaluate --help)');
      const json = globalOptions(cmd).json;
      await withStore(configFrom(cmd), async (store) => {
        const model = opts.model ? await store.model(opts.model) : (await store.listModels())[0];
        const read = tilePixelReader((id) => store.raster(id));
        try {
          if (opts.temporal) {
            const rasters = await coRegisteredRasters(store, opts.rasters);
            const tiles = (await Promise.all(rasters.map((r) => store.tilesOfRaster(r.id)))).flat();
            const byId = new Map(rasters.map((r) => [r.id, r]));
            const result = await evaluateTemporal(tiles, await evaluationFeatureSets(store, model, read, model?.dim ?? opts.dim, byId), { queries: opts.queries, seed: opts.seed });
            if (!json) process.stdout.write(`${formatTemporal(result)}\n`);
            process.stdout.write(`${JSON.stringify(result)}\n`);
            return;
          }
          const { tiles, classIds } = await labelledTiles(store, opts.labels);
          const sets = await evaluationFeatureSets(store, model, read, model?.dim ?? opts.dim);
          const result = await evaluateFeatureSets(tiles, classIds, sets, { classifiers: opts.classifiers, splits: [...SPLIT_KINDS], folds: opts.cv, seed: opts.seed, blockTiles: opts.blockTiles });
          if (!json) process.stdout.write(`${formatEvaluation(result)}\n`);
          process.stdout.write(`${JSON.stringify({ accuracy: result.accuracy, search: result.search, tiles: result.tiles, skipped: result.skipped })}\n`);
        } finally {
          await read.close();
        }
      });
    });
}

/** The raster's tiles that have an embedding for the classifier's model. */
async function embeddedTiles(store: Store, saved: ReturnType<typeof loadClassifier>, tiles: TileRecord[]): Promise<TileRecord[]> {
  const model = await classifierModel(store, saved);
  const have = await store.embeddedTileIds(model.id);
  const kept = tiles.filter((t) => have.has(t.id));
  if (kept.length === 0) throw new UserError(`no tile of this raster has an embedding for model '${model.name}'; run tilevec embed first`);
  return kept;
}
