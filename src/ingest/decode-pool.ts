import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import type { BlockCodec, BlockTarget } from './codecs.ts';
import { decodeJob, type BlockInput } from './decode-job.ts';

/**
 * The worker is TypeScript like the rest of the sources, and a worker does not inherit the parent's loader hooks,
 * so a one-line ES module registers tsx in the worker before importing it.
 */
const WORKER_BOOT = [
  `import { register } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))};`,
  'register();',
  `await import(${JSON.stringify(new URL('./decode-worker.ts', import.meta.url).href)});`,
].join('\n');

/** A block the codec rejected (as opposed to a worker that died): the file's fault, not ours. */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
}

interface Pending {
  resolve: (out: Uint8Array | undefined) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  busy: number;
  /** Set by the worker's first message, once it has loaded (booting tsx takes about half a second). */
  ready: Promise<void>;
  isReady: boolean;
}

/**
 * Decodes blocks on worker threads, one per core by default. Each job goes to the least-busy ready worker; while
 * every worker is still booting, blocks are decoded on the calling thread instead of waiting. Workers hold the
 * process open only while they have work, so an idle pool never delays exit.
 */
export class DecodePool {
  private readonly slots: Slot[] = [];
  private readonly pending = new Map<number, Pending & { slot: Slot }>();
  private nextId = 1;

  /** `threads` 0 decodes on the calling thread (useful for tiny inputs and for debugging). */
  constructor(readonly threads: number = defaultThreads()) {}

  /**
   * Decodes a block from its stored bytes, or from where they lie in a local file (read on the decode thread
   * through the descriptor the main thread holds). Without a target the decoded block comes back; with one, whose
   * bands must be in shared memory, the decode thread writes the block's part straight into them and nothing
   * comes back.
   */
  decode(codec: BlockCodec, input: BlockInput, target?: BlockTarget): Promise<Uint8Array | undefined> {
    const slot = this.threads > 0 ? this.leastBusy() : undefined;
    if (!slot) {
      try {
        return Promise.resolve(decodeJob(codec, input, target));
      } catch (err) {
        return Promise.reject(new DecodeError(err instanceof Error ? err.message : String(err)));
      }
    }
    const id = this.nextId++;
    // Stored bytes are transferred when they own their buffer; otherwise a copy is posted.
    const { bytes } = input;
    const transfer = bytes && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? [bytes.buffer as ArrayBuffer] : [];
    return new Promise<Uint8Array | undefined>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, slot });
      if (slot.busy++ === 0) slot.worker.ref();
      slot.worker.postMessage({ id, codec, input, target }, transfer);
    });
  }

  /** Starts every worker and resolves once all are ready, for callers that want the pool's full speed at once. */
  async warm(): Promise<void> {
    while (this.slots.length < this.threads) this.spawn();
    await Promise.all(this.slots.map((s) => s.ready));
  }

  async close(): Promise<void> {
    const workers = this.slots.splice(0).map((s) => s.worker);
    await Promise.all(workers.map((w) => w.terminate()));
  }

  /** The least-busy ready worker, starting another while under `threads` and none is idle; none while all boot. */
  private leastBusy(): Slot | undefined {
    if (this.slots.length < this.threads && !this.slots.some((s) => s.isReady && s.busy === 0)) this.spawn();
    let best: Slot | undefined;
    for (const s of this.slots) if (s.isReady && (!best || s.busy < best.busy)) best = s;
    return best;
  }

  private spawn(): Slot {
    const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(WORKER_BOOT)}`));
    let markReady = () => {};
    let failBoot: (err: Error) => void = () => {};
    const ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      failBoot = reject;
    });
    ready.catch(() => {}); // only `warm` cares, and it awaits `ready` itself
    const slot: Slot = { worker, busy: 0, isReady: false, ready };
    worker.unref();
    worker.on('message', (msg: { id?: number; out?: Uint8Array; error?: string }) => {
      if (msg.id === undefined) {
        slot.isReady = true;
        // A message from an unreferenced worker leaves its port referenced again; an idle pool must not hold the process.
        if (slot.busy === 0) worker.unref();
        markReady();
        return;
      }
      const job = this.pending.get(msg.id);
      if (!job) return;
      this.pending.delete(msg.id);
      if (--slot.busy === 0) worker.unref();
      if (msg.error !== undefined) job.reject(new DecodeError(msg.error));
      else job.resolve(msg.out);
    });
    worker.on('error', (err) => this.failAll(slot, err));
    worker.on('exit', (code) => {
      failBoot(new Error(`decode worker exited with code ${code} while starting`));
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      this.failAll(slot, new Error(`decode worker exited with code ${code}`));
    });
    this.slots.push(slot);
    return slot;
  }

  private failAll(slot: Slot, err: Error): void {
    for (const [id, job] of this.pending) {
      if (job.slot !== slot) continue;
      this.pending.delete(id);
      job.reject(err);
    }
    slot.busy = 0;
  }
}

function defaultThreads(): number {
  const env = Number(process.env.TILEVEC_DECODE_THREADS);
  if (Number.isInteger(env) && env >= 0) return env;
  return Math.min(availableParallelism(), 8);
}

let shared: DecodePool | undefined;

/** The process-wide pool every open raster uses unless given its own. */
export function sharedDecodePool(): DecodePool {
  shared ??= new DecodePool();
  return shared;
}
