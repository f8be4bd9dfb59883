import { EmbeddingSession, embedTiles, exportBackboneOnnx, onnxMetadata, readBatch } from '../embed/index.ts';
import { IngestRasterSource, statsOfRaster, TripletDataset, type Normalization } from '../sampling/index.ts';
import type { ModelRecord, Store, TileRecord } from '../store/index.ts';
import { createBackbone, readCard } from '../train/index.ts';
import type { FeatureProvider } from './feature-providers.ts';

const BATCH = 64;

/**
 * Embeddings from a randomly initialised backbone of the model's architecture, reading tiles with the model's
 * bands and normalization: the control that shows what training added over the architecture alone. By default
 * it is the very network training started from (the model's seed). It is exported to ONNX and run in memory;
 * nothing is registered or stored. Needs a tfjs backend (weights live in tfjs variables until export).
 */
export function randomBackboneFeatures(store: Store, model: Pick<ModelRecord, 'artifactPath'>, opts: { seed?: number } = {}): FeatureProvider {
  return async (tiles) => {
    const card = readCard(model.artifactPath);
    const backbone = createBackbone(card.backbone, { seed: opts.seed ?? card.seed });
    let onnx: Uint8Array;
    try {
      onnx = exportBackboneOnnx(backbone, { metadata: onnxMetadata({ ...card, name: `${card.name}-random-init` }) });
    } finally {
      backbone.dispose();
    }
    const session = await EmbeddingSession.create(onnx, { source: `random-initialised ${card.name}` });
    try {
      return await embedTilesOfRasters(store, session, card.normalization, tiles);
    } finally {
      await session.release();
    }
  };
}

/** Runs tiles through a session raster by raster, in batches read ahead; rows come back in the order of `tiles`. */
async function embedTilesOfRasters(store: Store, session: EmbeddingSession, normalization: Normalization, tiles: TileRecord[]): Promise<Float32Array[]> {
  const { dim } = session.info;
  const out = new Array<Float32Array>(tiles.length);
  const byRaster = new Map<number, { t: TileRecord; i: number }[]>();
  tiles.forEach((t, i) => {
    if (!byRaster.has(t.rasterId)) byRaster.set(t.rasterId, []);
    byRaster.get(t.rasterId)!.push({ t, i });
  });
  for (const [rasterId, members] of byRaster) {
    const raster = await store.raster(rasterId);
    const source = await IngestRasterSource.open(raster);
    const dataset = new TripletDataset([source], normalization, [statsOfRaster(raster)]);
    try {
      await embedTiles(session, members, {
        batch: BATCH,
        read: (batch) => readBatch(dataset, rasterId, batch.map(({ t }) => t)),
        write: async (batch, vectors) => batch.forEach(({ i }, j) => (out[i] = vectors.slice(j * dim, (j + 1) * dim))),
      });
    } finally {
      await source.close();
    }
  }
  return out;
}
