import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { UserError } from '../errors.ts';
import type { LabelSetRecord, Store, TileRecord } from '../store/index.ts';
import type { ClassifierKind } from './classifier.ts';
import { confusionMatrixPng } from './confusion-png.ts';
import { createClassifier } from './create-classifier.ts';
import { crossValidate, type CrossValidationResult } from './cross-validate.ts';
import { embeddingMapPng } from './embedding-map-png.ts';
import { embeddingFeatures } from './feature-providers.ts';
import { SPLIT_KINDS, type SplitKind } from './folds.ts';
import type { LabelClass } from './labels-types.ts';
import { saveClassifier } from './saved-classifier.ts';
import { makeDirectory } from '../paths.ts';

/** A label set's labelled tiles, in tile id order, with their class ids. */
export async function labelledTiles(store: Store, labelSetName: string): Promise<{ labelSet: LabelSetRecord; tiles: TileRecord[]; classIds: number[] }> {
  const labelSet = await store.labelSet(labelSetName);
  const labels = await store.labelsOf(labelSet.id);
  const byId = new Map((await store.tilesByIds(labels.map((l) => l.tileId))).map((t) => [t.id, t]));
  const kept = labels.filter((l) => byId.has(l.tileId));
  return { labelSet, tiles: kept.map((l) => byId.get(l.tileId)!), classIds: kept.map((l) => l.classId) };
}

export interface TrainClassifierOptions {
  labels: string;
  /** The embedding model (default: the latest). */
  model?: string;
  kind: ClassifierKind;
  folds: number;
  /** The split whose confusion matrix is drawn; both are cross-validated. */
  split: SplitKind;
  blockTiles: number;
  seed: number;
  /** Where the classifier goes (default `<classifiersDir>/<labels>-<model>-<kind>.json`). */
  out?: string;
  classifiersDir: string;
}

export interface TrainClassifierResult {
  model: string;
  labels: string;
  classifier: ClassifierKind;
  tiles: number;
  classes: LabelClass[];
  cv: Record<SplitKind, CrossValidationResult>;
  files: { classifier: string; confusionJson: string; confusionPng: string; embeddingMapPng: string };
}

/**
 * Cross-validates a classifier on a model's embeddings of a label set (random and spatial splits), fits it on all
 * the labels and saves it, with the confusion matrix (JSON and PNG) and a PCA map of the embeddings beside it.
 */
export async function trainClassifier(store: Store, opts: TrainClassifierOptions): Promise<TrainClassifierResult> {
  const model = await store.model(opts.model);
  const { labelSet, tiles, classIds } = await labelledTiles(store, opts.labels);
  if (tiles.length < opts.folds) throw new UserError(`label set '${labelSet.name}' labels only ${tiles.length} tiles; too few for ${opts.folds} folds`);
  const features = await embeddingFeatures(store, model)(tiles);
  const cv = Object.fromEntries(SPLIT_KINDS.map((split) => [split, crossValidate(features, classIds, tiles, { classifier: opts.kind, split, folds: opts.folds, seed: opts.seed, blockTiles: opts.blockTiles })])) as Record<SplitKind, CrossValidationResult>;
  const classifier = createClassifier(opts.kind, { seed: opts.seed }).fit(features, classIds);
  const out = resolve(opts.out ?? join(opts.classifiersDir, `${labelSet.name}-${model.name}-${opts.kind}.json`));
  makeDirectory(dirname(out), 'the classifier folder');
  saveClassifier(out, classifier, { model: { id: model.id, name: model.name }, featureSet: 'embedding', dim: model.dim, classes: labelSet.classes, labelSet: labelSet.name, trainedAt: new Date().toISOString() });
  const base = out.replace(/\.json$/, '');
  const headline = cv[opts.split];
  const files = { classifier: out, confusionJson: `${base}.confusion.json`, confusionPng: `${base}.confusion.png`, embeddingMapPng: `${base}.embedding-map.png` };
  writeFileSync(files.confusionJson, JSON.stringify({ split: headline.split, classes: labelSet.classes, order: headline.classes, confusion: headline.confusion }, null, 2));
  writeFileSync(files.confusionPng, confusionMatrixPng(headline, labelSet.classes, `${opts.kind} on ${model.name}, ${headline.split} ${opts.folds}-fold CV`));
  writeFileSync(files.embeddingMapPng, embeddingMapPng(features, classIds, labelSet.classes, `${model.name} PCA, ${labelSet.name}`));
  return { model: model.name, labels: labelSet.name, classifier: opts.kind, tiles: tiles.length, classes: labelSet.classes, cv, files };
}

/** One cross-validation's scores, then precision and recall per class, as `classify train` prints them. */
export function formatCrossValidation(r: CrossValidationResult, classes: LabelClass[]): string {
  return `${r.split.padEnd(8)} ${r.classifier.padEnd(7)} ${r.folds}-fold  accuracy ${r.accuracy.toFixed(3)}  macro-F1 ${r.macroF1.toFixed(3)}` +
    (r.bufferedOut ? `  (${r.bufferedOut} training rows dropped as overlapping test tiles, summed over folds)` : '') +
    '\n' + r.perClass.map((p) => `    ${(classes.find((c) => c.id === p.classId)?.name ?? String(p.classId)).padEnd(22)} precision ${p.precision.toFixed(3)}  recall ${p.recall.toFixed(3)}  n ${p.support}`).join('\n');
}
