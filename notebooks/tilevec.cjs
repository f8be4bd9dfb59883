// Notebook helpers for the tslab kernel. tslab compiles each cell to CommonJS with its own TypeScript settings, so
// it can neither type-check nor load the project's ESM `.ts` sources (they import with `.ts` extensions and use
// `import.meta`). A real CommonJS file like this one can: its dynamic import() goes through Node's ESM loader, with
// tsx's loader hook registered once (the same hook bin/tilevec.js uses). Values come back untyped (`any`) in cells.
'use strict';
const { existsSync, mkdtempSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join, resolve } = require('node:path');
const { pathToFileURL } = require('node:url');

/** The repository root (this file lives in notebooks/). */
const REPO = resolve(__dirname, '..');
let tsxReady;

/**
 * Imports a project module by a path relative to notebooks/ (e.g. '../src/store/index.ts'), as ESM through tsx;
 * a bare name ('@tensorflow/tfjs') imports that package from the project's node_modules, the same instance the
 * project's modules use.
 */
async function load(path) {
  tsxReady ??= import('tsx/esm/api').then((m) => m.register());
  await tsxReady;
  return import(/^[./]/.test(path) ? pathToFileURL(resolve(__dirname, path)).href : path);
}

/**
 * The real imagery: ../shared/data from the repository root, or TILEVEC_SHARED_DATA. Throws a message that says
 * what is missing and how to fix it when the folder (or `sub` inside it) is absent.
 */
function sharedData(sub = '') {
  const root = process.env.TILEVEC_SHARED_DATA ? resolve(process.env.TILEVEC_SHARED_DATA) : resolve(REPO, '../shared/data');
  const dir = join(root, sub);
  if (!existsSync(dir)) {
    throw new Error(
      `the sample imagery is missing: ${dir} does not exist. These notebooks read the real rasters in ../shared/data ` +
      '(next to the repository; see its README.md). Put the data there, or set TILEVEC_SHARED_DATA to its folder, and rerun.');
  }
  return dir;
}

const workDirs = [];
/** A fresh temporary directory for a notebook's database and outputs; removed by cleanup() or when the kernel exits. */
function workDir(name) {
  const dir = mkdtempSync(join(tmpdir(), `tilevec-nb-${name}-`));
  workDirs.push(dir);
  return dir;
}

function cleanup() {
  for (const dir of workDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanup);

const escapeHtml = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);

/**
 * An HTML table of plain objects (columns: the keys of the first row unless given), numbers right-aligned with
 * at most 3 decimals; a value `{ html: '...' }` goes in as it is.
 */
function htmlTable(rows, columns) {
  const cols = columns ?? Object.keys(rows[0] ?? {});
  const cell = (v) => (typeof v === 'number'
    ? `<td style="text-align:right">${Number.isInteger(v) ? v : v.toFixed(3)}</td>`
    : v && typeof v === 'object' && 'html' in v ? `<td>${v.html}</td>` : `<td style="text-align:left">${escapeHtml(v ?? '')}</td>`);
  return `<table><thead><tr>${cols.map((c) => `<th>${escapeHtml(c)}</th>`).join('')}</tr></thead><tbody>` +
    rows.map((r) => `<tr>${cols.map((c) => cell(r[c])).join('')}</tr>`).join('') + '</tbody></table>';
}

/**
 * Lays PNG images side by side on a dark background, each scaled up `scale` times (nearest neighbour), with a
 * wider gap after the images whose indexes are in `breakAfter` (e.g. after the query tile). Returns PNG bytes.
 */
function pngStrip(pngs, { scale = 3, gap = 4, breakAfter = [] } = {}) {
  const { PNG } = require('pngjs');
  const images = pngs.map((b) => PNG.sync.read(Buffer.from(b)));
  const gaps = images.map((_, i) => (i === images.length - 1 ? 0 : breakAfter.includes(i) ? gap * 6 : gap));
  const width = images.reduce((w, im, i) => w + im.width * scale + gaps[i], 0) + 2 * gap;
  const height = Math.max(...images.map((im) => im.height * scale)) + 2 * gap;
  const out = new PNG({ width, height });
  for (let i = 0; i < out.data.length; i += 4) out.data.set([40, 40, 40, 255], i);
  let left = gap;
  images.forEach((im, n) => {
    for (let y = 0; y < im.height * scale; y++) {
      for (let x = 0; x < im.width * scale; x++) {
        const from = (Math.floor(y / scale) * im.width + Math.floor(x / scale)) * 4;
        out.data.set(im.data.subarray(from, from + 4), ((gap + y) * width + left + x) * 4);
      }
    }
    left += im.width * scale + gaps[n];
  });
  return PNG.sync.write(out);
}

module.exports = { REPO, load, sharedData, workDir, cleanup, htmlTable, pngStrip };
