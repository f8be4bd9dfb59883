import type { Command } from 'commander';
import type { Config } from '../config.ts';
import type { Store } from '../store/index.ts';
import { logger } from '../log.ts';
import { startServer, OpenRasters, RasterMapTiles, RasterThumbnails, type RunningServer } from '../serve/index.ts';
import { ChipEmbedder } from '../embed/index.ts';
import { initBackend } from '../train/index.ts';
import { configFrom, intOption, openStore } from './context.ts';

interface ServeOptions {
  port?: number;
  host?: string;
  model?: string;
}

/**
 * Serves the store with thumbnails and chip search wired in, calls `ready` once listening, and returns after
 * SIGINT or SIGTERM with everything closed (the store stays open: it is the caller's).
 */
export async function serveUntilSignal(store: Store, config: Config, model: string | undefined, ready: (server: RunningServer) => Promise<void> | void): Promise<void> {
  const rasters = new OpenRasters(store);
  const thumbnails = new RasterThumbnails(store, rasters);
  const mapTiles = new RasterMapTiles(rasters);
  const chips = new ChipEmbedder(store);
  await initBackend('cpu'); // a model without an ONNX file yet is exported from its tfjs weights
  const server = await startServer({
    store, config, logger: logger(), model,
    renderThumbnail: (tile) => thumbnails.render(tile),
    renderMapTile: (rasterId, tile, opts) => mapTiles.render(rasterId, tile, opts),
    embedChip: (tiff, m, signal) => chips.embed(tiff, m, signal),
  });
  try {
    await ready(server);
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGINT', stop).off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop).on('SIGTERM', stop);
    });
  } finally {
    await server.close();
    await rasters.close();
    await chips.close();
  }
}

export function registerServeCommand(program: Command): void {
  program.command('serve')
    .description('HTTP API and web map: similar tiles, analogies, search (binds 127.0.0.1 unless --host says otherwise)')
    .option('--port <n>', 'port to listen on (env TILEVEC_PORT; default 8080; 0 picks a free one)', intOption('--port', 0))
    .option('--host <addr>', 'address to bind (env TILEVEC_HOST; default 127.0.0.1)')
    .option('--model <name>', 'model for requests that name none (default: the latest registered)')
    .action(async (opts: ServeOptions, cmd: Command) => {
      const config = configFrom(cmd, { serve: { port: opts.port, host: opts.host } });
      // The server stops a statement where the service stops waiting for it.
      const store = await openStore(config, { statementTimeoutMs: config.serve.queryTimeoutMs });
      try {
        // Fail at start, not on the first request, when the named model does not exist.
        if (opts.model) await store.model(opts.model);
        await serveUntilSignal(store, config, opts.model, (server) => {
          process.stderr.write(`tilevec: serving on ${server.url} (map at ${server.url}/, API docs at ${server.url}/docs)\n`);
        });
      } finally {
        await store.close();
      }
    });
}
