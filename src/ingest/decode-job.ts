/** One block's decoding, the same on a decode thread and, while those start, on the calling thread. */
import { copyBlockRect, decodeBlock, type BlockCodec, type BlockTarget } from './codecs.ts';
import { readFileBlock, type FileBlock } from './file-block.ts';

/** A block's stored bytes, or where they lie in a local file. */
export type BlockInput = { bytes: Uint8Array; file?: undefined } | { file: FileBlock; bytes?: undefined };

/** Decoded blocks that are only copied into a target go through this thread's reused buffer. */
let staging: ArrayBuffer | undefined;

/** The decoded block; or, given a target, nothing, once the block's part is written into the target's bands. */
export function decodeJob(codec: BlockCodec, input: BlockInput, target?: BlockTarget): Uint8Array | undefined {
  const stored = input.file ? readFileBlock(input.file, codec.compression) : input.bytes;
  if (!target) return decodeBlock(codec, stored);
  const block = decodeBlock(codec, stored, staging);
  if (block.byteOffset === 0 && block.buffer instanceof ArrayBuffer) staging = block.buffer;
  copyBlockRect(block, codec, target.rect, target.planes, target.bands);
  return undefined;
}
