import { describe, test } from 'node:test';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import pg from 'pg';
import { describeHang, reportFlags } from './hang-report.ts';

export const ROOT = resolve(import.meta.dirname, '..');
export const DATA_DIR = resolve(ROOT, '../shared/data');
export const CLI = join(ROOT, 'bin/tilevec.js');

/**
 * The skip reason for a missing prerequisite, or false when it is present. Under CI=true a missing one throws
 * instead, failing the suite: .ci/run provides every one, and a suite that skipped would pass having checked nothing.
 */
export function required(missing: string | false): string | false {
  if (missing && process.env.CI === 'true') throw new Error(`CI=true but ${missing}`);
  return missing;
}

/** Why suites that read the shared imagery skip, or false when it is there. */
export function dataMissing(): string | false {
  return required(existsSync(join(DATA_DIR, 'README.md')) ? false : `real imagery not found at ${DATA_DIR}; skipping`);
}

export const GDAL_PY = '/usr/bin/python3';
let gdalFound: boolean | undefined;

/** Why suites that compare with GDAL (Debian's python3-gdal, with numpy) skip, or false when it is there. */
export function gdalMissing(): string | false {
  gdalFound ??= spawnSync(GDAL_PY, ['-c', 'from osgeo import gdal; import numpy']).status === 0;
  return required(gdalFound ? false : `${GDAL_PY} with GDAL's Python bindings and numpy (Debian's python3-gdal) not found; skipping the GDAL comparisons`);
}

export function tempDir(prefix = 'tilevec-test-'): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** The test server's URL: TILEVEC_TEST_PG_URL, else the cluster that scripts/setup-postgres.sh --start runs. */
export const SERVER_URL = process.env.TILEVEC_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:55432/postgres';

/** A few patient tries: on a busy 2-core machine a healthy server can take seconds to accept. */
async function serverReachable(): Promise<boolean> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const client = new pg.Client({ connectionString: SERVER_URL, connectionTimeoutMillis: 10_000 });
    try {
      await client.connect();
      await client.end();
      return true;
    } catch {
      await client.end().catch(() => {});
      if (attempt < 2) await new Promise((r) => setTimeout(r, 2000));
    }
  }
  return false;
}

/**
 * Whether the server suites run. Locally they skip without a server; under CI a missing server is a failure,
 * because CI must prove both engines.
 */
export async function serverSkip(): Promise<string | false> {
  if (await serverReachable()) return false;
  if (process.env.CI === 'true') throw new Error(`CI=true but no PostgreSQL server answers at ${SERVER_URL}; run scripts/setup-postgres.sh --start`);
  return `no PostgreSQL server at ${SERVER_URL} (start one with scripts/setup-postgres.sh --start); skipping the server engine`;
}

/** A fresh, empty database on the test server, dropped by the returned cleanup. */
export function freshServerDb(): Promise<{ url: string; drop: () => Promise<void> }> {
  return freshDatabase(SERVER_URL, 't');
}

/** A fresh, empty database on `serverUrl` (tests and benches), dropped by the returned cleanup. */
export async function freshDatabase(serverUrl: string, tag: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `tilevec_${tag}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: serverUrl });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the real CLI in a child process. One that runs past `timeoutMs` (default 2 min) is killed, and the promise
 * rejects with what the child was doing (threads, stacks, handles), since a hang otherwise leaves nothing to go on.
 */
export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const reports = tempDir('tilevec-report-');
  return new Promise<CliResult>((resolvePromise, reject) => {
    const child = spawn(process.execPath, [...reportFlags(reports.path), CLI, ...args], {
      cwd: opts.cwd ?? ROOT,
      env: cleanEnv({ ...process.env, TILEVEC_DB: undefined, DATABASE_URL: undefined, ...opts.env }),
    });
    let stdout = '';
    let stderr = '';
    let hang: Promise<string> | undefined;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      hang = describeHang(child.pid!, reports.path).finally(() => child.kill('SIGKILL'));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', async (code) => {
      clearTimeout(timer);
      if (!hang) return resolvePromise({ code: code ?? -1, stdout, stderr });
      const diagnosis = await hang;
      reject(new Error(`tilevec ${args.join(' ')} ran past ${timeoutMs / 1000} s and was killed.\n${diagnosis}\nits stderr: ${stderr.slice(-2000)}`));
    });
  }).finally(reports.cleanup);
}

function cleanEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined));
}

/** The JSON object on the last line of stdout, as every `--json` command prints. */
export function lastJson<T = Record<string, unknown>>(stdout: string): T {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as T;
}

/**
 * An LZW stream of `codes` codes, each one the code the decoder is about to define (KwKwK): code k decodes to k + 1
 * zero bytes, so the output grows with the square of the input.
 */
export function lzwBomb(codes: number): Uint8Array {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  let codeLen = 9;
  let next = 258;
  const put = (code: number) => {
    acc = acc * 2 ** codeLen + code;
    bits += codeLen;
    while (bits >= 8) {
      bits -= 8;
      out.push(Math.floor(acc / 2 ** bits) & 0xff);
      acc %= 2 ** bits;
    }
  };
  put(256);
  put(0);
  for (let i = 0; i < codes && next < 4095; i++) {
    put(next++);
    if (next + 1 >= 1 << codeLen && codeLen < 12) codeLen++;
  }
  if (bits > 0) out.push((acc * 2 ** (8 - bits)) & 0xff);
  return new Uint8Array(out);
}

/** Where a store for one engine's suite lives, and how to remove it afterwards. */
export type EngineDb = { db: string; cleanup: () => Promise<void> | void };

/** Runs `suite` on embedded PGlite, then on a fresh database of the PostgreSQL server (skipped where there is none). */
export function onBothEngines(suite: (engine: string, open: () => Promise<EngineDb>) => void): void {
  suite('PGlite', async () => ({ db: 'memory://', cleanup: () => {} }));
  describe('on the PostgreSQL server', async () => {
    const skip = await serverSkip();
    if (skip) return void test('server engine', { skip }, () => {});
    suite('PostgreSQL', async () => {
      const { url, drop } = await freshServerDb();
      return { db: url, cleanup: drop };
    });
  });
}
