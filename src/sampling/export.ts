import { createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { UserError } from '../errors.ts';
import type { ResolvedSamplingParams, TripletSampling } from './catalog.ts';
import { contactSheet, type SheetTriplet } from './contact-sheet.ts';
import type { Normalization } from './normalize.ts';
import type { RngState } from '../rng.ts';
import type { Triplet } from './sampler.ts';
import { makeDirectory } from '../paths.ts';

export const TENSOR_FILES = { anchor: 'anchor.f32', neighbor: 'neighbor.f32', distant: 'distant.f32' } as const;
export const INDEX_FILE = 'triplets.json';
export const SHEET_FILE = 'contact-sheet.png';
const SHEET_ROWS = 8;
const BATCH = 32;

/** The `triplets.json` index: triplet i is record i of each tensor file. */
export interface TripletIndex {
  version: 1;
  count: number;
  params: ResolvedSamplingParams;
  normalization: Normalization;
  /** Under per-raster normalization, the numbers each raster's tiles were normalized with, by raster id. */
  rasterNormalizations?: Record<number, Normalization>;
  tensors: {
    files: typeof TENSOR_FILES;
    dtype: 'float32';
    byteOrder: 'little' | 'big';
    /** Each file holds [count, tile, tile, bands], pixel-interleaved; record i starts at byte i * recordBytes. */
    shape: [number, number, number, number];
    recordBytes: number;
  };
  /** The generator state after the last triplet: continuing from it draws triplet `count` onward. */
  rngState: RngState;
  triplets: (Triplet & { index: number })[];
}

export interface ExportSummary {
  out: string;
  count: number;
  files: string[];
  seconds: number;
  tripletsPerSecond: number;
}

/** Draws `count` triplets and writes the index, the raw tensors and a contact sheet under `out`. */
export async function exportTriplets(sampling: TripletSampling, opts: { count: number; out: string; rgb?: number[] }): Promise<ExportSummary> {
  const { params, normalization } = sampling;
  const rgb = displayChannels(normalization.bands, opts.rgb);
  makeDirectory(opts.out, 'the --out folder');
  const started = performance.now();
  const streams = Object.fromEntries(Object.entries(TENSOR_FILES).map(([role, file]) => [role, createWriteStream(join(opts.out, file))])) as Record<keyof typeof TENSOR_FILES, ReturnType<typeof createWriteStream>>;
  const triplets: (Triplet & { index: number })[] = [];
  const sheet: SheetTriplet[] = [];
  const recordBytes = params.tileSize * params.tileSize * normalization.bands.length * 4;
  let rngState = sampling.sampler.getState();
  try {
    // Full batches read ahead, then one short batch, so exactly `count` triplets are drawn and rngState resumes after them.
    const full = Math.floor(opts.count / BATCH);
    const rest = opts.count % BATCH;
    const loaders = [sampling.loader({ batchSize: BATCH, prefetch: 2, batches: full })];
    if (rest) loaders.push(sampling.loader({ batchSize: rest, prefetch: 0, batches: 1 }));
    for (const loader of loaders) {
      for await (const batch of loader) {
        rngState = batch.rngState;
        for (const role of ['anchor', 'neighbor', 'distant'] as const) {
          const bytes = Buffer.from(batch[role].buffer, batch[role].byteOffset, batch[role].byteLength);
          if (!streams[role].write(bytes)) await once(streams[role], 'drain');
        }
        batch.triplets.forEach((t, i) => {
          triplets.push({ index: triplets.length, ...t });
          if (sheet.length < SHEET_ROWS) {
            const slice = (a: Float32Array) => a.slice((i * recordBytes) / 4, ((i + 1) * recordBytes) / 4);
            sheet.push({ anchor: slice(batch.anchor), neighbor: slice(batch.neighbor), distant: slice(batch.distant) });
          }
        });
      }
    }
  } finally {
    await Promise.all(Object.values(streams).map((s) => new Promise<void>((resolve, reject) => s.end((err?: Error | null) => (err ? reject(err) : resolve())))));
  }
  const seconds = (performance.now() - started) / 1000;
  const index: TripletIndex = {
    version: 1,
    count: triplets.length,
    params,
    normalization,
    ...(normalization.scope === 'raster' ? { rasterNormalizations: Object.fromEntries(params.rasterIds.map((id) => [id, sampling.dataset.normalizationOf(id)])) } : {}),
    tensors: {
      files: TENSOR_FILES,
      dtype: 'float32',
      byteOrder: endianness() === 'LE' ? 'little' : 'big',
      shape: [triplets.length, params.tileSize, params.tileSize, normalization.bands.length],
      recordBytes,
    },
    rngState,
    triplets,
  };
  await writeFile(join(opts.out, INDEX_FILE), `${JSON.stringify(index, null, 1)}\n`);
  await writeFile(join(opts.out, SHEET_FILE), contactSheet(sheet, { tileSize: params.tileSize, normalization, rgb }));
  return {
    out: opts.out,
    count: triplets.length,
    files: [INDEX_FILE, ...Object.values(TENSOR_FILES), SHEET_FILE],
    seconds,
    tripletsPerSecond: triplets.length / Math.max(seconds, 1e-9),
  };
}

/** Tensor channels for red, green and blue: the given source bands, else the first three (or one as grey). */
function displayChannels(bands: number[], rgb: number[] | undefined): [number, number, number] {
  if (!rgb) return bands.length >= 3 ? [0, 1, 2] : [0, 0, 0];
  if (rgb.length !== 3) throw new UserError(`--rgb takes three band numbers, got ${rgb.join(',')}`);
  return rgb.map((b) => {
    const channel = bands.indexOf(b);
    if (channel < 0) throw new UserError(`--rgb band ${b} is not among the sampled bands (${bands.join(',')})`);
    return channel;
  }) as [number, number, number];
}
