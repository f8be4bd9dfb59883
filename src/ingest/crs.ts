import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import proj4 from 'proj4';
import { UserError } from '../errors.ts';

/** A coordinate reference system: the EPSG code when there is one, and always a proj4 definition. */
export interface Crs {
  epsg: number | null;
  proj4: string;
  geographic: boolean;
}

const USER_DEFINED = 32767;
const require = createRequire(import.meta.url);

/** The bundled definition of an EPSG code (epsg-index, read from disk; never a network look-up). */
export function crsFromEpsg(code: number): Crs {
  let def: { proj4?: string; kind?: string } | undefined;
  try {
    def = JSON.parse(readFileSync(require.resolve(`epsg-index/s/${Math.trunc(code)}.json`), 'utf8'));
  } catch {
    def = undefined;
  }
  if (!def?.proj4) throw new UserError(`unknown EPSG code ${code} (not in the bundled EPSG index)`);
  return { epsg: code, proj4: def.proj4, geographic: def.kind === 'CRS-GEOGCRS' || /\+proj=longlat/.test(def.proj4) };
}

/** GeoKeys as geotiff.js parses them, by name. */
export type GeoKeys = Partial<Record<string, unknown>>;

/**
 * The CRS the GeoKeys describe: a projected or geographic EPSG code, or a user-defined CRS built from the key
 * parameters for the common cases (UTM zone codes, Transverse Mercator, Albers, Lambert conformal conic).
 * Returns null when the keys name no CRS at all.
 */
export function crsFromGeoKeys(keys: GeoKeys | null): Crs | null {
  if (!keys) return null;
  const num = (name: string) => (typeof keys[name] === 'number' ? (keys[name] as number) : undefined);
  const model = num('GTModelTypeGeoKey');
  const projected = num('ProjectedCSTypeGeoKey');
  const geographic = num('GeographicTypeGeoKey');
  if (projected !== undefined && projected !== USER_DEFINED && model !== 2) return crsFromEpsg(projected);
  if (model === 2 || (projected === undefined && model !== 1)) {
    if (geographic === undefined) return null;
    if (geographic !== USER_DEFINED) return crsFromEpsg(geographic);
    return { epsg: null, proj4: `+proj=longlat ${ellipsoid(keys)} +no_defs`, geographic: true };
  }
  if (projected === USER_DEFINED || num('ProjectionGeoKey') !== undefined || num('ProjCoordTransGeoKey') !== undefined) {
    return { epsg: null, proj4: userDefinedProjection(keys), geographic: false };
  }
  return null;
}

/** A numeric GeoKey, or undefined when absent; NaN and infinities are refused, never written into a definition. */
function finiteKey(keys: GeoKeys, name: string): number | undefined {
  const v = keys[name];
  if (typeof v !== 'number') return undefined;
  if (!Number.isFinite(v)) throw new UserError(`corrupt user-defined CRS: ${name} is ${v}`);
  return v;
}

/** A GeoKey the projection cannot do without. */
function requiredKey(keys: GeoKeys, name: string): number {
  const v = finiteKey(keys, name);
  if (v === undefined) throw new UserError(`corrupt user-defined CRS: ${name} is missing`);
  return v;
}

/**
 * Built here rather than by geotiff-geokeys-to-proj4, which covers more projections but, as of 2024.4.13, fails
 * quietly where this fails loudly: a projection it cannot build comes back as +proj=longlat with an error flag,
 * a missing or NaN parameter goes into the definition as it is (an LCC without its standard parallel becomes
 * another CRS), and a CRS on the EPSG:4326 or 4269 datum gets that datum's latitude-first +axis=ne, which swaps
 * eastings and northings in proj4. Checking its output would take the same key checks as building these three.
 */
function userDefinedProjection(keys: GeoKeys): string {
  const n = (name: string) => finiteKey(keys, name);
  const ell = ellipsoid(keys);
  const units = n('ProjLinearUnitsGeoKey') === 9002 ? '+units=ft' : n('ProjLinearUnitsGeoKey') === 9003 ? '+units=us-ft' : '+units=m';
  const projection = n('ProjectionGeoKey');
  // EPSG projection codes 16001-16060 and 16101-16160 are UTM zones north and south.
  if (projection !== undefined && projection >= 16001 && projection <= 16160 && projection % 100 <= 60) {
    return `+proj=utm +zone=${projection % 100}${projection > 16100 ? ' +south' : ''} ${ell} ${units} +no_defs`;
  }
  const lon0 = n('ProjNatOriginLongGeoKey') ?? n('ProjFalseOriginLongGeoKey') ?? n('ProjCenterLongGeoKey') ?? 0;
  const lat0 = n('ProjNatOriginLatGeoKey') ?? n('ProjFalseOriginLatGeoKey') ?? n('ProjCenterLatGeoKey') ?? 0;
  const x0 = n('ProjFalseEastingGeoKey') ?? n('ProjFalseOriginEastingGeoKey') ?? 0;
  const y0 = n('ProjFalseNorthingGeoKey') ?? n('ProjFalseOriginNorthingGeoKey') ?? 0;
  const common = `+lat_0=${lat0} +lon_0=${lon0} +x_0=${x0} +y_0=${y0} ${ell} ${units} +no_defs`;
  switch (n('ProjCoordTransGeoKey')) {
    case 1:
      return `+proj=tmerc +k=${n('ProjScaleAtNatOriginGeoKey') ?? 1} ${common}`;
    case 8:
      return `+proj=lcc +lat_1=${requiredKey(keys, 'ProjStdParallel1GeoKey')} +lat_2=${n('ProjStdParallel2GeoKey') ?? n('ProjStdParallel1GeoKey')} ${common}`;
    case 11:
      return `+proj=aea +lat_1=${requiredKey(keys, 'ProjStdParallel1GeoKey')} +lat_2=${requiredKey(keys, 'ProjStdParallel2GeoKey')} ${common}`;
    default:
      throw new UserError(
        `unsupported user-defined projection (ProjectionGeoKey ${projection ?? 'absent'}, ProjCoordTransGeoKey ${n('ProjCoordTransGeoKey') ?? 'absent'})`,
      );
  }
}

/**
 * The ellipsoid from the keys, as proj4 parameters. No datum shift is added: like GDAL's fallback, coordinates
 * on an unnamed datum are taken as WGS84 latitudes and longitudes.
 */
function ellipsoid(keys: GeoKeys): string {
  const a = finiteKey(keys, 'GeogSemiMajorAxisGeoKey');
  const rf = finiteKey(keys, 'GeogInvFlatteningGeoKey');
  const b = finiteKey(keys, 'GeogSemiMinorAxisGeoKey');
  if (typeof a === 'number' && typeof rf === 'number') return `+a=${a} +rf=${rf}`;
  if (typeof a === 'number' && typeof b === 'number') return `+a=${a} +b=${b}`;
  const geographic = keys.GeographicTypeGeoKey;
  if (typeof geographic === 'number' && geographic !== USER_DEFINED) {
    const ell = / \+(ellps|datum)=\S+/.exec(crsFromEpsg(geographic).proj4)?.[0];
    if (ell) return ell.trim();
  }
  return '+ellps=WGS84';
}

export const WGS84 = '+proj=longlat +datum=WGS84 +no_defs';

/** A function from CRS coordinates to WGS84 [lon, lat]. */
export function toWgs84(crs: Crs): (x: number, y: number) => [number, number] {
  if (crs.epsg === 4326) return (x, y) => [x, y];
  const converter = proj4(crs.proj4, WGS84);
  return (x, y) => {
    const [lon, lat] = converter.forward([x, y]);
    return [lon, lat];
  };
}
