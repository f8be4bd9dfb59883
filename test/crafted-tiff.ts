/** Hand-written hostile TIFFs for the crafted-input tests: strip tables taken exactly as given. */
import { deflateSync } from 'node:zlib';

export interface Crafted {
  width: number;
  height: number;
  rowsPerStrip: number;
  compression: number;
  predictor?: number;
  /** Stored strip streams; `offsets` index into them, so strips may share one. */
  streams: Uint8Array[];
  /** Per strip: which stream it points at, or -1 for a sparse strip (offset 0, byte count 0). */
  strips: number[];
  /** ModelPixelScale, ModelTiepoint and GeoKeys. */
  geo?: { scale: number[]; tiepoint: number[]; keys: number[] };
}

/** GeoKeys of EPSG:4326, and of a user-defined Lambert conformal conic that lacks its standard parallel. */
export const WGS84_KEYS = [1, 1, 0, 2, 1024, 0, 1, 2, 2048, 0, 1, 4326];
export const LCC_WITHOUT_PARALLEL = [1, 1, 0, 3, 1024, 0, 1, 1, 3072, 0, 1, 32767, 3075, 0, 1, 8];

/** A little-endian, single-band, 8-bit, stripped TIFF whose strip table is taken as given. */
export function craft(c: Crafted): Uint8Array {
  const n = c.strips.length;
  const entries: [number, number, number[]][] = [
    [256, 4, [c.width]], [257, 4, [c.height]], [258, 3, [8]], [259, 3, [c.compression]], [262, 3, [1]],
    [273, 4, new Array(n).fill(0)], [277, 3, [1]], [278, 4, [c.rowsPerStrip]], [279, 4, new Array(n).fill(0)],
    [317, 3, [c.predictor ?? 1]],
  ];
  if (c.geo) entries.push([33550, 12, [...c.geo.scale, 0]], [33922, 12, [0, 0, 0, ...c.geo.tiepoint, 0]], [34735, 3, c.geo.keys]);
  const ifdBytes = 2 + entries.length * 12 + 4;
  const arraysAt = 8 + ifdBytes;
  const outOfLine = entries.reduce((sum, [, type, values]) => sum + (values.length * (type === 3 ? 2 : type === 12 ? 8 : 4) > 4 ? 8 * values.length : 0), 0);
  const streamsAt = arraysAt + outOfLine;
  const streamOffsets: number[] = [];
  let end = streamsAt;
  for (const s of c.streams) {
    streamOffsets.push(end);
    end += s.length;
  }
  entries[5][2] = c.strips.map((k) => (k < 0 ? 0 : streamOffsets[k]));
  entries[8][2] = c.strips.map((k) => (k < 0 ? 0 : c.streams[k].length));
  const buf = new Uint8Array(end);
  const view = new DataView(buf.buffer);
  buf.set([0x49, 0x49, 42, 0]);
  view.setUint32(4, 8, true);
  view.setUint16(8, entries.length, true);
  let array = arraysAt;
  entries.forEach(([tag, type, values], i) => {
    const at = 10 + i * 12;
    view.setUint16(at, tag, true);
    view.setUint16(at + 2, type, true);
    view.setUint32(at + 4, values.length, true);
    const size = type === 3 ? 2 : type === 12 ? 8 : 4;
    let p = at + 8;
    if (values.length * size > 4) {
      view.setUint32(p, array, true);
      p = array;
      array += 8 * values.length;
    }
    for (const v of values) {
      if (type === 3) view.setUint16(p, v, true);
      else if (type === 12) view.setFloat64(p, v, true);
      else view.setUint32(p, v, true);
      p += size;
    }
  });
  c.streams.forEach((s, k) => buf.set(s, streamOffsets[k]));
  return buf;
}

export const DEFLATE = 8;
export const LZW = 5;

/** A DEFLATE stream of `bytes` zeros: a few hundred bytes that inflate to any size. */
export const zeros = (bytes: number) => new Uint8Array(deflateSync(new Uint8Array(bytes), { level: 9 }));
