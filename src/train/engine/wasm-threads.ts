// Starts tfjs-backend-wasm under Node, multi-threaded when asked.
//
// tfjs-backend-wasm 4.22 ships a threaded SIMD binary but disables it under Node
// (WASM_HAS_MULTITHREAD_SUPPORT is hard-wired to false, tfjs#3830), and forcing the flag on fails:
//  1. its Emscripten glue hands `new Worker()` blob: URLs (worker script and main script), which
//     Node's worker_threads cannot load;
//  2. the main script, stringified out of the Rollup bundle, refers to the bundle's `require$$N`
//     aliases, which do not exist inside a worker;
//  3. XNNPACK's pool is capped at os.cpus().length / 2 (the C++ assumes hyper-threading), so a
//     2-core machine always gets 1 thread;
//  4. running pthreads are ref()'d workers, so the process never exits.
// For the duration of backend initialisation only, we route those blobs to temp files (with the
// aliases defined), widen the core count the module sees, and keep the workers unref'd.
// Measured on a 2-core machine: 3x3 conv 32->32 on 16x32x32: 11.4 ms (1 thread) -> 6.1 ms (2).
// The shims depend on the exact bundle, so they are applied only to the version they were written
// for; anything else, or any failure, falls back to the single-threaded SIMD binary.
import * as tf from '@tensorflow/tfjs';
import * as wasm from '@tensorflow/tfjs-backend-wasm';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import workerThreads from 'node:worker_threads';
import { withWatchdog } from '../watchdog.ts';

const SHIMMED_VERSION = '4.22.0';
/** The threaded start takes about a second; a pool that has not reported in by then never will. */
const WASM_START_SECONDS = 120;
const MAIN_SCRIPT_MARKER = 'var WasmBackendModuleThreadedSimd';
const BUNDLE_ALIASES = 'var require$$0 = require("fs"), require$$1 = require("path"), require$$3 = require("perf_hooks"), ' +
  'require$$4 = require("os"), commonjsGlobal = globalThis;\n';

/** The folder holding the .wasm binaries in node_modules, so loading never touches the network. */
export function wasmBinaryFolder(): string {
  const entry = createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm');
  return path.dirname(entry) + path.sep;
}

/** Initialises the `wasm` backend and returns the XNNPACK thread count actually in use. */
export async function startWasmBackend(threads: number): Promise<number> {
  if (!isInitialised()) {
    wasm.setWasmPaths(wasmBinaryFolder());
    const threaded = threads > 1 && wasm.version_wasm === SHIMMED_VERSION && await startThreaded(threads);
    if (!threaded) await startSingleThreaded();
  } else if (!(await tf.setBackend('wasm'))) {
    throw new Error('the wasm backend is registered but could not be selected');
  }
  return wasm.getThreadsCount();
}

function isInitialised(): boolean {
  try {
    wasm.getThreadsCount();
    return true;
  } catch {
    return false;
  }
}

async function startThreaded(threads: number): Promise<boolean> {
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  wasm.setThreadsCount(threads);
  // Not caught: a start that waited forever leaves the module half-initialised, so it cannot fall back; it fails
  // with the line saying what it waited for. Any other failure falls back to the single-threaded binary.
  const ok = await withNodeThreadShims(threads, () => tf.setBackend('wasm')).catch((err) => {
    if ((err as Error).name === 'WatchdogError' || (err as Error).name === 'PthreadExitError') throw err;
    return false;
  });
  if (!ok) tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  return ok;
}

async function startSingleThreaded(): Promise<void> {
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  wasm.setThreadsCount(1);
  if (!(await tf.setBackend('wasm'))) throw new Error('could not initialise the wasm backend (see the warning above)');
}

async function withNodeThreadShims<T>(threads: number, init: () => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tilevec-wasm-'));
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const mainScript = path.join(dir, 'main.cjs');
  const workerScript = path.join(dir, 'worker.cjs');

  const OriginalBlob = globalThis.Blob;
  const originalCreateObjectURL = URL.createObjectURL;
  const OriginalWorker = workerThreads.Worker;
  const originalCpus = os.cpus;
  const blobTexts = new WeakMap<Blob, string>();

  globalThis.Blob = class TextCapturingBlob extends OriginalBlob {
    constructor(...args: ConstructorParameters<typeof OriginalBlob>) {
      super(...args);
      const [parts] = args;
      if (!parts?.every((part) => typeof part === 'string')) return;
      const text = parts.join('');
      blobTexts.set(this, text);
      if (text.startsWith(MAIN_SCRIPT_MARKER)) fs.writeFileSync(mainScript, BUNDLE_ALIASES + text);
    }
  };
  URL.createObjectURL = (blob: Blob) => {
    const text = blobTexts.get(blob);
    if (text === undefined) return originalCreateObjectURL(blob);
    // The only blob turned into a URL on this thread is the worker script; inside the worker, the
    // main script's blob URL is redirected to the file written above. It is asked for once per pool
    // worker, always the same text, and written only the first time: rewriting it (truncate, then
    // write) while an earlier worker read it gave that worker an empty script, which exited at once
    // and left initialisation waiting for it forever (about one start in ten on a loaded machine).
    if (!fs.existsSync(workerScript)) fs.writeFileSync(workerScript, `URL.createObjectURL = () => ${JSON.stringify(mainScript)};\n${text}`);
    return workerScript;
  };
  // Each pool worker's progress, for the watchdog's message; a worker that exits before it reported in fails the
  // start at once (initialisation would otherwise wait for its 'loaded' message forever).
  const pool: { loaded: boolean; exit?: number }[] = [];
  let rejectEarly: (err: Error) => void = () => {};
  const early = new Promise<never>((_, reject) => (rejectEarly = reject));
  early.catch(() => {});
  workerThreads.Worker = class UnrefWorker extends OriginalWorker {
    constructor(...args: ConstructorParameters<typeof OriginalWorker>) {
      super(...args);
      this.unref();
      const entry: { loaded: boolean; exit?: number } = { loaded: false };
      pool.push(entry);
      this.on('message', (m: { cmd?: string }) => {
        if (m?.cmd === 'loaded') entry.loaded = true;
      });
      this.on('exit', (code) => {
        entry.exit = code;
        if (!entry.loaded) {
          const err = new Error(`a WASM pthread worker exited (code ${code}) before it reported in: ${describePool(pool)}`);
          err.name = 'PthreadExitError';
          rejectEarly(err);
        }
      });
    }
    override ref(): void {}
  };
  const cpus = originalCpus();
  os.cpus = () => Array.from({ length: 2 * threads }, (_, i) => cpus[i % cpus.length]);

  // The pthread workers are unref'd, so while initialisation waits on them nothing else may be holding the event
  // loop open: without this timer Node could exit mid-await (exit code 13) before the workers report in.
  const keepAlive = setInterval(() => {}, 1 << 30);
  try {
    return await withWatchdog(Promise.race([init(), early]), WASM_START_SECONDS, `the WASM pthread workers to start (${threads} threads)`, () => describePool(pool));
  } finally {
    clearInterval(keepAlive);
    globalThis.Blob = OriginalBlob;
    URL.createObjectURL = originalCreateObjectURL;
    workerThreads.Worker = OriginalWorker;
    os.cpus = originalCpus;
  }
}

function describePool(pool: { loaded: boolean; exit?: number }[]): string {
  const loaded = pool.filter((w) => w.loaded).length;
  const exited = pool.filter((w) => w.exit !== undefined).map((w) => w.exit);
  return `${loaded} of ${pool.length} pool workers reported in${exited.length ? `, ${exited.length} exited (codes ${exited.join(', ')})` : ''}`;
}
