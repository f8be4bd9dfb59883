import { readSync } from 'node:fs';
import { COMPRESSION, reusableBuffer } from './codecs.ts';

/** Where a block's stored bytes lie in a local file that the main thread holds open. */
export interface FileBlock {
  fd: number;
  offset: number;
  length: number;
}

const scratch = reusableBuffer();

/**
 * Reads a block's stored bytes on the calling thread. Compressed bytes go to a buffer this thread reuses (the
 * decoder is done with them before the next read); uncompressed ones become the decoded block itself, so they
 * get a buffer of their own.
 */
export function readFileBlock({ fd, offset, length }: FileBlock, compression: number): Uint8Array {
  const into = compression === COMPRESSION.none ? new Uint8Array(length) : scratch(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, into, done, length - done, offset + done);
    if (n === 0) throw new Error(`the file came back short: ${done} of ${length} bytes at byte ${offset}`);
    done += n;
  }
  return into;
}
