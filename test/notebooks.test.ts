// The notebooks in notebooks/ are executed here with Debian's jupyter (`jupyter nbconvert --execute`) and the tslab
// kernel, so none can rot: each must run without error and produce its figures and tables. The executed copies go
// to a temporary directory; the committed notebooks must stay stripped of outputs (checked below, always).
//
// Needs: jupyter with nbconvert (Debian: jupyter-nbconvert python3-nbconvert jupyter-client python3-ipykernel
// jupyter-core) and node_modules/tslab. Without them this skips locally; under CI=true it fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { DATA_DIR, ROOT, dataMissing, tempDir } from './helpers.ts';

const NOTEBOOKS = join(ROOT, 'notebooks');
const KERNELS = join(NOTEBOOKS, 'jupyter'); // JUPYTER_PATH entry holding kernels/tslab/kernel.json
const TSLAB = join(ROOT, 'node_modules/tslab/bin/tslab');

/** An HTML table as tilevec.cjs's htmlTable writes it: the header cells, then each row's cells as text. */
function parseTable(html: string): { columns: string[]; rows: Record<string, string>[] } {
  const unescape = (t: string) => t.replace(/<[^>]+>/g, '').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
  const cells = (row: string, tag: string) => [...row.matchAll(new RegExp(`<${tag}[^>]*>([\\s\\S]*?)</${tag}>`, 'g'))].map((m) => unescape(m[1]));
  const table = /<table>([\s\S]*?)<\/table>/.exec(html);
  assert.ok(table, `no table in ${html.slice(0, 200)}`);
  const [head, ...body] = [...table[1].matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map((m) => m[1]);
  const columns = cells(head, 'th');
  return { columns, rows: body.map((r) => Object.fromEntries(cells(r, 'td').map((v, i) => [columns[i], v]))) };
}

const numbers = (rows: Record<string, string>[], column: string) => rows.map((r) => Number(r[column]));
const ascending = (xs: number[]) => xs.every((x, i) => i === 0 || xs[i - 1] <= x);

/** Distances ranked nearest first, 8 of them, each tile once. */
function checkRanked(html: string): void {
  const { columns, rows } = parseTable(html);
  assert.deepEqual(columns, ['rank', 'tile', 'raster', 'x, y (px)', 'distance']);
  assert.deepEqual(numbers(rows, 'rank'), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.ok(ascending(numbers(rows, 'distance')), `distances not ascending: ${numbers(rows, 'distance')}`);
  assert.equal(new Set(rows.map((r) => r.tile)).size, 8);
  for (const r of rows) assert.ok(['2016', '2020'].includes(r.raster) && /^\d+, \d+$/.test(r['x, y (px)']), JSON.stringify(r));
}

/**
 * Per notebook, the cells (by tag) that must show a given output, and what that output must say. Tables are parsed
 * and their contents checked against what the notebook asked for.
 */
const EXPECTED: Record<string, { tag: string; mime: string; check?: (shown: string) => void }[]> = {
  '01-ingest-and-sampling.ipynb': [
    { tag: 'ingest-table', mime: 'text/html', check: (html) => {
      const { columns, rows } = parseTable(html);
      assert.deepEqual(columns, ['id', 'file', 'size (px)', 'bands', 'dtype', 'EPSG', 'tiles']);
      assert.deepEqual(rows.map((r) => r.file).sort(), ['m_3607717_sw_18_1_20160620_subset.tif', 'm_3607824_se_17_1_20160620_subset.tif', 'm_4709963_se_14_1_20160816.tif', 'm_4709963_se_14_1_20200831.tif']);
      for (const r of rows) {
        const [w, h] = r['size (px)'].split(' × ').map(Number);
        assert.ok(r.bands === '4' && r.dtype === 'uint8', JSON.stringify(r));
        // Whole 32-px tiles only, fewer where nodata skips some.
        assert.ok(Number(r.tiles) > 0 && Number(r.tiles) <= Math.floor(w / 32) * Math.floor(h / 32), JSON.stringify(r));
      }
      assert.deepEqual(rows.map((r) => Number(r.EPSG)).sort(), [26914, 26914, 26917, 26918]);
    } },
    { tag: 'footprint-map', mime: 'image/svg+xml', check: (svg) => {
      // Each raster's outline over its tiles' footprints.
      assert.equal(svg.match(/<path [^>]*fill="none"[^>]*stroke-width="2"/g)?.length, 4, 'one outline per raster');
      assert.ok((svg.match(/<path /g)?.length ?? 0) > 100, 'tile footprints');
    } },
    { tag: 'contact-sheet', mime: 'image/png' },
    { tag: 'triplet-table', mime: 'text/html', check: (html) => {
      const { columns, rows } = parseTable(html);
      assert.deepEqual(columns, ['triplet', 'anchor', 'neighbor', 'distant', 'distant from']);
      assert.deepEqual(numbers(rows, 'triplet'), [0, 1, 2, 3, 4, 5, 6, 7]);
      for (const r of rows) for (const c of ['anchor', 'neighbor', 'distant']) assert.match(r[c], /^raster [1-4] \(\d+, \d+\)$/);
    } },
  ],
  '02-training.ipynb': [
    { tag: 'loss-curve', mime: 'image/svg+xml', check: (svg) => assert.ok(svg.includes('>notebook-tiny: InfoNCE loss</text>') && svg.includes('step (1..24)'), svg.slice(0, 600)) },
    { tag: 'model-card', mime: 'text/html', check: (html) => {
      const card = Object.fromEntries(parseTable(html).rows.map((r) => [r.field, r.value]));
      assert.equal(card.name, 'notebook-tiny');
      assert.match(card.backbone, /^tiny, /);
      assert.equal(card['tile size, bands'], '32 px, bands 1,2,3,4');
      assert.equal(card['embedding dim'], '32');
      assert.equal(card.normalization, 'zscore');
      assert.ok(Number(card['wall seconds']) > 0);
      assert.equal(card['registered models'], 'notebook-tiny');
    } },
    { tag: 'memory-table', mime: 'text/html', check: (html) => {
      const { rows } = parseTable(html);
      assert.deepEqual(numbers(rows, 'RevSilos'), [4, 8]);
      // The point of the reversible backbone: far less memory than stored activations, more so with depth.
      for (const r of rows) assert.ok(Number(r['reversible MiB']) < Number(r['conventional MiB']), JSON.stringify(r));
      const ratio = numbers(rows, 'reversible / conventional');
      assert.ok(ratio[1] < ratio[0] && ratio[0] < 0.5, `ratios ${ratio}`);
    } },
  ],
  '03-search-and-analogies.ipynb': [
    { tag: 'similar', mime: 'image/png' },
    { tag: 'similar', mime: 'text/html', check: checkRanked },
    { tag: 'analogy', mime: 'image/png' },
    { tag: 'analogy', mime: 'text/html', check: checkRanked },
  ],
  '04-land-cover.ipynb': [
    { tag: 'labels', mime: 'text/html', check: (html) => {
      const { columns, rows } = parseTable(html);
      assert.deepEqual(columns, ['class', 'name', 'tiles']);
      const nlcd = ['water', 'developed', 'barren', 'forest', 'shrubland', 'herbaceous', 'cultivated', 'wetlands'];
      for (const r of rows) assert.equal(r.name, nlcd[Number(r.class) - 1], JSON.stringify(r));
      assert.ok(rows.length >= 4 && numbers(rows, 'tiles').every((n) => n > 0), JSON.stringify(rows));
    } },
    { tag: 'evaluation-table', mime: 'text/html', check: (html) => {
      const { columns, rows } = parseTable(html);
      assert.deepEqual(columns, ['features', 'dim', 'classifier', 'split', 'accuracy', 'macro-F1']);
      const seen = rows.map((r) => `${r.features}/${r.dim}/${r.classifier}/${r.split}`).sort();
      const want = [['tilevec embeddings', 32], ['band mean + std', 8], ['raw-pixel PCA', 32]].flatMap(([f, d]) => ['logreg', 'knn'].flatMap((c) => ['random', 'spatial'].map((s) => `${f}/${d}/${c}/${s}`)));
      assert.deepEqual(seen, want.sort());
      for (const r of rows) assert.ok(Number(r.accuracy) > 0 && Number(r.accuracy) <= 1 && Number(r['macro-F1']) > 0 && Number(r['macro-F1']) <= 1, JSON.stringify(r));
    } },
    { tag: 'confusion-matrix', mime: 'image/png' },
    { tag: 'class-map', mime: 'image/png' },
  ],
};

/** Per-cell and kernel-start limits; generous because the machine may be shared, but a hung cell still ends. */
const CELL_TIMEOUT_S = 600;
const STARTUP_TIMEOUT_S = 300;
const NOTEBOOK_TIMEOUT_MS = 15 * 60_000;

interface Cell {
  cell_type: string;
  id?: string;
  source: string | string[];
  metadata: { tags?: string[]; [k: string]: unknown };
  outputs?: { output_type: string; name?: string; text?: string | string[]; data?: Record<string, string | string[]> }[];
  execution_count?: number | null;
}
interface Notebook {
  cells: Cell[];
  metadata: { kernelspec?: { name?: string } };
}

const text = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join('') : (v ?? ''));
const readNotebook = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as Notebook;
const notebookFiles = () => readdirSync(NOTEBOOKS).filter((f) => f.endsWith('.ipynb')).sort();

/**
 * A jupyter that has nbconvert: TILEVEC_JUPYTER when set (only that one), else Debian's /usr/bin/jupyter (a pyenv
 * python3 on PATH may lack nbconvert), else `jupyter` on PATH.
 */
function findJupyter(): string | undefined {
  const candidates = process.env.TILEVEC_JUPYTER ? [process.env.TILEVEC_JUPYTER] : ['/usr/bin/jupyter', 'jupyter'];
  return candidates.find((c) => spawnSync(c, ['nbconvert', '--version'], { encoding: 'utf8', timeout: 60_000 }).status === 0);
}

/** Everything under notebooks/, to prove executing them writes nothing into the repository. */
function listTree(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? listTree(path) : [relative(NOTEBOOKS, path)];
  });
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; output: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: NOTEBOOKS, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    let timedOut = false;
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* already gone */ }
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output, timedOut });
    });
  });
}

test('committed notebooks are stripped of outputs and use the tslab kernel', () => {
  assert.deepEqual(notebookFiles(), Object.keys(EXPECTED).sort(), 'notebooks/ holds exactly the notebooks this test executes');
  for (const file of notebookFiles()) {
    const nb = readNotebook(join(NOTEBOOKS, file));
    assert.equal(nb.metadata.kernelspec?.name, 'tslab', `${file}: kernelspec must be tslab`);
    assert.equal(nb.cells[0]?.cell_type, 'markdown', `${file}: must open with a markdown explanation`);
    for (const [i, cell] of nb.cells.entries()) {
      if (cell.cell_type !== 'code') continue;
      assert.deepEqual(cell.outputs, [], `${file} cell ${i}: outputs must be stripped before committing`);
      assert.equal(cell.execution_count, null, `${file} cell ${i}: execution_count must be null`);
      assert.ok(!('execution' in cell.metadata), `${file} cell ${i}: execution timing metadata must be stripped`);
    }
    for (const { tag } of EXPECTED[file]) {
      assert.ok(nb.cells.some((c) => c.metadata.tags?.includes(tag)), `${file}: no cell tagged '${tag}'`);
    }
  }
  const spec = JSON.parse(readFileSync(join(KERNELS, 'kernels/tslab/kernel.json'), 'utf8')) as { argv: string[] };
  assert.ok(spec.argv.includes('{connection_file}'), 'the tslab kernelspec passes the connection file');
});

test('every notebook executes with jupyter nbconvert and shows its figures and tables', { timeout: 4 * NOTEBOOK_TIMEOUT_MS + 60_000 }, async (t) => {
  const jupyter = findJupyter();
  const missing = !jupyter
    ? 'jupyter with nbconvert not found (Debian: apt-get install jupyter-nbconvert python3-nbconvert jupyter-client python3-ipykernel jupyter-core)'
    : !existsSync(TSLAB) ? `the tslab kernel is not installed at ${TSLAB} (npm ci installs it)` : undefined;
  if (missing) {
    if (process.env.CI === 'true') assert.fail(`CI=true but ${missing}`);
    t.skip(`${missing}; skipping the notebook runs`);
    return;
  }
  if (dataMissing()) {
    t.skip(`${dataMissing()}: the notebooks read ${DATA_DIR}`);
    return;
  }

  const tmp = tempDir('tilevec-notebooks-');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // Only the project's kernelspec, whatever the user has installed; runtime files in the temp dir, not $HOME.
    JUPYTER_PATH: KERNELS,
    JUPYTER_RUNTIME_DIR: join(tmp.path, 'runtime'),
    JUPYTER_CONFIG_DIR: join(tmp.path, 'config'),
    TMPDIR: tmp.path,
    PYDEVD_DISABLE_FILE_VALIDATION: '1',
  };
  try {
    const specs = spawnSync(jupyter!, ['kernelspec', 'list', '--json'], { env, encoding: 'utf8' });
    assert.equal(specs.status, 0, specs.stderr);
    const tslabSpec = (JSON.parse(specs.stdout) as { kernelspecs: Record<string, { resource_dir: string }> }).kernelspecs.tslab;
    assert.equal(tslabSpec?.resource_dir, join(KERNELS, 'kernels/tslab'), 'jupyter finds the project-local tslab kernelspec');

    const before = listTree(NOTEBOOKS);
    for (const file of notebookFiles()) {
      await t.test(file, async () => {
        const started = performance.now();
        const result = await run(jupyter!, [
          'nbconvert', '--to', 'notebook', '--execute', file,
          '--output-dir', join(tmp.path, 'executed'),
          `--ExecutePreprocessor.timeout=${CELL_TIMEOUT_S}`,
          `--ExecutePreprocessor.startup_timeout=${STARTUP_TIMEOUT_S}`,
          '--ExecutePreprocessor.kernel_name=tslab',
        ], env, NOTEBOOK_TIMEOUT_MS);
        const seconds = (performance.now() - started) / 1000;
        const tail = result.output.slice(-6000);
        assert.ok(!result.timedOut, `${file} did not finish within ${NOTEBOOK_TIMEOUT_MS / 60_000} min:\n${tail}`);
        assert.equal(result.code, 0, `jupyter nbconvert --execute ${file} failed:\n${tail}`);
        t.diagnostic(`${file}: executed in ${seconds.toFixed(0)} s`);

        const nb = readNotebook(join(tmp.path, 'executed', file));
        for (const [i, cell] of nb.cells.entries()) {
          if (cell.cell_type !== 'code') continue;
          // tslab reports no execution counts, so a cell proves it ran by its output: every code cell here prints.
          assert.ok((cell.outputs ?? []).length > 0, `${file} cell ${i} (${cell.metadata.tags?.join(',') ?? 'untagged'}) shows no output: did it run?`);
          const errors = (cell.outputs ?? []).filter((o) => o.output_type === 'error' || (o.output_type === 'stream' && o.name === 'stderr' && /\b\w*Error\b|^\d+:\d+ - /m.test(text(o.text))));
          assert.deepEqual(errors.map((o) => text(o.text)), [], `${file} cell ${i} (${cell.metadata.tags?.join(',') ?? 'untagged'}) reported an error`);
        }
        for (const want of EXPECTED[file]) {
          const cell = nb.cells.find((c) => c.metadata.tags?.includes(want.tag))!;
          const shown = (cell.outputs ?? []).map((o) => o.data?.[want.mime]).filter((d) => d !== undefined).map(text);
          assert.ok(shown.length > 0, `${file}: cell '${want.tag}' shows no ${want.mime}; it output ${JSON.stringify((cell.outputs ?? []).map((o) => o.output_type === 'stream' ? text(o.text).slice(0, 300) : Object.keys(o.data ?? {})))}`);
          if (want.mime === 'image/png') assert.ok(shown.some((d) => Buffer.from(d, 'base64').subarray(1, 4).toString() === 'PNG'), `${file}: cell '${want.tag}' image/png is not a PNG`);
          if (want.check) {
            assert.equal(shown.length, 1, `${file}: cell '${want.tag}' shows ${shown.length} ${want.mime} outputs`);
            want.check(shown[0]);
          }
        }
      });
    }
    assert.deepEqual(listTree(NOTEBOOKS), before, 'executing the notebooks wrote nothing into notebooks/');
  } finally {
    tmp.cleanup();
  }
});
