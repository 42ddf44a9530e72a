/**
 * Archived run records: the small, portable part of finished runs, copied out of a runs root into a
 * folder meant to be committed beside the reports (results/<preset>/ in this repository).
 *
 * What is kept is what a report reads and what documents a run: result.json (metrics, diagnostics,
 * learning curves, memory, timing, data fingerprints) and the resolved config.yaml. Checkpoints,
 * log.jsonl and predictions stay behind: they are large, machine-specific or quote the data.
 * `longner report --runs-dir <archive>` rebuilds the same report from the archive alone, and a runs
 * root that holds a copy of it makes `longner run` skip those cells, so a grid too long for one
 * machine session can be finished over several.
 *
 * Absolute paths (an encoder.pretrained folder, a user's data files) are written relative to the
 * archived file, the way config files write them (config/load.ts), so no path of the machine that
 * ran the grid ends up in the archive.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { resolveConfigFromObject } from '../config/load.js';
import { formatConfig } from '../config/print.js';
import type { Config } from '../config/schema.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { CONFIG_JSON, CONFIG_YAML, RESULT_FILE } from './record.js';
import { RunResultSchema } from './result.js';
import { GRID_FILE } from './runner.js';

/**
 * `value` with every string that names an existing absolute path rewritten relative to `from`.
 * Existence is the test, so a string that merely starts with '/' (a unit, a fraction) is kept.
 */
export function relativePaths<T>(value: T, from: string): T {
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return isAbsolute(v) && !/\s/.test(v) && existsSync(v) ? relative(from, v) || '.' : v;
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(value) as T;
}

export type ArchiveAction = 'added' | 'updated' | 'unchanged';

/**
 * Copies one finished run folder (it has a result.json) to `<to>/<experiment>/<run id>/`: result.json
 * and config.yaml, validated and with portable paths. Returns what changed in the archive.
 *
 * A folder without config.json is itself an archived record, copied into a runs root to finish a
 * grid over several sessions: its config.yaml is copied as it is. Its paths are already relative
 * (to a record at the same depth under its own archive root); resolving them from the runs root
 * could name a folder that does not exist there, which relativePaths would leave absolute.
 */
export function archiveRun(runFolder: string, to: string, experiment: string, id: string): ArchiveAction {
  const target = join(to, experiment, id);
  const result = RunResultSchema.parse(JSON.parse(readFileSync(join(runFolder, RESULT_FILE), 'utf8')));
  const files: [string, string][] = [
    [RESULT_FILE, `${JSON.stringify(relativePaths(result, target), null, 2)}\n`],
    [CONFIG_YAML, archivedConfig(runFolder, target, id)],
  ];
  const before = files.map(([name]) => (existsSync(join(target, name)) ? readFileSync(join(target, name), 'utf8') : null));
  if (files.every(([, text], i) => before[i] === text)) return 'unchanged';
  for (const [name, text] of files) writeFileAtomic(join(target, name), text);
  return before.every((b) => b === null) ? 'added' : 'updated';
}

function archivedConfig(runFolder: string, target: string, id: string): string {
  if (!existsSync(join(runFolder, CONFIG_JSON))) return readFileSync(join(runFolder, CONFIG_YAML), 'utf8');
  const config: Config = resolveConfigFromObject(JSON.parse(readFileSync(join(runFolder, CONFIG_JSON), 'utf8')), join(runFolder, CONFIG_JSON));
  return (
    `# run ${id}: the resolved config, every option (archived by \`longner archive\`; paths relative to this file).\n` +
    formatConfig(relativePaths(config, target))
  );
}

/** The archive's grid.json: the preset and --set its runs were made with, which `report` reads back (report/collect.ts). */
export function archiveGridSettings(to: string, experiment: string, preset: string | null, set: readonly string[]): void {
  const path = join(to, experiment, GRID_FILE);
  const value = { experiment, preset, set: [...set] };
  if (existsSync(path) && readFileSync(path, 'utf8') === `${JSON.stringify(value, null, 2)}\n`) return;
  writeJsonAtomic(path, value);
}
