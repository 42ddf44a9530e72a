/**
 * dataset.json in a run folder: what `eval` and `predict` need to know about the data without the
 * dataset registry (a user dataset may have left it, or the run folder moved to another machine): the
 * entity types in label order, the files and their layout for a user's corpus, and the fingerprints of
 * the files the run was trained and tested on.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { Config } from '../config/schema.js';
import { createRegistry, defaultRegistry, registryFor, type Registry } from '../data/registry.js';
import { USER_FORMATS, readUserRegistry } from '../data/user-datasets.js';
import { LongnerError } from '../errors.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { dataFingerprints } from '../data/config-hash.js';

export const DATASET_FILE = 'dataset.json';

const Fingerprints = z.record(z.string(), z.record(z.string(), z.string()).nullable());

const RunDatasetSchema = z.strictObject({
  name: z.string().min(1),
  types: z.array(z.string().min(1)).min(1),
  /** A user's corpus: its files (absolute) and layout; null for a registered dataset. */
  files: z.strictObject({ train: z.string(), validation: z.string().nullable(), test: z.string() }).nullable(),
  format: z.enum(USER_FORMATS),
  fingerprints: Fingerprints,
});
export type RunDataset = z.infer<typeof RunDatasetSchema>;

/** The files of the run's dataset when it is a user's corpus (from the config, or the user registry as it is now). */
function userFiles(config: Config): Pick<RunDataset, 'files' | 'format'> {
  if (config.dataset.files !== null) return { files: config.dataset.files, format: config.dataset.format };
  const entry = readUserRegistry().find((d) => d.name === config.dataset.name);
  return entry === undefined ? { files: null, format: 'auto' } : { files: entry.files, format: entry.format };
}

export function writeRunDataset(dir: string, config: Config, types: readonly string[]): RunDataset {
  const record: RunDataset = { name: config.dataset.name, types: [...types], ...userFiles(config), fingerprints: dataFingerprints(config) };
  writeJsonAtomic(join(dir, DATASET_FILE), record);
  return record;
}

/** The run's dataset.json, or null for a run made before it was written. */
export function readRunDataset(dir: string): RunDataset | null {
  const file = join(dir, DATASET_FILE);
  if (!existsSync(file)) return null;
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new LongnerError(`${file}: not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  const parsed = RunDatasetSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new LongnerError(`${file}: ${issue.path.map(String).join('.') || '(top level)'}: ${issue.message}`);
  }
  return parsed.data;
}

/** The registry that reads a run's data again: its own record of a user's corpus, else the default one. */
export function runRegistry(dir: string, config: Config): Registry {
  const own = readRunDataset(dir);
  if (own === null || own.files === null) return registryFor(config);
  return createRegistry({
    manifest: defaultRegistry().manifest,
    user: [{ name: own.name, files: own.files, format: own.format, types: own.types, source: join(dir, DATASET_FILE) }],
  });
}
