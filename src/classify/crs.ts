import proj4 from 'proj4';
import { crsFromEpsg } from '../ingest/index.ts';

/** A raster record's CRS: its stored proj4 definition, else its EPSG code's; null when it has neither. */
export function proj4ForRaster(r: { epsg: number | null; crsDef: string | null }): string | null {
  if (r.crsDef) return r.crsDef;
  return r.epsg ? crsFromEpsg(r.epsg).proj4 : null;
}

/** A converter from `from` to `to` coordinates; the identity when both are the same definition. */
export function transformer(from: string, to: string): (x: number, y: number) => [number, number] {
  if (from === to) return (x, y) => [x, y];
  const converter = proj4(from, to);
  return (x, y) => converter.forward([x, y]) as [number, number];
}
