import { readFileSync, writeFileSync } from 'node:fs';
import { UserError, errorMessage } from '../errors.ts';
import { CLASSIFIER_KINDS, type Classifier, type ClassifierKind } from './classifier.ts';
import { classifierFromJSON } from './create-classifier.ts';
import type { LabelClass } from './labels-types.ts';

/** What a classifier was trained on: applying it to other features would give confident nonsense. */
export interface ClassifierMetadata {
  /** The embedding model whose vectors it reads; null for features that need no model (baselines). */
  model: { id: number; name: string } | null;
  /** e.g. 'embedding', 'band-stats', 'raw-pca'. */
  featureSet: string;
  /** Feature vector length. */
  dim: number;
  classes: LabelClass[];
  labelSet?: string;
  trainedAt?: string;
}

export interface SavedClassifier {
  classifier: Classifier;
  metadata: ClassifierMetadata;
}

const FORMAT = 'tilevec-classifier';
const VERSION = 1;

export function serializeClassifier(classifier: Classifier, metadata: ClassifierMetadata): string {
  return JSON.stringify({ format: FORMAT, version: VERSION, kind: classifier.kind, metadata, state: classifier.toJSON() });
}

export function deserializeClassifier(text: string, source = 'classifier'): SavedClassifier {
  let doc: { format?: string; version?: number; kind?: ClassifierKind; metadata?: ClassifierMetadata; state?: Record<string, unknown> };
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new UserError(`${source} is not valid JSON: ${errorMessage(err)}`);
  }
  if (doc.format !== FORMAT || !doc.metadata || !doc.state || !doc.kind || !CLASSIFIER_KINDS.includes(doc.kind)) {
    throw new UserError(`${source} is not a tilevec classifier (expected format '${FORMAT}')`);
  }
  if (doc.version !== VERSION) throw new UserError(`${source} has classifier format version ${doc.version}; this tilevec reads version ${VERSION}`);
  return { classifier: classifierFromJSON(doc.kind, doc.state), metadata: doc.metadata };
}

export function saveClassifier(path: string, classifier: Classifier, metadata: ClassifierMetadata): void {
  writeFileSync(path, serializeClassifier(classifier, metadata));
}

export function loadClassifier(path: string): SavedClassifier {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read classifier ${path}: ${errorMessage(err)}`);
  }
  return deserializeClassifier(text, path);
}
