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
    const out = decodeBlock(codec, bytes);
    parentPort!.postMessage({ id, out }, [out.buffer]);
  } catch (err) {
    parentPort!.postMessage({ id, error: err instanceof Error ? err.message : String(err) });
  }
});

// Tells the pool that this worker has loaded and takes jobs from now on.
parentPort!.postMessage({ ready: true });
