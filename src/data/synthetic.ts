import { LongnerError } from '../errors.js';
import { createRng, type Rng } from '../util/rng.js';
import type { Document, Entity } from './types.js';

/**
 * A seeded generator of long synthetic documents, for tests and memory probes (any length, no data needed).
 *
 * The words come from a fixed pseudo-vocabulary of syllable words ("koba", "mitune", ...), the same
 * for every seed, so a tokenizer trained on one synthetic corpus covers another. To make the task
 * learnable by a tiny model in a few steps:
 * - background words are lower case, drawn uniformly from `vocabulary` words;
 * - an entity of type t starts with t's own UPPER-CASE first word and ends with t's own UPPER-CASE
 *   last word (boundary cues; a 1-word entity is just the first word);
 * - the words between are Capitalised, drawn from a sub-vocabulary of 32 words that belongs to t only.
 * Entities never cross. With `nested` > 0 an entity may be placed strictly inside an earlier one
 * (never touching its parent's first or last word, so every entity keeps both cues), and never
 * overlapping anything but the entities that contain it.
 */
export type EntityLengthDist =
  | { dist: 'geometric'; mean: number; max: number }
  | { dist: 'uniform'; min: number; max: number }
  | { dist: 'fixed'; length: number };

export interface SyntheticOptions {
  docs: number;
  /** Words per document, or an inclusive [min, max] range drawn uniformly. */
  words: number | [number, number];
  /** Entities per document (placed while room is left). Give this or `entityDensity`. */
  entitiesPerDoc?: number;
  /** Entities per 100 words, the alternative to `entitiesPerDoc`; default 2. */
  entityDensity?: number;
  entityLength: EntityLengthDist;
  types: string[];
  /** Probability that an entity is placed inside an earlier one; default 0. */
  nested?: number;
  /** Size of the background vocabulary; default 1000. */
  vocabulary?: number;
  seed: number;
}

const SYLLABLES = ['ba', 'ko', 'mi', 'tu', 'ne', 'ra', 'si', 'lo', 'pe', 'du', 'ga', 'fi', 'ho', 'ju', 've', 'zo', 'ka', 'li', 'mu', 'te'];
const TYPE_SUBVOCABULARY = 32;
const PLACEMENT_TRIES = 20;

/** Word n of the pseudo-vocabulary: base-20 digits as 2-letter syllables, at least two, so distinct n give distinct words. */
export function pseudoWord(n: number): string {
  let x = n + SYLLABLES.length;
  let word = '';
  do {
    word = SYLLABLES[x % SYLLABLES.length]! + word;
    x = Math.floor(x / SYLLABLES.length);
  } while (x > 0);
  return word;
}

export interface SyntheticVocabulary {
  background: string[];
  /** Per type index: its first-word cue, last-word cue and inner sub-vocabulary. */
  first: string[];
  last: string[];
  inner: string[][];
}

export function syntheticVocabulary(vocabulary: number, typeCount: number): SyntheticVocabulary {
  const background = Array.from({ length: vocabulary }, (_, i) => pseudoWord(i));
  const capital = (w: string): string => w[0]!.toUpperCase() + w.slice(1);
  const inner = Array.from({ length: typeCount }, (_, t) =>
    Array.from({ length: TYPE_SUBVOCABULARY }, (_, k) => capital(pseudoWord(vocabulary + t * TYPE_SUBVOCABULARY + k))),
  );
  const cueBase = vocabulary + typeCount * TYPE_SUBVOCABULARY;
  const first = Array.from({ length: typeCount }, (_, t) => pseudoWord(cueBase + t).toUpperCase());
  const last = Array.from({ length: typeCount }, (_, t) => pseudoWord(cueBase + typeCount + t).toUpperCase());
  return { background, first, last, inner };
}

export function sampleEntityLength(dist: EntityLengthDist, rng: Rng): number {
  switch (dist.dist) {
    case 'fixed':
      return dist.length;
    case 'uniform':
      return rng.int(dist.min, dist.max + 1);
    case 'geometric': {
      if (dist.mean <= 1) return 1;
      // Geometric on {1, 2, ...} with mean 1/p, truncated at max by rejection so the shape is kept.
      const logQ = Math.log(1 - 1 / dist.mean);
      for (let i = 0; i < 1000; i++) {
        const k = 1 + Math.floor(Math.log(1 - rng.next()) / logQ);
        if (k <= dist.max) return k;
      }
      return dist.max;
    }
  }
}

interface Placed extends Entity {
  typeIndex: number;
  /** Index of the top-level entity this one sits in (itself when top-level). */
  root: number;
}

export function generateDocuments(opts: SyntheticOptions): Document[] {
  checkOptions(opts);
  const rng = createRng(opts.seed);
  const V = opts.vocabulary ?? 1000;
  const vocab = syntheticVocabulary(V, opts.types.length);
  const nested = opts.nested ?? 0;
  const width = String(Math.max(0, opts.docs - 1)).length;
  const docs: Document[] = [];

  for (let d = 0; d < opts.docs; d++) {
    const n = typeof opts.words === 'number' ? opts.words : rng.int(opts.words[0], opts.words[1] + 1);
    const target = opts.entitiesPerDoc ?? Math.round(((opts.entityDensity ?? 2) * n) / 100);
    const occupied = new Uint8Array(n);
    const placed: Placed[] = [];
    const byRoot = new Map<number, Placed[]>();

    for (let k = 0; k < target; k++) {
      const len = Math.min(sampleEntityLength(opts.entityLength, rng), n);
      const typeIndex = rng.int(0, opts.types.length);
      let entity: Placed | null = null;
      if (nested > 0 && rng.next() < nested) entity = placeNested(len, typeIndex, placed, byRoot, rng);
      entity ??= placeTopLevel(len, typeIndex, occupied, placed.length, rng);
      if (entity === null) continue; // no room left; the document gets fewer entities
      placed.push(entity);
      const group = byRoot.get(entity.root);
      if (group) group.push(entity);
      else byRoot.set(entity.root, [entity]);
    }

    const words = Array.from({ length: n }, () => vocab.background[rng.int(0, V)]!);
    // Parents are placed before their children, so writing in placement order leaves every entity its cues.
    for (const e of placed) {
      const len = e.end - e.start;
      words[e.start] = vocab.first[e.typeIndex]!;
      if (len >= 2) words[e.end - 1] = vocab.last[e.typeIndex]!;
      const sub = vocab.inner[e.typeIndex]!;
      for (let i = e.start + 1; i < e.end - 1; i++) words[i] = sub[rng.int(0, sub.length)]!;
    }

    const entities: Entity[] = placed
      .map((e) => ({ start: e.start, end: e.end, type: opts.types[e.typeIndex]! }))
      .sort((a, b) => a.start - b.start || b.end - a.end || (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
    docs.push({ id: `syn-${String(d).padStart(width, '0')}`, words, entities });
  }
  return docs;
}

function placeTopLevel(len: number, typeIndex: number, occupied: Uint8Array, index: number, rng: Rng): Placed | null {
  const n = occupied.length;
  if (len > n) return null;
  const free = (s: number): boolean => {
    for (let i = s; i < s + len; i++) if (occupied[i]) return false;
    return true;
  };
  let start = -1;
  for (let t = 0; t < PLACEMENT_TRIES && start < 0; t++) {
    const s = rng.int(0, n - len + 1);
    if (free(s)) start = s;
  }
  if (start < 0) {
    // Crowded document: scan for the first free run from a random point, wrapping around once.
    const from = rng.int(0, n - len + 1);
    const positions = n - len + 1;
    for (let j = 0; j < positions && start < 0; j++) {
      const s = (from + j) % positions;
      if (free(s)) start = s;
    }
  }
  if (start < 0) return null;
  occupied.fill(1, start, start + len);
  return { start, end: start + len, type: '', typeIndex, root: index };
}

function placeNested(len: number, typeIndex: number, placed: readonly Placed[], byRoot: Map<number, Placed[]>, rng: Rng): Placed | null {
  const parents = placed.filter((p) => p.end - p.start >= len + 2);
  if (parents.length === 0) return null;
  for (let t = 0; t < PLACEMENT_TRIES; t++) {
    const parent = parents[rng.int(0, parents.length)]!;
    const start = rng.int(parent.start + 1, parent.end - len);
    const end = start + len;
    const clash = byRoot.get(parent.root)!.some((e) => {
      const containsStrictly = e.start < start && end < e.end;
      return !containsStrictly && start < e.end && e.start < end;
    });
    if (!clash) return { start, end, type: '', typeIndex, root: parent.root };
  }
  return null;
}

function checkOptions(o: SyntheticOptions): void {
  const bad = (key: string, expected: string, got: unknown): never => {
    throw new LongnerError(`synthetic data: ${key} must be ${expected}, got ${JSON.stringify(got)}`);
  };
  const posInt = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 1;
  if (!Number.isInteger(o.docs) || o.docs < 0) bad('docs', 'a non-negative integer', o.docs);
  if (typeof o.words === 'number') {
    if (!posInt(o.words)) bad('words', 'a positive integer or [min, max]', o.words);
  } else if (!Array.isArray(o.words) || o.words.length !== 2 || !posInt(o.words[0]) || !posInt(o.words[1]) || o.words[0] > o.words[1]) {
    bad('words', 'a positive integer or [min, max] with 1 <= min <= max', o.words);
  }
  if (o.entitiesPerDoc !== undefined && o.entityDensity !== undefined) {
    throw new LongnerError('synthetic data: give entitiesPerDoc or entityDensity, not both');
  }
  if (o.entitiesPerDoc !== undefined && (!Number.isInteger(o.entitiesPerDoc) || o.entitiesPerDoc < 0)) {
    bad('entitiesPerDoc', 'a non-negative integer', o.entitiesPerDoc);
  }
  if (o.entityDensity !== undefined && !(o.entityDensity >= 0 && o.entityDensity <= 100)) {
    bad('entityDensity', 'a number of entities per 100 words in [0, 100]', o.entityDensity);
  }
  const len = o.entityLength;
  if (len.dist === 'geometric') {
    if (!(len.mean >= 1)) bad('entityLength.mean', 'a number >= 1', len.mean);
    if (!posInt(len.max)) bad('entityLength.max', 'a positive integer', len.max);
  } else if (len.dist === 'uniform') {
    if (!posInt(len.min) || !posInt(len.max) || len.min > len.max) bad('entityLength', 'uniform with 1 <= min <= max', len);
  } else if (len.dist === 'fixed') {
    if (!posInt(len.length)) bad('entityLength.length', 'a positive integer', len.length);
  } else {
    bad('entityLength.dist', '"geometric", "uniform" or "fixed"', (len as { dist?: unknown }).dist);
  }
  if (!Array.isArray(o.types) || o.types.length === 0 || o.types.some((t) => typeof t !== 'string' || t === '')) {
    bad('types', 'a non-empty list of type names', o.types);
  }
  if (new Set(o.types).size !== o.types.length) bad('types', 'distinct names', o.types);
  if (o.nested !== undefined && !(o.nested >= 0 && o.nested <= 1)) bad('nested', 'a probability in [0, 1]', o.nested);
  if (o.vocabulary !== undefined && !posInt(o.vocabulary)) bad('vocabulary', 'a positive integer', o.vocabulary);
  if (!Number.isInteger(o.seed)) bad('seed', 'an integer', o.seed);
}
