/**
 * Parameters, optimizer moments and a JSON state that must change together (trainer and pretraining
 * checkpoints). A save writes `<file>.next` for all three, the state last, then renames them into
 * place, the state last. On recovery a `<state>.next` means a complete new set exists (it is written
 * after the two parameter files), so the commit is finished (roll forward); without it any `.next`
 * file is an unfinished write and is deleted. The state carries the sha256 of the two parameter
 * files, which catches anything else (a file copied in from another run, a truncated disk).
 */
import { existsSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { z } from 'zod';
import { LongnerError } from '../errors.js';
import type { ParamStore } from '../nn/params.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { sha256 } from '../util/hash.js';
import type { AdamW } from './adamw.js';

const NEXT = '.next';

/** The three journaled file names of a checkpoint, in write (and commit) order. */
export interface JournalFiles {
  params: string;
  optimizer: string;
  state: string;
}

function names(files: JournalFiles): string[] {
  return [files.params, files.optimizer, files.state];
}

export function hashFile(path: string): string {
  return sha256(readFileSync(path));
}

/** Saves the set; `state` gets the sha256 of the parameter and moment files it belongs with. */
export function saveJournaled(
  dir: string,
  files: JournalFiles,
  params: ParamStore,
  optimizer: AdamW,
  state: (hashes: { params: string; optimizer: string }) => unknown,
): void {
  const next = (f: string): string => join(dir, f + NEXT);
  params.save(next(files.params));
  optimizer.saveMoments(next(files.optimizer));
  writeJsonAtomic(next(files.state), state({ params: hashFile(next(files.params)), optimizer: hashFile(next(files.optimizer)) }));
  commit(dir, files);
}

function commit(dir: string, files: JournalFiles): void {
  for (const f of names(files)) {
    const from = join(dir, f + NEXT);
    if (existsSync(from)) renameSync(from, join(dir, f));
  }
}

/**
 * Finishes an interrupted commit or drops an unfinished save, and removes the temp files of killed
 * atomic writes of the journaled files and of `others` (other files of the directory).
 */
export function recoverJournaled(dir: string, files: JournalFiles, others: readonly string[] = []): void {
  if (!existsSync(dir)) return;
  if (existsSync(join(dir, files.state + NEXT))) commit(dir, files);
  else for (const f of names(files)) rmSync(join(dir, f + NEXT), { force: true });
  const ours = [...others, ...names(files)].flatMap((f) => [f, f + NEXT]);
  for (const name of readdirSync(dir)) {
    // writeFileAtomic's temp names: `<path>.<pid>.<ms>.tmp`.
    const m = /^(.*)\.\d+\.\d+\.tmp$/.exec(name);
    if (m && ours.includes(m[1]!)) rmSync(join(dir, name), { force: true });
  }
}

export interface LoadJournaledOptions<S> {
  /** What the state is, for messages ("a trainer state"). */
  what: string;
  /** What to do instead of resuming, for messages ("start without --resume"). */
  remedy: string;
  /** Files the state pins besides the journaled pair, with the sha256 it names for each. */
  pinned?: (state: S) => [string, string][];
}

/**
 * The saved state after recovery, checked against its schema and against the sha256 of every file it
 * belongs with, or null when the directory holds none. Any mismatch is a LongnerError naming the file.
 */
export function loadJournaled<S extends { files: { params: string; optimizer: string } }>(
  dir: string,
  files: JournalFiles,
  schema: z.ZodType<S>,
  opts: LoadJournaledOptions<S>,
): S | null {
  const file = join(dir, files.state);
  if (!existsSync(file)) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new LongnerError(`${file}: not valid JSON (${err instanceof Error ? err.message : String(err)}); ${opts.remedy}`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new LongnerError(`${file}: not ${opts.what} of this version (${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'}); ${opts.remedy}`);
  }
  const state = parsed.data;
  const pinned: [string, string][] = [[files.params, state.files.params], [files.optimizer, state.files.optimizer], ...(opts.pinned?.(state) ?? [])];
  for (const [f, want] of pinned) {
    const path = join(dir, f);
    if (!existsSync(path)) throw new LongnerError(`${file} names ${f}, which is missing; ${opts.remedy}`);
    if (hashFile(path) !== want) throw new LongnerError(`${path} does not match ${files.state} (sha256 differs); ${opts.remedy}`);
  }
  return state;
}
