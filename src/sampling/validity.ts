import { pixelIsNodata, type PixelWindow, type RasterSource } from './source.ts';

/** Above this many cells the mask pools pixels into square cells, so memory stays bounded on huge rasters. */
const MAX_CELLS = 4_000_000;
const READ_ROWS = 256;

/**
 * Where a raster's nodata lies, as a summed-area table of nodata counts over square cells: any window's nodata
 * count comes in O(1). With one-pixel cells (every raster up to MAX_CELLS pixels) the count is exact; with
 * larger cells it counts every nodata pixel of each cell the window touches, an upper bound, so a limit on the
 * nodata fraction is never exceeded.
 */
export class ValidityMask {
  private constructor(
    readonly width: number,
    readonly height: number,
    /** Side of one cell in pixels. */
    readonly cell: number,
    private readonly cols: number,
    private readonly rows: number,
    /** (rows + 1) x (cols + 1) prefix sums of per-cell nodata counts. */
    private readonly table: Float64Array,
  ) {}

  /** A mask from per-pixel nodata flags (row-major, 1 = nodata). */
  static fromFlags(width: number, height: number, nodataFlags: ArrayLike<number>, cell = cellSide(width, height)): ValidityMask {
    const cols = Math.ceil(width / cell);
    const rows = Math.ceil(height / cell);
    const counts = new Float64Array(cols * rows);
    for (let y = 0; y < height; y++) {
      const rowBase = Math.floor(y / cell) * cols;
      for (let x = 0; x < width; x++) if (nodataFlags[y * width + x]) counts[rowBase + Math.floor(x / cell)]++;
    }
    return new ValidityMask(width, height, cell, cols, rows, prefixSums(counts, cols, rows));
  }

  /** Reads the whole raster once, in row strips, flagging pixels that are nodata in all of `bands`. */
  static async ofSource(source: RasterSource, bands: number[]): Promise<ValidityMask> {
    const { width, height } = source;
    const cell = cellSide(width, height);
    const cols = Math.ceil(width / cell);
    const rows = Math.ceil(height / cell);
    const counts = new Float64Array(cols * rows);
    for (let y0 = 0; y0 < height; y0 += READ_ROWS) {
      const h = Math.min(READ_ROWS, height - y0);
      const values = await source.readWindow({ x: 0, y: y0, w: width, h }, bands);
      const nb = bands.length;
      for (let r = 0; r < h; r++) {
        const rowBase = Math.floor((y0 + r) / cell) * cols;
        for (let x = 0; x < width; x++) {
          if (pixelIsNodata(values, (r * width + x) * nb, nb, source.nodata)) counts[rowBase + Math.floor(x / cell)]++;
        }
      }
    }
    return new ValidityMask(width, height, cell, cols, rows, prefixSums(counts, cols, rows));
  }

  /** Nodata pixels in the whole raster. */
  get nodataPixels(): number {
    return this.table[this.table.length - 1];
  }

  get validPixels(): number {
    return this.width * this.height - this.nodataPixels;
  }

  /** The window's nodata fraction (exact with one-pixel cells, else an upper bound). */
  nodataFraction({ x, y, w, h }: PixelWindow): number {
    const c0 = Math.floor(x / this.cell);
    const r0 = Math.floor(y / this.cell);
    const c1 = Math.ceil((x + w) / this.cell);
    const r1 = Math.ceil((y + h) / this.cell);
    const stride = this.cols + 1;
    const t = this.table;
    const count = t[r1 * stride + c1] - t[r0 * stride + c1] - t[r1 * stride + c0] + t[r0 * stride + c0];
    return Math.min(1, count / (w * h));
  }
}

function cellSide(width: number, height: number): number {
  return Math.max(1, Math.ceil(Math.sqrt((width * height) / MAX_CELLS)));
}

function prefixSums(counts: Float64Array, cols: number, rows: number): Float64Array {
  const stride = cols + 1;
  const table = new Float64Array((rows + 1) * stride);
  for (let r = 0; r < rows; r++) {
    let rowSum = 0;
    for (let c = 0; c < cols; c++) {
      rowSum += counts[r * cols + c];
      table[(r + 1) * stride + c + 1] = table[r * stride + c + 1] + rowSum;
    }
  }
  return table;
}
