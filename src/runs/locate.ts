/**
 * Finding a run on disk by its run id, across experiments.
 *
 * A grid cell's run lives in `<runs>/<experiment>/<run id>/`. The run id does not depend on the
 * experiment (runs/id.ts leaves the experiment name out of the config hash), so the same config and
 * seed in two experiments is the same computation: `run` skips a cell whose run id already finished
 * in any experiment folder, and `report` reads it from there. The experiment's own folder is looked at
 * first; elsewhere an `ok` result wins over any other.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LongnerError } from '../errors.js';
import { lockHolder } from '../util/lock.js';
import { CONFIG_JSON, RESULT_FILE, RUN_LOCK } from './record.js';
import { RunResultSchema, type RunResult, type RunStatus } from './result.js';

export { runsRoot } from '../util/paths.js';

/** What is on disk for a run: a result's status, `partial` (started, no result), or `missing`. */
export type DiskStatus = RunStatus | 'partial' | 'missing';

export interface FoundRun {
  status: DiskStatus;
  /** The run folder found (null when missing). */
  dir: string | null;
  /** The experiment folder it was found in (null when missing). */
  experiment: string | null;
  result: RunResult | null;
  /** A result.json that does not validate: the error (status is then 'failed'). */
  problem?: string;
  /** A partial run that a live process is running now: who (util/lock.ts). */
  runningBy?: string;
}

const MISSING: FoundRun = { status: 'missing', dir: null, experiment: null, result: null };

function inspect(dir: string, experiment: string): FoundRun | null {
  if (!existsSync(join(dir, CONFIG_JSON)) && !existsSync(join(dir, RESULT_FILE))) {
    // A run that has just taken its lock has not written its config yet.
    return lockHolder(dir, RUN_LOCK) === null ? null : partial(dir, experiment);
  }
  if (!existsSync(join(dir, RESULT_FILE))) return partial(dir, experiment);
  let result: RunResult | null;
  try {
    result = readResultFile(join(dir, RESULT_FILE));
  } catch (err) {
    // A damaged record must not stop a whole grid or report; it shows as failed, with the reason.
    return { status: 'failed', dir, experiment, result: null, problem: err instanceof Error ? err.message : String(err) };
  }
  return result === null ? partial(dir, experiment) : { status: result.status, dir, experiment, result };
}

function partial(dir: string, experiment: string): FoundRun {
  const runningBy = lockHolder(dir, RUN_LOCK);
  return { status: 'partial', dir, experiment, result: null, ...(runningBy === null ? {} : { runningBy }) };
}

function experimentFolders(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((name) => {
      try {
        return statSync(join(root, name)).isDirectory();
      } catch {
        return false;
      }
    })
    .sort();
}

/**
 * The run with this id: in `<root>/<experiment>/` if it has a result there, else an ok result in any
 * other experiment folder, else whatever the own folder has (partial, failed, ...), else any other
 * folder's record, else missing.
 */
export function findRun(root: string, experiment: string, id: string, folders: readonly string[] = experimentFolders(root)): FoundRun {
  const own = inspect(join(root, experiment, id), experiment);
  if (own !== null && own.result !== null && own.status === 'ok') return own;
  const others: FoundRun[] = [];
  for (const name of folders) {
    if (name === experiment) continue;
    const found = inspect(join(root, name, id), name);
    if (found !== null) others.push(found);
  }
  const okElsewhere = others.find((f) => f.status === 'ok');
  if (okElsewhere !== undefined) return okElsewhere;
  if (own !== null) return own;
  return others.find((f) => f.result !== null) ?? others[0] ?? MISSING;
}

/** findRun for many ids, listing the experiment folders once. */
export function findRuns(root: string, experiment: string, ids: readonly string[]): Map<string, FoundRun> {
  const folders = experimentFolders(root);
  return new Map(ids.map((id) => [id, findRun(root, experiment, id, folders)]));
}

/** A result.json, validated; a LongnerError naming the file and key when it does not validate. */
export function readResultFile(file: string): RunResult {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new LongnerError(`${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const parsed = RunResultSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new LongnerError(`${file}: ${issue.path.map(String).join('.') || '(top level)'}: ${issue.message}`);
  }
  return parsed.data;
}

/**
 * A run named on the command line: a folder path, or a run id looked up in every experiment folder
 * of the runs root (an ok run first, as findRun does).
 */
export function locateRunFolder(target: string, root: string): string {
  if (statSync(target, { throwIfNoEntry: false })?.isDirectory()) return target;
  if (!target.includes('/') && !target.includes('\\')) {
    const folders = experimentFolders(root);
    const found = findRun(root, folders[0] ?? '', target, folders);
    if (found.dir !== null) return found.dir;
  }
  throw new LongnerError(`${target}: expected a run folder or the run id of a run under ${root}; neither exists`);
}
