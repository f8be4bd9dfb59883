#!/usr/bin/env node
/**
 * Builds tilevec's optional native codecs (native/codecs.c: libdeflate inflate and de-interleave) into
 * native/build/tilevec_codecs.node, against Node's own Node-API headers and Debian's libdeflate-dev. `npm ci` and
 * `npm install` run it. It never fails the install: where the compiler, the headers or libdeflate are missing,
 * tilevec reads DEFLATE rasters with Node's zlib instead (about half the speed), and this says how to get the
 * faster path. Nothing is downloaded.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const source = join(root, 'native/codecs.c');
const output = join(root, 'native/build/tilevec_codecs.node');
const say = (msg) => process.stderr.write(`tilevec: ${msg}\n`);

const headerDirs = [process.env.npm_config_nodedir, resolve(dirname(process.execPath), '..'), '/usr']
  .filter(Boolean)
  .map((dir) => join(dir, 'include/node'));
const headers = headerDirs.find((dir) => existsSync(join(dir, 'node_api.h')));
const compiler = process.env.CC || 'cc';

function build() {
  if (!headers) return `Node's headers (node_api.h) were not found in ${headerDirs.join(', ')}`;
  mkdirSync(dirname(output), { recursive: true });
  try {
    execFileSync(compiler, ['-O2', '-fPIC', '-shared', '-Wall', '-I', headers, source, '-ldeflate', '-o', output], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const detail = String(err.stderr ?? err.message).split('\n').find((line) => /error|not found/i.test(line)) ?? String(err.message);
    return `${compiler} could not build it (${detail.trim()})`;
  }
  try {
    createRequire(import.meta.url)(output);
  } catch (err) {
    rmSync(output, { force: true });
    return `the built addon does not load (${err.message})`;
  }
  return null;
}

const failure = build();
if (failure) {
  rmSync(output, { force: true });
  say(`native codecs not built: ${failure}.`);
  say('DEFLATE rasters will be read with Node\'s zlib. For about twice the speed: apt install gcc libdeflate-dev, then npm run build:native');
} else {
  say(`native codecs built (libdeflate) at ${output.slice(root.length + 1)}`);
}
