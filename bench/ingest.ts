/**
 * Windowed-read throughput, tilevec against rasterio/GDAL on the same windows of a large DEFLATE COG built at
 * bench time from the real NAIP raster (repeated into a mosaic with a VRT; no imagery is committed).
 * Prints a table; the last line is one JSON object with the ratio. Run: npm run bench:ingest
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openRaster, type PixelWindow } from '../src/ingest/index.ts';

const ROOT = resolve(import.meta.dirname, '..');
const SOURCE = resolve(ROOT, '../shared/data/naip-northdakota/m_4709963_se_14_1_20090818.tif');
const SIZE = Number(process.env.BENCH_SIZE ?? 10_000);
const WINDOW = 512;
const REPEATS = 2;
const CONCURRENCY = 4;

if (!existsSync(SOURCE)) {
  console.log(`real imagery not found at ${SOURCE}; skipping`);
  console.log(JSON.stringify({ skipped: true }));
  process.exit(0);
}

const dir = mkdtempSync(join(tmpdir(), 'tilevec-bench-'));
try {
  const cog = buildCog(dir);
  const windows: PixelWindow[] = [];
  for (let y = 0; y < SIZE; y += WINDOW) for (let x = 0; x < SIZE; x += WINDOW) windows.push({ x, y, w: Math.min(WINDOW, SIZE - x), h: Math.min(WINDOW, SIZE - y) });
  const pixels = windows.reduce((s, w) => s + w.w * w.h, 0);

  const windowsFile = join(dir, 'windows.json');
  writeFileSync(windowsFile, JSON.stringify(windows.map((w) => [w.x, w.y, w.w, w.h])));
  const gdal = JSON.parse(execFileSync('/usr/bin/python3', [join(ROOT, 'bench/ingest_gdal_reads.py'), cog, windowsFile, String(REPEATS)]).toString()) as { seconds: number; pixels: number };
  if (gdal.pixels !== pixels) throw new Error(`GDAL read ${gdal.pixels} pixels, tilevec windows hold ${pixels}`);

  const sequential = await tilevecReads(cog, windows, 1);
  const concurrent = await tilevecReads(cog, windows, CONCURRENCY);

  const mpx = (s: number) => pixels / 1e6 / s;
  const rows = [
    ['rasterio/GDAL 3.6 (one thread, sequential)', gdal.seconds],
    ['tilevec readWindow, sequential', sequential],
    [`tilevec readWindow, ${CONCURRENCY} in flight`, concurrent],
  ] as const;
  console.log(`\n${SIZE}x${SIZE} px, 4 bands uint8, DEFLATE COG with 512x512 blocks; ${windows.length} windows of ${WINDOW}x${WINDOW}; best of ${REPEATS}; ${availableParallelism()} cores`);
  console.log('| reader | seconds | Mpx/s | vs GDAL |');
  console.log('|---|---:|---:|---:|');
  for (const [name, s] of rows) console.log(`| ${name} | ${s.toFixed(2)} | ${mpx(s).toFixed(1)} | ${(gdal.seconds / s).toFixed(2)}x |`);
  console.log(JSON.stringify({
    bench: 'ingest-windowed-reads', size: SIZE, windows: windows.length, cores: availableParallelism(),
    gdalMpxPerS: round(mpx(gdal.seconds)), tilevecMpxPerS: round(mpx(concurrent)), tilevecSequentialMpxPerS: round(mpx(sequential)),
    ratio: round(gdal.seconds / concurrent), sequentialRatio: round(gdal.seconds / sequential),
  }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}

async function tilevecReads(path: string, windows: PixelWindow[], concurrency: number): Promise<number> {
  let best = Infinity;
  const raster = await openRaster(path, { cacheBytes: 0 });
  // Start every decode worker outside the timing (each loads tsx once).
  await Promise.all(windows.slice(0, 8).map((w) => raster.readWindow(w)));
  for (let r = 0; r < REPEATS; r++) {
    const t0 = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < windows.length) await raster.readWindow(windows[next++]);
    }));
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  await raster.close();
  return best;
}

/** A SIZE x SIZE mosaic of the NAIP scene repeated edge to edge, written as a DEFLATE COG by gdal_translate. */
function buildCog(dir: string): string {
  const info = JSON.parse(execFileSync('gdalinfo', ['-json', SOURCE]).toString()) as { size: [number, number] };
  const [w, h] = info.size;
  const sources: string[] = [];
  for (let y = 0; y < SIZE; y += h) {
    for (let x = 0; x < SIZE; x += w) {
      const cw = Math.min(w, SIZE - x);
      const ch = Math.min(h, SIZE - y);
      sources.push(`<SimpleSource><SourceFilename relativeToVRT="0">${SOURCE}</SourceFilename><SourceBand>BAND</SourceBand>` +
        `<SrcRect xOff="0" yOff="0" xSize="${cw}" ySize="${ch}"/><DstRect xOff="${x}" yOff="${y}" xSize="${cw}" ySize="${ch}"/></SimpleSource>`);
    }
  }
  const bands = [1, 2, 3, 4].map((b) => `<VRTRasterBand dataType="Byte" band="${b}">${sources.join('').replaceAll('BAND', String(b))}</VRTRasterBand>`).join('');
  const vrt = join(dir, 'mosaic.vrt');
  writeFileSync(vrt, `<VRTDataset rasterXSize="${SIZE}" rasterYSize="${SIZE}"><SRS>EPSG:26914</SRS><GeoTransform>485900, 5, 0, 5209247, 0, -5</GeoTransform>${bands}</VRTDataset>`);
  const cog = join(dir, 'mosaic-cog.tif');
  const t0 = performance.now();
  execFileSync('gdal_translate', ['-q', '-of', 'COG', '-co', 'COMPRESS=DEFLATE', '-co', 'BLOCKSIZE=512', '-co', 'NUM_THREADS=ALL_CPUS', '-co', 'OVERVIEWS=NONE', vrt, cog]);
  console.log(`built ${cog} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return cog;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
