/**
 * Config loading: YAML file (with `extends:`), then a preset (and its block for the config's
 * dataset), then `--set key.path=value` overrides, then validation against the schema. Every source
 * that touched a key is remembered, so a validation error names the file (or preset, or --set) the
 * bad value came from.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { parseDocument, parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { LongnerError } from '../errors.js';
import { fromRoot } from '../util/paths.js';
import { ConfigSchema, type Config } from './schema.js';
import { knownKeys, schemaAt, unwrapSchema } from './introspect.js';

export interface LoadOptions {
  /** Name of a preset in configs/presets/ (without .yaml). */
  preset?: string;
  /** Overrides `key.path=value`, applied last, in order; each value is parsed as YAML. */
  set?: string[];
}

export interface LoadedConfig {
  config: Config;
  /** What went into the config, in merge order: file paths (parents first), the preset file, then each --set. */
  sources: string[];
}

type Mapping = Record<string, unknown>;

/** Which source last set each key path; keyed by `pathKey(path)`. */
type Provenance = Map<string, string>;

interface Layer {
  source: string;
  data: Mapping;
  /** The folder of the file it was read from: relative data paths in it start there. */
  dir: string;
}

const SET_SOURCE = '--set';
/** The keyword of encoder.pretrained that is not a path (schema.ts). */
const PRETRAINED_MLM = 'mlm';
const PRESET_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
const SET_ARGUMENT = /^([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*)=(.*)$/s;

export function loadConfig(path: string, opts: LoadOptions = {}): LoadedConfig {
  const file = resolve(path);
  const topSource = displayPath(file);
  if (!existsSync(file)) throw new LongnerError(`${topSource}: config file not found`);

  const merged: Mapping = {};
  const provenance: Provenance = new Map();
  const sources: string[] = [];
  const dirs = new Map<string, string>();
  const apply = (layers: Layer[]): void => {
    for (const layer of layers) {
      mergeInto(merged, layer.data, layer.source, provenance, []);
      sources.push(layer.source);
      dirs.set(layer.source, layer.dir);
    }
  };

  apply(readWithExtends(file, []));
  const sets = (opts.set ?? []).map((argument) => ({ argument, ...parseSetArgument(argument) }));
  if (opts.preset !== undefined) {
    const { layers, perDataset } = splitPresetLayers(readWithExtends(presetPath(opts.preset), []));
    apply(layers);
    // The dataset a --set names wins over the file's, as it will in the merged config.
    const named = sets.filter((s) => s.keyPath.join('.') === 'dataset.name').pop();
    const datasetName = named !== undefined ? named.value : isMapping(merged.dataset) ? merged.dataset.name : undefined;
    apply(perDataset.filter((layer) => layer.dataset === datasetName));
    // The preset's name is only recorded; it never changes the run id (see runs/id.ts).
    merged.preset = opts.preset;
    provenance.set(pathKey(['preset']), '--preset');
  }
  for (const { argument, keyPath, value } of sets) {
    setAtPath(merged, keyPath, value, provenance);
    sources.push(`${SET_SOURCE} ${argument}`);
  }

  resolveDataFiles(merged, provenance, dirs);
  resolvePretrainedPath(merged, provenance, dirs);
  const config = validate(merged, (issuePath) => sourceOf(issuePath, provenance) ?? topSource);
  return { config, sources };
}

/**
 * `dataset.files` paths are relative to the config file that wrote them (a --set one to the working
 * directory), so a corpus folder with its config in it works from anywhere; the resolved config, saved
 * with the run, holds absolute paths.
 */
function resolveDataFiles(merged: Mapping, provenance: Provenance, dirs: ReadonlyMap<string, string>): void {
  const dataset = merged.dataset;
  const files = isMapping(dataset) ? dataset.files : undefined;
  if (!isMapping(files)) return;
  for (const [key, value] of Object.entries(files)) {
    if (typeof value !== 'string' || value === '' || isAbsolute(value)) continue;
    const source = sourceOf(['dataset', 'files', key], provenance);
    files[key] = resolve((source === undefined ? undefined : dirs.get(source)) ?? process.cwd(), value);
  }
}

/**
 * A path in `encoder.pretrained` is relative to the config file that wrote it (a --set one to the
 * working directory), like dataset.files, so a preset can name a folder of the repository
 * (configs/presets/x.yaml: `../../models/y`) and work from any directory. 'mlm' and null are not paths.
 */
function resolvePretrainedPath(merged: Mapping, provenance: Provenance, dirs: ReadonlyMap<string, string>): void {
  const encoder = merged.encoder;
  if (!isMapping(encoder)) return;
  const value = encoder.pretrained;
  if (typeof value !== 'string' || value === '' || value === PRETRAINED_MLM || isAbsolute(value)) return;
  const source = sourceOf(['encoder', 'pretrained'], provenance);
  encoder.pretrained = resolve((source === undefined ? undefined : dirs.get(source)) ?? process.cwd(), value);
}

/**
 * Validates a config built in code (or read from a run's config.json): defaults fill what is
 * missing, and each problem is reported as coming from `sourceName`.
 */
export function resolveConfigFromObject(obj: unknown, sourceName = '<config>'): Config {
  return validate(obj, () => sourceName);
}

/** Deep merge of config layers in order (later wins): mappings merge key by key, arrays and scalars replace. */
export function mergeConfigObjects(...layers: Mapping[]): Mapping {
  const merged: Mapping = {};
  const provenance: Provenance = new Map();
  for (const layer of layers) mergeInto(merged, layer, '', provenance, []);
  return merged;
}

/** The preset names available under configs/presets/, sorted. */
export function listPresets(): string[] {
  const dir = fromRoot('configs', 'presets');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name.endsWith('.yaml'))
    .map((name) => name.slice(0, -'.yaml'.length))
    .sort();
}

export function presetPath(name: string): string {
  const available = listPresets();
  if (!PRESET_NAME.test(name) || !available.includes(name)) {
    throw new LongnerError(`unknown preset "${name}" (available presets: ${available.join(', ') || 'none'})`);
  }
  return fromRoot('configs', 'presets', `${name}.yaml`);
}

/**
 * A preset file's top-level `datasets:` block holds keys for one dataset only (`datasets:
 * { profiling-07: { train: { maxSteps: 2400 } } }`): a budget that one corpus needs and the others
 * do not. They apply right after the preset's own keys, so the experiment's sets, its axes and
 * --set still win. Split out here because `datasets` is not a config key.
 */
function splitPresetLayers(layers: Layer[]): { layers: Layer[]; perDataset: (Layer & { dataset: string })[] } {
  const perDataset: (Layer & { dataset: string })[] = [];
  const rest = layers.map((layer) => {
    const { datasets, ...data } = layer.data;
    if (datasets === undefined) return layer;
    if (!isMapping(datasets) || !Object.values(datasets).every(isMapping)) {
      throw new LongnerError(`${layer.source}: datasets: expected a mapping of dataset name -> config keys, got ${showValue(datasets)}`);
    }
    for (const [dataset, keys] of Object.entries(datasets)) {
      perDataset.push({ source: `${layer.source} (datasets.${dataset})`, data: keys as Mapping, dir: layer.dir, dataset });
    }
    return { ...layer, data };
  });
  return { layers: rest, perDataset };
}

/** Parses one `--set key.path=value` argument; the value is YAML, so numbers, null and booleans get their type. */
export function parseSetArgument(argument: string): { keyPath: string[]; value: unknown } {
  const match = SET_ARGUMENT.exec(argument);
  if (match === null) {
    throw new LongnerError(`--set "${argument}": expected key.path=value, e.g. --set train.lr=1e-3`);
  }
  const [, keys, raw] = match;
  if (raw === undefined || raw.trim() === '') {
    throw new LongnerError(`--set "${argument}": the value is empty; expected key.path=value (write null for null, '' for an empty string)`);
  }
  let value: unknown;
  try {
    value = parseYaml(raw);
  } catch (err) {
    throw new LongnerError(`--set "${argument}": the value is not valid YAML: ${firstLine(errorMessage(err))}`);
  }
  return { keyPath: keys!.split('.'), value };
}

/**
 * The layers of a file in merge order: each parent named by `extends:` resolved fully (with its own
 * parents), in list order, then the file's own keys. `chain` is the files currently being
 * resolved, to report a cycle.
 */
function readWithExtends(file: string, chain: readonly string[]): Layer[] {
  if (chain.includes(file)) {
    const cycle = [...chain.slice(chain.indexOf(file)), file].map(displayPath).join(' -> ');
    throw new LongnerError(`${displayPath(chain[chain.length - 1]!)}: extends cycle: ${cycle}`);
  }
  const source = displayPath(file);
  const data = readYamlMapping(file);
  const parents = extendsList(data.extends, source);
  delete data.extends;

  const layers: Layer[] = [];
  for (const parent of parents) {
    const parentFile = isAbsolute(parent) ? parent : resolve(dirname(file), parent);
    if (!existsSync(parentFile)) {
      throw new LongnerError(`${source}: extends "${parent}": file not found (${displayPath(parentFile)})`);
    }
    layers.push(...readWithExtends(parentFile, [...chain, file]));
  }
  layers.push({ source, data, dir: dirname(file) });
  return layers;
}

function extendsList(value: unknown, source: string): string[] {
  if (value === undefined || value === null) return [];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((item): item is string => typeof item === 'string')) return value;
  throw new LongnerError(`${source}: extends: expected a file path or a list of file paths, got ${showValue(value)}`);
}

function readYamlMapping(file: string): Mapping {
  const source = displayPath(file);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new LongnerError(`${source}: cannot read: ${errorMessage(err)}`);
  }
  const doc = parseDocument(text);
  const error = doc.errors[0];
  if (error !== undefined) {
    const position = error.linePos?.[0];
    const where = position === undefined ? source : `${source}:${position.line}:${position.col}`;
    throw new LongnerError(`${where}: ${firstLine(error.message).replace(/ at line \d+, column \d+:?$/, '')}`);
  }
  const data: unknown = doc.toJS();
  if (data === null || data === undefined) return {};
  if (!isMapping(data)) {
    throw new LongnerError(`${source}: expected a mapping of config keys at the top level, got ${showValue(data)}`);
  }
  return data;
}

/** Deep merge: mappings merge key by key, anything else (arrays included) replaces. */
function mergeInto(target: Mapping, source: Mapping, sourceName: string, provenance: Provenance, path: string[]): void {
  for (const [key, value] of Object.entries(source)) {
    const keyPath = [...path, key];
    provenance.set(pathKey(keyPath), sourceName);
    const existing = target[key];
    if (isMapping(value) && isMapping(existing)) {
      mergeInto(existing, value, sourceName, provenance, keyPath);
    } else if (isMapping(value)) {
      const fresh: Mapping = {};
      mergeInto(fresh, value, sourceName, provenance, keyPath);
      target[key] = fresh;
    } else {
      target[key] = structuredClone(value);
    }
  }
}

function setAtPath(target: Mapping, keyPath: readonly string[], value: unknown, provenance: Provenance): void {
  let node = target;
  for (const key of keyPath.slice(0, -1)) {
    const next = node[key];
    if (isMapping(next)) {
      node = next;
    } else {
      const fresh: Mapping = {};
      node[key] = fresh;
      node = fresh;
    }
  }
  node[keyPath[keyPath.length - 1]!] = value;
  provenance.set(pathKey(keyPath), SET_SOURCE);
}

/** The source that set `path`, or else the nearest enclosing section that a source set. */
function sourceOf(path: readonly PropertyKey[], provenance: Provenance): string | undefined {
  for (let length = path.length; length > 0; length--) {
    const source = provenance.get(pathKey(path.slice(0, length)));
    if (source !== undefined) return source;
  }
  return undefined;
}

function validate(input: unknown, sourceFor: (path: readonly PropertyKey[]) => string): Config {
  const result = ConfigSchema.safeParse(input);
  if (result.success) return result.data;
  const lines = result.error.issues.flatMap((issue) => formatIssue(issue, input, sourceFor));
  throw new LongnerError(lines.join('\n'));
}

function formatIssue(issue: z.core.$ZodIssue, input: unknown, sourceFor: (path: readonly PropertyKey[]) => string): string[] {
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeys(issue.path);
    const section = issue.path.length === 0 ? 'at the top level' : `in ${dotted(issue.path)}`;
    return issue.keys.map((key) => {
      const keyPath = [...issue.path, key];
      const hint = closestKey(key, known);
      return (
        `${sourceFor(keyPath)}: unknown key "${dotted(keyPath)}"` +
        (hint === undefined ? '' : `, did you mean "${hint}"?`) +
        ` (known keys ${section}: ${known.join(', ')})`
      );
    });
  }
  const where = issue.path.length === 0 ? '(top level)' : dotted(issue.path);
  return [`${sourceFor(issue.path)}: ${where}: expected ${expectation(issue)}, got ${showValue(valueAt(input, issue.path))}`];
}

/** What the schema wanted, in words. */
function expectation(issue: z.core.$ZodIssue): string {
  const schema = schemaAt(issue.path);
  const orNull = schema !== null && acceptsNull(schema) ? ' or null' : '';
  const inner = schema === null ? null : unwrapSchema(schema);
  const integer = inner instanceof z.ZodNumber && inner.isInt;
  switch (issue.code) {
    case 'invalid_type':
      return typeName(integer ? 'int' : issue.expected) + orNull;
    case 'too_small':
      if (issue.origin === 'string') return issue.minimum === 1 ? 'a non-empty string' : `a string of at least ${issue.minimum} characters`;
      return `${integer ? 'an integer' : 'a number'} ${issue.inclusive ? '>=' : '>'} ${issue.minimum}${orNull}`;
    case 'too_big':
      if (issue.origin === 'string') return `a string of at most ${issue.maximum} characters`;
      return `${integer ? 'an integer' : 'a number'} ${issue.inclusive ? '<=' : '<'} ${issue.maximum}${orNull}`;
    case 'invalid_value':
      return `one of ${issue.values.map((value) => JSON.stringify(value)).join(', ')}`;
    case 'invalid_format':
      return issue.format === 'regex' && issue.pattern !== undefined ? `a string matching ${issue.pattern}` : `a string in ${issue.format} format`;
    case 'not_multiple_of':
      return `a multiple of ${issue.divisor}`;
    default:
      // Custom refinements in schema.ts phrase their message as the expectation.
      return issue.message;
  }
}

function typeName(expected: string): string {
  switch (expected) {
    case 'int':
      return 'an integer';
    case 'number':
      return 'a number';
    case 'string':
      return 'a string';
    case 'boolean':
      return 'true or false';
    case 'object':
      return 'a mapping of keys';
    case 'array':
      return 'a list';
    default:
      return expected;
  }
}

function acceptsNull(schema: z.core.$ZodType): boolean {
  return z.safeParse(schema, null).success;
}

function closestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const candidate of known) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let node = root;
  for (const key of path) {
    if (!isMapping(node) || typeof key !== 'string') return undefined;
    node = node[key];
  }
  return node;
}

function showValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || typeof value !== 'object') return String(value);
  const text = JSON.stringify(value);
  const kind = Array.isArray(value) ? 'a list' : 'a mapping';
  return text.length <= 60 ? `${kind} ${text}` : `${kind} ${text.slice(0, 57)}...`;
}

function isMapping(value: unknown): value is Mapping {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function pathKey(path: readonly PropertyKey[]): string {
  return path.map(String).join('\u0000');
}

function dotted(path: readonly PropertyKey[]): string {
  return path.map(String).join('.');
}

/** Paths in messages: relative to the working directory when inside it, as users typed them. */
function displayPath(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file;
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
