/**
 * The user's own corpora, which need no edit inside the repository. Two ways to define one:
 * - in a config: `dataset: {name, files: {train, validation, test}, format, types}` (paths relative to
 *   the config file, resolved by the config loader);
 * - in the user registry, `$LONGNER_HOME/datasets.json` (default ~/.longner), written by
 *   `longner datasets add`; configs then name it by `dataset.name` alone.
 * Either becomes a registry dataset (registry.ts) whose splits are those files: train, test and
 * optionally validation (absent: a seeded share of train, dataset.validationFraction), the same under
 * both protocols. Types, when not listed, are the sorted types of the training file.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { z } from 'zod';
import type { Config } from '../config/schema.js';
import { LongnerError } from '../errors.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { fileStamp } from '../util/hash.js';
import { readDocumentsWithReport } from './readers.js';
import type { DatasetSpec, SplitSpec } from './manifest.js';

export const USER_FORMATS = ['auto', 'sener', 'scirex', 'generic'] as const;
export type UserFormat = (typeof USER_FORMATS)[number];
export const DATASET_NAME = /^[a-z0-9][a-z0-9-]*$/;
const USER_SPLITS = ['train', 'validation', 'test'] as const;

export interface UserDataset {
  name: string;
  /** Absolute paths; validation null = held out from train. */
  files: { train: string; validation: string | null; test: string };
  format: UserFormat;
  /** Null: inferred from the training file. */
  types: string[] | null;
  /** Where it is defined, for messages. */
  source: string;
}

const EntrySchema = z.strictObject({
  name: z.string().regex(DATASET_NAME, 'lower-case letters, digits and dashes'),
  files: z.strictObject({ train: z.string().min(1), validation: z.string().min(1).nullable().default(null), test: z.string().min(1) }),
  format: z.enum(USER_FORMATS).default('auto'),
  types: z.array(z.string().min(1)).min(1).nullable().default(null),
});
const FileSchema = z.strictObject({ version: z.literal(1), datasets: z.array(EntrySchema) });

/** $LONGNER_HOME, else ~/.longner: the user's files that live outside any checkout. */
export function longnerHome(): string {
  const env = process.env.LONGNER_HOME;
  return resolve(env !== undefined && env.trim() !== '' ? env : join(homedir(), '.longner'));
}

export function userRegistryPath(): string {
  return join(longnerHome(), 'datasets.json');
}

/** The user registry's datasets; none when the file does not exist. */
export function readUserRegistry(file: string = userRegistryPath()): UserDataset[] {
  if (!existsSync(file)) return [];
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new LongnerError(
      `${file}: cannot read the user dataset registry (${err instanceof Error ? err.message : String(err)}); expected the JSON that \`longner datasets add\` writes`,
    );
  }
  const parsed = FileSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new LongnerError(`${file}: ${issue.path.map(String).join('.') || '(top level)'}: ${issue.message}`);
  }
  const names = new Set<string>();
  return parsed.data.datasets.map((d, i) => {
    if (names.has(d.name)) throw new LongnerError(`${file}: datasets[${i}].name: "${d.name}" appears twice`);
    names.add(d.name);
    return { ...d, source: file };
  });
}

/** Adds (or replaces) a dataset in the user registry, atomically; returns whether one was replaced. */
export function saveUserDataset(entry: Omit<UserDataset, 'source'>, file: string = userRegistryPath()): boolean {
  const all = readUserRegistry(file);
  const others = all.filter((d) => d.name !== entry.name);
  const replaced = others.length !== all.length;
  const strip = ({ source: _source, ...rest }: UserDataset): Omit<UserDataset, 'source'> => rest;
  writeJsonAtomic(file, { version: 1, datasets: [...others.map(strip), entry] });
  return replaced;
}

/** A config's own dataset (`dataset.files`), or null when it names a registered one. */
export function configDataset(config: Config): UserDataset | null {
  const d = config.dataset;
  if (d.files === null) return null;
  return { name: d.name, files: d.files, format: d.format, types: d.types, source: `the config's dataset.files (dataset ${d.name})` };
}

/** The registry form of a user dataset; reads the training file when the types must be inferred. */
export function userDatasetSpec(entry: UserDataset): DatasetSpec {
  const validation = entry.files.validation === null ? 'fraction' : 'validation';
  const protocol = { train: 'train', validation, test: 'test' };
  const splits: SplitSpec[] = [];
  for (const split of USER_SPLITS) {
    const path = entry.files[split];
    if (path === null) continue;
    splits.push({
      split,
      file: basename(path),
      format: entry.format,
      sha256: null,
      bytes: null,
      docs: null,
      urls: [],
      howToGet: `defined in ${entry.source}`,
      path,
    });
  }
  return {
    name: entry.name,
    title: `${entry.name} (user dataset)`,
    citation: '',
    licence: '',
    types: entry.types ?? inferTypes(entry),
    protocols: { local: protocol, paper: protocol },
    splits,
    source: entry.source,
  };
}

const inferred = new Map<string, string[]>();

/** The sorted entity types of the training file (sorted, so the label order is a function of the data). */
export function inferTypes(entry: UserDataset): string[] {
  const path = entry.files.train;
  if (!statSync(path, { throwIfNoEntry: false })?.isFile()) {
    throw new LongnerError(`${entry.source}: the train file of dataset ${entry.name}, ${path}, does not exist; expected a JSONL file`);
  }
  const key = `${entry.format}\u0000${fileStamp(path)}`;
  let types = inferred.get(key);
  if (types === undefined) {
    const docs = readDocumentsWithReport(path, entry.format).docs;
    types = [...new Set(docs.flatMap((d) => d.entities.map((e) => e.type)))].sort();
    if (types.length === 0) {
      throw new LongnerError(
        `${path}: no entities, so dataset ${entry.name} has no types to infer; expected entities in the training file, or list the types (dataset.types / --types)`,
      );
    }
    inferred.set(key, types);
  }
  return types.slice();
}
