import { InvalidArgumentError, type Command } from 'commander';
import { configFrom, emit, fractionOption, intListOption, intOption, withStore } from './context.ts';
import { openTripletSampling, exportTriplets, DEFAULT_CROSS_RASTER, DEFAULT_TEMPORAL_POSITIVES, DEFAULT_MAX_NODATA, DEFAULT_TILE_SIZE, type NormalizationMethod } from '../sampling/index.ts';

interface SampleOptions {
  count: number;
  seed: string;
  out: string;
  tileSize: number;
  neighborhood?: string;
  crossRaster?: number;
  temporalPositives?: number;
  maxNodata: number;
  bands?: number[];
  normalization: NormalizationMethod;
  augment: boolean;
  rasters?: number[];
  rgb?: number[];
}

export function registerSampleCommand(program: Command): void {
  program.command('sample')
    .description('draw Tile2Vec triplets (anchor, neighbor, distant) from the catalog and write them for a look')
    .requiredOption('--count <n>', 'triplets to draw', intOption('--count', 1))
    .option('--seed <s>', 'seed of the sampler (an integer or any string)', '0')
    .requiredOption('--out <dir>', 'folder for triplets.json, anchor/neighbor/distant.f32 and contact-sheet.png')
    .option('--tile-size <px>', 'tile side in pixels', intOption('--tile-size', 1), DEFAULT_TILE_SIZE)
    .option('--neighborhood <radius>', 'neighbor radius in pixels (32, 32px) or metres (100m); default the tile size')
    .option('--cross-raster <p>', `probability that the distant tile comes from another raster (default ${DEFAULT_CROSS_RASTER}; 0 with one raster or with temporal positives)`, fractionOption('--cross-raster'))
    .option('--temporal-positives <p>', `probability that the neighbor is the anchor's window on another date of co-registered rasters (default ${DEFAULT_TEMPORAL_POSITIVES} where they form a stack)`, fractionOption('--temporal-positives'))
    .option('--max-nodata <f>', 'largest nodata fraction of any sampled tile', fractionOption('--max-nodata'), DEFAULT_MAX_NODATA)
    .option('--bands <list>', '1-based bands in channel order, e.g. 4,3,2 (default all)', intListOption('--bands'))
    .option('--normalization <method>', 'percentile (p2-p98 to 0..1) or zscore', (v: string) => {
      if (v !== 'percentile' && v !== 'zscore') throw new InvalidArgumentError(`--normalization must be percentile or zscore, got '${v}'`);
      return v;
    }, 'percentile')
    .option('--no-augment', 'no random flips or quarter turns')
    .option('--rasters <ids>', 'catalog raster ids to sample (default all)', intListOption('--rasters'))
    .option('--rgb <bands>', 'three sampled bands to show as red, green, blue in the contact sheet (default the first three)', intListOption('--rgb'))
    .action(async (o: SampleOptions, cmd: Command) => {
      const config = configFrom(cmd);
      const summary = await withStore(config, async (store) => {
        const sampling = await openTripletSampling(store, {
          tileSize: o.tileSize,
          neighborhood: o.neighborhood,
          crossRasterProbability: o.crossRaster,
          temporalProbability: o.temporalPositives,
          maxNodataFraction: o.maxNodata,
          bands: o.bands,
          normalization: o.normalization,
          augment: o.augment,
          seed: /^-?\d+$/.test(o.seed) ? Number(o.seed) : o.seed,
          rasterIds: o.rasters,
        });
        try {
          const result = await exportTriplets(sampling, { count: o.count, out: o.out, rgb: o.rgb });
          return { ...result, params: sampling.params, normalization: sampling.normalization };
        } finally {
          await sampling.close();
        }
      });
      emit(cmd, summary, (s) =>
        `wrote ${s.count} triplets to ${s.out} (${s.files.join(', ')}) in ${s.seconds.toFixed(2)} s, ${Math.round(s.tripletsPerSecond)} triplets/s\n` +
        `tile ${s.params.tileSize} px, neighborhood ${s.params.neighborhood}, cross-raster ${s.params.crossRasterProbability}, temporal positives ${s.params.temporalProbability}, ` +
        `max nodata ${s.params.maxNodataFraction}, bands ${s.params.bands.join(',')}, ${s.normalization.method} normalization`);
    });
}
