import { UserError } from '../errors.ts';
import type { TileRecord } from '../store/index.ts';
import { shuffled, uniform } from '../rng.ts';

export type SplitKind = 'random' | 'spatial';
export const SPLIT_KINDS: readonly SplitKind[] = ['random', 'spatial'];

/** Indices into the caller's tile (or row) array. */
export interface Fold {
  train: number[];
  test: number[];
}

/** Where a tile lies: enough to block tiles spatially and to tell whether two overlap. */
export type TilePlace = Pick<TileRecord, 'rasterId' | 'x' | 'y' | 'size' | 'bbox'>;

/** k folds of shuffled rows. Overlapping tiles land on both sides, so scores are optimistic (they leak). */
export function randomFolds(n: number, k: number, seed = 1): Fold[] {
  checkFoldCount(n, k);
  const order = shuffled(Array.from({ length: n }, (_, i) => i), uniform(seed));
  const foldOf = new Int32Array(n);
  order.forEach((row, i) => (foldOf[row] = i % k));
  return foldsFromAssignment(foldOf, k, () => []);
}

export interface SpatialFoldOptions {
  /** Block side in tile widths (default 5): several tiles, so a block is wider than any overlap between tiles. */
  blockTiles?: number;
  seed?: number;
}

/**
 * k folds of whole spatial blocks: a grid over tile centres with cells `blockTiles` tiles wide. Blocks alone still
 * let a tile at a block's edge overlap one across the edge, so each fold's training set also drops every tile that
 * overlaps a test tile (a buffer): no pixel is ever on both sides of a split.
 */
export function spatialFolds(tiles: readonly TilePlace[], k: number, opts: SpatialFoldOptions = {}): Fold[] {
  checkFoldCount(tiles.length, k);
  const blockTiles = opts.blockTiles ?? 5;
  const blockW = median(tiles.map((t) => t.bbox[2] - t.bbox[0])) * blockTiles;
  const blockH = median(tiles.map((t) => t.bbox[3] - t.bbox[1])) * blockTiles;
  const blocks = new Map<string, number[]>();
  tiles.forEach((t, i) => {
    const key = `${Math.floor((t.bbox[0] + t.bbox[2]) / 2 / blockW)},${Math.floor((t.bbox[1] + t.bbox[3]) / 2 / blockH)}`;
    const members = blocks.get(key);
    if (members) members.push(i);
    else blocks.set(key, [i]);
  });
  if (blocks.size < k) {
    throw new UserError(`the labelled tiles fall into only ${blocks.size} spatial blocks of ${blockTiles} tiles; use fewer folds than ${k} or smaller blocks`);
  }
  // Shuffle, then hand the largest blocks out first to whichever fold is smallest: folds stay balanced.
  const ordered = shuffled([...blocks.values()], uniform(opts.seed ?? 1)).sort((a, b) => b.length - a.length);
  const sizes = new Array<number>(k).fill(0);
  const foldOf = new Int32Array(tiles.length);
  for (const members of ordered) {
    const fold = sizes.indexOf(Math.min(...sizes));
    for (const i of members) foldOf[i] = fold;
    sizes[fold] += members.length;
  }
  const neighbours = overlapNeighbours(tiles);
  return foldsFromAssignment(foldOf, k, (i) => neighbours[i]);
}

function foldsFromAssignment(foldOf: Int32Array, k: number, neighboursOf: (i: number) => number[]): Fold[] {
  return Array.from({ length: k }, (_, fold) => {
    const test: number[] = [];
    const excluded = new Set<number>();
    foldOf.forEach((f, i) => {
      if (f !== fold) return;
      test.push(i);
      for (const j of neighboursOf(i)) if (foldOf[j] !== fold) excluded.add(j);
    });
    const train: number[] = [];
    foldOf.forEach((f, i) => {
      if (f !== fold && !excluded.has(i)) train.push(i);
    });
    return { train, test };
  });
}

/**
 * Whether two tiles share ground. Tiles of one raster compare pixel windows exactly; tiles of different rasters
 * (another date of the same place, say) compare WGS84 bboxes, ignoring contact at an edge.
 */
export function tilesOverlap(a: TilePlace, b: TilePlace): boolean {
  if (a.rasterId === b.rasterId) {
    return a.x < b.x + b.size && b.x < a.x + a.size && a.y < b.y + b.size && b.y < a.y + a.size;
  }
  const eps = 1e-6 * Math.max(a.bbox[2] - a.bbox[0], a.bbox[3] - a.bbox[1]);
  return a.bbox[0] < b.bbox[2] - eps && b.bbox[0] < a.bbox[2] - eps && a.bbox[1] < b.bbox[3] - eps && b.bbox[1] < a.bbox[3] - eps;
}

/** For each tile, the other tiles it overlaps (a sweep over bboxes sorted by west edge). */
export function overlapNeighbours(tiles: readonly TilePlace[]): number[][] {
  const out = tiles.map(() => [] as number[]);
  const order = Array.from(tiles.keys()).sort((a, b) => tiles[a].bbox[0] - tiles[b].bbox[0]);
  for (let oi = 0; oi < order.length; oi++) {
    const a = tiles[order[oi]];
    for (let oj = oi + 1; oj < order.length && tiles[order[oj]].bbox[0] < a.bbox[2]; oj++) {
      if (tilesOverlap(a, tiles[order[oj]])) {
        out[order[oi]].push(order[oj]);
        out[order[oj]].push(order[oi]);
      }
    }
  }
  return out;
}

function checkFoldCount(n: number, k: number): void {
  if (!Number.isInteger(k) || k < 2) throw new UserError(`cross-validation needs at least 2 folds, got ${k}`);
  if (n < k) throw new UserError(`only ${n} labelled tiles; cannot make ${k} folds`);
}

function median(values: number[]): number {
  const sorted = values.slice().sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] || 1;
}
