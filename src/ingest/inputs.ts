import { readdir, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';

const TIFF = /\.(tiff?|gtiff)$/i;

/** One raster to ingest, or an input that names nothing ingestible (reported as a failure, batch goes on). */
export type ExpandedInput = { uri: string } | { uri: string; error: string };

/**
 * Expands CLI inputs: URLs stay as they are; a directory yields the .tif/.tiff files under it; a pattern with
 * `*`, `?` or `[...]` (and `**` for any depth) yields the TIFF files that match; a plain path is taken as given.
 */
export async function expandInputs(inputs: string[]): Promise<ExpandedInput[]> {
  const out: ExpandedInput[] = [];
  const seen = new Set<string>();
  const push = (e: ExpandedInput) => {
    if (seen.has(e.uri)) return;
    seen.add(e.uri);
    out.push(e);
  };
  for (const input of inputs) {
    if (/^[a-zA-Z][a-zA-Z0-9+.-]+:\/\//.test(input)) {
      push({ uri: input });
      continue;
    }
    if (/[*?[]/.test(input)) {
      const matches = await glob(input);
      if (matches.length === 0) push({ uri: input, error: 'no TIFF files match this pattern' });
      for (const m of matches) push({ uri: m });
      continue;
    }
    const path = resolve(input);
    const info = await stat(path).catch(() => null);
    if (info?.isDirectory()) {
      const files = (await walk(path)).filter((f) => TIFF.test(f));
      if (files.length === 0) push({ uri: path, error: 'directory holds no .tif or .tiff files' });
      for (const f of files) push({ uri: f });
    } else {
      push({ uri: path });
    }
  }
  return out;
}

async function walk(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const files: string[] = [];
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) files.push(...(await walk(p)));
    else if (e.isFile()) files.push(p);
  }
  return files;
}

async function glob(pattern: string): Promise<string[]> {
  const abs = resolve(pattern);
  const parts = abs.split(sep);
  const firstGlob = parts.findIndex((p) => /[*?[]/.test(p));
  const base = parts.slice(0, firstGlob).join(sep) || sep;
  const re = globToRegExp(abs);
  return (await walk(base)).filter((f) => re.test(f) && TIFF.test(f));
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
      if (glob[i + 1] === sep) i++;
    } else if (c === '*') re += `[^${sep === '\\' ? '\\\\' : sep}]*`;
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = glob.indexOf(']', i);
      if (end < 0) re += '\\[';
      else {
        re += `[${glob.slice(i + 1, end).replace(/^!/, '^')}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}
