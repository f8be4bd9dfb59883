import { UserError } from '../errors.ts';
import { drawAugmentation, IDENTITY, type Augmentation } from './augment.ts';
import type { RadiometricJitter } from './radiometry.ts';
import { Rng, type RngState } from '../rng.ts';
import type { PixelWindow } from './source.ts';
import type { ValidityMask } from './validity.ts';

/** What the sampler knows about a raster: its size, where its nodata lies, and its radius in its own pixels. */
export interface SamplerRaster {
  id: number;
  label: string;
  width: number;
  height: number;
  validity: ValidityMask;
  /** Neighborhood radius in this raster's pixels along x and y (a radius in metres converts per raster). */
  radius: { x: number; y: number };
  /** Rasters with the same key are co-registered dates of one place: a window means the same ground in each. */
  stack?: string;
}

export interface SamplerOptions {
  /** Side of every tile in pixels. */
  tileSize: number;
  /** Probability that the distant tile comes from another raster rather than far away in the anchor's. */
  crossRasterProbability: number;
  /** No sampled tile has a larger share of nodata pixels. */
  maxNodataFraction: number;
  /** Probability that the neighbor is the anchor's window on another date of its stack (a temporal positive). */
  temporalProbability?: number;
  /** Random flips and quarter turns per tile. */
  augment: boolean;
  /**
   * A temporal positive takes its anchor's flips and turns instead of its own, so the pair differs only by date
   * and the network need not give up the layout that identifies a place.
   */
  pairedTemporalAugment?: boolean;
  /**
   * With a temporal positive, the distant tile is a window of the anchor's date next to it (not overlapping, within
   * two tiles) instead of far away: the hardest negative for telling a place from its surroundings.
   */
  adjacentNegatives?: boolean;
  /** Strength of per-tile, per-band gain, offset and gamma jitter (0: none); see radiometry.ts. */
  radiometricJitter?: number;
  seed: number | string;
}

export interface TileDraw {
  rasterId: number;
  window: PixelWindow;
  augment: Augmentation;
  jitter?: RadiometricJitter;
}

export interface Triplet {
  anchor: TileDraw;
  neighbor: TileDraw;
  distant: TileDraw;
  distantFrom: 'same-raster' | 'other-raster';
  neighborFrom: 'nearby' | 'other-date';
}

/** Window positions checked per raster up front; larger rasters are checked on a regular sub-grid. */
const POSITION_CHECKS = 1_000_000;
const NEIGHBOR_TRIES = 64;
const TRIPLET_TRIES = 1000;

interface Prepared extends SamplerRaster {
  maxX: number;
  maxY: number;
  /** Share of window positions within the nodata limit: sets how long rejection sampling may try. */
  validPositionShare: number;
}

/**
 * Draws Tile2Vec triplets as pixel windows, reading no pixels (TorchGeo style: geometry here, reading in the
 * dataset). Follows the Tile2Vec reference:
 * - anchor: a raster chosen with probability proportional to its valid pixels, then a position uniform over its
 *   windows within the nodata limit;
 * - neighbor: centre uniform within ±radius of the anchor centre on each axis (clipped to the raster, as the
 *   reference clips), overlap allowed;
 * - distant: with probability `crossRasterProbability` uniform over another raster (again weighted by valid
 *   pixels), otherwise in the anchor's raster farther than the radius on both axes, each axis uniform over the
 *   positions that qualify.
 * Every tile is redrawn until its nodata fraction is within the limit. All randomness comes from one seeded
 * generator whose state `getState`/`setState` expose, so a checkpointed run resumes the exact sequence.
 */
export class TripletSampler {
  readonly rng: Rng;
  private readonly rasters: Prepared[];
  /** Running sums of valid pixels, for weighted raster choice. */
  private readonly cumulative: number[];

  constructor(rasters: SamplerRaster[], readonly options: SamplerOptions) {
    const { tileSize: t, crossRasterProbability: p, maxNodataFraction: f } = options;
    if (!Number.isInteger(t) || t < 1) throw new UserError(`tile size must be a whole number of pixels >= 1, got ${t}`);
    if (!(p >= 0 && p <= 1)) throw new UserError(`cross-raster probability must be between 0 and 1, got ${p}`);
    if (!(f >= 0 && f <= 1)) throw new UserError(`maximum nodata fraction must be between 0 and 1, got ${f}`);
    if (rasters.length === 0) throw new UserError('there are no rasters to sample from; ingest some first (tilevec ingest)');
    if (p > 0 && rasters.length < 2) {
      throw new UserError(`a cross-raster probability of ${p} needs at least two rasters, and only ${rasters[0].label} is selected; set it to 0 or add rasters`);
    }
    if (new Set(rasters.map((r) => r.id)).size !== rasters.length) throw new UserError('each raster may be selected only once');
    const q = options.temporalProbability ?? 0;
    if (!(q >= 0 && q <= 1)) throw new UserError(`temporal-positive probability must be between 0 and 1, got ${q}`);
    const jitter = options.radiometricJitter ?? 0;
    if (!(jitter >= 0 && jitter <= 2)) throw new UserError(`radiometric jitter must be between 0 and 2, got ${jitter}`);
    if (q > 0 && !rasters.some((r) => r.stack !== undefined && rasters.some((o) => o !== r && o.stack === r.stack))) {
      throw new UserError(`temporal positives (probability ${q}) need co-registered rasters (dates of one place on one grid), and no two selected rasters line up; set it to 0`);
    }
    this.rasters = rasters.map((r) => prepare(r, t, f, p < 1));
    let sum = 0;
    this.cumulative = this.rasters.map((r) => (sum += r.validity.validPixels));
    this.rng = new Rng(options.seed);
  }

  getState(): RngState {
    return this.rng.getState();
  }

  setState(state: RngState): void {
    this.rng.setState(state);
  }

  /** The rasters' sampling weights (valid pixels), by raster id. */
  weights(): Map<number, number> {
    return new Map(this.rasters.map((r) => [r.id, r.validity.validPixels]));
  }

  take(count: number): Triplet[] {
    return Array.from({ length: count }, () => this.next());
  }

  next(): Triplet {
    for (let attempt = 0; attempt < TRIPLET_TRIES; attempt++) {
      const triplet = this.tryTriplet();
      if (triplet) return triplet;
    }
    throw new UserError(
      `no valid triplet after ${TRIPLET_TRIES} anchors: neighbors or distant tiles keep exceeding the nodata limit of ` +
        `${this.options.maxNodataFraction}; raise --max-nodata, change the radius, or leave out mostly-empty rasters`,
    );
  }

  private tryTriplet(): Triplet | undefined {
    const rasterIndex = this.pickRaster(-1);
    const r = this.rasters[rasterIndex];
    const anchor = this.drawUniform(r);
    const q = this.options.temporalProbability ?? 0;
    const otherDate = q > 0 && this.rng.float() < q ? this.drawOtherDate(r, anchor) : undefined;
    const neighborRaster = otherDate ?? r;
    const neighbor = otherDate ? anchor : this.drawNeighbor(r, anchor);
    if (!neighbor) return undefined;
    const fromOther = this.options.crossRasterProbability > 0 && this.rng.float() < this.options.crossRasterProbability;
    const distantRaster = fromOther ? this.rasters[this.pickRaster(rasterIndex)] : r;
    const adjacent = otherDate && this.options.adjacentNegatives ? this.drawAdjacent(r, anchor) : undefined;
    const distant = fromOther ? this.drawUniform(distantRaster) : adjacent ?? this.drawFarFrom(r, anchor);
    if (!distant) return undefined;
    const anchorTile = this.tile(r, anchor);
    const neighborTile = this.tile(neighborRaster, neighbor);
    if (otherDate && this.options.pairedTemporalAugment) neighborTile.augment = anchorTile.augment;
    return {
      anchor: anchorTile,
      neighbor: neighborTile,
      distant: this.tile(distantRaster, distant),
      distantFrom: fromOther ? 'other-raster' : 'same-raster',
      neighborFrom: otherDate ? 'other-date' : 'nearby',
    };
  }

  /** Another date of the anchor's stack on which its window lies within the raster and the nodata limit. */
  private drawOtherDate(r: Prepared, at: Position): Prepared | undefined {
    const dates = this.rasters.filter((o) => o !== r && o.stack !== undefined && o.stack === r.stack && at.x <= o.maxX && at.y <= o.maxY && this.acceptable(o, at));
    return dates.length ? dates[this.rng.int(dates.length)] : undefined;
  }

  private tile(r: Prepared, at: Position): TileDraw {
    const size = this.options.tileSize;
    const draw: TileDraw = { rasterId: r.id, window: { x: at.x, y: at.y, w: size, h: size }, augment: this.options.augment ? drawAugmentation(this.rng) : IDENTITY };
    const strength = this.options.radiometricJitter ?? 0;
    if (strength > 0) draw.jitter = { strength, seed: this.rng.nextUint32() };
    return draw;
  }

  /** A raster index with probability proportional to valid pixels, never `exclude`. */
  private pickRaster(exclude: number): number {
    const c = this.cumulative;
    const excluded = exclude >= 0 ? c[exclude] - (exclude > 0 ? c[exclude - 1] : 0) : 0;
    let target = this.rng.float() * (c[c.length - 1] - excluded);
    if (exclude >= 0 && target >= (exclude > 0 ? c[exclude - 1] : 0)) target += excluded;
    let lo = 0;
    let hi = c.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (c[mid] > target) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  private acceptable(r: Prepared, at: Position): boolean {
    const size = this.options.tileSize;
    return r.validity.nodataFraction({ x: at.x, y: at.y, w: size, h: size }) <= this.options.maxNodataFraction;
  }

  private drawUniform(r: Prepared): Position {
    const tries = rejectionBudget(r.validPositionShare);
    for (let i = 0; i < tries; i++) {
      const at = { x: this.rng.int(r.maxX + 1), y: this.rng.int(r.maxY + 1) };
      if (this.acceptable(r, at)) return at;
    }
    throw new UserError(`could not place a tile within the nodata limit in ${r.label} after ${tries} tries; raise --max-nodata or leave it out`);
  }

  private drawNeighbor(r: Prepared, a: Position): Position | undefined {
    for (let i = 0; i < NEIGHBOR_TRIES; i++) {
      const at = {
        x: this.rng.intBetween(Math.max(0, a.x - r.radius.x), Math.min(r.maxX, a.x + r.radius.x)),
        y: this.rng.intBetween(Math.max(0, a.y - r.radius.y), Math.min(r.maxY, a.y + r.radius.y)),
      };
      if (this.acceptable(r, at)) return at;
    }
    return undefined;
  }

  /** A window that does not overlap the anchor's but lies within two tiles of it; undefined where none is valid. */
  private drawAdjacent(r: Prepared, a: Position): Position | undefined {
    const t = this.options.tileSize;
    for (let i = 0; i < NEIGHBOR_TRIES; i++) {
      const at = {
        x: this.rng.intBetween(Math.max(0, a.x - 2 * t), Math.min(r.maxX, a.x + 2 * t)),
        y: this.rng.intBetween(Math.max(0, a.y - 2 * t), Math.min(r.maxY, a.y + 2 * t)),
      };
      if (Math.max(Math.abs(at.x - a.x), Math.abs(at.y - a.y)) >= t && this.acceptable(r, at)) return at;
    }
    return undefined;
  }

  private drawFarFrom(r: Prepared, a: Position): Position | undefined {
    const tries = rejectionBudget(r.validPositionShare);
    for (let i = 0; i < tries; i++) {
      const at = { x: this.farCoordinate(a.x, r.radius.x, r.maxX), y: this.farCoordinate(a.y, r.radius.y, r.maxY) };
      if (this.acceptable(r, at)) return at;
    }
    return undefined;
  }

  /** Uniform over 0..max excluding anchor ± radius; `prepare` guarantees both sides are not both empty. */
  private farCoordinate(anchor: number, radius: number, max: number): number {
    const below = Math.max(0, anchor - radius);
    const above = Math.max(0, max - (anchor + radius));
    const k = this.rng.int(below + above);
    return k < below ? k : anchor + radius + 1 + (k - below);
  }
}

interface Position {
  x: number;
  y: number;
}

/** Enough tries that a raster with this share of valid positions fails with probability about e^-30. */
function rejectionBudget(validShare: number): number {
  return Math.ceil(30 / Math.max(validShare, 1e-9));
}

function prepare(r: SamplerRaster, tileSize: number, maxNodata: number, sameRasterDistant: boolean): Prepared {
  const size = `${r.width} x ${r.height} px`;
  if (r.width < tileSize || r.height < tileSize) throw new UserError(`${r.label} (${size}) is smaller than one ${tileSize} px tile; pick a smaller tile size or leave it out`);
  if (r.width !== r.validity.width || r.height !== r.validity.height) throw new RangeError(`${r.label}: validity mask size differs from the raster`);
  const maxX = r.width - tileSize;
  const maxY = r.height - tileSize;
  for (const axis of ['x', 'y'] as const) {
    if (!Number.isInteger(r.radius[axis]) || r.radius[axis] < 1) throw new UserError(`neighborhood radius in ${r.label} is ${r.radius[axis]} px along ${axis}; it is too small for any neighbor (at least 1 px)`);
  }
  // Every anchor has a position farther than the radius on an axis exactly when the span exceeds twice the radius.
  if (sameRasterDistant && (maxX < 2 * (r.radius.x + 1) - 1 || maxY < 2 * (r.radius.y + 1) - 1)) {
    throw new UserError(
      `neighborhood radius ${r.radius.x} x ${r.radius.y} px is too large for same-raster distant tiles in ${r.label} (${size}, ${tileSize} px tiles): ` +
        `a distant tile must lie beyond the radius on both axes, which needs width and height > tile + 2 x radius; use a smaller radius or tile, ` +
        `or a cross-raster probability of 1`,
    );
  }
  const positions = (maxX + 1) * (maxY + 1);
  const step = Math.max(1, Math.ceil(Math.sqrt(positions / POSITION_CHECKS)));
  let checked = 0;
  let valid = 0;
  for (let y = 0; y <= maxY; y += step) {
    for (let x = 0; x <= maxX; x += step) {
      checked++;
      if (r.validity.nodataFraction({ x, y, w: tileSize, h: tileSize }) <= maxNodata) valid++;
    }
  }
  if (valid === 0 || r.validity.validPixels === 0) {
    throw new UserError(`${r.label} has no valid ${tileSize} px tile: every window has more than ${maxNodata * 100}% nodata; leave it out or raise --max-nodata`);
  }
  return { ...r, maxX, maxY, validPositionShare: valid / checked };
}
