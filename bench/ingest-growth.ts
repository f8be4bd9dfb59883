/**
 * Ingest as the input grows: DEFLATE COGs of the real NAIP scene repeated into mosaics of 100 Mpx, 400 Mpx and
 * 1.6 Gpx (built at bench time with GDAL, deleted after), each ingested by `tilevec ingest` (32-px tiles) into a
 * fresh embedded store, in its own process under /usr/bin/time. Reports Mpx/s, tiles written per second, the
 * process's peak RSS and CPU seconds at each size, and the goals: throughput flat within 20 % across sizes, and
 * peak RSS that does not grow with the raster (within 20 % of the smallest size's, plus 64 MiB). Throughput is
 * counted over the ingest itself (the seconds `tilevec ingest --json` reports); the fixed cost of starting the
 * process and creating the store is the rest of the wall time, shown apart, as it does not grow with the input.
 *
 *   node --import tsx bench/ingest-growth.ts [--sizes 10000,20000,40000] [--db-url postgres://...]
 *
 * `--db-url` ingests into a scratch database on that PostgreSQL server instead of PGlite. The last line of stdout is
 * one JSON object.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { buildNaipCog, exitUnlessNaipPresent } from './naip-cog.ts';
import { freshDatabase } from '../test/helpers.ts';

const { values } = parseArgs({ options: { sizes: { type: 'string', default: '10000,20000,40000' }, 'db-url': { type: 'string' } } });
const SIZES = values.sizes.split(',').map(Number);
const CLI = resolve(import.meta.dirname, '../bin/tilevec.js');
const MiB = 1024;

exitUnlessNaipPresent();
const load = loadavg()[0];
console.log(`load average at start: ${load.toFixed(2)}${load < 1 ? '' : ' (at or above 1.0: times from this run do not go into the README; memory does)'}`);

interface Row { size: number; megapixels: number; cogMiB: number; tiles: number; seconds: number; ingestSeconds: number; cpuSeconds: number; peakRssMiB: number; mpxPerSecond: number; tilesPerSecond: number }
const rows: Row[] = [];
const work = mkdtempSync(join(tmpdir(), 'tilevec-ingest-growth-'));
try {
  for (const size of SIZES) {
    const dir = join(work, String(size));
    mkdirSync(dir);
    const cog = buildNaipCog(dir, size);
    const target = values['db-url'] ? await freshDatabase(values['db-url'], 'growth') : { url: join(dir, 'db'), drop: async () => {} };
    try {
      // %M is the peak resident set in KiB, %e the wall seconds, %U + %S the CPU seconds of the process and its threads.
      const run = spawnSync('/usr/bin/time', ['-f', 'TIME %M %e %U %S', process.execPath, CLI, 'ingest', cog, '--tile-size', '32', '--db', target.url, '--json'], { encoding: 'utf8', maxBuffer: 1 << 26 });
      if (run.status !== 0) throw new Error(`tilevec ingest failed (${run.status}): ${run.stderr}`);
      const summary = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { tilesWritten: number; failed: number; seconds: number };
      if (summary.failed) throw new Error(`tilevec ingest failed on ${cog}: ${run.stdout}`);
      const tiles = summary.tilesWritten;
      const timing = timingOf(run.stderr);
      const megapixels = (size * size) / 1e6;
      const ingestSeconds = summary.seconds;
      const row = { size, megapixels, cogMiB: statSync(cog).size / MiB / MiB, tiles, ...timing, ingestSeconds, mpxPerSecond: megapixels / ingestSeconds, tilesPerSecond: tiles / ingestSeconds };
      console.error(`[bench:ingest-growth] ${size} x ${size} (${megapixels.toFixed(0)} Mpx, COG ${row.cogMiB.toFixed(0)} MiB): ${tiles} tiles in ${ingestSeconds.toFixed(1)} s (process ${timing.seconds.toFixed(1)} s) = ${row.mpxPerSecond.toFixed(1)} Mpx/s, ${row.tilesPerSecond.toFixed(0)} tiles/s, peak RSS ${timing.peakRssMiB.toFixed(0)} MiB, CPU ${timing.cpuSeconds.toFixed(1)} s`);
      rows.push(row);
    } finally {
      await target.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

/** The figures of /usr/bin/time's TIME line on the ingest's stderr. */
function timingOf(stderr: string): { seconds: number; cpuSeconds: number; peakRssMiB: number } {
  const match = /^TIME (\d+) ([\d.]+) ([\d.]+) ([\d.]+)$/m.exec(stderr);
  if (!match) throw new Error(`no /usr/bin/time line in: ${stderr.slice(-500)}`);
  const [kib, wall, user, system] = match.slice(1).map(Number);
  return { seconds: wall, cpuSeconds: user + system, peakRssMiB: kib / MiB };
}

const rates = rows.map((r) => r.mpxPerSecond);
const rss = rows.map((r) => r.peakRssMiB);
const flat = Math.min(...rates) >= 0.8 * Math.max(...rates);
const bounded = rss.every((m) => m <= rss[0] * 1.2 + 64);
console.log('| mosaic | Mpx | COG MiB | tiles | ingest s | process start and store s | CPU s | Mpx/s | tiles/s | peak RSS MiB |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.size} x ${r.size} | ${r.megapixels.toFixed(0)} | ${r.cogMiB.toFixed(0)} | ${r.tiles} | ${r.ingestSeconds.toFixed(1)} | ${(r.seconds - r.ingestSeconds).toFixed(1)} | ${r.cpuSeconds.toFixed(1)} | ${r.mpxPerSecond.toFixed(1)} | ${r.tilesPerSecond.toFixed(0)} | ${r.peakRssMiB.toFixed(0)} |`);
console.log(`throughput ${flat ? 'flat' : 'NOT flat'} within 20 % (${Math.min(...rates).toFixed(1)}-${Math.max(...rates).toFixed(1)} Mpx/s); peak RSS ${bounded ? 'bounded' : 'GROWS'} (${rss.map((m) => m.toFixed(0)).join(' / ')} MiB)`);
console.log(JSON.stringify({ bench: 'ingest-growth', engine: values['db-url'] ? 'server' : 'pglite', loadavg: load, rows, goals: { throughputFlat: flat, rssBounded: bounded } }));
