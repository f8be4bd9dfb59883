import { basename } from 'node:path';
import { UserError } from '../errors.ts';
import { openStoredRaster } from '../ingest/index.ts';
import { coRegisteredStacks } from '../sampling/index.ts';
import type { RasterRecord, Store, TileRecord } from '../store/index.ts';

/** Windows scored for water at most: plenty to find a lake and a field, and quick on a large raster. */
const MAX_SCORED = 1000;

export interface ExampleTile {
  tile: TileRecord;
  /** What the tile shows and when, e.g. "water on 2009-08-18". */
  label: string;
}

/** The queries the demo prints, on tiles picked for what they show rather than for their ids. */
export interface DemoExamples {
  similar: ExampleTile;
  /** How the tiles were picked, for the reader: "by id", "by mean NDWI ...". */
  picked: string;
  /** z(a) - z(b) + z(c) should land near `expected`; absent (with `why`) where the imagery cannot give one. */
  analogy?: { a: ExampleTile; b: ExampleTile; c: ExampleTile; expected: ExampleTile };
  why?: string;
}

/** A raster's date from a NAIP-style name (m_..._20090818.tif), else its catalog id. */
function dateOf(r: RasterRecord): string {
  const m = /(\d{4})(\d{2})(\d{2})\D*\.tiff?$/i.exec(basename(r.uri));
  return m ? `${m[1]}-${m[2]}-${m[3]}` : `raster ${r.id}`;
}

/** The largest stack of co-registered rasters, earliest date first: the same windows show the same ground. */
function largestStack(rasters: RasterRecord[]): RasterRecord[] {
  const byStack = new Map<string, RasterRecord[]>();
  for (const [id, stack] of coRegisteredStacks(rasters)) {
    byStack.set(stack, [...(byStack.get(stack) ?? []), rasters.find((r) => r.id === id)!]);
  }
  const largest = [...byStack.values()].sort((a, b) => b.length - a.length)[0] ?? rasters.slice(0, 1);
  return largest.sort((a, b) => dateOf(a).localeCompare(dateOf(b)));
}

/**
 * Mean NDWI, (green - NIR) / (green + NIR), of each tile's valid pixels: above 0 for open water, far below it for
 * growing crops and grass. Bands 2 and 4 are green and near-infrared in NAIP's R,G,B,NIR order.
 */
async function meanNdwi(raster: RasterRecord, tiles: TileRecord[]): Promise<number[]> {
  const file = await openStoredRaster(raster);
  try {
    const scores: number[] = [];
    for (const t of tiles) {
      const { data: [green, nir] } = await file.readWindow({ x: t.x, y: t.y, w: t.size, h: t.size }, [2, 4]);
      let sum = 0;
      let n = 0;
      for (let i = 0; i < green.length; i++) {
        if (green[i] === raster.nodata || nir[i] === raster.nodata || green[i] + nir[i] === 0) continue;
        sum += (green[i] - nir[i]) / (green[i] + nir[i]);
        n++;
      }
      scores.push(n ? sum / n : NaN);
    }
    return scores;
  } finally {
    await file.close();
  }
}

/**
 * Picks the demo's example tiles among `rasters`: the tile with the most open water and the one with the densest
 * vegetation on the earliest date, and, where a later date of the same place exists, the analogy "field then ->
 * field later, as water then -> ?", whose answer should be the same lake on the later date.
 */
export async function demoExamples(store: Store, rasters: RasterRecord[]): Promise<DemoExamples> {
  const stack = largestStack(rasters);
  const [first, last] = [stack[0], stack[stack.length - 1]];
  const firstTiles = await store.tilesOfRaster(first.id);
  if (firstTiles.length === 0) throw new UserError(`${first.uri} has no tiles to show (every window has too much nodata)`);
  const plain = (why: string): DemoExamples => ({ similar: { tile: firstTiles[0], label: `the first tile of ${dateOf(first)}` }, picked: 'by id', why });
  if (first.bandCount < 4) return plain('finding water and fields needs 4-band R,G,B,NIR imagery');
  const later = new Map((await store.tilesOfRaster(last.id)).map((t) => [`${t.x},${t.y}`, t]));
  // Windows on both dates, so that each pick has a counterpart on the later one.
  const shared = firstTiles.filter((t) => later.has(`${t.x},${t.y}`));
  const step = Math.max(1, Math.ceil(shared.length / MAX_SCORED));
  const candidates = shared.filter((_, i) => i % step === 0);
  const ndwi = await meanNdwi(first, candidates);
  const order = candidates.map((_, i) => i).filter((i) => Number.isFinite(ndwi[i])).sort((i, j) => ndwi[j] - ndwi[i]);
  if (order.length === 0) return plain(`no window of ${dateOf(first)} is on ${dateOf(last)} too`);
  const [wet, dry] = [order[0], order[order.length - 1]];
  const water = candidates[wet];
  const similar = { tile: water, label: `water on ${dateOf(first)}` };
  const picked = `by mean NDWI, (green - NIR) / (green + NIR), on ${dateOf(first)}: water the highest (${ndwi[wet].toFixed(2)}), field the lowest (${ndwi[dry].toFixed(2)})`;
  if (!(ndwi[wet] > 0 && ndwi[dry] < 0)) return { similar, picked, why: `no tile looks like open water (NDWI > 0) or a green field (NDWI < 0)` };
  if (first === last) return { similar, picked, why: `the analogy needs a second date of the same place; ${dateOf(first)} is the only one` };
  const field = candidates[dry];
  const at = (t: TileRecord) => later.get(`${t.x},${t.y}`)!;
  return {
    similar,
    picked,
    analogy: {
      a: { tile: at(field), label: `the same field on ${dateOf(last)}` },
      b: { tile: field, label: `field on ${dateOf(first)}` },
      c: { tile: water, label: `water on ${dateOf(first)}` },
      expected: { tile: at(water), label: `the same water on ${dateOf(last)}` },
    },
  };
}
