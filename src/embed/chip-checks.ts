import { UserError } from '../errors.ts';
import type { RasterInfo } from '../ingest/index.ts';
import { pixelSizeMetres } from '../sampling/index.ts';
import type { RasterRecord, Store } from '../store/index.ts';
import type { ModelCard } from '../train/index.ts';

/** A chip whose pixels are this many times larger or smaller than the model's shows other things at another scale. */
const PIXEL_SIZE_RATIO = 2;

/** What a chip is compared against: the sample type and pixel sizes of the rasters the model was trained on. */
export interface ChipReference {
  model: string;
  tileSize: number;
  /** Absent where none of the model's rasters is in the catalog any more. */
  dtype?: string;
  /** The smallest and largest pixel side of those rasters, in metres. */
  pixelSize?: { min: number; max: number };
}

function pixelSideMetres(r: { geotransform: number[]; height: number }, geographic: boolean): number {
  const s = pixelSizeMetres(r.geotransform, { geographic, height: r.height });
  return Math.max(s.x, s.y);
}

const isGeographic = (proj4: string | null | undefined) => /\+proj=longlat\b/.test(proj4 ?? '');

/** The model's training rasters, found in the catalog by content hash (ids change when a raster is re-ingested). */
export async function chipReference(store: Store, card: ModelCard): Promise<ChipReference> {
  const hashes = new Set(card.rasters.map((r) => r.contentHash));
  const rasters = (await store.listRasters()).filter((r) => hashes.has(r.contentHash));
  const sides = rasters.filter((r) => r.georeferenced).map((r: RasterRecord) => pixelSideMetres(r, isGeographic(r.crsDef)));
  return {
    model: card.name,
    tileSize: card.tileSize,
    dtype: rasters[0]?.dtype,
    pixelSize: sides.length ? { min: Math.min(...sides), max: Math.max(...sides) } : undefined,
  };
}

const metres = (m: number) => `${m < 10 ? m.toFixed(1) : m.toFixed(0)} m`;

/**
 * Refuses (422) a chip of another sample type than the model's rasters: another sensor, whose tiles the model never
 * saw (with pooled normalization its numbers would even be scaled as if they were the model's). Returns what the caller should be told about the rest:
 * a pixel size far from the model's, and the centre crop of a chip larger than a tile.
 */
export function checkChip(chip: RasterInfo, ref: ChipReference): string[] {
  if (ref.dtype && chip.dtype !== ref.dtype) {
    throw new UserError(
      `the chip's samples are ${chip.dtype}, but model '${ref.model}' was trained on ${ref.dtype} rasters: a chip from another sensor, whose distances to the model's tiles would mean nothing; send a ${ref.dtype} chip from the same kind of imagery`,
      { status: 422 },
    );
  }
  const warnings: string[] = [];
  if (ref.pixelSize) {
    const { min, max } = ref.pixelSize;
    const model = min === max ? metres(min) : `${metres(min)} to ${metres(max)}`;
    if (!chip.georeferenced) {
      warnings.push(`the chip has no georeferencing, so its pixel size could not be compared with the ${model} of model '${ref.model}'`);
    } else {
      const side = pixelSideMetres(chip, isGeographic(chip.crs?.proj4));
      if (side > PIXEL_SIZE_RATIO * max || side < min / PIXEL_SIZE_RATIO) {
        const ratio = side > max ? side / max : min / side;
        warnings.push(`the chip's pixels are ${metres(side)}, ${ratio.toFixed(1)}x those of model '${ref.model}' (${model}): the neighbours may say little; resample the chip to about ${metres(max)}`);
      }
    }
  }
  const { tileSize } = ref;
  if (chip.width > tileSize || chip.height > tileSize) {
    const window = centreWindow(chip, tileSize);
    warnings.push(`the chip is ${chip.width}x${chip.height} px; only its central ${tileSize}x${tileSize} px (from x ${window.x}, y ${window.y}) was embedded, as model '${ref.model}' reads ${tileSize}-px tiles`);
  }
  return warnings;
}

/** The tile-sized window at the chip's centre: what is embedded. */
export function centreWindow(chip: { width: number; height: number }, tileSize: number) {
  return { x: Math.floor((chip.width - tileSize) / 2), y: Math.floor((chip.height - tileSize) / 2), w: tileSize, h: tileSize };
}
