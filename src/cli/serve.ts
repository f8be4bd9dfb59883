import type { Command } from 'commander';
import { Store } from '../store/index.ts';
import { logger } from '../log.ts';
import { startServer } from '../serve/index.ts';
import { RasterThumbnails } from '../serve/thumbnails.ts';
import { ChipEmbedder } from '../embed/index.ts';
import { initBackend } from '../train/index.ts';
import { configFrom, intOption } from './context.ts';

interface ServeOptions {
  port?: number;
  host?: string;
  model?: string;
}

export function registerServeCommand(program: Command): void {
  program.command('serve')
    .description('HTTP API and web map: similar tiles, analogies, search (binds 127.0.0.1 unless --host says otherwise)')
    .option('--port <n>', 'port to listen on (env TILEVEC_PORT; default 8080; 0 picks a free one)', intOption('--port', 0))
    .option('--host <addr>', 'address to bind (env TILEVEC_HOST; default 127.0.0.1)')
    .option('--model <name>', 'model for requests that name none (default: the latest registered)')
    .action(async (opts: ServeOptions, cmd: Command) => {
      const config = configFrom(cmd, { serve: { port: opts.port, host: opts.host } });
      const store = await Store.open(config.db);
      // Fail at start, not on the first request, when the named model does not exist.
      if (opts.model) await store.model(opts.model).catch(async (err) => { await store.close(); throw err; });
      const log = logger();
      const thumbnails = new RasterThumbnails(store);
      const chips = new ChipEmbedder(store);
      await initBackend('cpu'); // a model without an ONNX file yet is exported from its tfjs weights
      const server = await startServer({
        store, config, logger: log, model: opts.model,
        renderThumbnail: (tile) => thumbnails.render(tile),
        embedChip: (tiff, model) => chips.embed(tiff, model),
      });
      process.stderr.write(`tilevec: serving on ${server.url} (map at ${server.url}/, API docs at ${server.url}/docs)\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop).off('SIGTERM', stop);
          resolve();
        };
        process.on('SIGINT', stop).on('SIGTERM', stop);
      });
      await server.close();
      await thumbnails.close();
      await chips.close();
      await store.close();
    });
}
