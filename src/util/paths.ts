import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root: the nearest folder above this module that holds the longner package.json. */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('longner: cannot find the project root (no package.json above the code)');
    dir = up;
  }
  return dir;
}

export function fromRoot(...parts: string[]): string {
  return resolve(projectRoot(), ...parts);
}
