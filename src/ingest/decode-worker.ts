/** A decode-pool thread: turns stored block bytes into samples off the main thread. */
import { parentPort } from 'node:worker_threads';
import type { BlockCodec, BlockTarget } from './codecs.ts';
import { decodeJob, type BlockInput } from './decode-job.ts';

interface Job {
  id: number;
  codec: BlockCodec;
  input: BlockInput;
  target?: BlockTarget;
}

parentPort!.on('message', ({ id, codec, input, target }: Job) => {
  try {
    const decoded = decodeJob(codec, input, target);
    if (!decoded) {
      parentPort!.postMessage({ id });
      return;
    }
    // Only a buffer the block owns whole can be transferred: small zlib outputs are slices of Node's shared pool,
    // which postMessage refuses ("invalid object in transferList"), so those are copied out first.
    const owned = decoded.byteOffset === 0 && decoded.byteLength === decoded.buffer.byteLength && decoded.buffer instanceof ArrayBuffer;
    const out = owned ? decoded : new Uint8Array(decoded);
    parentPort!.postMessage({ id, out }, [out.buffer as ArrayBuffer]);
  } catch (err) {
    parentPort!.postMessage({ id, error: err instanceof Error ? err.message : String(err) });
  }
});

// Tells the pool that this worker has loaded and takes jobs from now on.
parentPort!.postMessage({ ready: true });
