import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import { UserError } from '../errors.ts';
import { parseNormalization, type Normalization } from '../sampling/index.ts';
import { decodeModel } from './onnx/proto.ts';

/** What an exported model says about its input, read back from its ONNX metadata. */
export interface EmbeddingModelInfo {
  name: string;
  bands: number[];
  normalization: Normalization;
  tileSize: number;
  dim: number;
}

/**
 * An ONNX Runtime session over an exported tilevec model: normalised NHWC tiles in, embeddings out, on MLAS with
 * one intra-op thread per core.
 */
export class EmbeddingSession {
  private constructor(private readonly session: ort.InferenceSession, readonly info: EmbeddingModelInfo, private readonly input: string, private readonly output: string) {}

  static async create(onnx: Uint8Array, opts: { threads?: number; source?: string } = {}): Promise<EmbeddingSession> {
    const source = opts.source ?? 'the ONNX model';
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(onnx, {
        intraOpNumThreads: opts.threads ?? availableParallelism(),
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
      });
    } catch (err) {
      throw new UserError(`${source} is not a valid ONNX model: ${(err as Error).message.split('\n')[0]}`);
    }
    const meta = metadataOf(onnx);
    try {
      const info: EmbeddingModelInfo = {
        name: meta['tilevec.name'],
        bands: JSON.parse(meta['tilevec.bands']),
        normalization: parseNormalization(JSON.parse(meta['tilevec.normalization'])),
        tileSize: Number(meta['tilevec.tileSize']),
        dim: Number(meta['tilevec.dim']),
      };
      return new EmbeddingSession(session, info, session.inputNames[0], session.outputNames[0]);
    } catch {
      await session.release();
      throw new UserError(`${source} carries no tilevec metadata (bands, normalization); export it with tilevec export-onnx`);
    }
  }

  /** Embeds `count` tiles laid out [count, tile, tile, bands]; returns [count × dim] row-major. */
  async embed(tiles: Float32Array, count: number): Promise<Float32Array> {
    const { tileSize, bands, dim } = this.info;
    const x = new ort.Tensor('float32', tiles, [count, tileSize, tileSize, bands.length]);
    const out = await this.session.run({ [this.input]: x });
    const data = out[this.output].data as Float32Array;
    if (data.length !== count * dim) throw new Error(`the model returned ${data.length} values for ${count} tiles of dimension ${dim}`);
    return data;
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

function metadataOf(onnx: Uint8Array): Record<string, string> {
  const props = (decodeModel(onnx).metadataProps ?? []) as { key: string; value: string }[];
  return Object.fromEntries(props.map((p) => [p.key, p.value]));
}
