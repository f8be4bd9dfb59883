import { booleanPointInPolygon, bbox as turfBbox } from '@turf/turf';
import type { Feature, MultiPolygon, Polygon, Position } from 'geojson';
import { UserError } from '../errors.ts';
import type { BBox, TileRecord } from '../store/index.ts';
import { bboxesOverlap, formatBbox } from './extent.ts';
import { acceptLabel, majorityLabel, type LabelThresholds } from './majority-label.ts';
import type { TileLabel } from './labels-types.ts';

export interface VectorLabelOptions extends LabelThresholds {
  /** Sample points per tile side for polygon coverage (default 12). */
  samplesPerSide?: number;
}

/**
 * Labels tiles by containment. Polygons: points on a regular grid over each tile's footprint take the class of the
 * polygon containing them, and the tile takes the majority (purity over the covered points, coverage over all).
 * Points: a tile takes the majority class of the label points inside its footprint.
 */
export function labelTilesFromFeatures(
  features: Feature[],
  classOf: (f: Feature) => number | null,
  tiles: Pick<TileRecord, 'id' | 'footprint' | 'bbox'>[],
  opts: VectorLabelOptions = {},
): TileLabel[] {
  const areas: { box: BBox; geometry: Polygon | MultiPolygon; classId: number }[] = [];
  const points: { at: Position; classId: number }[] = [];
  for (const f of features) {
    const classId = classOf(f);
    if (classId === null || !f.geometry) continue;
    const g = f.geometry;
    if (g.type === 'Polygon' || g.type === 'MultiPolygon') areas.push({ box: turfBbox(g) as BBox, geometry: g, classId });
    else if (g.type === 'Point') points.push({ at: g.coordinates, classId });
    else if (g.type === 'MultiPoint') for (const at of g.coordinates) points.push({ at, classId });
  }
  const labelExtent = turfBbox({ type: 'FeatureCollection', features }) as BBox;
  const tileExtent: BBox = [
    Math.min(...tiles.map((t) => t.bbox[0])), Math.min(...tiles.map((t) => t.bbox[1])),
    Math.max(...tiles.map((t) => t.bbox[2])), Math.max(...tiles.map((t) => t.bbox[3])),
  ];
  if (tiles.length === 0 || !bboxesOverlap(labelExtent, tileExtent)) {
    throw new UserError(`the labels cover ${formatBbox(labelExtent)} (lon/lat) and do not overlap the ingested tiles, which cover ${tiles.length ? formatBbox(tileExtent) : 'nothing (no tiles are ingested)'}`);
  }
  const out: TileLabel[] = [];
  const n = opts.samplesPerSide ?? 12;
  for (const t of tiles) {
    if (points.length) {
      const inside = points.filter((p) => pointInBox(p.at, t.bbox) && booleanPointInPolygon(p.at, t.footprint)).map((p) => p.classId);
      const label = majorityLabel(inside, () => true);
      if (acceptLabel(label, { minPurity: opts.minPurity, minValidFraction: 0 })) out.push({ tileId: t.id, classId: label.classId, purity: label.purity });
      if (inside.length) continue;
    }
    const candidates = areas.filter((a) => bboxesOverlap(a.box, t.bbox));
    if (candidates.length === 0) continue;
    const samples: number[] = [];
    for (let j = 0; j < n; j++) {
      for (let i = 0; i < n; i++) {
        const at = [t.bbox[0] + ((i + 0.5) / n) * (t.bbox[2] - t.bbox[0]), t.bbox[1] + ((j + 0.5) / n) * (t.bbox[3] - t.bbox[1])];
        if (!booleanPointInPolygon(at, t.footprint)) continue;
        const hit = candidates.find((a) => pointInBox(at, a.box) && booleanPointInPolygon(at, a.geometry));
        samples.push(hit ? hit.classId : NaN);
      }
    }
    const label = majorityLabel(samples, (v) => !Number.isNaN(v));
    if (acceptLabel(label, opts)) out.push({ tileId: t.id, classId: label.classId, purity: label.purity });
  }
  return out;
}

function pointInBox(p: Position, b: BBox): boolean {
  return p[0] >= b[0] && p[0] <= b[2] && p[1] >= b[1] && p[1] <= b[3];
}
