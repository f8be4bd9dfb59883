import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../paths.ts';
import { UserError } from '../errors.ts';

/**
 * One file of named float32 tensors with a JSON header, used for model weights and for training checkpoints:
 *   "TVT1" | u32 header bytes | header JSON | float32 data (little-endian, 4-byte aligned)
 */
const MAGIC = 'TVT1';

export interface NamedTensor {
  shape: number[];
  data: Float32Array;
}

interface TensorEntry {
  name: string;
  shape: number[];
  offset: number;
  length: number;
}

export interface TensorFile<H> {
  header: H;
  tensors: Map<string, NamedTensor>;
}


export function writeTensorFile<H extends object>(path: string, header: H, tensors: Map<string, NamedTensor>): void {
  const entries: TensorEntry[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    entries.push({ name, shape: t.shape, offset, length: t.data.length });
    offset += t.data.length;
  }
  let json = Buffer.from(JSON.stringify({ ...header, tensors: entries }));
  const pad = (4 - ((8 + json.length) % 4)) % 4;
  if (pad) json = Buffer.concat([json, Buffer.from(' '.repeat(pad))]);
  const prefix = Buffer.alloc(8);
  prefix.write(MAGIC, 0, 'ascii');
  prefix.writeUInt32LE(json.length, 4);
  const chunks: Uint8Array[] = [prefix, json];
  for (const t of tensors.values()) chunks.push(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  writeFileAtomic(path, chunks);
}

export function readTensorFile<H extends object>(path: string): TensorFile<H> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new UserError(`cannot read ${path}: ${(err as Error).message}`);
  }
  const corrupt = (why: string) => new UserError(`${path} is not a valid tilevec tensor file (${why})`);
  if (bytes.length < 8 || bytes.toString('ascii', 0, 4) !== MAGIC) throw corrupt('bad magic');
  const headerLength = bytes.readUInt32LE(4);
  if (8 + headerLength > bytes.length) throw corrupt('truncated header');
  let parsed: H & { tensors: TensorEntry[] };
  try {
    parsed = JSON.parse(bytes.toString('utf8', 8, 8 + headerLength));
  } catch {
    throw corrupt('unreadable header');
  }
  const dataStart = 8 + headerLength;
  const floats = Math.floor((bytes.length - dataStart) / 4);
  // Copy into an aligned buffer: the file's data section need not sit at an aligned address in `bytes`.
  const data = new Float32Array(floats);
  new Uint8Array(data.buffer).set(bytes.subarray(dataStart, dataStart + floats * 4));
  const tensors = new Map<string, NamedTensor>();
  for (const e of parsed.tensors ?? []) {
    const size = e.shape.reduce((a, b) => a * b, 1);
    if (size !== e.length || e.offset + e.length > floats) throw corrupt(`tensor ${e.name} is out of bounds`);
    tensors.set(e.name, { shape: e.shape, data: data.subarray(e.offset, e.offset + e.length) });
  }
  const { tensors: _entries, ...header } = parsed;
  return { header: header as unknown as H, tensors };
}
