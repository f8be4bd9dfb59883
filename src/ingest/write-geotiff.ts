import { UserError } from '../errors.ts';

/** A raster to write: band-sequential samples with their georeferencing. */
export interface GeoTiffImage {
  width: number;
  height: number;
  /** One array per band, row-major, width × height each. */
  bands: (Uint8Array | Float32Array)[];
  /** GDAL order, north-up (no rotation terms). */
  geotransform: number[];
  epsg: number;
  /** Whether `epsg` is geographic (lon/lat) rather than projected. */
  geographic: boolean;
  nodata?: number;
  /** For a single Uint8 band: RGB per value, written as a TIFF palette (GDAL shows it as the colour table). */
  colors?: Map<number, [number, number, number]>;
  /** Dataset metadata items, written to GDAL's metadata tag (42112); gdalinfo lists them under Metadata. */
  metadata?: Record<string, string>;
  /** One description per band (GDAL's band description, `description` in gdalinfo -json). */
  bandDescriptions?: string[];
}

// GDAL's GTiff driver escapes '&' twice in this tag and unescapes it twice on reading (a lone '&amp;' reads back
// as a cut-off value), so '&' is written as GDAL writes it.
const xmlEscape = (v: string) => v.replace(/[&<>"]/g, (c) => ({ '&': '&amp;amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** The GDALMetadata XML of TIFF tag 42112: dataset items, then each band's description (role="description"). */
export function gdalMetadataXml(metadata: Record<string, string> = {}, bandDescriptions: string[] = []): string | undefined {
  const items = [
    ...Object.entries(metadata).map(([k, v]) => `  <Item name="${xmlEscape(k)}">${xmlEscape(v)}</Item>`),
    ...bandDescriptions.map((d, b) => `  <Item name="DESCRIPTION" sample="${b}" role="description">${xmlEscape(d)}</Item>`),
  ];
  return items.length ? `<GDALMetadata>\n${items.join('\n')}\n</GDALMetadata>` : undefined;
}

const SHORT = 3, LONG = 4, DOUBLE = 12, ASCII = 2;
const TYPE_SIZE: Record<number, number> = { [SHORT]: 2, [LONG]: 4, [DOUBLE]: 8, [ASCII]: 1 };

/**
 * Encodes an uncompressed, little-endian GeoTIFF with one strip per band (planar configuration 2), GeoKeys naming
 * the EPSG code, GDAL_NODATA and an optional palette. geotiff.js's writer has no colour tables and no planar
 * multi-band output; GDAL reads this directly.
 */
export function encodeGeoTiff(img: GeoTiffImage): Uint8Array {
  const { width, height, bands } = img;
  if (bands.length === 0 || bands.some((b) => b.length !== width * height)) throw new UserError('every band must hold width × height samples');
  const float = bands[0] instanceof Float32Array;
  if (bands.some((b) => b instanceof Float32Array !== float)) throw new UserError('all bands must share one sample type');
  if (img.colors && (float || bands.length !== 1)) throw new UserError('a colour table needs a single 8-bit band');
  if (img.bandDescriptions && img.bandDescriptions.length !== bands.length) throw new UserError(`${img.bandDescriptions.length} band descriptions for ${bands.length} bands`);
  const bytesPerSample = float ? 4 : 1;
  const stripBytes = width * height * bytesPerSample;
  const [x0, pw, rx, y0, ry, ph] = img.geotransform;
  if (rx !== 0 || ry !== 0) throw new UserError('rotated geotransforms cannot be written as pixel scale and tie point');
  const geoKeys = [1, 1, 0, 3, 1024, 0, 1, img.geographic ? 2 : 1, 1025, 0, 1, 1, img.geographic ? 2048 : 3072, 0, 1, img.epsg];
  const n = bands.length;
  const entries: { tag: number; type: number; values: number[] | string }[] = [
    { tag: 256, type: LONG, values: [width] },
    { tag: 257, type: LONG, values: [height] },
    { tag: 258, type: SHORT, values: new Array(n).fill(bytesPerSample * 8) },
    { tag: 259, type: SHORT, values: [1] },
    { tag: 262, type: SHORT, values: [img.colors ? 3 : 1] }, // palette or min-is-black
    { tag: 273, type: LONG, values: new Array(n).fill(0) }, // strip offsets, patched below
    { tag: 277, type: SHORT, values: [n] },
    { tag: 278, type: LONG, values: [height] },
    { tag: 279, type: LONG, values: new Array(n).fill(stripBytes) },
    { tag: 284, type: SHORT, values: [2] },
  ];
  // Bands beyond the first are "unspecified" extra samples of a min-is-black image.
  if (n > 1) entries.push({ tag: 338, type: SHORT, values: new Array(n - 1).fill(0) });
  if (img.colors) {
    const colorMap: number[] = [];
    for (let channel = 0; channel < 3; channel++) for (let v = 0; v < 256; v++) colorMap.push((img.colors.get(v)?.[channel] ?? 0) * 257);
    entries.push({ tag: 320, type: SHORT, values: colorMap });
  }
  entries.push(
    { tag: 339, type: SHORT, values: new Array(n).fill(float ? 3 : 1) }, // IEEE float or unsigned int
    { tag: 33550, type: DOUBLE, values: [pw, -ph, 0] },
    { tag: 33922, type: DOUBLE, values: [0, 0, 0, x0, y0, 0] },
    { tag: 34735, type: SHORT, values: geoKeys },
  );
  const xml = gdalMetadataXml(img.metadata, img.bandDescriptions);
  // ASCII values are bytes here: non-ASCII text is written as UTF-8, which GDAL reads back as such.
  if (xml) entries.push({ tag: 42112, type: ASCII, values: `${Buffer.from(xml, 'utf8').toString('latin1')}\0` });
  if (img.nodata !== undefined) entries.push({ tag: 42113, type: ASCII, values: `${img.nodata}\0` });

  entries.sort((a, b) => a.tag - b.tag); // TIFF requires ascending tags
  const ifdSize = 2 + entries.length * 12 + 4;
  let extra = 8 + ifdSize;
  const placed = entries.map((e) => {
    const bytes = e.values.length * TYPE_SIZE[e.type];
    const offset = bytes > 4 ? extra : -1;
    if (bytes > 4) extra += bytes + (bytes % 2);
    return { ...e, offset };
  });
  // Float samples must start 4-byte aligned for readers that map them directly.
  const pixelOffset = Math.ceil(extra / 4) * 4;
  placed.find((e) => e.tag === 273)!.values = bands.map((_, b) => pixelOffset + b * stripBytes);
  const buf = new Uint8Array(pixelOffset + n * stripBytes);
  const view = new DataView(buf.buffer);
  buf.set([0x49, 0x49, 42, 0]);
  view.setUint32(4, 8, true);
  view.setUint16(8, entries.length, true);
  placed.forEach((e, i) => {
    const at = 10 + i * 12;
    view.setUint16(at, e.tag, true);
    view.setUint16(at + 2, e.type, true);
    view.setUint32(at + 4, e.values.length, true);
    let p = e.offset >= 0 ? e.offset : at + 8;
    if (e.offset >= 0) view.setUint32(at + 8, e.offset, true);
    for (let k = 0; k < e.values.length; k++) {
      const v = typeof e.values === 'string' ? e.values.charCodeAt(k) : e.values[k];
      if (e.type === SHORT) view.setUint16(p, v, true);
      else if (e.type === LONG) view.setUint32(p, v, true);
      else if (e.type === DOUBLE) view.setFloat64(p, v, true);
      else view.setUint8(p, v);
      p += TYPE_SIZE[e.type];
    }
  });
  view.setUint32(10 + entries.length * 12, 0, true); // no next IFD
  bands.forEach((band, b) => buf.set(new Uint8Array(band.buffer, band.byteOffset, band.byteLength), pixelOffset + b * stripBytes));
  return buf;
}
