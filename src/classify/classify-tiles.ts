import { NotFoundError, UserError } from '../errors.ts';
import type { BBox, ModelRecord, Store } from '../store/index.ts';
import type { SavedClassifier } from './saved-classifier.ts';

export interface TilePrediction {
  tileId: number;
  classId: number;
  className: string;
  /** The classifier's probability for `classId`. */
  probability: number;
}

export type ClassifyQuery = { tileIds: number[]; bbox?: undefined } | { bbox: BBox; tileIds?: undefined };

const BBOX_PAGE = 5000;

/**
 * The model whose embeddings a classifier reads, refusing any other: a classifier trained on one model's
 * vectors gives confident nonsense on another's. `requested` is the model the caller asked for, if any.
 */
export async function classifierModel(store: Store, saved: SavedClassifier, requested?: string): Promise<ModelRecord> {
  const trainedOn = saved.metadata.model;
  if (!trainedOn) {
    throw new UserError(`this classifier was trained on '${saved.metadata.featureSet}' features, not on a model's embeddings, so it cannot classify stored tiles`);
  }
  if (requested !== undefined && requested !== trainedOn.name) {
    throw new UserError(`this classifier was trained on embeddings of model '${trainedOn.name}'; it cannot be applied to embeddings of model '${requested}' (train one with tilevec classify train --model ${requested})`);
  }
  const model = await store.model(trainedOn.name);
  if (model.dim !== saved.metadata.dim) {
    throw new UserError(`model '${model.name}' now has ${model.dim}-dimensional embeddings but the classifier was trained on ${saved.metadata.dim}; it was re-registered since, so retrain the classifier`);
  }
  return model;
}

/** Applies a saved classifier to stored tiles by id or bbox (the body of POST /v1/classify). */
export async function classifyTiles(store: Store, saved: SavedClassifier, query: ClassifyQuery, opts: { model?: string } = {}): Promise<TilePrediction[]> {
  const model = await classifierModel(store, saved, opts.model);
  let vectors: Map<number, Float32Array>;
  if (query.tileIds) {
    vectors = await store.embeddingsOf(model.id, query.tileIds);
    const missing = query.tileIds.filter((id) => !vectors.has(id));
    if (missing.length) throw new NotFoundError(`tiles ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', ...' : ''} have no embedding for model '${model.name}'`);
  } else {
    const ids: number[] = [];
    for (let afterId = 0; ; ) {
      const page = await store.tilesInBbox(query.bbox, { limit: BBOX_PAGE, afterId });
      ids.push(...page.map((t) => t.id));
      if (page.length < BBOX_PAGE) break;
      afterId = page[page.length - 1].id;
    }
    vectors = await store.embeddingsOf(model.id, ids);
  }
  const tileIds = [...vectors.keys()].sort((a, b) => a - b);
  const { classifier, metadata } = saved;
  const proba = classifier.predictProba(tileIds.map((id) => vectors.get(id)!));
  return tileIds.map((tileId, i) => {
    let best = 0;
    for (let c = 1; c < proba[i].length; c++) if (proba[i][c] > proba[i][best]) best = c;
    const classId = classifier.classes[best];
    return { tileId, classId, className: metadata.classes.find((c) => c.id === classId)?.name ?? String(classId), probability: proba[i][best] };
  });
}
