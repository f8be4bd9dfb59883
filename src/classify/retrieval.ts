import { UserError } from '../errors.ts';
import type { TilePlace } from './folds.ts';
import { uniform } from '../rng.ts';

/**
 * Search quality of a feature space, measured as a user of `/similar` and `/v1/analogy` meets it: exact L2
 * nearest neighbours over every tile given, with the tiles a query shares pixels with (or touches) left out so
 * that no answer is a near-copy of the query.
 */

export type Place = Pick<TilePlace, 'rasterId' | 'x' | 'y' | 'size'>;

/** Two windows of one raster that share pixels or an edge or corner. */
export function windowsTouch(a: Place, b: Place): boolean {
  return a.rasterId === b.rasterId && a.x <= b.x + b.size && b.x <= a.x + a.size && a.y <= b.y + b.size && b.y <= a.y + a.size;
}

/** Squared L2 distance from `query` to every row. */
function distancesTo(rows: Float32Array[], query: Float32Array): Float64Array {
  const out = new Float64Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i];
    let s = 0;
    for (let j = 0; j < row.length; j++) {
      const d = row[j] - query[j];
      s += d * d;
    }
    out[i] = s;
  }
  return out;
}

/** Indices of the k smallest distances, nearest first, among the rows `allowed` keeps. */
function nearest(distances: Float64Array, k: number, allowed: (i: number) => boolean): number[] {
  const best: { i: number; d: number }[] = [];
  for (let i = 0; i < distances.length; i++) {
    if (!allowed(i)) continue;
    const d = distances[i];
    if (best.length === k && d >= best[k - 1].d) continue;
    let at = best.length === k ? k - 1 : best.length;
    if (best.length < k) best.push({ i, d });
    while (at > 0 && best[at - 1].d > d) {
      best[at] = best[at - 1];
      at--;
    }
    best[at] = { i, d };
  }
  return best.map((b) => b.i);
}

/** 1-based rank of row `target` among the rows `allowed` keeps (ties count against it). */
function rankOf(distances: Float64Array, target: number, allowed: (i: number) => boolean): number {
  let rank = 1;
  for (let i = 0; i < distances.length; i++) if (i !== target && allowed(i) && distances[i] <= distances[target]) rank++;
  return rank;
}

/**
 * Label precision@k of search by example: for every tile, the share of its k nearest tiles with its own label,
 * never counting tiles that overlap or touch it. Averaged over all tiles.
 */
export function searchPrecision(rows: Float32Array[], labels: number[], places: Place[], k = 10): number {
  if (rows.length !== labels.length || rows.length !== places.length) throw new RangeError('rows, labels and places differ in length');
  let sum = 0;
  for (let q = 0; q < rows.length; q++) {
    const hits = nearest(distancesTo(rows, rows[q]), k, (i) => !windowsTouch(places[q], places[i]));
    sum += hits.filter((i) => labels[i] === labels[q]).length / Math.max(1, hits.length);
  }
  return sum / rows.length;
}

export interface DatedPlace extends Place {
  /** Which acquisition the tile is from (the raster of a co-registered stack). */
  date: number;
}

export interface TemporalOptions {
  k?: number;
  /** Queries drawn (default 500). */
  queries?: number;
  seed?: number;
}

export interface TemporalMetrics {
  /** Per query tile, the share of its window's other dates found among its k nearest tiles; averaged. */
  recall: number;
  /** Share of query tiles with at least one of those among their k nearest. */
  hitRate: number;
  /** Median rank, among all other tiles, of the window on one other date drawn per query. */
  medianRank: number;
  /** Share of the k nearest that come from the query's own date, and what a random ranking would give. */
  sameDateShare: number;
  sameDateChance: number;
  queries: number;
}

const windowKey = (p: Place) => `${p.x},${p.y},${p.size}`;

/** Windows by position, each with its tile index per date: the co-registered stack's columns. */
function windowsAcrossDates(places: DatedPlace[]): Map<string, Map<number, number>> {
  const byWindow = new Map<string, Map<number, number>>();
  places.forEach((p, i) => {
    const key = windowKey(p);
    let dates = byWindow.get(key);
    if (!dates) byWindow.set(key, (dates = new Map()));
    dates.set(p.date, i);
  });
  return byWindow;
}


/**
 * Same place across dates. Each query is a tile whose window exists on other dates; those tiles are the answers.
 * The query tile itself is never a candidate.
 */
export function temporalRetrieval(rows: Float32Array[], places: DatedPlace[], opts: TemporalOptions = {}): TemporalMetrics {
  const k = opts.k ?? 10;
  const random = uniform(opts.seed ?? 1);
  const byWindow = windowsAcrossDates(places);
  const candidates = places.map((p, i) => ({ i, others: [...byWindow.get(windowKey(p))!].filter(([d]) => d !== p.date).map(([, j]) => j) })).filter((c) => c.others.length > 0);
  if (candidates.length === 0) throw new UserError('no window appears on two dates: the rasters are not a co-registered stack of one place');
  const count = opts.queries ?? 500;
  const dateSizes = new Map<number, number>();
  for (const p of places) dateSizes.set(p.date, (dateSizes.get(p.date) ?? 0) + 1);
  let recall = 0, hits = 0, sameDate = 0, chance = 0;
  const ranks: number[] = [];
  for (let n = 0; n < count; n++) {
    const { i: q, others } = candidates[Math.floor(random() * candidates.length)];
    const target = others[Math.floor(random() * others.length)];
    const notQuery = (i: number) => i !== q;
    const distances = distancesTo(rows, rows[q]);
    const top = nearest(distances, k, notQuery);
    const found = others.filter((j) => top.includes(j)).length;
    recall += found / others.length;
    if (found > 0) hits++;
    sameDate += top.filter((i) => places[i].date === places[q].date).length / top.length;
    chance += (dateSizes.get(places[q].date)! - 1) / (places.length - 1);
    ranks.push(rankOf(distances, target, notQuery));
  }
  return { recall: recall / count, hitRate: hits / count, medianRank: median(ranks), sameDateShare: sameDate / count, sameDateChance: chance / count, queries: count };
}

export interface AnalogyMetrics {
  /** Recall@k of (B, t2) for the query z(A,t2) − z(A,t1) + z(B,t1), never answering with its three inputs. */
  analogy: number;
  /** Recall@k of (B, t2) for the query z(B,t1) alone, never answering with itself. */
  trivial: number;
  quadruples: number;
}

/** Temporal analogies over random quadruples of two places that do not touch and two dates. */
export function temporalAnalogy(rows: Float32Array[], places: DatedPlace[], opts: TemporalOptions = {}): AnalogyMetrics {
  const k = opts.k ?? 10;
  const random = uniform(opts.seed ?? 2);
  const complete = [...windowsAcrossDates(places).values()].filter((d) => d.size >= 2);
  if (complete.length < 2) throw new UserError('analogies need two windows that each appear on two dates of a co-registered stack');
  const count = opts.queries ?? 500;
  let analogy = 0, trivial = 0, drawn = 0;
  for (let tries = 0; drawn < count && tries < count * 100; tries++) {
    const a = complete[Math.floor(random() * complete.length)];
    const b = complete[Math.floor(random() * complete.length)];
    const dates = [...a.keys()].filter((d) => b.has(d));
    if (a === b || dates.length < 2) continue;
    const [aAny] = a.values();
    const [bAny] = b.values();
    if (windowsTouch({ ...places[aAny], rasterId: 0 }, { ...places[bAny], rasterId: 0 })) continue;
    const t1 = dates[Math.floor(random() * dates.length)];
    const rest = dates.filter((d) => d !== t1);
    const t2 = rest[Math.floor(random() * rest.length)];
    const [a1, a2, b1, target] = [a.get(t1)!, a.get(t2)!, b.get(t1)!, b.get(t2)!];
    const query = rows[a2].map((v, j) => v - rows[a1][j] + rows[b1][j]);
    if (nearest(distancesTo(rows, query), k, (i) => i !== a1 && i !== a2 && i !== b1).includes(target)) analogy++;
    if (nearest(distancesTo(rows, rows[b1]), k, (i) => i !== b1).includes(target)) trivial++;
    drawn++;
  }
  if (drawn === 0) throw new UserError('no two windows of the stack lie apart; analogies need a larger stack');
  return { analogy: analogy / drawn, trivial: trivial / drawn, quadruples: drawn };
}

/** Rows standardised per column over the given groups (all rows one group when `groupOf` is absent). */
export function standardizeColumns(rows: Float32Array[], groupOf: (i: number) => number = () => 0): Float32Array[] {
  const groups = new Map<number, number[]>();
  rows.forEach((_, i) => {
    const g = groupOf(i);
    const members = groups.get(g);
    if (members) members.push(i);
    else groups.set(g, [i]);
  });
  const out = rows.map((r) => new Float32Array(r.length));
  for (const members of groups.values()) {
    for (let j = 0; j < (rows[0]?.length ?? 0); j++) {
      let sum = 0, sq = 0;
      for (const i of members) sum += rows[i][j];
      const mean = sum / members.length;
      for (const i of members) sq += (rows[i][j] - mean) ** 2;
      const std = Math.sqrt(sq / members.length) || 1;
      for (const i of members) out[i][j] = (rows[i][j] - mean) / std;
    }
  }
  return out;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
