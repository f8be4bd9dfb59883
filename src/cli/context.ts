import { Command, InvalidArgumentError } from 'commander';
import { loadConfig, type Config } from '../config.ts';
import { setLogLevel } from '../log.ts';
import { Store, type OpenStoreOptions } from '../store/index.ts';

/** Options every command takes; commander merges the program's and the subcommand's. */
export interface GlobalOptions {
  db?: string;
  json?: boolean;
  logLevel?: string;
}

export function globalOptions(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals<GlobalOptions>();
}

export function configFrom(cmd: Command, extra: Parameters<typeof loadConfig>[0] = {}): Config {
  const o = globalOptions(cmd);
  const config = loadConfig({ ...extra, db: o.db, logLevel: o.logLevel });
  setLogLevel(config.logLevel);
  return config;
}

/**
 * Opens the configured store for the length of `fn`, and always closes it. Only commands that pass
 * `create: true` (ingest, db migrate) make a new embedded database; the others refuse a --db that does not exist.
 */
export async function withStore<T>(config: Config, fn: (store: Store) => Promise<T>, opts?: OpenStoreOptions): Promise<T> {
  const store = await openStore(config, opts);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

export function openStore(config: Config, opts?: OpenStoreOptions): Promise<Store> {
  return Store.open(config.db, { create: false, modelsDir: config.modelsDir, ...opts });
}

let printedJsonResult = false;

/**
 * Prints a command's result: the human text, or with --json one JSON object as the last line of stdout.
 */
export function emit<T>(cmd: Command, result: T, human: (r: T) => string): void {
  if (globalOptions(cmd).json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    printedJsonResult = true;
  } else {
    process.stdout.write(`${human(result)}\n`);
  }
}

/**
 * Whether a --json result is out already. A command that prints its result and then fails (ingest with inputs
 * that failed) keeps that result as the last line; the line on stderr and the exit code say that it failed.
 */
export function jsonResultPrinted(): boolean {
  return printedJsonResult;
}

/** A `--flag <n>` parser that rejects anything but an integer, with a message naming the flag. */
export function intOption(name: string, min = Number.MIN_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer${min > Number.MIN_SAFE_INTEGER ? ` >= ${min}` : ''}, got '${value}'`);
    return n;
  };
}

/** A `--flag <x>` parser for a finite number within [min, max]. */
export function numberOption(name: string, min = -Infinity, max = Infinity) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      const range = Number.isFinite(min) && Number.isFinite(max) ? ` from ${min} to ${max}` : Number.isFinite(min) ? ` >= ${min}` : '';
      throw new InvalidArgumentError(`${name} must be a number${range}, got '${value}'`);
    }
    return n;
  };
}

export function fractionOption(name: string) {
  return numberOption(name, 0, 1);
}

/** A `--flag 1,2,3` parser for whole numbers >= 1 (bands, raster ids). */
export function intListOption(name: string) {
  return (value: string): number[] => {
    const list = value.split(',').map((s) => Number(s.trim()));
    if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 1)) throw new InvalidArgumentError(`${name} must be comma-separated whole numbers >= 1, got '${value}'`);
    return list;
  };
}
