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

/** Per notebook, the cells (by tag) that must show a given output, with what its text must contain. */
const EXPECTED: Record<string, { tag: string; mime: string; contains?: string }[]> = {
  '01-ingest-and-sampling.ipynb': [
    { tag: 'ingest-table', mime: 'text/html', contains: '<table' },
    { tag: 'footprint-map', mime: 'image/svg+xml', contains: '<path' },
    { tag: 'contact-sheet', mime: 'image/png' },
    { tag: 'triplet-table', mime: 'text/html', contains: '<table' },
  ],
  '02-training.ipynb': [
    { tag: 'loss-curve', mime: 'image/svg+xml', contains: '<svg' },
    { tag: 'model-card', mime: 'text/html', contains: '<table' },
    { tag: 'memory-table', mime: 'text/html', contains: 'conventional MiB' },
  ],
  '03-search-and-analogies.ipynb': [
    { tag: 'similar', mime: 'image/png' },
    { tag: 'similar', mime: 'text/html', contains: '<table' },
    { tag: 'analogy', mime: 'image/png' },
    { tag: 'analogy', mime: 'text/html', contains: '<table' },
  ],
  '04-land-cover.ipynb': [
    { tag: 'labels', mime: 'text/html', contains: '<table' },
    { tag: 'evaluation-table', mime: 'text/html', contains: 'macro-F1' },
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
  if (dataMissing) {
    t.skip(`${dataMissing}: the notebooks read ${DATA_DIR}`);
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
          if (want.contains) assert.ok(shown.some((d) => d.includes(want.contains!)), `${file}: cell '${want.tag}' ${want.mime} lacks '${want.contains}'`);
        }
      });
    }
    assert.deepEqual(listTree(NOTEBOOKS), before, 'executing the notebooks wrote nothing into notebooks/');
  } finally {
    tmp.cleanup();
  }
});
