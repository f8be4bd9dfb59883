/** A decode-pool thread: turns stored block bytes into samples off the main thread. */
import { parentPort } from 'node:worker_threads';
import { decodeBlock, type BlockCodec } from './codecs.ts';

interface Job {
  id: number;
  codec: BlockCodec;
  bytes: Uint8Array;
}

parentPort!.on('message', ({ id, codec, bytes }: Job) => {
  try {
    const decoded = decodeBlock(codec, bytes);
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
