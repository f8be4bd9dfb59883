/** A decode-pool thread: turns stored block bytes into samples off the main thread. */
import { parentPort } from 'node:worker_threads';
import { decodeBlock, type BlockCodec } from './codecs.ts';
import { readFileBlock, type FileBlock } from './file-block.ts';

/** A block to decode: its stored bytes, or where to read them in a local file. */
type Job = { id: number; codec: BlockCodec } & ({ bytes: Uint8Array; file?: undefined } | { file: FileBlock; bytes?: undefined });

parentPort!.on('message', ({ id, codec, bytes, file }: Job) => {
  try {
    const decoded = decodeBlock(codec, file ? readFileBlock(file, codec.compression) : bytes!);
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
