import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { UserError } from '../errors.ts';
import { parseNormalization, type Normalization } from '../sampling/index.ts';
import { decodeModel } from '../onnx/index.ts';

/** What an exported model says about its input, read back from its ONNX metadata. */
export interface EmbeddingModelInfo {
  name: string;
  bands: number[];
  normalization: Normalization;
  tileSize: number;
  dim: number;
}

type Reply = { id: number; data: Float32Array } | { id: number; error: string };

/**
 * An ONNX Runtime session over an exported tilevec model: normalised NHWC tiles in, embeddings out, on MLAS with
 * one intra-op thread per core. The session lives in a worker thread (session-worker.mjs), so inference overlaps
 * whatever the caller does on the main thread; calls run one after another in the order made.
 */
export class EmbeddingSession {
  private readonly pending = new Map<number, { resolve: (v: Float32Array) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private failure: Error | undefined;

  private constructor(private readonly worker: Worker, readonly info: EmbeddingModelInfo, private readonly input: string, private readonly output: string) {
    worker.on('message', (reply: Reply) => {
      const call = this.pending.get(reply.id);
      if (!call) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      if ('error' in reply) call.reject(new Error(`ONNX Runtime failed: ${reply.error}`));
      else call.resolve(reply.data);
    });
    const fail = (err: Error) => {
      this.failure = err;
      for (const call of this.pending.values()) call.reject(err);
      this.pending.clear();
    };
    worker.on('error', (err) => fail(new Error(`the ONNX Runtime worker failed: ${err.message}`)));
    worker.on('exit', () => fail(new Error('the ONNX Runtime session was released')));
    // An idle session never keeps the process alive; a call in flight does.
    worker.unref();
  }

  /**
   * `spinning` lets ORT's idle threads busy-wait for the next call. Off by default: between calls this process reads
   * tiles and the database writes vectors, and on a small machine spinning threads take the cores they need.
   */
  static async create(onnx: Uint8Array, opts: { threads?: number; source?: string; spinning?: boolean } = {}): Promise<EmbeddingSession> {
    const source = opts.source ?? 'the ONNX model';
    let info: EmbeddingModelInfo | undefined;
    try {
      const meta = metadataOf(onnx);
      info = {
        name: meta['tilevec.name'],
        bands: JSON.parse(meta['tilevec.bands']),
        normalization: parseNormalization(JSON.parse(meta['tilevec.normalization'])),
        tileSize: Number(meta['tilevec.tileSize']),
        dim: Number(meta['tilevec.dim']),
      };
    } catch {
      // Decided after ORT has had its say: a file that is no model at all is reported as such.
    }
    // execArgv: [] spares the worker the parent's loaders (tsx): it is plain JS.
    const worker = new Worker(new URL('./session-worker.mjs', import.meta.url), { execArgv: [], workerData: { onnx, threads: opts.threads ?? availableParallelism(), spinning: opts.spinning ?? false } });
    const ready = await new Promise<{ ready: boolean; error?: string; input?: string; output?: string }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    if (!ready.ready) {
      await worker.terminate();
      throw new UserError(`${source} is not a valid ONNX model: ${ready.error!.split('\n')[0]}`);
    }
    if (!info) {
      await worker.terminate();
      throw new UserError(`${source} carries no tilevec metadata (bands, normalization); export it with tilevec export-onnx`);
    }
    return new EmbeddingSession(worker, info, ready.input!, ready.output!);
  }

  /** Embeds `count` tiles laid out [count, tile, tile, bands]; returns [count × dim] row-major. */
  async embed(tiles: Float32Array, count: number): Promise<Float32Array> {
    if (this.failure) throw this.failure;
    const { tileSize, bands, dim } = this.info;
    const id = this.nextId++;
    const data = await new Promise<Float32Array>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage({ id, tiles, shape: [count, tileSize, tileSize, bands.length], input: this.input, output: this.output });
    });
    if (data.length !== count * dim) throw new Error(`the model returned ${data.length} values for ${count} tiles of dimension ${dim}`);
    return data;
  }

  async release(): Promise<void> {
    if (this.failure) return;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.ref();
    this.worker.postMessage({ release: true });
    await exited;
  }
}

function metadataOf(onnx: Uint8Array): Record<string, string> {
  const props = (decodeModel(onnx).metadataProps ?? []) as { key: string; value: string }[];
  return Object.fromEntries(props.map((p) => [p.key, p.value]));
}
