import { InvalidArgumentError, type Command } from 'commander';
import cliProgress from 'cli-progress';
import { configFrom, emit, intListOption, intOption, withStore } from './context.ts';
import { embed, exportEmbeddings, exportModelOnnx, resolveModel, type EmbedProgress, type EmbedSummary, type ExportFormat } from '../embed/index.ts';
import { initBackend } from '../train/index.ts';
import { VECTOR_TYPES, type ModelRecord, type VectorType } from '../store/index.ts';
import { enqueueEmbed } from './worker.ts';
import { requireOutputFolder } from '../paths.ts';

function vectorTypeOption(value: string): VectorType {
  if (!(VECTOR_TYPES as readonly string[]).includes(value)) throw new InvalidArgumentError(`--vector-type must be one of ${VECTOR_TYPES.join(', ')}, got '${value}'`);
  return value as VectorType;
}

export function embedProgress(): { update: (p: EmbedProgress) => void; stop: () => void } {
  if (!process.stderr.isTTY) return { update: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    { format: 'embed raster {raster} [{bar}] {value}/{total} tiles | {rate} tiles/s', stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  let raster = -1;
  return {
    update(p) {
      if (p.rasterId !== raster) {
        if (raster !== -1) bar.stop();
        raster = p.rasterId;
        bar.start(p.total, 0, { raster: p.rasterId, rate: '-' });
      }
      bar.update(p.done, { rate: p.tilesPerSecond.toFixed(0) });
    },
    stop: () => raster !== -1 && bar.stop(),
  };
}

export function formatEmbed(s: EmbedSummary): string {
  return `embedded ${s.tilesEmbedded} tiles of ${s.rasters} raster(s) with model ${s.model}` +
    `${s.tilesAlreadyDone ? ` (${s.tilesAlreadyDone} already done)` : ''} in ${s.seconds.toFixed(1)} s, ${s.tilesPerSecond.toFixed(0)} tiles/s; HNSW index ready`;
}

function formatModels(models: ModelRecord[]): string {
  if (models.length === 0) return 'no models yet; train one with tilevec train';
  return models.map((m, i) => `${m.name}${i === 0 ? ' (default)' : ''}  dim ${m.dim}, tile ${m.tileSize} px, bands ${m.bands.join(',')}, ${m.createdAt}  ${m.artifactPath}`).join('\n');
}

export function registerEmbedCommands(program: Command): void {
  program.command('export-onnx')
    .description('write a trained model as an ONNX inference graph (opset 17, BatchNorm folded, normalization and bands as metadata)')
    .option('--model <name|dir>', 'model name or directory (default: the latest)')
    .requiredOption('--out <file>', 'where to write the .onnx file')
    .action(async (o, cmd: Command) => {
      const config = configFrom(cmd);
      await initBackend('cpu');
      const result = await withStore(config, async (store) => {
        const { dir } = await resolveModel(store, o.model);
        const { path, bytes, card } = exportModelOnnx(dir, requireOutputFolder(o.out, '--out'));
        return { model: card.name, path, bytes };
      });
      emit(cmd, result, (r) => `wrote ${r.path} (${(r.bytes / 1e6).toFixed(1)} MB) for model ${r.model}`);
    });

  program.command('embed')
    .description('embed every catalog tile with a model through ONNX Runtime and store the vectors (resumable)')
    .option('--model <name|dir>', 'model name or directory (default: the latest)')
    .option('--rasters <ids>', 'catalog raster ids (default all)', intListOption('--rasters'))
    .option('--batch <n>', 'tiles per ONNX Runtime call', intOption('--batch', 1), 64)
    .option('--threads <n>', 'intra-op threads (default: one per core)', intOption('--threads', 1))
    .option('--queue', 'enqueue blocks of tiles for tilevec worker processes (PostgreSQL server only)')
    .option('--block-tiles <n>', 'tiles per queued job with --queue', intOption('--block-tiles', 1), 2048)
    .option('--vector-type <t>', 'how the HNSW index holds the vectors: vector (float32) | halfvec (float16: half the index, answers still ordered by float32 distance); default: as the model has it, vector at first', vectorTypeOption)
    .action(async (o, cmd: Command) => {
      const config = configFrom(cmd);
      if (o.queue) {
        const result = await enqueueEmbed(config, { model: o.model, rasterIds: o.rasters, batch: o.batch, blockTiles: o.blockTiles, vectorType: o.vectorType });
        emit(cmd, result, (r) => `queued ${r.queued} embed job(s) over ${r.tiles} tiles for model ${r.model}; run tilevec worker to process them`);
        return;
      }
      await initBackend('cpu'); // exporting a fresh ONNX file reads the weights through tfjs
      const bar = embedProgress();
      const summary = await withStore(config, (store) => embed(store, { model: o.model, rasterIds: o.rasters, batch: o.batch, threads: o.threads, vectorType: o.vectorType }, bar.update)).finally(bar.stop);
      emit(cmd, summary, formatEmbed);
    });

  const models = program.command('models').description('list the registered models (the newest is the default)');
  models.action(async (_o, cmd: Command) => {
    const config = configFrom(cmd);
    const list = await withStore(config, (store) => store.listModels());
    emit(cmd, { models: list }, (r) => formatModels(r.models));
  });
  models.command('rm <name>')
    .description("remove a model's registration, vectors and index (its directory on disk is kept)")
    .action(async (name: string, _o, cmd: Command) => {
      const config = configFrom(cmd);
      await withStore(config, (store) => store.removeModel(name));
      emit(cmd, { removed: name }, () => `removed model ${name} with its vectors and index`);
    });

  program.command('export')
    .description('write embeddings as GeoParquet, or as embedding GeoTIFFs (one float32 band per dimension at tile resolution)')
    .option('--model <name|dir>', 'model name or directory (default: the latest)')
    .requiredOption('--format <f>', 'geoparquet|geotiff', (v: string): ExportFormat => {
      if (v !== 'geoparquet' && v !== 'geotiff') throw new InvalidArgumentError(`--format must be geoparquet or geotiff, got '${v}'`);
      return v;
    })
    .requiredOption('--out <path>', 'output file (a directory for several rasters as GeoTIFF)')
    .option('--rasters <ids>', 'catalog raster ids (default all)', intListOption('--rasters'))
    .action(async (o, cmd: Command) => {
      const config = configFrom(cmd);
      const result = await withStore(config, (store) => exportEmbeddings(store, { model: o.model, format: o.format, out: o.out, rasterIds: o.rasters }));
      emit(cmd, result, (r) => `wrote ${r.tiles} embeddings (dim ${r.dim}) of model ${r.model} to ${r.files.join(', ')}`);
    });
}
