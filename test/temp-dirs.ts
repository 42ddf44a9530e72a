/** Temp folders for a test file, removed after its last test whether it passed or not. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';

/** Registers the clean-up hook of the calling test file; returns a maker of `longner-<prefix>-*` folders. */
export function tempDirs(): (prefix: string) => string {
  const made: string[] = [];
  test.after.always(() => {
    for (const dir of made) rmSync(dir, { recursive: true, force: true });
  });
  return (prefix) => {
    const dir = mkdtempSync(join(tmpdir(), `longner-${prefix}-`));
    made.push(dir);
    return dir;
  };
}
