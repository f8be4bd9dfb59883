// The bench input both ingest benches read: built at bench time from the real NAIP raster; no imagery is committed.
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const NAIP_SOURCE = resolve(import.meta.dirname, '../../shared/data/naip-northdakota/m_4709963_se_14_1_20090818.tif');

/** Ends the bench with a skip line (the JSON last line included) where the shared imagery is absent. */
export function exitUnlessNaipPresent(): void {
  if (existsSync(NAIP_SOURCE)) return;
  console.log(`real imagery not found at ${NAIP_SOURCE}; skipping`);
  console.log(JSON.stringify({ skipped: true }));
  process.exit(0);
}

/** A size x size mosaic of the NAIP scene repeated edge to edge, written as a DEFLATE COG by gdal_translate (BigTIFF past 4 GiB). */
export function buildNaipCog(dir: string, size: number): string {
  const info = JSON.parse(execFileSync('gdalinfo', ['-json', NAIP_SOURCE]).toString()) as { size: [number, number] };
  const [w, h] = info.size;
  const sources: string[] = [];
  for (let y = 0; y < size; y += h) {
    for (let x = 0; x < size; x += w) {
      const cw = Math.min(w, size - x);
      const ch = Math.min(h, size - y);
      sources.push(`<SimpleSource><SourceFilename relativeToVRT="0">${NAIP_SOURCE}</SourceFilename><SourceBand>BAND</SourceBand>` +
        `<SrcRect xOff="0" yOff="0" xSize="${cw}" ySize="${ch}"/><DstRect xOff="${x}" yOff="${y}" xSize="${cw}" ySize="${ch}"/></SimpleSource>`);
    }
  }
  const bands = [1, 2, 3, 4].map((b) => `<VRTRasterBand dataType="Byte" band="${b}">${sources.join('').replaceAll('BAND', String(b))}</VRTRasterBand>`).join('');
  const vrt = join(dir, 'mosaic.vrt');
  writeFileSync(vrt, `<VRTDataset rasterXSize="${size}" rasterYSize="${size}"><SRS>EPSG:26914</SRS><GeoTransform>485900, 5, 0, 5209247, 0, -5</GeoTransform>${bands}</VRTDataset>`);
  const cog = join(dir, 'mosaic-cog.tif');
  const t0 = performance.now();
  execFileSync('gdal_translate', ['-q', '-of', 'COG', '-co', 'COMPRESS=DEFLATE', '-co', 'BLOCKSIZE=512', '-co', 'NUM_THREADS=ALL_CPUS', '-co', 'OVERVIEWS=NONE', '-co', 'BIGTIFF=IF_SAFER', vrt, cog]);
  console.log(`built ${cog} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return cog;
}

