import { GeoTIFF } from 'geotiff';
import type { Polygon } from 'geojson';
import { UserError, errorMessage } from '../errors.ts';
import { BlockCache } from './block-cache.ts';
import { compressionName, copyBlockRect, isSupportedCompression, unsupportedCompression, type BlockCodec, type BlockRect, type BlockTarget } from './codecs.ts';
import { acquisitionDate, type AcquisitionDate } from './acquisition-date.ts';
import { crsFromGeoKeys, toWgs84, type Crs } from './crs.ts';
import { DecodeError, DecodePool, sharedDecodePool } from './decode-pool.ts';
import { applyGeotransform, footprintValid, geotransformFromTags, PIXEL_SPACE, scaleGeotransform, windowFootprint, type Geotransform, type GeorefTags } from './georef.ts';
import { openSource, type ByteSource, type SourceOptions } from './source.ts';

export type Dtype = 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64';
export type SampleArray = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array;

const ARRAYS = {
  uint8: Uint8Array, int8: Int8Array, uint16: Uint16Array, int16: Int16Array,
  uint32: Uint32Array, int32: Int32Array, float32: Float32Array, float64: Float64Array,
} as const;

export function newSampleArray(dtype: Dtype, lengthOrBuffer: number | ArrayBuffer): SampleArray {
  return new ARRAYS[dtype](lengthOrBuffer as ArrayBuffer);
}

/** An ArrayBuffer of `bytes` whose contents are whatever the allocator had: the caller writes every byte. */
function unzeroed(bytes: number): ArrayBuffer {
  return Buffer.allocUnsafeSlow(bytes).buffer as ArrayBuffer;
}

/** A pixel window: top-left column and row, width and height. It may reach past the raster's edges. */
export interface PixelWindow {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Samples of one window, band after band, plus which pixels hold data. */
export interface WindowData {
  window: PixelWindow;
  /** The 1-based bands in `data`, in order. */
  bands: number[];
  /** One row-major array of `w * h` samples per band. Pixels outside the raster hold the nodata value (or 0). */
  data: SampleArray[];
  /**
   * 1 where the pixel is inside the raster and not nodata in every band read (rasterio's dataset mask: a pixel
   * is missing only when all its bands are). Per-band tests are `data[i][p] !== raster.nodata`.
   */
  valid: Uint8Array;
  validCount: number;
}

export interface RasterOptions extends SourceOptions {
  /** Decode pool (default: the process-wide one, a thread per core). */
  pool?: DecodePool;
  /** Bytes of decoded blocks kept for repeated window reads (default 64 MiB; 0 keeps none). */
  cacheBytes?: number;
  /** Open a raster whose georeferencing is missing or yields no valid WGS84 footprint in pixel space. */
  allowUngeoreferenced?: boolean;
  /** The largest decoded block accepted (default 256 MiB). */
  maxBlockBytes?: number;
  /** Read this reduced-resolution level instead of the full image: 1 is the largest overview (default 0). */
  overview?: number;
  /**
   * Or the level for a target pixel size, in CRS units (metres for projected rasters): the coarsest level whose
   * pixels are no larger than this, as GDAL picks an overview for a read, so the tiles never lose detail asked for.
   */
  resolution?: number;
}

/** Metadata of an open raster, plain data. */
export interface RasterInfo {
  uri: string;
  sizeBytes: number;
  width: number;
  height: number;
  bandCount: number;
  dtype: Dtype;
  /** GDAL_NODATA, or null. NaN for float rasters that mark nodata with NaN. */
  nodata: number | null;
  /** Pixel to CRS coordinates; the identity (pixel space) when the file is not georeferenced. */
  geotransform: Geotransform;
  georeferenced: boolean;
  /** Null when the file has no georeferencing or names no CRS. */
  crs: Crs | null;
  epsg: number | null;
  blockWidth: number;
  blockHeight: number;
  tiled: boolean;
  interleave: 'pixel' | 'band';
  compression: string;
  /** From GDAL metadata, the file name or the TIFF DateTime tag; null when none has a date. */
  acquired: AcquisitionDate | null;
  /** The level read: 0 for full resolution, n for the file's n-th largest overview. */
  overview: number;
}

/** The largest decoded block accepted; real GeoTIFF blocks are a few MiB at most. */
const MAX_BLOCK_BYTES = 256 * 2 ** 20;

const SAMPLE_FORMATS: Record<number, 'uint' | 'int' | 'float'> = { 1: 'uint', 2: 'int', 3: 'float' };

/**
 * Opens a GeoTIFF or COG from a path, file:// or http(s):// URL. Only headers are read; pixels come later, block
 * by block, through `readWindow`. Problems with the file are UserErrors with a one-line message.
 */
export async function openRaster(uri: string, opts: RasterOptions = {}): Promise<Raster> {
  const source = await openSource(uri, opts);
  try {
    return await Raster.fromSource(source, opts);
  } catch (err) {
    await source.close().catch(() => {});
    throw err;
  }
}

/**
 * Reopens a catalogued raster at the level it was tiled from. One ingested with --allow-ungeoreferenced opens
 * the same way again, so that reading its pixels later does not refuse what ingest accepted.
 */
export function openStoredRaster(record: { uri: string; overview: number; georeferenced: boolean }, opts: RasterOptions = {}): Promise<Raster> {
  return openRaster(record.uri, { ...opts, overview: record.overview, allowUngeoreferenced: opts.allowUngeoreferenced || !record.georeferenced });
}

export class Raster implements RasterInfo {
  readonly uri: string;
  readonly sizeBytes: number;
  readonly width: number;
  readonly height: number;
  readonly bandCount: number;
  readonly dtype: Dtype;
  readonly nodata: number | null;
  readonly geotransform: Geotransform;
  readonly georeferenced: boolean;
  readonly crs: Crs | null;
  readonly epsg: number | null;
  readonly blockWidth: number;
  readonly blockHeight: number;
  readonly tiled: boolean;
  readonly interleave: 'pixel' | 'band';
  readonly compression: string;
  readonly acquired: AcquisitionDate | null;
  readonly overview: number;

  /** Block bytes that decode threads read from the file themselves. */
  private fileBytesRead = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly blocksAcross: number;
  private readonly blocksDown: number;
  private readonly bytesPerSample: number;
  private lonLat?: (x: number, y: number) => [number, number];

  private constructor(
    private readonly source: ByteSource,
    private readonly codec: Omit<BlockCodec, 'rows'>,
    private readonly offsets: ArrayLike<number>,
    private readonly byteCounts: ArrayLike<number>,
    private readonly pool: DecodePool,
    private readonly cache: BlockCache,
    info: RasterInfo,
  ) {
    this.uri = info.uri;
    this.sizeBytes = info.sizeBytes;
    this.width = info.width;
    this.height = info.height;
    this.bandCount = info.bandCount;
    this.dtype = info.dtype;
    this.nodata = info.nodata;
    this.geotransform = info.geotransform;
    this.georeferenced = info.georeferenced;
    this.crs = info.crs;
    this.epsg = info.epsg;
    this.blockWidth = info.blockWidth;
    this.blockHeight = info.blockHeight;
    this.tiled = info.tiled;
    this.interleave = info.interleave;
    this.compression = info.compression;
    this.acquired = info.acquired;
    this.overview = info.overview;
    this.blocksAcross = Math.ceil(this.width / this.blockWidth);
    this.blocksDown = Math.ceil(this.height / this.blockHeight);
    this.bytesPerSample = ARRAYS[this.dtype].BYTES_PER_ELEMENT;
  }

  static async fromSource(source: ByteSource, opts: RasterOptions = {}): Promise<Raster> {
    if (source.size === 0) throw new UserError('empty file (0 bytes)');
    if (opts.overview !== undefined && opts.resolution !== undefined) throw new UserError('--overview and --resolution both choose the level: give one');
    if (opts.overview !== undefined && !(Number.isInteger(opts.overview) && opts.overview >= 0)) throw new UserError(`--overview must be an integer >= 0, got ${opts.overview}`);
    if (opts.resolution !== undefined && !(opts.resolution > 0 && Number.isFinite(opts.resolution))) throw new UserError(`--resolution must be a positive number, got ${opts.resolution}`);
    let base, overviews;
    try {
      const tiff = await GeoTIFF.fromSource(source as never);
      base = await tiff.getImage(0);
      // Only a request for a coarser level walks the file's other directories (over HTTP, more range requests).
      overviews = opts.overview || opts.resolution !== undefined ? await overviewImages(tiff, base) : [];
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw new UserError(describeParseError(err, source));
    }
    const level = opts.resolution === undefined ? opts.overview ?? 0 : levelForResolution(base, overviews, opts.resolution);
    const image = level === 0 ? base : overviews[level - 1];
    if (!image) {
      throw new UserError(`--overview ${level} does not exist: the file has ${overviews.length === 0 ? 'no overviews' : `${overviews.length} overview(s), 1 to ${overviews.length}`}`);
    }
    // Pixels, blocks and codec come from the level's directory; georeferencing, nodata and dates from the full
    // image's, which overview directories usually lack.
    const fd = image.getFileDirectory();
    const baseFd = base.getFileDirectory();
    const width = image.getWidth();
    const height = image.getHeight();
    if (!(width > 0 && height > 0)) throw new UserError(`zero-size image (${width} x ${height} pixels)`);
    const bandCount = image.getSamplesPerPixel();
    if (!(bandCount >= 1)) throw new UserError(`corrupt TIFF directory: SamplesPerPixel is ${bandCount}`);
    const compression = Number(fd.getValue('Compression') ?? 1);
    if (!isSupportedCompression(compression)) {
      throw new UserError(unsupportedCompression(compression).message);
    }
    const dtype = dtypeOf(image, bandCount);
    const tiled = image.isTiled;
    const blockWidth = tiled ? image.getTileWidth() : width;
    const blockHeight = tiled ? image.getTileHeight() : Math.min(Number(fd.getValue('RowsPerStrip') ?? height), height);
    const interleave = bandCount > 1 && image.planarConfiguration === 2 ? 'band' : 'pixel';
    // A corrupt header can declare blocks no file holds; refuse them before decoding allocates them.
    const blockBytes = blockWidth * blockHeight * (interleave === 'band' ? 1 : bandCount) * ARRAYS[dtype].BYTES_PER_ELEMENT;
    const maxBlockBytes = opts.maxBlockBytes ?? MAX_BLOCK_BYTES;
    if (!(blockWidth > 0 && blockHeight > 0) || blockBytes > maxBlockBytes) {
      throw new UserError(`corrupt or unsupported TIFF: ${blockWidth} x ${blockHeight} pixel blocks of ${bandCount} band(s) would decode to ${(blockBytes / 2 ** 20).toFixed(1)} MiB each (limit ${maxBlockBytes / 2 ** 20} MiB)`);
    }
    const [offsets, byteCounts] = await Promise.all([
      fd.loadValue(tiled ? 'TileOffsets' : 'StripOffsets'),
      fd.loadValue(tiled ? 'TileByteCounts' : 'StripByteCounts'),
    ]).catch((err: unknown) => {
      throw new UserError(`corrupt TIFF directory: cannot read block offsets (${errorMessage(err)})`);
    });
    const blocks = Math.ceil(width / blockWidth) * Math.ceil(height / blockHeight) * (interleave === 'band' ? bandCount : 1);
    if (!offsets || !byteCounts || offsets.length < blocks || byteCounts.length < blocks) {
      throw new UserError(`corrupt TIFF directory: ${offsets?.length ?? 0} block offsets for ${blocks} blocks`);
    }

    checkBlockRanges(toNumbers(offsets), toNumbers(byteCounts), blocks, blockBytes, source.size);

    const tags = georefTags(baseFd);
    let keys, crs, nodata;
    let gt: Geotransform | null;
    try {
      keys = base.getGeoKeys();
      const baseGt = geotransformFromTags({ ...tags, rasterType: keys?.GTRasterTypeGeoKey as number | undefined });
      gt = baseGt && scaleGeotransform(baseGt, base.getWidth() / width, base.getHeight() / height);
      crs = gt ? crsFromGeoKeys(keys) : null;
      nodata = base.getGDALNoData();
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw new UserError(`corrupt georeferencing tags: ${errorMessage(err).split('\n')[0]}`);
    }

    if (gt && crs && !wgs84FootprintValid(gt, crs, width, height)) {
      if (!opts.allowUngeoreferenced) {
        throw new UserError('its georeferencing gives coordinates outside WGS84 (a footprint beyond ±180/±90 or not finite); pass --allow-ungeoreferenced to ingest it with pixel-space footprints');
      }
      gt = null;
    }

    const info: RasterInfo = {
      uri: source.uri,
      sizeBytes: source.size,
      width,
      height,
      bandCount,
      dtype,
      nodata: nodata === null || Number.isNaN(nodata) && !dtype.startsWith('float') ? null : nodata,
      geotransform: gt && crs ? gt : [...PIXEL_SPACE],
      georeferenced: Boolean(gt && crs),
      crs: gt ? crs : null,
      epsg: gt && crs ? crs.epsg : null,
      blockWidth,
      blockHeight,
      tiled,
      interleave,
      compression: compressionName(compression),
      acquired: acquisitionDate(source.uri, await dateTags(baseFd)),
      overview: level,
    };
    const predictor = Number((await fd.loadValue('Predictor')) ?? 1);
    if (![1, 2, 3].includes(predictor)) throw new UserError(`unsupported TIFF predictor ${predictor}`);
    if (predictor === 3 && !dtype.startsWith('float')) throw new UserError(`corrupt TIFF: floating-point predictor 3 on ${dtype} samples`);
    const codec: Omit<BlockCodec, 'rows'> = {
      compression,
      predictor,
      maxBytes: blockBytes,
      bytesPerSample: ARRAYS[dtype].BYTES_PER_ELEMENT,
      samples: interleave === 'band' ? 1 : bandCount,
      width: blockWidth,
      littleEndian: image.littleEndian,
    };
    if (compression === 34887) {
      // LERC's samples come back native-endian; its parameters say whether DEFLATE or ZSTD wraps the blob.
      codec.littleEndian = true;
      const params = fd.hasTag('LercParameters' as never) ? await fd.loadValue('LercParameters' as never) as ArrayLike<number> | undefined : undefined;
      codec.lercAdditional = params ? Number(params[1] ?? 0) : 0;
    }
    if (compression === 50001 && (dtype !== 'uint8' || interleave !== 'pixel' || (bandCount !== 3 && bandCount !== 4))) {
      throw new UserError(`unsupported WebP with ${bandCount} ${dtype} band(s), ${interleave}-interleaved (WebP holds 3 or 4 pixel-interleaved 8-bit bands)`);
    }
    if (compression === 7) {
      if (dtype !== 'uint8') throw new UserError(`unsupported JPEG with ${dtype} samples (8-bit JPEG only)`);
      const tables = fd.hasTag('JPEGTables') ? await fd.loadValue('JPEGTables') : undefined;
      if (tables) codec.tables = Uint8Array.from(tables as ArrayLike<number>);
      const photometric = Number(fd.getValue('PhotometricInterpretation') ?? 1);
      if (photometric === 6) {
        if (bandCount !== 3 || interleave !== 'pixel') throw new UserError(`unsupported JPEG YCbCr with ${bandCount} band(s), ${interleave}-interleaved`);
        codec.ycbcr = true;
      }
    }
    return new Raster(source, codec, toNumbers(offsets), toNumbers(byteCounts), opts.pool ?? sharedDecodePool(), new BlockCache(opts.cacheBytes ?? 64 * 2 ** 20), info);
  }

  /** Plain metadata, e.g. for JSON. */
  info(): RasterInfo {
    const { uri, sizeBytes, width, height, bandCount, dtype, nodata, geotransform, georeferenced, crs, epsg, blockWidth, blockHeight, tiled, interleave, compression, acquired, overview } = this;
    return { uri, sizeBytes, width, height, bandCount, dtype, nodata, geotransform, georeferenced, crs, epsg, blockWidth, blockHeight, tiled, interleave, compression, acquired, overview };
  }

  /** Bytes read from the file or transferred over HTTP so far. */
  get bytesRead(): number {
    return this.source.bytesRead + this.fileBytesRead;
  }

  /** A cheap identity of the content where the source has one (HTTP ETag or Last-Modified), else null. */
  get validator(): string | null {
    return this.source.validator;
  }

  /**
   * Reads the samples of `bands` (1-based; default all) in `win`, decoding only the blocks it touches; decoded
   * blocks stay in this raster's LRU cache for later reads. A raster opened with `cacheBytes: 0` returns band
   * arrays over one SharedArrayBuffer, which the decode threads filled.
   */
  async readWindow(win: PixelWindow, bands?: number[]): Promise<WindowData> {
    const { x, y, w, h } = win;
    if (!(Number.isInteger(x) && Number.isInteger(y) && Number.isInteger(w) && Number.isInteger(h) && w > 0 && h > 0)) {
      throw new UserError(`invalid window ${JSON.stringify(win)}: x, y, w, h must be integers with w, h > 0`);
    }
    const wanted = bands ?? Array.from({ length: this.bandCount }, (_, i) => i + 1);
    for (const b of wanted) {
      if (!Number.isInteger(b) || b < 1 || b > this.bandCount) throw new UserError(`band ${b} does not exist (the raster has ${this.bandCount})`);
    }
    const fill = this.nodata ?? 0;
    const x0 = Math.max(x, 0);
    const y0 = Math.max(y, 0);
    const x1 = Math.min(x + w, this.width);
    const y1 = Math.min(y + h, this.height);
    // Without a cache (streaming reads, as ingest makes), the decode threads write each block's part straight
    // into the window, so its samples live in shared memory and the main thread never handles a block.
    const streaming = this.cache.maxBytes <= 0;
    const planeBytes = w * h * this.bytesPerSample;
    const shared = streaming ? new SharedArrayBuffer(planeBytes * wanted.length) : undefined;
    // Blocks cover every pixel inside the raster, so only a window reaching past its edges needs filling first;
    // the other arrays are allocated unzeroed (zeroing them costs as much as decoding's copy into them).
    const data = wanted.map((_, k) => (shared
      ? new ARRAYS[this.dtype](shared as unknown as ArrayBuffer, k * planeBytes, w * h)
      : newSampleArray(this.dtype, unzeroed(planeBytes))));
    const inside = new Uint8Array(unzeroed(w * h));
    if (!(x0 === x && y0 === y && x1 === x + w && y1 === y + h)) {
      for (const d of data) d.fill(fill);
      inside.fill(0);
    }
    if (x0 >= x1 || y0 >= y1) return { window: { ...win }, bands: wanted, data, valid: inside, validCount: 0 };

    const jobs: Promise<void>[] = [];
    const place = (bx: number, by: number, plane: number, planes: number[], bands: SampleArray[]) => {
      const target = { rect: this.blockRect(bx, by, win), planes, bands };
      jobs.push(streaming
        ? this.loadBlock(bx, by, plane, target).then(() => {})
        : this.block(bx, by, plane).then((block) => copyBlockRect(block, this.codec, target.rect, planes, bands)));
    };
    for (let by = Math.floor(y0 / this.blockHeight); by * this.blockHeight < y1; by++) {
      for (let bx = Math.floor(x0 / this.blockWidth); bx * this.blockWidth < x1; bx++) {
        if (this.interleave === 'band') wanted.forEach((band, i) => place(bx, by, band - 1, [0], [data[i]]));
        else place(bx, by, 0, wanted.map((b) => b - 1), data);
      }
    }
    await Promise.all(jobs);

    for (let r = y0; r < y1; r++) inside.fill(1, (r - y) * w + (x0 - x), (r - y) * w + (x1 - x));
    const validCount = this.nodata === null ? (x1 - x0) * (y1 - y0) : this.maskNodata(inside, data, { x: x0 - x, y: y0 - y, w: x1 - x0, h: y1 - y0 }, w);
    return { window: { ...win }, bands: wanted, data, valid: inside, validCount };
  }

  /** Clears pixels of `part` (the window's part inside the raster) that are nodata in every band; returns how many stay valid. */
  private maskNodata(mask: Uint8Array, data: SampleArray[], part: PixelWindow, stride: number): number {
    const nd = this.nodata;
    const isNaN = Number.isNaN(nd);
    let count = 0;
    for (let r = part.y; r < part.y + part.h; r++) {
      for (let i = r * stride + part.x, end = i + part.w; i < end; i++) {
        let any = false;
        for (let b = 0; b < data.length && !any; b++) {
          const v = data[b][i];
          any = isNaN ? !Number.isNaN(v) : v !== nd;
        }
        if (any) count++;
        else mask[i] = 0;
      }
    }
    return count;
  }

  private rowsInBlock(by: number): number {
    // Tiles are padded to full size; the last strip holds only the rows that remain.
    return this.tiled ? this.blockHeight : Math.min(this.blockHeight, this.height - by * this.blockHeight);
  }

  /** A decoded block, through the cache. */
  private block(bx: number, by: number, plane: number): Promise<Uint8Array> {
    return this.cache.get(this.blockIndex(bx, by, plane), () => this.loadBlock(bx, by, plane) as Promise<Uint8Array>);
  }

  private blockIndex(bx: number, by: number, plane: number): number {
    return plane * this.blocksAcross * this.blocksDown + by * this.blocksAcross + bx;
  }

  /**
   * Reads and decodes one block: into a block of its own (resolved), or, given a target, straight into the
   * window's shared bands (resolving with nothing).
   */
  private async loadBlock(bx: number, by: number, plane: number, target?: BlockTarget): Promise<Uint8Array | undefined> {
    const index = this.blockIndex(bx, by, plane);
    const rows = this.rowsInBlock(by);
    const codec: BlockCodec = { ...this.codec, rows };
    const offset = this.offsets[index];
    const count = this.byteCounts[index];
    if (count === 0) {
      // A sparse block (GDAL writes none for all-nodata areas): it reads as nodata, NaN included, or 0 without one.
      const empty = newSampleArray(this.dtype, this.codec.width * rows * this.codec.samples);
      if (this.nodata !== null) empty.fill(this.nodata);
      const block = new Uint8Array(empty.buffer);
      if (!target) return block;
      copyBlockRect(block, codec, target.rect, target.planes, target.bands);
      return undefined;
    }
    if (offset + count > this.source.size) {
      throw new UserError(`truncated file: block ${index} needs bytes ${offset}-${offset + count} but the file ends at ${this.source.size}`);
    }
    const { fd } = this.source;
    let decoding: Promise<Uint8Array | undefined>;
    if (fd !== undefined) {
      decoding = this.pool.decode(codec, { file: { fd, offset, length: count } }, target);
      this.fileBytesRead += count;
    } else {
      const [stored] = await this.source.fetch([{ offset, length: count }]);
      if (stored.byteLength < count) throw new UserError(`truncated file: block ${index} came back short (${stored.byteLength} of ${count} bytes)`);
      decoding = this.pool.decode(codec, { bytes: new Uint8Array(stored) }, target);
    }
    // close() waits for these: a decode thread reading through the descriptor must finish before it is closed.
    const settled = decoding.then(() => {}, () => {});
    this.inFlight.add(settled);
    settled.then(() => this.inFlight.delete(settled));
    try {
      return await decoding;
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      throw new UserError(`corrupt block ${index} at byte ${offset}: ${errorMessage(err)}`);
    }
  }

  /** Where the part of block (bx, by) that falls in the window lies, in the block and in the window. */
  private blockRect(bx: number, by: number, win: PixelWindow): BlockRect {
    const x0 = Math.max(win.x, bx * this.blockWidth, 0);
    const x1 = Math.min(win.x + win.w, (bx + 1) * this.blockWidth, this.width);
    const y0 = Math.max(win.y, by * this.blockHeight, 0);
    const y1 = Math.min(win.y + win.h, by * this.blockHeight + this.rowsInBlock(by), this.height);
    return {
      blockX: x0 - bx * this.blockWidth, blockY: y0 - by * this.blockHeight, width: x1 - x0, height: y1 - y0,
      windowX: x0 - win.x, windowY: y0 - win.y, windowWidth: win.w,
    };
  }

  /** CRS coordinates of pixel (col, row); fractional values address inside a pixel, (0.5, 0.5) is its centre. */
  pixelToCrs(col: number, row: number): [number, number] {
    return applyGeotransform(this.geotransform, col, row);
  }

  /** WGS84 [lon, lat] of pixel (col, row). Throws for an ungeoreferenced raster. */
  pixelToLonLat(col: number, row: number): [number, number] {
    if (!this.crs || !this.georeferenced) throw new UserError(`${this.uri} is not georeferenced; it has no longitudes and latitudes`);
    this.lonLat ??= toWgs84(this.crs);
    const [cx, cy] = this.pixelToCrs(col, row);
    return this.lonLat(cx, cy);
  }

  /**
   * The RFC 7946 footprint of a window (default the whole raster) in WGS84, or in pixel space for an
   * ungeoreferenced raster. `edgePoints` vertices per edge follow the curvature of reprojected edges.
   */
  footprint(win: PixelWindow = { x: 0, y: 0, w: this.width, h: this.height }, edgePoints = 1): Polygon {
    const toLonLat = this.georeferenced ? (c: number, r: number) => this.pixelToLonLat(c, r) : (c: number, r: number) => this.pixelToCrs(c, r);
    return windowFootprint(win, toLonLat, edgePoints);
  }

  /** Releases the file or connection and the block cache. The decode pool is shared and stays. */
  async close(): Promise<void> {
    this.cache.clear();
    await Promise.all(this.inFlight);
    await this.source.close();
  }
}

/** Whether the raster's outline (16 points an edge) maps to valid WGS84 coordinates; a CRS proj4 rejects does not. */
function georefTags(fd: ReturnType<TiffImage['getFileDirectory']>): GeorefTags {
  return {
    ModelPixelScale: fd.getValue('ModelPixelScale') as number[] | undefined,
    ModelTiepoint: fd.getValue('ModelTiepoint') as number[] | undefined,
    ModelTransformation: fd.getValue('ModelTransformation') as number[] | undefined,
  };
}

/** The coarsest level (0 for the full image) whose pixel size, from the full image's georeferencing, is at most `target`. */
function levelForResolution(base: TiffImage, overviews: TiffImage[], target: number): number {
  const gt = geotransformFromTags(georefTags(base.getFileDirectory()));
  if (!gt) throw new UserError('--resolution needs a georeferenced raster (it is in CRS units); use --overview');
  const pixel = Math.hypot(gt[1], gt[4]);
  let level = 0;
  // A relative slack, so that a target equal to a level's size picks it despite rounding in the tags.
  overviews.forEach((image, i) => {
    if ((pixel * base.getWidth()) / image.getWidth() <= target * (1 + 1e-9)) level = i + 1;
  });
  return level;
}

/** Directories a file may chain; a corrupt chain can loop back on itself, so the walk stops here. */
const MAX_DIRECTORIES = 64;

type TiffImage = Awaited<ReturnType<GeoTIFF['getImage']>>;

/**
 * The file's overviews, largest first: the reduced-resolution directories (NewSubfileType bit 0) that are not
 * masks (bit 2), with the full image's band count, each smaller than the one before, as GDAL lists them. A
 * directory that does not parse ends the walk, so damage after the full image only costs its overviews.
 */
async function overviewImages(tiff: GeoTIFF, base: TiffImage): Promise<TiffImage[]> {
  const found: TiffImage[] = [];
  for (let i = 1; i < MAX_DIRECTORIES; i++) {
    let image: TiffImage;
    try {
      image = await tiff.getImage(i);
    } catch {
      break;
    }
    const subfileType = Number(image.getFileDirectory().getValue('NewSubfileType') ?? 0);
    if ((subfileType & 1) === 0 || (subfileType & 4) !== 0 || image.getSamplesPerPixel() !== base.getSamplesPerPixel()) continue;
    found.push(image);
  }
  found.sort((a, b) => b.getWidth() - a.getWidth());
  const levels: TiffImage[] = [];
  for (const image of found) {
    const previous = levels.at(-1) ?? base;
    if (image.getWidth() < previous.getWidth() || image.getHeight() < previous.getHeight()) levels.push(image);
  }
  return levels;
}

function wgs84FootprintValid(gt: Geotransform, crs: Crs, width: number, height: number): boolean {
  try {
    const toLonLat = toWgs84(crs);
    return footprintValid(windowFootprint({ x: 0, y: 0, w: width, h: height }, (c, r) => toLonLat(...applyGeotransform(gt, c, r)), 16));
  } catch {
    return false;
  }
}

function dtypeOf(image: { getSampleFormat(i?: number): number; getBitsPerSample(i?: number): number }, bands: number): Dtype {
  const format = image.getSampleFormat(0);
  const bits = image.getBitsPerSample(0);
  for (let i = 1; i < bands; i++) {
    if (image.getSampleFormat(i) !== format || image.getBitsPerSample(i) !== bits) {
      throw new UserError('unsupported sample format: bands differ in sample type');
    }
  }
  const kind = SAMPLE_FORMATS[format];
  const dtype = `${kind}${bits}`;
  if (!kind || !(dtype in ARRAYS)) {
    const formatName = { 1: 'unsigned integer', 2: 'signed integer', 3: 'floating point', 4: 'void', 5: 'complex integer', 6: 'complex float' }[format] ?? `format ${format}`;
    throw new UserError(`unsupported sample format: ${bits}-bit ${formatName} (supported: 8/16/32-bit integers, 32/64-bit floats)`);
  }
  return dtype as Dtype;
}

/**
 * The most decoded bytes a file may declare per byte it holds. DEFLATE cannot exceed 1032:1 and real LZW streams
 * stay well under that; the margin is for GDAL's sparse blocks (offset 0, byte count 0), which cost their
 * directory entry alone.
 */
const MAX_DECODED_RATIO = 8192;

/**
 * Refuses block tables that make a small file decode to a huge image: blocks sharing or overlapping bytes (GDAL's
 * sparse blocks excepted), a block storing more than any codec needs, or more decoded bytes than the ratio allows.
 */
function checkBlockRanges(offsets: ArrayLike<number>, counts: ArrayLike<number>, blocks: number, blockBytes: number, fileSize: number): void {
  const declared = blocks * blockBytes;
  if (declared > MAX_DECODED_RATIO * fileSize) {
    throw new UserError(`corrupt or hostile TIFF: ${blocks} blocks would decode to ${(declared / 2 ** 20).toFixed(0)} MiB from a ${fileSize}-byte file (more than ${MAX_DECODED_RATIO}:1)`);
  }
  // LZW can grow incompressible data by about half; nothing real stores more than twice the block.
  const maxStored = 2 * blockBytes + 1024;
  const stored: number[] = [];
  for (let i = 0; i < blocks; i++) {
    if (counts[i] > maxStored) throw new UserError(`corrupt TIFF: block ${i} stores ${counts[i]} bytes, more than its ${blockBytes} decoded bytes can need`);
    if (counts[i] > 0) stored.push(i);
  }
  stored.sort((a, b) => offsets[a] - offsets[b]);
  for (let k = 1; k < stored.length; k++) {
    const [a, b] = [stored[k - 1], stored[k]];
    if (offsets[a] + counts[a] > offsets[b]) {
      throw new UserError(`corrupt or hostile TIFF: blocks ${a} and ${b} share bytes (at byte ${offsets[b]})`);
    }
  }
}

function toNumbers(values: ArrayLike<number | bigint>): ArrayLike<number> {
  return typeof values[0] === 'bigint' ? Array.from(values as ArrayLike<bigint>, Number) : (values as ArrayLike<number>);
}

/** The text tags that may carry a date; a tag that cannot be read counts as absent, since no date is required. */
async function dateTags(fd: { hasTag(name: 'GDAL_METADATA' | 'DateTime'): boolean; loadValue(name: 'GDAL_METADATA' | 'DateTime'): Promise<unknown> }): Promise<{ gdalMetadata?: string; dateTime?: string }> {
  const text = async (name: 'GDAL_METADATA' | 'DateTime') => {
    if (!fd.hasTag(name)) return undefined;
    const v = await fd.loadValue(name).catch(() => undefined);
    return typeof v === 'string' ? v.slice(0, 65_536) : undefined;
  };
  return { gdalMetadata: await text('GDAL_METADATA'), dateTime: await text('DateTime') };
}

function describeParseError(err: unknown, source: ByteSource): string {
  const msg = errorMessage(err);
  if (/byte order|Invalid magic|Invalid TIFF/i.test(msg)) return 'not a TIFF file';
  if (err instanceof RangeError || /offset is outside|out of bounds|beyond/i.test(msg)) {
    return `truncated or corrupt TIFF: the header points past the end of the ${source.size}-byte file (${msg})`;
  }
  return `cannot parse the TIFF: ${msg}`;
}
