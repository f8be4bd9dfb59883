import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** tilevec's version, from its package.json, so that a release changes it in one place. */
export const VERSION: string = JSON.parse(readFileSync(resolve(import.meta.dirname, '../package.json'), 'utf8')).version;
