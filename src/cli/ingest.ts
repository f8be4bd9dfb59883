import { rename, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { UserError } from '../errors.ts';
import { requireOutputFolder } from '../paths.ts';
import { configFrom, emit, fractionOption, intListOption, intOption, numberOption, withStore } from './context.ts';
import { enqueueIngest } from './worker.ts';
import { ingest, openStoredRaster, renderWindowPng, defaultRenderBands, type IngestProgress, type IngestSummary } from '../ingest/index.ts';

export function formatSummary(s: IngestSummary): string {
  const lines = s.rasters
    .filter((r) => r.status !== 'failed')
    .map((r) => (r.status === 'ingested' ? `ingested  ${r.uri}: raster ${r.rasterId}, ${r.tiles} tiles` : `unchanged ${r.uri}: raster ${r.rasterId}`));
  lines.push(
    `${s.ingested} ingested, ${s.unchanged} unchanged, ${s.failed} failed; ${s.tilesWritten} tiles written, ` +
      `${s.tilesSkippedNodata} skipped for nodata, ${s.tilesSkippedEdge} at edges; ${s.seconds.toFixed(1)} s`,
  );
  return lines.join('\n');
}

/** A cli-progress bar over all tiles of the current raster, with tiles/s; only on a TTY. */
export function progressReporter(): { onProgress: (p: IngestProgress) => void; stop: () => void } {
  const tty = Boolean(process.stderr.isTTY);
  const bar = new cliProgress.SingleBar(
    { format: '{file} [{bar}] {value}/{total} tiles | {rate} tiles/s | {eta_formatted}', stream: process.stderr, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let active = false;
  let started = 0;
  return {
    onProgress(p) {
      if (p.kind === 'outcome') {
        if (active) bar.stop();
        active = false;
        // Failures print as they happen, one line each, so a long batch shows them early.
        if (p.outcome.status === 'failed') process.stderr.write(`tilevec: ${p.outcome.uri}: ${p.outcome.error}\n`);
        return;
      }
      if (!tty) return;
      const file = p.uri.split('/').pop() ?? p.uri;
      if (p.kind === 'raster') {
        started = performance.now();
        bar.start(p.tiles, 0, { file: `[${p.index + 1}/${p.count}] ${file}`, rate: '0' });
        active = true;
      } else if (active) {
        const rate = p.done / Math.max(1e-3, (performance.now() - started) / 1000);
        bar.update(p.done, { rate: rate.toFixed(0) });
      }
    },
    stop() {
      if (active) bar.stop();
    },
  };
}

export function registerIngestCommands(program: Command): void {
  program
    .command('ingest')
    .description('catalog GeoTIFF / COG rasters (paths, directories, globs, http(s) URLs) as a grid of tiles')
    .argument('<inputs...>', 'files, directories, glob patterns or http(s):// URLs')
    .option('--tile-size <px>', 'tile side in pixels', intOption('--tile-size', 1), 32)
    .option('--stride <px>', 'grid step in pixels (default: the tile size)', intOption('--stride', 1))
    .option('--max-nodata <fraction>', 'skip tiles with more nodata than this', fractionOption('--max-nodata'), 0.1)
    .option('--bands <list>', 'bands (1-based, comma-separated) that count for statistics and nodata', intListOption('--bands'))
    .option('--force', 're-ingest rasters whose content is unchanged')
    .option('--allow-ungeoreferenced', 'ingest rasters without georeferencing, with pixel-space footprints')
    .option('--overview <n>', "tile the file's n-th largest overview instead of its full resolution (1 is the largest; 0, the default, is full resolution)", intOption('--overview', 0))
    .option('--resolution <size>', 'or the level for a pixel size in CRS units (metres when projected): the coarsest overview whose pixels are no larger', numberOption('--resolution', 0))
    .option('--timeout <seconds>', 'HTTP request timeout', intOption('--timeout', 1), 30)
    .option('--queue', 'enqueue one job per raster for tilevec worker processes (PostgreSQL server only)')
    .action(async (inputs: string[], opts: { tileSize: number; stride?: number; maxNodata: number; bands?: number[]; force?: boolean; allowUngeoreferenced?: boolean; overview?: number; resolution?: number; timeout: number; queue?: boolean }, cmd: Command) => {
      const config = configFrom(cmd);
      if (opts.queue) {
        const { tileSize, stride, maxNodata, bands, force, allowUngeoreferenced, overview, resolution } = opts;
        const { maxPixels, maxTiles } = config.ingest;
        const result = await enqueueIngest(config, inputs, { tileSize, stride, maxNodata, bands, force, allowUngeoreferenced, overview, resolution, maxPixels, maxTiles, timeoutMs: opts.timeout * 1000 });
        for (const f of result.failed) process.stderr.write(`tilevec: ${f.uri}: ${f.error}\n`);
        emit(cmd, result, (r) => `queued ${r.queued} ingest job(s); run tilevec worker to process them, tilevec jobs to follow`);
        if (result.failed.length > 0) throw new UserError(`${result.failed.length} input(s) named no raster`);
        return;
      }
      const progress = progressReporter();
      const summary = await withStore(config, (store) =>
        ingest(store, inputs, {
          tileSize: opts.tileSize,
          stride: opts.stride,
          maxNodata: opts.maxNodata,
          bands: opts.bands,
          force: opts.force,
          allowUngeoreferenced: opts.allowUngeoreferenced,
          overview: opts.overview,
          resolution: opts.resolution,
          maxPixels: config.ingest.maxPixels,
          maxTiles: config.ingest.maxTiles,
          timeoutMs: opts.timeout * 1000,
        }, progress.onProgress).finally(() => progress.stop()),
      { create: true });
      emit(cmd, summary, formatSummary);
      // The failures were printed one line each as they happened; this line makes the exit code non-zero.
      if (summary.failed > 0) throw new UserError(`${summary.failed} of ${summary.rasters.length} inputs failed`);
    });

  program
    .command('tile')
    .description('render one tile as a PNG (RGB or false colour, 2-98 percentile stretch from the raster statistics)')
    .argument('<id>', 'tile id', intOption('tile id', 1))
    .requiredOption('--png <file>', 'output PNG path')
    .option('--bands <list>', 'bands for red,green,blue (e.g. 4,3,2), or one band for grey', intListOption('--bands'))
    .action(async (id: number, opts: { png: string; bands?: number[] }, cmd: Command) => {
      const config = configFrom(cmd);
      const result = await withStore(config, async (store) => {
        const tile = await store.tile(id);
        const record = await store.raster(tile.rasterId);
        const bands = opts.bands ?? defaultRenderBands(record.bandCount);
        if (bands.length !== 1 && bands.length !== 3) throw new UserError(`--bands takes 1 or 3 bands for a PNG, got ${bands.length}`);
        const raster = await openStoredRaster(record).catch((err: unknown) => {
          throw new UserError(`cannot open raster ${record.id} at ${record.uri}: ${(err as Error).message}`);
        });
        try {
          const png = await renderWindowPng(raster, { x: tile.x, y: tile.y, w: tile.size, h: tile.size }, { bands, stats: record.bandStats });
          const out = requireOutputFolder(opts.png, '--png');
          const tmp = `${out}.${process.pid}.tmp`;
          await writeFile(tmp, png);
          await rename(tmp, out);
          return { tileId: id, rasterId: record.id, png: out, bands, size: tile.size, bytes: png.length };
        } finally {
          await raster.close();
        }
      });
      emit(cmd, result, (r) => `wrote ${r.png} (tile ${r.tileId}, bands ${r.bands.join(',')}, ${r.size}x${r.size})`);
    });
}
