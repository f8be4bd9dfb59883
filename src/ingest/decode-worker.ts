/** A decode-pool thread: turns stored block bytes into samples off the main thread. */
import { parentPort } from 'node:worker_threads';
import { decodeBlock, type BlockCodec } from './codecs.ts';
import { readFileBlock, type FileBlock } from './file-block.ts';

/**
 * A block to decode: its stored bytes, or where to read them in a local file; and maybe block buffers the main
 * thread is done with, which this thread decodes into instead of allocating.
 */
type Job = { id: number; codec: BlockCodec; spares: ArrayBuffer[] } & ({ bytes: Uint8Array; file?: undefined } | { file: FileBlock; bytes?: undefined });

const spares: ArrayBuffer[] = [];
const MAX_SPARES = 4;

parentPort!.on('message', ({ id, codec, bytes, file, spares: given }: Job) => {
  for (const b of given) if (spares.length < MAX_SPARES) spares.push(b);
  try {
    const decoded = decodeBlock(codec, file ? readFileBlock(file, codec.compression) : bytes!, spares.at(-1));
    if (decoded.buffer === spares.at(-1)) spares.pop();
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
