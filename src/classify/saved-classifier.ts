import { readFileSync, writeFileSync } from 'node:fs';
import { UserError, errorMessage } from '../errors.ts';
import { z } from 'zod';
import { CLASSIFIER_KINDS, parseState, type Classifier, type ClassifierKind } from './classifier.ts';
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

const metadataSchema = z.object({
  model: z.object({ id: z.number().int(), name: z.string() }).nullable(),
  featureSet: z.string(),
  dim: z.number().int().min(1),
  classes: z.array(z.object({ id: z.number().int(), name: z.string() })),
  labelSet: z.string().optional(),
  trainedAt: z.string().optional(),
});

/**
 * A classifier from its saved JSON. Anything wrong with it (not JSON, another format or version, damaged metadata
 * or state) is a UserError naming `source` and the problem, status 422 for the HTTP service: the request was
 * fine, the file it names is not.
 */
export function deserializeClassifier(text: string, source = 'classifier'): SavedClassifier {
  const fail = (message: string) => new UserError(`${source} ${message}`, { status: 422 });
  let doc: { format?: unknown; version?: unknown; kind?: unknown; metadata?: unknown; state?: unknown };
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw fail(`is not valid JSON: ${errorMessage(err)}`);
  }
  if (!doc || typeof doc !== 'object' || doc.format !== FORMAT || !CLASSIFIER_KINDS.includes(doc.kind as ClassifierKind)) {
    throw fail(`is not a tilevec classifier (expected format '${FORMAT}')`);
  }
  if (doc.version !== VERSION) throw fail(`has classifier format version ${doc.version}; this tilevec reads version ${VERSION}`);
  let metadata: ClassifierMetadata;
  try {
    metadata = parseState(metadataSchema, doc.metadata);
  } catch (err) {
    throw fail(`has damaged metadata (${errorMessage(err)}); train it again with tilevec classify train`);
  }
  try {
    return { classifier: classifierFromJSON(doc.kind as ClassifierKind, doc.state, metadata.dim), metadata };
  } catch (err) {
    throw fail(`is damaged: its ${doc.kind} state does not fit (${errorMessage(err)}); train it again with tilevec classify train`);
  }
}

export function saveClassifier(path: string, classifier: Classifier, metadata: ClassifierMetadata): void {
  writeFileSync(path, serializeClassifier(classifier, metadata));
}

/** Loads a saved classifier; messages name it as `source` (default the path: the service names it without one). */
export function loadClassifier(path: string, source = path): SavedClassifier {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read classifier ${source}: ${errorMessage(err)}`);
  }
  return deserializeClassifier(text, source);
}
