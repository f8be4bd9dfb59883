import { writeFileSync } from 'node:fs';

/** A one-band 8-bit class raster with its georeferencing and a colour per class value. */
export interface ClassRaster {
  width: number;
  height: number;
  /** Row-major class values; `nodata` where there is no prediction. */
  values: Uint8Array;
  /** GDAL order, north-up (no rotation terms). */
  geotransform: number[];
  epsg: number;
  /** Whether `epsg` is a geographic CRS (lon/lat) rather than a projected one. */
  geographic: boolean;
  nodata: number;
  /** RGB per value; values without an entry are black. */
  colors: Map<number, [number, number, number]>;
}

const SHORT = 3, LONG = 4, DOUBLE = 12, ASCII = 2;
const TYPE_SIZE: Record<number, number> = { [SHORT]: 2, [LONG]: 4, [DOUBLE]: 8, [ASCII]: 1 };

/**
 * Encodes a class raster as an uncompressed, single-strip, little-endian GeoTIFF with a palette (ColorMap) and
 * GeoKeys naming the EPSG code: geotiff.js's writer cannot write colour tables, and GDAL reads this directly.
 */
export function encodeClassGeoTiff(r: ClassRaster): Uint8Array {
  const colorMap: number[] = [];
  for (let channel = 0; channel < 3; channel++) {
    for (let v = 0; v < 256; v++) colorMap.push((r.colors.get(v)?.[channel] ?? 0) * 257);
  }
  const [x0, pw, , y0, , ph] = r.geotransform;
  const geoKeys = [1, 1, 0, 3, 1024, 0, 1, r.geographic ? 2 : 1, 1025, 0, 1, 1, r.geographic ? 2048 : 3072, 0, 1, r.epsg];
  const nodata = `${r.nodata}\0`;
  const entries: { tag: number; type: number; values: number[] | string }[] = [
    { tag: 256, type: LONG, values: [r.width] },
    { tag: 257, type: LONG, values: [r.height] },
    { tag: 258, type: SHORT, values: [8] },
    { tag: 259, type: SHORT, values: [1] },
    { tag: 262, type: SHORT, values: [3] }, // palette colour
    { tag: 273, type: LONG, values: [0] }, // strip offset, patched below
    { tag: 277, type: SHORT, values: [1] },
    { tag: 278, type: LONG, values: [r.height] },
    { tag: 279, type: LONG, values: [r.values.length] },
    { tag: 284, type: SHORT, values: [1] },
    { tag: 320, type: SHORT, values: colorMap },
    { tag: 339, type: SHORT, values: [1] },
    { tag: 33550, type: DOUBLE, values: [pw, -ph, 0] },
    { tag: 33922, type: DOUBLE, values: [0, 0, 0, x0, y0, 0] },
    { tag: 34735, type: SHORT, values: geoKeys },
    { tag: 42113, type: ASCII, values: nodata },
  ];
  const ifdSize = 2 + entries.length * 12 + 4;
  let extra = 8 + ifdSize;
  const placed = entries.map((e) => {
    const bytes = e.values.length * TYPE_SIZE[e.type];
    const offset = bytes > 4 ? extra : -1;
    if (bytes > 4) extra += bytes + (bytes % 2);
    return { ...e, offset };
  });
  const pixelOffset = extra;
  placed.find((e) => e.tag === 273)!.values = [pixelOffset];
  const buf = new Uint8Array(pixelOffset + r.values.length);
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
  buf.set(r.values, pixelOffset);
  return buf;
}

export function writeClassGeoTiff(path: string, r: ClassRaster): void {
  writeFileSync(path, encodeClassGeoTiff(r));
}
