/**
 * Windowed-read throughput, tilevec against rasterio/GDAL on the same windows of a large DEFLATE COG built at
 * bench time from the real NAIP raster (repeated into a mosaic with a VRT; no imagery is committed).
 *
 * Like for like: both readers run in one process on the same cores, sequentially (one read at a time) and
 * concurrently (GDAL on one Python thread per core, each with its own dataset; tilevec with CONCURRENCY reads in
 * flight on its decode pool of one worker per core). GDAL_NUM_THREADS is 1 (see ingest_gdal_reads.py). Every
 * pass starts cold: GDAL datasets are reopened and tilevec's block cache is off. The four variants take turns,
 * ROUNDS times, so that load from other processes hits them alike; each keeps its best wall time, and CPU seconds
 * per pass are printed too, as they suffer less from a busy machine. Prints a table; the last line is one JSON
 * object whose `ratio` is tilevec's concurrent throughput over GDAL's. Run: npm run bench:ingest
 * (TILEVEC_NATIVE_CODECS=0 measures the JavaScript and zlib path that machines without libdeflate-dev use.)
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openRaster, sharedDecodePool, type PixelWindow, type Raster } from '../src/ingest/index.ts';
import { INFLATE_ENGINE } from '../src/ingest/codecs.ts';
import { buildNaipCog, exitUnlessNaipPresent } from './naip-cog.ts';

const ROOT = resolve(import.meta.dirname, '..');
const SIZE = Number(process.env.BENCH_SIZE ?? 10_000);
const WINDOW = 512;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CORES = availableParallelism();
const CONCURRENCY = 2 * CORES;

interface Pass {
  seconds: number;
  cpuSeconds: number;
}

exitUnlessNaipPresent();

const dir = mkdtempSync(join(tmpdir(), 'tilevec-bench-'));
try {
  const cog = buildNaipCog(dir, SIZE);
  const windows: PixelWindow[] = [];
  for (let y = 0; y < SIZE; y += WINDOW) for (let x = 0; x < SIZE; x += WINDOW) windows.push({ x, y, w: Math.min(WINDOW, SIZE - x), h: Math.min(WINDOW, SIZE - y) });
  const pixels = windows.reduce((s, w) => s + w.w * w.h, 0);
  const windowsFile = join(dir, 'windows.json');
  writeFileSync(windowsFile, JSON.stringify(windows.map((w) => [w.x, w.y, w.w, w.h])));

  const raster = await openRaster(cog, { cacheBytes: 0 });
  // Start every decode worker outside the timing (each loads tsx once), then let V8 optimise the read path.
  await sharedDecodePool().warm();
  await Promise.all(windows.slice(0, 2 * CORES).map((w) => raster.readWindow(w)));
  const variants = {
    gdalSequential: () => gdalPass(cog, windowsFile, 1, pixels),
    gdalConcurrent: () => gdalPass(cog, windowsFile, CORES, pixels),
    tilevecSequential: () => tilevecPass(raster, windows, 1),
    tilevecConcurrent: () => tilevecPass(raster, windows, CONCURRENCY),
  };
  const best = Object.fromEntries(Object.keys(variants).map((k) => [k, { seconds: Infinity, cpuSeconds: Infinity }])) as Record<keyof typeof variants, Pass>;
  const loadBefore = loadavg()[0];
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, pass] of Object.entries(variants) as [keyof typeof variants, () => Promise<Pass>][]) {
      const p = await pass();
      best[name] = { seconds: Math.min(best[name].seconds, p.seconds), cpuSeconds: Math.min(best[name].cpuSeconds, p.cpuSeconds) };
    }
  }
  const loadAfter = loadavg()[0];
  await raster.close();

  const mpx = (s: number) => pixels / 1e6 / s;
  const rows: [string, Pass, Pass][] = [
    ['rasterio/GDAL 3.6, sequential (1 thread)', best.gdalSequential, best.gdalSequential],
    ['tilevec readWindow, sequential (1 in flight)', best.tilevecSequential, best.gdalSequential],
    [`rasterio/GDAL 3.6, ${CORES} threads`, best.gdalConcurrent, best.gdalConcurrent],
    [`tilevec readWindow, ${CONCURRENCY} in flight, ${CORES} decode workers`, best.tilevecConcurrent, best.gdalConcurrent],
  ];
  console.log(`\n${SIZE}x${SIZE} px, 4 bands uint8, DEFLATE COG with 512x512 blocks, tilevec inflating with ${INFLATE_ENGINE}; ${windows.length} windows of ${WINDOW}x${WINDOW}; best of ${ROUNDS} interleaved rounds; ${CORES} cores; load average ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after`);
  console.log('| reader | seconds | Mpx/s | vs GDAL, same mode | CPU s per pass | Mpx per CPU s |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const [name, p, gdal] of rows) {
    console.log(`| ${name} | ${p.seconds.toFixed(2)} | ${mpx(p.seconds).toFixed(1)} | ${(gdal.seconds / p.seconds).toFixed(2)}x | ${p.cpuSeconds.toFixed(2)} | ${mpx(p.cpuSeconds).toFixed(1)} |`);
  }
  console.log(JSON.stringify({
    bench: 'ingest-windowed-reads', size: SIZE, windows: windows.length, cores: CORES, inflate: INFLATE_ENGINE, loadAverage: [round(loadBefore), round(loadAfter)],
    gdalMpxPerS: round(mpx(best.gdalConcurrent.seconds)), tilevecMpxPerS: round(mpx(best.tilevecConcurrent.seconds)),
    gdalSequentialMpxPerS: round(mpx(best.gdalSequential.seconds)), tilevecSequentialMpxPerS: round(mpx(best.tilevecSequential.seconds)),
    ratio: round(best.gdalConcurrent.seconds / best.tilevecConcurrent.seconds),
    sequentialRatio: round(best.gdalSequential.seconds / best.tilevecSequential.seconds),
    ratioVsGdalOneThread: round(best.gdalSequential.seconds / best.tilevecConcurrent.seconds),
    cpuRatio: round(best.gdalSequential.cpuSeconds / best.tilevecConcurrent.cpuSeconds),
  }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}

async function gdalPass(cog: string, windowsFile: string, threads: number, pixels: number): Promise<Pass> {
  const out = JSON.parse(execFileSync('/usr/bin/python3', [join(ROOT, 'bench/ingest_gdal_reads.py'), cog, windowsFile, String(threads)]).toString()) as Pass & { pixels: number };
  if (out.pixels !== pixels) throw new Error(`GDAL read ${out.pixels} pixels, tilevec windows hold ${pixels}`);
  return out;
}

async function tilevecPass(raster: Raster, windows: PixelWindow[], concurrency: number): Promise<Pass> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < windows.length) await raster.readWindow(windows[next++]);
  }));
  const cpu = process.cpuUsage(cpu0);
  return { seconds: (performance.now() - t0) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
