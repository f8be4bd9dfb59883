import { Command, InvalidArgumentError, Option } from 'commander';
import { UserError } from '../errors.ts';
import { requireOutputFolder } from '../paths.ts';
import {
  CLASSIFIER_KINDS, SPLIT_KINDS, classifiersDir, coRegisteredRasters, evaluateFeatureSets, evaluateTemporal, evaluationFeatureSets,
  formatCrossValidation, formatEvaluation, formatTemporal, importLabels, labelledTiles, loadClassifier, predictClassMap, tilePixelReader,
  trainClassifier, type ClassifierKind, type SplitKind,
} from '../classify/index.ts';
import { configFrom, emit, fractionOption, intListOption, intOption, withStore } from './context.ts';

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

export function registerClassifyCommands(program: Command): void {
  const labels = program.command('labels').description('label sets: tiles with land-cover classes');
  labels.command('import <source>')
    .description('label the ingested tiles from a label raster (majority class), GeoJSON or shapefile (containment)')
    .requiredOption('--name <name>', 'label set name (an existing set of this name is replaced)')
    .option('--class-field <field>', 'feature property holding the class (GeoJSON, shapefile)', 'class')
    .option('--min-purity <p>', 'least share of the majority class among a tile\'s labelled pixels', fractionOption('--min-purity'), 0.5)
    .option('--min-coverage <p>', 'least labelled share of a tile\'s footprint', fractionOption('--min-coverage'), 0.5)
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
      const config = configFrom(cmd);
      const result = await withStore(config, (store) => trainClassifier(store, {
        labels: opts.labels, model: opts.model, kind: opts.classifier as ClassifierKind, folds: opts.cv, split: opts.split as SplitKind,
        blockTiles: opts.blockTiles, seed: opts.seed, out: opts.out, classifiersDir: classifiersDir(config),
      }));
      emit(cmd, result, (r) => [
        `${r.classifier} on '${r.model}' embeddings, label set '${r.labels}' (${r.tiles} tiles)`,
        formatCrossValidation(r.cv.random, r.classes),
        formatCrossValidation(r.cv.spatial, r.classes),
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
      // Checked before any work: a misspelt folder should not cost a classification.
      const out = requireOutputFolder(opts.out, '--out');
      // A store that is missing is named before the classifier is read.
      const result = await withStore(configFrom(cmd), (store) => predictClassMap(store, loadClassifier(opts.classifier), { raster: opts.raster, out, model: opts.model }));
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
      const { summary, table } = await withStore(configFrom(cmd), async (store) => {
        const model = opts.model ? await store.model(opts.model) : (await store.listModels())[0];
        const read = tilePixelReader((id) => store.raster(id));
        try {
          if (opts.temporal) {
            const rasters = await coRegisteredRasters(store, opts.rasters);
            const tiles = (await Promise.all(rasters.map((r) => store.tilesOfRaster(r.id)))).flat();
            const byId = new Map(rasters.map((r) => [r.id, r]));
            const result = await evaluateTemporal(tiles, await evaluationFeatureSets(store, model, read, model?.dim ?? opts.dim, byId), { queries: opts.queries, seed: opts.seed });
            return { summary: result, table: formatTemporal(result) };
          }
          const { tiles, classIds } = await labelledTiles(store, opts.labels);
          const sets = await evaluationFeatureSets(store, model, read, model?.dim ?? opts.dim);
          const result = await evaluateFeatureSets(tiles, classIds, sets, { classifiers: opts.classifiers, splits: [...SPLIT_KINDS], folds: opts.cv, seed: opts.seed, blockTiles: opts.blockTiles });
          return { summary: { accuracy: result.accuracy, search: result.search, tiles: result.tiles, skipped: result.skipped }, table: formatEvaluation(result) };
        } finally {
          await read.close();
        }
      });
      // The table, then the JSON line as well: bench:quality and scripts read the figures from the last line.
      emit(cmd, summary, (r) => `${table}\n${JSON.stringify(r)}`);
    });
}
