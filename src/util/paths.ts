import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
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

/**
 * The runs root: an explicit folder, else $LONGNER_RUNS_DIR, else the project's runs/. Every command
 * that reads or writes run folders (train, pretrain, eval, predict, run, report) resolves it here, so
 * one variable moves all of them.
 */
export function runsRoot(explicit?: string | null): string {
  if (explicit !== undefined && explicit !== null && explicit !== '') return resolve(explicit);
  const env = process.env.LONGNER_RUNS_DIR;
  return env !== undefined && env !== '' ? resolve(env) : fromRoot('runs');
}

/** A path for a report page: relative to the project when inside it (reports may be committed). */
export function displayPath(path: string): string {
  const rel = relative(projectRoot(), path);
  return rel !== '' && !rel.startsWith('..') ? rel : path;
}
