import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../errors.ts';
import { configFrom, intOption, openStore } from './context.ts';
import { demoExamples, type DemoExamples, type ExampleTile } from './demo-examples.ts';
import { progressReporter, formatSummary } from './ingest.ts';
import { progressBar as trainProgress, formatTrainSummary } from './train.ts';
import { embedProgress, formatEmbed } from './embed.ts';
import { ingest } from '../ingest/index.ts';
import { train, TRAIN_DEFAULTS, MODEL_FILES, initBackend } from '../train/index.ts';
import { embed, ensureModelOnnx, resolveModel } from '../embed/index.ts';
import { serveUntilSignal } from './serve.ts';

/**
 * The sample imagery that ships with the project (data/sample/README.md): one 2.24 km window of a NAIP
 * quarter-quad on ten dates, on one grid (one sensor, so one model fits all of it).
 */
export const DEMO_DATA = resolve(import.meta.dirname, '../../data/sample');
const DEMO_MODEL = 'demo';

interface DemoOptions {
  rasters?: string[];
  triplets: number;
  port?: number;
  retrain?: boolean;
}

function stage(n: number, text: string): void {
  process.stderr.write(`\n[${n}/5] ${text}\n`);
}

/**
 * The main job end to end on the embedded database: ingest, train the tiny backbone briefly, export to ONNX and
 * embed, then serve, printing working queries. Rerunning reuses what is done (unchanged rasters, the trained
 * model, stored vectors) unless --retrain.
 */
export function registerDemoCommand(program: Command): void {
  program.command('demo')
    .description('the main job end to end: ingest sample imagery, train briefly, embed, and serve similar-tile queries')
    .option('--rasters <paths...>', 'rasters to use (paths, folders, globs or https URLs; default data/sample, ten NAIP dates)')
    .option('--triplets <n>', 'training triplets', intOption('--triplets', 16), 4000)
    .option('--port <n>', 'port for the service (env TILEVEC_PORT; default 8080; 0 picks a free one)', intOption('--port', 0))
    .option('--retrain', 'train a fresh model even if the demo model exists')
    .action(async (o: DemoOptions, cmd: Command) => {
      const config = configFrom(cmd, { serve: { port: o.port } });
      const inputs = o.rasters ?? [DEMO_DATA];
      if (!o.rasters && !existsSync(DEMO_DATA)) {
        throw new UserError(`no sample imagery: ${DEMO_DATA} is absent (is this a full checkout?); pass your own with --rasters <paths|urls> (4-band GeoTIFFs of one sensor work best)`);
      }
      const started = performance.now();
      await initBackend('auto');
      const store = await openStore(config, { create: true });
      try {
        stage(1, `ingesting ${inputs.join(' ')} into ${config.db}`);
        const ingestBar = progressReporter();
        const ingested = await ingest(store, inputs, { tileSize: TRAIN_DEFAULTS.tileSize }, ingestBar.onProgress).finally(ingestBar.stop);
        process.stderr.write(`${formatSummary(ingested)}\n`);
        if (ingested.ingested + ingested.unchanged === 0) throw new UserError('none of the rasters could be ingested; see the errors above');

        const modelDir = resolve(config.modelsDir, DEMO_MODEL);
        const trained = !o.retrain && existsSync(join(modelDir, MODEL_FILES.weights)) && (await store.listModels()).some((m) => m.name === DEMO_MODEL);
        if (trained) {
          stage(2, `reusing the trained model in ${modelDir} (--retrain trains a new one)`);
        } else {
          stage(2, `training the tiny RevBiFPN on ${o.triplets} Tile2Vec triplets (ONNX Runtime engine)`);
          const bar = trainProgress();
          const summary = await train(store, {
            ...TRAIN_DEFAULTS, triplets: o.triplets, name: DEMO_MODEL, out: modelDir, resume: false,
          }, bar.update).finally(bar.stop);
          process.stderr.write(`${formatTrainSummary(summary)}\n`);
        }

        stage(3, 'exporting the encoder to ONNX');
        const { dir } = await resolveModel(store, DEMO_MODEL);
        process.stderr.write(`${ensureModelOnnx(dir)}\n`);

        stage(4, 'embedding every tile with ONNX Runtime into pgvector');
        const embedBar = embedProgress();
        const embedded = await embed(store, { model: DEMO_MODEL }, embedBar.update).finally(embedBar.stop);
        process.stderr.write(`${formatEmbed(embedded)}\n`);

        const rasterIds = ingested.rasters.flatMap((r) => (r.status === 'failed' ? [] : [r.rasterId]));
        const examples = await demoExamples(store, await Promise.all(rasterIds.map((id) => store.raster(id))));

        stage(5, 'starting the service');
        await serveUntilSignal(store, config, DEMO_MODEL, async (server) => {
          process.stdout.write(readyText(server.url, examples, (performance.now() - started) / 1000));
        });
      } finally {
        await store.close();
      }
    });
}

/** What the demo prints once it serves: where, and queries on tiles named for what they show. */
function readyText(url: string, examples: DemoExamples, seconds: number): string {
  const { similar, analogy } = examples;
  const named = (e: ExampleTile) => `tile ${e.tile.id} (${e.label})`;
  const lines = [
    '',
    `tilevec demo is ready after ${seconds.toFixed(0)} s: ${url}`,
    `  web map:  ${url}/`,
    `  API docs: ${url}/docs`,
    '',
    'Try:',
    `  # tiles picked ${examples.picked}`,
    `  # the tiles most like ${named(similar)}`,
    `  curl '${url}/v1/tiles/${similar.tile.id}/similar?k=5'`,
  ];
  if (analogy) {
    const { a, b, c, expected } = analogy;
    lines.push(
      `  # z(a) - z(b) + z(c): ${named(b)} is to ${named(a)} as ${named(c)} is to ?; expect ${named(expected)}`,
      `  curl -X POST ${url}/v1/analogy -H 'content-type: application/json' -d '{"a": ${a.tile.id}, "b": ${b.tile.id}, "c": ${c.tile.id}, "k": 5}'`,
    );
  } else {
    lines.push(`  # (no analogy example: ${examples.why})`);
  }
  lines.push(`  curl -o tile.png ${url}/v1/tiles/${similar.tile.id}/thumbnail.png`, '', 'Press Ctrl-C to stop.', '');
  return lines.join('\n');
}
