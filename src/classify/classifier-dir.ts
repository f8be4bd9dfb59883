import { dirname, join, resolve } from 'node:path';
import { UserError } from '../errors.ts';
import type { Config } from '../config.ts';

/**
 * Where saved classifiers live: `classifiers/` beside the models directory (default `.tilevec/classifiers`).
 * `classify train` saves there by default and the HTTP service only loads from there, by name, so a request can
 * never make the server read an arbitrary file.
 */
export function classifiersDir(config: Pick<Config, 'modelsDir'>): string {
  return resolve(dirname(config.modelsDir), 'classifiers');
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

/** The file of a classifier saved under `dir` by name (file name without `.json`). */
export function classifierPath(dir: string, name: string): string {
  if (!NAME.test(name) || name.includes('..')) throw new UserError(`classifier name '${name}' must be letters, digits, '.', '_' or '-' (a file name in the classifiers directory, without .json)`);
  return join(dir, `${name}.json`);
}
