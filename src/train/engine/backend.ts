// Chooses and initialises the tfjs backend for training.
//
// @tensorflow/tfjs-node(-gpu) download libtensorflow at install time, so they are never
// dependencies: they are imported dynamically, only if the user installed them.
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../../errors.ts';
import os from 'node:os';
import { startWasmBackend } from './wasm-threads.ts';
import { registerWasmTrainingKernels } from './wasm-training-kernels.ts';

export type BackendName = 'auto' | 'wasm' | 'cpu' | 'tensorflow' | 'tensorflow-gpu';
export type EngineBackend = Exclude<BackendName, 'auto'>;
type NativeBackend = 'tensorflow' | 'tensorflow-gpu';

export interface InitBackendOptions {
  /**
   * XNNPACK threads for `wasm`; default: all available cores. 1 forces the single-threaded
   * binary. Fixed by the first wasm initialisation in the process; later calls report it.
   */
  threads?: number;
}

export interface ActiveBackend {
  name: EngineBackend;
  /** Threads the engine computes with; null where the native runtime manages its own. */
  threads: number | null;
}

export const NATIVE_PACKAGES: Record<NativeBackend, string> = {
  tensorflow: '@tensorflow/tfjs-node',
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
};

/** A user error: the CLI prints it as one line and the service answers 4xx. */
export class BackendNotInstalledError extends UserError {
  constructor(readonly backend: NativeBackend, readonly packageName: string) {
    super(`The '${backend}' backend needs the npm package ${packageName}, which is not installed. ` +
      `Install it with \`npm install ${packageName}\`, or use --backend wasm.`);
    this.name = 'BackendNotInstalledError';
  }
}

/**
 * Makes `name` the active tfjs backend and returns what is actually in use. `auto` prefers
 * tensorflow-gpu, then tensorflow, then wasm (with the training kernels registered).
 */
export async function initBackend(name: BackendName = 'auto', opts: InitBackendOptions = {}): Promise<ActiveBackend> {
  // Production mode: skips per-op debug checks and the cpu backend's "install tfjs-node" banner on stdout.
  tf.env().set('PROD', true);
  switch (name) {
    case 'auto':
      for (const native of ['tensorflow-gpu', 'tensorflow'] as const) {
        try {
          return await startNative(native);
        } catch (error) {
          if (!(error instanceof BackendNotInstalledError)) {
            process.emitWarning(`${NATIVE_PACKAGES[native]} is installed but failed to start; trying the next backend: ${String(error)}`);
          }
        }
      }
      return startWasm(opts);
    case 'wasm':
      return startWasm(opts);
    case 'cpu':
      if (!(await tf.setBackend('cpu'))) throw new Error('could not initialise the cpu backend');
      return { name: 'cpu', threads: 1 };
    case 'tensorflow':
    case 'tensorflow-gpu':
      return startNative(name);
    default:
      throw new Error(`unknown backend '${String(name)}'; expected auto, wasm, cpu, tensorflow or tensorflow-gpu`);
  }
}

async function startWasm(opts: InitBackendOptions): Promise<ActiveBackend> {
  registerWasmTrainingKernels();
  const threads = await startWasmBackend(opts.threads ?? os.availableParallelism());
  return { name: 'wasm', threads };
}

async function startNative(backend: NativeBackend): Promise<ActiveBackend> {
  const packageName = NATIVE_PACKAGES[backend];
  try {
    // A non-literal specifier keeps TypeScript and bundlers from requiring the package.
    const specifier: string = packageName;
    await import(specifier);
  } catch (error) {
    if (isMissingPackage(error, packageName)) throw new BackendNotInstalledError(backend, packageName);
    throw new Error(`${packageName} is installed but failed to load: ${String(error)}`, { cause: error });
  }
  // Both packages register their backend under the name 'tensorflow'.
  if (!(await tf.setBackend('tensorflow'))) throw new Error(`${packageName} loaded but its backend did not initialise`);
  return { name: backend, threads: null };
}

function isMissingPackage(error: unknown, packageName: string): boolean {
  const { code, message } = error as { code?: string; message?: string };
  return (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && (message ?? '').includes(packageName);
}
