import type { Polygon } from 'geojson';
import type { BBox } from '../store/index.ts';

/** 7 decimals of a degree is about 1 cm: finer digits are noise that only makes responses larger. */
const DECIMALS = 1e7;

export function roundDegree(v: number): number {
  return Math.round(v * DECIMALS) / DECIMALS;
}

export function roundCoordinates(p: Polygon): Polygon {
  return { type: 'Polygon', coordinates: p.coordinates.map((ring) => ring.map((pt) => pt.map(roundDegree))) };
}

export function roundBbox(b: BBox): BBox {
  return [roundDegree(b[0]), roundDegree(b[1]), roundDegree(b[2]), roundDegree(b[3])];
}

/** The bbox of a FeatureCollection (RFC 7946 §5): the union of its features' bboxes; absent when it has none. */
export function unionBbox(boxes: (BBox | number[] | undefined)[]): BBox | undefined {
  let out: BBox | undefined;
  for (const b of boxes) {
    if (!b) continue;
    out = out ? [Math.min(out[0], b[0]), Math.min(out[1], b[1]), Math.max(out[2], b[2]), Math.max(out[3], b[3])] : [b[0], b[1], b[2], b[3]];
  }
  return out;
}

/** A FeatureCollection with its bbox, and any foreign members (model, query, nextCursor...) after the features. */
export function featureCollection<F extends { bbox?: number[] }>(features: F[], members: Record<string, unknown> = {}) {
  const bbox = unionBbox(features.map((f) => f.bbox));
  return { type: 'FeatureCollection' as const, ...(bbox ? { bbox } : {}), features, ...members };
}
