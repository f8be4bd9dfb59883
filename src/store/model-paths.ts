import { existsSync } from 'node:fs';
import { basename, isAbsolute, relative, resolve } from 'node:path';

/**
 * Model directories inside the models directory are recorded relative to it, so that a copied project
 * (`cp -a .tilevec elsewhere`) uses its own models, not the original's. Others stay absolute.
 */
export function storedModelPath(dir: string, modelsDir: string): string {
  const absolute = resolve(dir);
  const rel = relative(resolve(modelsDir), absolute);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : absolute;
}

/**
 * The directory a recorded path stands for. An absolute path that is gone (recorded before paths were relative,
 * then moved with its catalog) is looked for by name in the models directory.
 */
export function modelDirOf(stored: string, modelsDir: string): string {
  if (!isAbsolute(stored)) return resolve(modelsDir, stored);
  if (existsSync(stored)) return stored;
  const moved = resolve(modelsDir, basename(stored));
  return existsSync(moved) ? moved : stored;
}
