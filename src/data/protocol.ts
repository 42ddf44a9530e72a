import { LongnerError } from '../errors.js';
import { createRng, shuffled } from '../util/rng.js';
import { collapseAll, dedupDocuments, type DedupReport } from './dedup.js';
import { checkIssues } from './issues.js';
import { readDocumentsWithReport, type ReadReport } from './readers.js';
import { defaultRegistry, type Registry, type ResolveOptions } from './registry.js';
import type { Document, ProtocolSplit } from './types.js';
import type { DatasetSpec, ProtocolSpec } from './manifest.js';

/**
 * The evaluation protocol (research/datasets.md). Three raw splits are missing from the mirror, so the
 * default `local` protocol trains on what exists:
 * - SciREX: train = official train minus `validationDocs` held-out docs, test = official dev;
 * - Scholar-XL, Profiling-07: train = official dev minus `validationFraction`, test = official test.
 * The `paper` protocol uses official train / dev / test, for users who downloaded the full data.
 * Which raw split plays which role is declared per dataset in datasets/manifest.json (`protocols`).
 *
 * Order of work: read -> drop training-side documents that occur in the test side or repeat
 * (dedup.ts) -> carve out validation with a seeded shuffle -> keep the first `maxDocs` -> collapse
 * duplicate entity triples. Dedup before the carve keeps copies of training documents out of validation.
 */
export type ProtocolName = 'local' | 'paper';

export const PROTOCOL_NAMES: readonly ProtocolName[] = ['local', 'paper'];

export interface MaxDocs {
  train?: number | null;
  validation?: number | null;
  test?: number | null;
}

export interface ProtocolOptions {
  protocol: ProtocolName;
  /** Share of the train source held out for validation when the dataset's protocol says `fraction`. */
  validationFraction: number;
  /** Documents held out for validation when the dataset's protocol says `docs`. */
  validationDocs: number;
  splitSeed: number;
  /** Quick presets: keep the first N of each split after the deterministic split; null or absent keeps all. */
  maxDocs?: MaxDocs;
  registry?: Registry;
}

export const DEFAULT_PROTOCOL_OPTIONS: Readonly<Omit<ProtocolOptions, 'registry' | 'maxDocs'>> = {
  protocol: 'local',
  validationFraction: 0.1,
  validationDocs: 30,
  splitSeed: 13,
};

export interface ProtocolData {
  dataset: string;
  types: string[];
  train: Document[];
  validation: Document[];
  test: Document[];
  dedup: DedupReport;
  /** One line saying where each split comes from and how big it is. */
  description: string;
}

export interface SplitSource {
  /** The raw split the protocol split is drawn from. */
  raw: string;
  /** `all` of it, the part left after holding out validation, or the held-out part. */
  selection: 'all' | 'minus-validation' | 'held-out';
  /** e.g. "dev minus 10%", "30 docs of train", "official test". */
  text: string;
}

type SourceOptions = Pick<ProtocolOptions, 'protocol' | 'validationFraction' | 'validationDocs'>;

/** Where a protocol split comes from, without reading anything (for `datasets stats`). */
export function protocolSource(dataset: string, split: ProtocolSplit, opts: Partial<SourceOptions> & { registry?: Registry } = {}): SplitSource {
  const registry = opts.registry ?? defaultRegistry();
  const o = { ...DEFAULT_PROTOCOL_OPTIONS, ...definedOnly(opts) };
  const ds = registry.dataset(dataset);
  const p = protocolSpec(ds, o.protocol);
  const heldOut = p.validation === 'fraction' ? percent(o.validationFraction) : count(o.validationDocs, 'doc');
  // A user's dataset has files, not an official release.
  const whole = (raw: string): string => (ds.source === undefined ? `official ${raw}` : `the ${raw} file`);
  if (split === 'test') return { raw: p.test, selection: 'all', text: whole(p.test) };
  if (isRawSplit(p)) {
    return split === 'train' ? { raw: p.train, selection: 'all', text: whole(p.train) } : { raw: p.validation, selection: 'all', text: whole(p.validation) };
  }
  return split === 'train'
    ? { raw: p.train, selection: 'minus-validation', text: `${p.train} minus ${heldOut}` }
    : { raw: p.train, selection: 'held-out', text: `${heldOut} of ${p.train}` };
}

/** The protocol splits that draw on a raw split, e.g. scholar-xl dev -> ['train', 'validation'] under `local`. */
export function protocolUses(dataset: string, rawSplit: string, protocol: ProtocolName = 'local', registry?: Registry): ProtocolSplit[] {
  const reg = registry ?? defaultRegistry();
  reg.split(dataset, rawSplit);
  const roles: ProtocolSplit[] = ['train', 'validation', 'test'];
  return roles.filter((role) => protocolSource(dataset, role, { protocol, registry: reg }).raw === rawSplit);
}

/** Splits `docs` into (rest, held-out) by a seeded shuffle; both keep the input order. */
export function holdOut(docs: readonly Document[], count: number, seed: number): { rest: Document[]; heldOut: Document[] } {
  const order = shuffled(
    docs.map((_, i) => i),
    createRng(seed),
  );
  const chosen = new Set(order.slice(0, count));
  return {
    rest: docs.filter((_, i) => !chosen.has(i)),
    heldOut: docs.filter((_, i) => chosen.has(i)),
  };
}

export interface RawSplit {
  docs: Document[];
  path: string;
  format: ReadReport['format'];
}

/**
 * One raw split as stored (no dedup), e.g. for `datasets stats`; may download it. Its entity types are
 * checked against the dataset's, and its readable-but-suspicious content is a warning (an error under
 * --strict), so every command that reads a split fails or warns the same way, before any training.
 */
export async function loadRawSplit(dataset: string, split: string, opts: ResolveOptions & { registry?: Registry } = {}): Promise<RawSplit> {
  const registry = opts.registry ?? defaultRegistry();
  const ds = registry.dataset(dataset);
  const spec = registry.split(dataset, split);
  const path = await registry.resolveSplit(dataset, split, opts);
  // Manifest formats are a fallback for a file of the other layout dropped in; a user's explicit format is exact.
  const r =
    spec.path !== undefined && spec.format !== 'auto'
      ? readDocumentsWithReport(path, spec.format)
      : readDocumentsWithReport(path, 'auto', spec.format === 'auto' ? 'sener' : spec.format);
  checkIssues(r);
  checkTypes(r, ds);
  return { docs: r.docs, path, format: r.format };
}

export async function loadProtocol(datasetName: string, opts: ProtocolOptions): Promise<ProtocolData> {
  checkOptions(opts);
  const registry = opts.registry ?? defaultRegistry();
  const ds = registry.dataset(datasetName);
  const p = protocolSpec(ds, opts.protocol);

  const read = async (raw: string, role: ProtocolSplit): Promise<Document[]> => {
    const split = await loadRawSplit(ds.name, raw, { registry });
    if (split.docs.length === 0) {
      throw new LongnerError(
        `${registry.display(split.path)}: no documents; expected at least one JSON object per line (it is the ${role} split of ${ds.name})`,
      );
    }
    return split.docs;
  };

  const trainRaw = await read(p.train, 'train');
  const valRaw = isRawSplit(p) ? await read(p.validation, 'validation') : null;
  const testRaw = await read(p.test, 'test');

  const dd = dedupDocuments(valRaw ? [...trainRaw, ...valRaw] : trainRaw, testRaw);
  let train: Document[];
  let validation: Document[];
  let heldOutCount = 0;
  if (valRaw) {
    const kept = new Set(dd.trainSide);
    train = trainRaw.filter((d) => kept.has(d));
    validation = valRaw.filter((d) => kept.has(d));
    if (validation.length === 0) {
      throw new LongnerError(
        `${ds.name}: every document of the ${p.validation} split also occurs in ${p.test} or ${p.train} and was dropped (dedup), so validation is empty; expected validation documents of their own`,
      );
    }
  } else {
    const n = dd.trainSide.length;
    heldOutCount = p.validation === 'fraction' ? Math.round(opts.validationFraction * n) : opts.validationDocs;
    if (heldOutCount >= n && n > 0) {
      throw new LongnerError(
        `${ds.name}: holding out ${heldOutCount} validation docs leaves no training docs (the ${p.train} split has ${n} after dedup); ` +
          `lower ${p.validation === 'fraction' ? 'validationFraction' : 'validationDocs'}`,
      );
    }
    if (heldOutCount === 0) {
      // Model selection needs validation documents; an empty validation split used to pass silently.
      const key = p.validation === 'fraction' ? `dataset.validationFraction ${opts.validationFraction}` : `dataset.validationDocs ${opts.validationDocs}`;
      throw new LongnerError(
        `${ds.name}: ${key} holds out no validation document from the ${n} of ${p.train}; expected at least one: raise it${ds.splits.some((s) => s.path !== undefined) ? ' or give a validation file' : ''}`,
      );
    }
    const split = holdOut(dd.trainSide, heldOutCount, opts.splitSeed);
    train = split.rest;
    validation = split.heldOut;
  }
  let test: Document[] = testRaw;

  const full = { train: train.length, validation: validation.length, test: test.length };
  train = firstN(train, opts.maxDocs?.train);
  validation = firstN(validation, opts.maxDocs?.validation);
  test = firstN(test, opts.maxDocs?.test);

  const ct = collapseAll(train);
  const cv = collapseAll(validation);
  const cs = collapseAll(test);
  const dedup: DedupReport = {
    trainDroppedAsTestOverlap: dd.trainDroppedAsTestOverlap,
    trainDroppedAsRepeat: dd.trainDroppedAsRepeat,
    triplesCollapsed: { train: ct.collapsed, validation: cv.collapsed, test: cs.collapsed },
    testRepeatsKept: dd.testRepeatsKept,
  };

  const o = { protocol: opts.protocol, validationFraction: opts.validationFraction, validationDocs: heldOutCount, registry };
  const src = (s: ProtocolSplit): string => protocolSource(ds.name, s, o).text;
  const parts = [
    `${opts.protocol} protocol: train = ${src('train')} (${sized(full.train, ct.docs.length)})`,
    `validation = ${src('validation')} (${sized(full.validation, cv.docs.length)})`,
    `test = ${src('test')} (${sized(full.test, cs.docs.length)})`,
  ];
  let description = parts.join(', ');
  const notes: string[] = [];
  const sideName = valRaw ? `${p.train}+${p.validation}` : p.train;
  if (dd.trainDroppedAsTestOverlap > 0) notes.push(`${count(dd.trainDroppedAsTestOverlap, `${sideName} doc`)} also in ${p.test} dropped`);
  if (dd.trainDroppedAsRepeat > 0) notes.push(`${count(dd.trainDroppedAsRepeat, `repeated ${sideName} doc`)} dropped`);
  if (dd.testRepeatsKept > 0) notes.push(`${count(dd.testRepeatsKept, `repeated ${p.test} doc`)} kept`);
  if (notes.length > 0) description += `; dedup: ${notes.join(', ')}`;

  return { dataset: ds.name, types: ds.types.slice(), train: ct.docs, validation: cv.docs, test: cs.docs, dedup, description };
}

function protocolSpec(ds: DatasetSpec, protocol: ProtocolName): ProtocolSpec {
  if (protocol !== 'local' && protocol !== 'paper') {
    throw new LongnerError(`unknown protocol "${String(protocol)}" (known: ${PROTOCOL_NAMES.join(', ')})`);
  }
  return ds.protocols[protocol];
}

function isRawSplit(p: ProtocolSpec): boolean {
  return p.validation !== 'fraction' && p.validation !== 'docs';
}

function checkOptions(opts: ProtocolOptions): void {
  const f = opts.validationFraction;
  if (typeof f !== 'number' || !(f >= 0 && f < 1)) {
    throw new LongnerError(`validationFraction must be a number in [0, 1), got ${JSON.stringify(f)}`);
  }
  if (!Number.isInteger(opts.validationDocs) || opts.validationDocs < 0) {
    throw new LongnerError(`validationDocs must be a non-negative integer, got ${JSON.stringify(opts.validationDocs)}`);
  }
  if (!Number.isInteger(opts.splitSeed)) throw new LongnerError(`splitSeed must be an integer, got ${JSON.stringify(opts.splitSeed)}`);
  for (const key of ['train', 'validation', 'test'] as const) {
    const n = opts.maxDocs?.[key];
    if (n !== undefined && n !== null && (!Number.isInteger(n) || n < 0)) {
      throw new LongnerError(`maxDocs.${key} must be a non-negative integer or null, got ${JSON.stringify(n)}`);
    }
  }
}

/** A type outside the dataset's would get no output channel in a model; fail at load time instead. */
function checkTypes(report: Pick<ReadReport, 'docs' | 'lines' | 'name'>, ds: DatasetSpec): void {
  const known = new Set(ds.types);
  report.docs.forEach((doc, i) => {
    for (const e of doc.entities) {
      if (!known.has(e.type)) {
        throw new LongnerError(
          `${report.name}:${report.lines[i]}: document ${doc.id}: entity [${e.start}, ${e.end}, ${e.type}] has a type that is not one of ${ds.name}'s types (expected one of ${ds.types.join(', ')})`,
        );
      }
    }
  });
}

function firstN(docs: Document[], n: number | null | undefined): Document[] {
  return n === undefined || n === null ? docs : docs.slice(0, n);
}

function sized(full: number, kept: number): string {
  return kept === full ? count(full, 'doc') : `first ${kept} of ${count(full, 'doc')}`;
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function percent(f: number): string {
  return `${+(f * 100).toFixed(1)}%`;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
