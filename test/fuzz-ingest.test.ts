import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DATA_DIR, dataMissing, tempDir } from './helpers.ts';

/**
 * Mutated and truncated copies of the real rasters through ingest: bit flips, truncations, corrupted IFD offsets,
 * tag counts and values, huge declared sizes and block counts. Each file runs in a child process under a time
 * budget, with its RSS measured: no crash, no hang, bounded memory, and a failure leaves no rows behind.
 * The same file is the child (TILEVEC_FUZZ_CHILD=1), so a crash or a hang kills only the child.
 */

const FILES = 220;
const BUDGET_MS = 30_000;
const RSS_LIMIT = 1536 * 2 ** 20;
const SOURCES = [
  'virginia-naip-landsat8/landsat8_elkton_va_BQA.tif',
  'virginia-naip-landsat8/landsat8_elkton_va_labels.tif',
  'virginia-naip-landsat8/m_3607717_sw_18_1_20160620_subset.tif',
  'virginia-naip-landsat8/landsat8_elkton_va_B8_pan.tif',
  'zion-landsat8-nlcd/nlcd2011_zion_8class.tif',
].map((p) => join(DATA_DIR, p));

interface Outcome {
  file: string;
  status: string;
  error?: string;
  ms: number;
  rss: number;
  partial?: string;
}

// ---- the child: ingests the files it is sent into an in-memory store, checking for partial rows after each ----
if (process.env.TILEVEC_FUZZ_CHILD === '1') {
  const { Store } = await import('../src/store/index.ts');
  const { ingest } = await import('../src/ingest/index.ts');
  const store = await Store.open('memory://');
  const tileCount = async () => (await store.engine.query<{ n: number }>('select count(*)::int as n from tiles'))[0].n;
  process.on('message', async (file: string) => {
    const started = performance.now();
    const before = await tileCount();
    const summary = await ingest(store, [file], { tileSize: 32, allowUngeoreferenced: true });
    const outcome = summary.rasters[0];
    const after = await tileCount();
    const stored = await store.rasterByUri(file);
    let partial: string | undefined;
    if (outcome.status === 'failed' && (stored || after !== before)) partial = `failed, yet ${stored ? 'a raster row' : `${after - before} tiles`} remain`;
    if (outcome.status === 'ingested' && after - before !== outcome.tiles) partial = `${after - before} tile rows for ${outcome.tiles} tiles`;
    if (stored) await store.deleteRaster(stored.id); // keep the store small and the next check exact
    process.send!({ file, status: outcome.status, error: outcome.status === 'failed' ? outcome.error : undefined, ms: performance.now() - started, rss: process.memoryUsage().rss, partial } satisfies Outcome);
  });
  process.send!('ready');
}

// ---- mutations ----

function rng(seed: number): () => number {
  return () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

interface Entry { at: number; tag: number; countAt: number; valueAt: number; big: boolean }

/** The entries of IFD0 (classic TIFF or BigTIFF), to aim mutations at the directory. */
function ifd0(buf: Buffer): { le: boolean; big: boolean; ifdAt: number; entries: Entry[] } {
  const le = buf.toString('latin1', 0, 2) === 'II';
  const u16 = (o: number) => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const big = u16(2) === 43;
  const ifdAt = big ? Number(le ? buf.readBigUInt64LE(8) : buf.readBigUInt64BE(8)) : u32(4);
  const n = big ? Number(le ? buf.readBigUInt64LE(ifdAt) : buf.readBigUInt64BE(ifdAt)) : u16(ifdAt);
  const first = ifdAt + (big ? 8 : 2);
  const size = big ? 20 : 12;
  const entries = Array.from({ length: n }, (_, i) => {
    const at = first + i * size;
    return { at, tag: u16(at), countAt: at + 4, valueAt: at + (big ? 12 : 8), big };
  });
  return { le, big, ifdAt, entries };
}

const HUGE = [0xffffffff, 0x7fffffff, 0x10000000, 1_000_000, 65_536, 0];

function mutate(original: Buffer, random: () => number, kind: number): { buf: Buffer; what: string } {
  const buf = Buffer.from(original);
  const pick = <T>(xs: T[]) => xs[Math.floor(random() * xs.length)];
  const { le, entries, ifdAt } = ifd0(buf);
  const w32 = (o: number, v: number) => (le ? buf.writeUInt32LE(v >>> 0, o) : buf.writeUInt32BE(v >>> 0, o));
  const w16 = (o: number, v: number) => (le ? buf.writeUInt16LE(v & 0xffff, o) : buf.writeUInt16BE(v & 0xffff, o));
  const setValue = (tag: number, v: number) => {
    const e = entries.find((x) => x.tag === tag);
    if (!e) return false;
    const type = le ? buf.readUInt16LE(e.at + 2) : buf.readUInt16BE(e.at + 2);
    if (type === 3) w16(e.valueAt, v); else w32(e.valueAt, v);
    return true;
  };
  switch (kind) {
    case 0: { // random bit flips anywhere
      const n = 1 + Math.floor(random() * 64);
      for (let i = 0; i < n; i++) buf[Math.floor(random() * buf.length)] ^= 1 << Math.floor(random() * 8);
      return { buf, what: `${n} bit flips` };
    }
    case 1: { // bit flips in the directory
      const n = 1 + Math.floor(random() * 16);
      const span = entries.length * 12 + 16;
      for (let i = 0; i < n; i++) buf[Math.min(buf.length - 1, ifdAt + Math.floor(random() * span))] ^= 1 << Math.floor(random() * 8);
      return { buf, what: `${n} bit flips in IFD0` };
    }
    case 2: { // truncation
      const len = pick([0, 1, 4, 7, 8, 15, ifdAt, ifdAt + 5, Math.floor(random() * buf.length), buf.length - 1, Math.floor(buf.length / 2)]);
      return { buf: buf.subarray(0, Math.max(0, Math.min(buf.length, len))), what: `truncated to ${len} bytes` };
    }
    case 3: { // the IFD offset
      const v = pick([0, 1, 8, buf.length, buf.length - 2, 0xffffffff, ifdAt + 1, Math.floor(random() * buf.length)]);
      w32(4, v);
      return { buf, what: `IFD offset ${v}` };
    }
    case 4: { // a tag count
      const e = pick(entries);
      const v = pick(HUGE);
      w32(e.countAt, v);
      return { buf, what: `tag ${e.tag} count ${v}` };
    }
    case 5: { // huge declared size
      const tag = pick([256, 257]);
      const v = pick(HUGE);
      setValue(tag, v);
      return { buf, what: `tag ${tag} = ${v}` };
    }
    case 6: { // block geometry: tile/strip sizes and counts
      const tag = pick([322, 323, 278, 277, 258, 284]);
      const v = pick([...HUGE, 1, 3, 7, 2 ** 15]);
      setValue(tag, v);
      return { buf, what: `tag ${tag} = ${v}` };
    }
    default: { // block offsets and byte counts out of the file
      const tag = pick([273, 279, 324, 325]);
      const e = entries.find((x) => x.tag === tag);
      if (!e) return mutate(original, random, 0);
      const count = le ? buf.readUInt32LE(e.countAt) : buf.readUInt32BE(e.countAt);
      const v = pick([0xfffffff0, buf.length + 10, 0, 1, 0x7fffffff]);
      if (count === 1) w32(e.valueAt, v);
      else {
        const arrayAt = le ? buf.readUInt32LE(e.valueAt) : buf.readUInt32BE(e.valueAt);
        const at = arrayAt + 4 * Math.floor(random() * count);
        if (at + 4 <= buf.length) w32(at, v);
      }
      return { buf, what: `tag ${tag} entry = ${v}` };
    }
  }
}

// ---- the parent ----

class Runner {
  private child!: ChildProcess;
  private ready!: Promise<void>;
  crashes = 0;

  constructor() {
    this.start();
  }

  private start(): void {
    this.child = fork(fileURLToPath(import.meta.url), [], {
      env: { ...process.env, TILEVEC_FUZZ_CHILD: '1' }, execArgv: ['--import', 'tsx', '--max-old-space-size=2048'], stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    this.child.stderr!.resume();
    this.ready = new Promise((resolve) => this.child.once('message', () => resolve()));
  }

  async run(file: string): Promise<Outcome> {
    await this.ready;
    const started = performance.now();
    return new Promise((resolve) => {
      const done = (o: Outcome) => {
        clearTimeout(timer);
        this.child.off('message', onMessage).off('exit', onExit);
        resolve(o);
      };
      const onMessage = (o: Outcome) => done(o);
      const onExit = (code: number | null, signal: string | null) => {
        this.start();
        done({ file, status: 'crash', error: `child exited with ${signal ?? code}`, ms: performance.now() - started, rss: 0 });
      };
      const timer = setTimeout(() => {
        this.child.off('exit', onExit);
        this.child.kill('SIGKILL');
        this.start();
        done({ file, status: 'hang', error: `over the ${BUDGET_MS} ms budget`, ms: BUDGET_MS, rss: 0 });
      }, BUDGET_MS);
      this.child.on('message', onMessage).once('exit', onExit);
      this.child.send(file);
    });
  }

  stop(): void {
    this.child.kill('SIGKILL');
  }
}

if (process.env.TILEVEC_FUZZ_CHILD !== '1') {
  test(`${FILES} mutated rasters: no crash, no hang, bounded memory, no partial rows`, { skip: dataMissing(), timeout: 900_000 }, async () => {
    const tmp = tempDir('tilevec-fuzz-');
    const runner = new Runner();
    const random = rng(99);
    const originals = SOURCES.map((p) => readFileSync(p));
    const outcomes: (Outcome & { what: string })[] = [];
    try {
      for (let i = 0; i < FILES; i++) {
        const { buf, what } = mutate(originals[i % originals.length], random, i % 8);
        const file = join(tmp.path, `fuzz-${i}.tif`);
        writeFileSync(file, buf);
        outcomes.push({ ...(await runner.run(file)), what });
      }
    } finally {
      runner.stop();
      tmp.cleanup();
    }
    const bad = outcomes.filter((o) => o.status === 'crash' || o.status === 'hang' || o.partial || o.rss > RSS_LIMIT || (o.error ?? '').startsWith('internal error'));
    const byStatus = new Map<string, number>();
    for (const o of outcomes) byStatus.set(o.status, (byStatus.get(o.status) ?? 0) + 1);
    const slowest = Math.max(...outcomes.map((o) => o.ms));
    const peakRss = Math.max(...outcomes.map((o) => o.rss));
    console.log(`fuzz-ingest: ${outcomes.length} files; ${[...byStatus].map(([k, n]) => `${k} ${n}`).join(', ')}; slowest ${slowest.toFixed(0)} ms; peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB`);
    assert.deepEqual(bad.map((o) => `${o.what}: ${o.status} ${o.error ?? ''} ${o.partial ?? ''} rss ${(o.rss / 2 ** 20).toFixed(0)} MiB`), []);
    for (const o of outcomes.filter((x) => x.status === 'failed')) assert.doesNotMatch(o.error!, /\n/, 'one-line errors');
  });
}
