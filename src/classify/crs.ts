import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import proj4 from 'proj4';
import { UserError } from '../errors.ts';

const require = createRequire(import.meta.url);

/** The proj4 definition of an EPSG code, from the bundled epsg-index (no network). */
export function proj4ForEpsg(code: number): string {
  try {
    const def = JSON.parse(readFileSync(require.resolve(`epsg-index/s/${Math.trunc(code)}.json`), 'utf8')) as { proj4?: string };
    if (def.proj4) return def.proj4;
  } catch {
    // fall through to the error below
  }
  throw new UserError(`unknown EPSG code ${code} (not in the bundled EPSG index)`);
}

/** A raster record's CRS: its stored proj4 definition, else its EPSG code; null when it has neither. */
export function proj4ForRaster(r: { epsg: number | null; crsDef: string | null }): string | null {
  if (r.crsDef) return r.crsDef;
  return r.epsg ? proj4ForEpsg(r.epsg) : null;
}

/** A converter from `from` to `to` coordinates; the identity when both are the same definition. */
export function transformer(from: string, to: string): (x: number, y: number) => [number, number] {
  if (from === to) return (x, y) => [x, y];
  const converter = proj4(from, to);
  return (x, y) => converter.forward([x, y]) as [number, number];
}

export const WGS84 = '+proj=longlat +datum=WGS84 +no_defs';
