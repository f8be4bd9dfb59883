/**
 * Triplet sampling throughput: triplets/s of normalized, augmented [tile, tile, bands] tensors from the prefetching
 * loader, reading the ten NAIP North Dakota rasters through src/ingest (block-cached) after ingesting them into a
 * temporary embedded store. Without ../shared/data it samples synthetic in-memory rasters and says so.
 *
 *   node --import tsx bench/sampling.ts [--batch 64] [--batches 40] [--tile 64] [--prefetch 4]
 *
 * The last line of stdout is one JSON object.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ingest } from '../src/ingest/index.ts';
import { Store } from '../src/store/index.ts';
import { createTripletSampling, MemoryRaster, openTripletSampling, type TripletSampling } from '../src/sampling/index.ts';

const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '64' },
    batches: { type: 'string', default: '40' },
    tile: { type: 'string', default: '64' },
    prefetch: { type: 'string', default: '4' },
  },
});
const batchSize = Number(values.batch);
const batches = Number(values.batches);
const tileSize = Number(values.tile);
const prefetch = Number(values.prefetch);
const NAIP = resolve(import.meta.dirname, '../../shared/data/naip-northdakota');

async function realSampling(dir: string): Promise<{ sampling: TripletSampling; store: Store; source: string }> {
  const store = await Store.open(join(dir, 'db'));
  const files = readdirSync(NAIP).filter((f) => f.endsWith('.tif')).map((f) => join(NAIP, f));
  await ingest(store, files, { tileSize });
  const sampling = await openTripletSampling(store, { tileSize, neighborhood: tileSize, seed: 1 });
  return { sampling, store, source: `${files.length} NAIP rasters (934 x 723, 4 bands, uint8) via src/ingest` };
}

async function syntheticSampling(): Promise<{ sampling: TripletSampling; source: string }> {
  const inputs = [1, 2, 3].map((id) => {
    const w = 1000;
    const data = Float32Array.from({ length: w * w * 4 }, (_, i) => (i * 2654435761) % 255);
    const r = new MemoryRaster(id, w, w, 4, data, null);
    const bandStats = [1, 2, 3, 4].map((band) => ({ band, count: w * w, min: 0, max: 254, mean: 127, std: 73, p2: 5, p98: 250 }));
    return { record: { id, uri: `memory://${id}`, width: w, height: w, bandCount: 4, dtype: 'uint8', geotransform: [0, 1, 0, 0, 0, -1], georeferenced: false, crsDef: null, bandStats }, source: r };
  });
  return { sampling: await createTripletSampling(inputs, { tileSize, neighborhood: tileSize, seed: 1 }), source: 'synthetic: 3 in-memory 1000 x 1000 x 4 rasters (real imagery not found)' };
}

const dir = mkdtempSync(join(tmpdir(), 'tilevec-bench-sampling-'));
try {
  const setupStart = performance.now();
  const real = existsSync(NAIP) ? await realSampling(dir) : undefined;
  const { sampling, source } = real ?? (await syntheticSampling());
  const setupSeconds = (performance.now() - setupStart) / 1000;

  // Geometry alone: how fast windows are drawn, without reading pixels.
  const geometryStart = performance.now();
  sampling.sampler.take(20_000);
  const geometryPerSecond = 20_000 / ((performance.now() - geometryStart) / 1000);

  const loader = sampling.loader({ batchSize, prefetch, batches: batches + 2 });
  await loader.next(); // warm-up: fills the block caches and the prefetch queue
  await loader.next();
  const started = performance.now();
  let triplets = 0;
  for await (const batch of loader) triplets += batch.shape[0];
  const seconds = (performance.now() - started) / 1000;
  const tripletsPerSecond = triplets / seconds;
  await sampling.close();
  await real?.store.close();

  console.log(`source      ${source}`);
  console.log(`setup       ${setupSeconds.toFixed(1)} s (ingest, nodata masks)`);
  console.log(`geometry    ${Math.round(geometryPerSecond)} triplets/s (windows only)`);
  console.log(`loader      ${Math.round(tripletsPerSecond)} triplets/s (${triplets} triplets of ${tileSize} x ${tileSize} x ${sampling.normalization.bands.length}, batch ${batchSize}, prefetch ${prefetch})`);
  console.log(JSON.stringify({
    bench: 'sampling', source, tileSize, bands: sampling.normalization.bands.length, batchSize, prefetch, triplets,
    seconds: Number(seconds.toFixed(3)), tripletsPerSecond: Math.round(tripletsPerSecond), geometryTripletsPerSecond: Math.round(geometryPerSecond),
  }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
