import { readFileSync } from 'node:fs';
import { isAbsolute, relative } from 'node:path';
import { LongnerError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic.js';
import type { Document, Entity, ScoredEntity } from './types.js';

/**
 * Readers and writers for the three JSONL layouts the project meets:
 * - `sener`:   `{"doc_id", "text": [words], "entity": [[start, end_excl, [words], type], ...]}` (SeNER's data, user data)
 * - `scirex`:  the official SciREX release, `{"doc_id", "words", "ner": [[start, end_excl, type]], ...}`
 * - `generic`: the project's own `{"id", "words", "entities": [{"start", "end", "type"}]}` (what `longner predict` writes)
 * Every reader validates each line and fails with a LongnerError naming the file, the line and the key.
 */
export type DatasetFormat = 'sener' | 'scirex' | 'generic';

export const DATASET_FORMATS: readonly DatasetFormat[] = ['sener', 'scirex', 'generic'];

export interface SenerReadResult {
  docs: Document[];
  /** Entities whose stored word list differs from `text[start:end]`; offsets win, so this is only reported. */
  wordMismatches: number;
  /** `<file>:<line>` of the first mismatch, to help a user look. */
  firstMismatch: string | null;
}

export function readSenerJsonlWithReport(path: string): SenerReadResult {
  return parseSener(readText(path), displayPath(path));
}

function parseSener(text: string, name: string): SenerReadResult {
  const docs: Document[] = [];
  let wordMismatches = 0;
  let firstMismatch: string | null = null;
  forEachJsonLine(text, name, (value, at) => {
    const obj = asObject(value, at, 'the line', 'a JSON object');
    const id = docId(obj, 'doc_id', at);
    const words = wordList(obj, 'text', at);
    const raw = field(obj, 'entity', at);
    if (!Array.isArray(raw)) throw mistyped(at, 'entity', 'a list of [start, end_exclusive, [words], type]', raw);
    const entities: Entity[] = [];
    for (let i = 0; i < raw.length; i++) {
      const item: unknown = raw[i];
      const key = `entity[${i}]`;
      if (!Array.isArray(item) || item.length !== 4) {
        throw mistyped(at, key, 'a list [start, end_exclusive, [words], type]', item);
      }
      const [s, e, stored, type] = item as unknown[];
      const entity = checkedEntity(s, e, type, [`${key}[0]`, `${key}[1]`, `${key}[3]`], at, id, words.length);
      if (!Array.isArray(stored)) throw mistyped(at, `${key}[2]`, 'a list of the entity\'s words', stored);
      if (!sameWords(stored, words, entity.start, entity.end)) {
        wordMismatches++;
        firstMismatch ??= at.where;
      }
      entities.push(entity);
    }
    docs.push({ id, words, entities });
  });
  return { docs, wordMismatches, firstMismatch };
}

export function readSenerJsonl(path: string): Document[] {
  return readSenerJsonlWithReport(path).docs;
}

/** Official SciREX layout; coreference, relations, sentences and sections are ignored. */
export function readScirexJsonl(path: string): Document[] {
  return parseScirex(readText(path), displayPath(path));
}

function parseScirex(text: string, name: string): Document[] {
  const docs: Document[] = [];
  forEachJsonLine(text, name, (value, at) => {
    const obj = asObject(value, at, 'the line', 'a JSON object');
    const id = docId(obj, 'doc_id', at);
    const words = wordList(obj, 'words', at);
    const raw = field(obj, 'ner', at);
    if (!Array.isArray(raw)) throw mistyped(at, 'ner', 'a list of [start, end_exclusive, type]', raw);
    const entities: Entity[] = [];
    for (let i = 0; i < raw.length; i++) {
      const item: unknown = raw[i];
      const key = `ner[${i}]`;
      if (!Array.isArray(item) || item.length !== 3) throw mistyped(at, key, 'a list [start, end_exclusive, type]', item);
      const [s, e, type] = item as unknown[];
      entities.push(checkedEntity(s, e, type, [`${key}[0]`, `${key}[1]`, `${key}[2]`], at, id, words.length));
    }
    docs.push({ id, words, entities });
  });
  return docs;
}

/** The project's layout. A numeric `score` on an entity (predictions) is kept. */
export function readGenericJsonl(path: string): Document[] {
  return parseGeneric(readText(path), displayPath(path));
}

function parseGeneric(text: string, name: string): Document[] {
  const docs: Document[] = [];
  forEachJsonLine(text, name, (value, at) => {
    const obj = asObject(value, at, 'the line', 'a JSON object');
    const id = docId(obj, 'id', at);
    const words = wordList(obj, 'words', at);
    const raw = field(obj, 'entities', at);
    if (!Array.isArray(raw)) throw mistyped(at, 'entities', 'a list of {"start", "end", "type"} objects', raw);
    const entities: Entity[] = [];
    for (let i = 0; i < raw.length; i++) {
      const key = `entities[${i}]`;
      const item = asObject(raw[i], at, key, 'an object {"start", "end", "type"}');
      const entity = checkedEntity(item.start, item.end, item.type, [`${key}.start`, `${key}.end`, `${key}.type`], at, id, words.length);
      const score = item.score;
      if (score !== undefined) {
        if (typeof score !== 'number' || !Number.isFinite(score)) throw mistyped(at, `${key}.score`, 'a finite number', score);
        const scored: ScoredEntity = { ...entity, score };
        entities.push(scored);
      } else {
        entities.push(entity);
      }
    }
    docs.push({ id, words, entities });
  });
  return docs;
}

export interface ReadReport {
  docs: Document[];
  /** The layout actually read (differs from the requested one only under 'auto'). */
  format: DatasetFormat;
  /** SeNER layout only: stored entity words that differ from `text[start:end]`. */
  wordMismatches: number;
  firstMismatch: string | null;
}

/**
 * Reads a file in `format`; 'auto' guesses the layout from the first line's keys and falls back to
 * `fallback`, so a user who drops in a file of the other layout (the official SciREX test.jsonl where
 * the manifest expects SeNER's) still gets it read.
 */
export function readDocumentsWithReport(path: string, format: DatasetFormat | 'auto', fallback: DatasetFormat = 'sener'): ReadReport {
  const text = readText(path);
  const name = displayPath(path);
  const chosen = format === 'auto' ? (formatOfText(text) ?? fallback) : format;
  switch (chosen) {
    case 'sener':
      return { ...parseSener(text, name), format: chosen };
    case 'scirex':
      return { docs: parseScirex(text, name), format: chosen, wordMismatches: 0, firstMismatch: null };
    case 'generic':
      return { docs: parseGeneric(text, name), format: chosen, wordMismatches: 0, firstMismatch: null };
  }
}

export function readDocuments(path: string, format: DatasetFormat | 'auto'): Document[] {
  return readDocumentsWithReport(path, format).docs;
}

/** The layout of a file judged by its first non-blank line, or null when it matches none. */
export function detectFormat(path: string): DatasetFormat | null {
  return formatOfText(readText(path));
}

function formatOfText(text: string): DatasetFormat | null {
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end).trim();
    start = end + 1;
    if (line === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      return null;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
    const keys = new Set(Object.keys(value));
    if (keys.has('text') && keys.has('entity')) return 'sener';
    if (keys.has('words') && keys.has('ner')) return 'scirex';
    if (keys.has('words') && keys.has('entities')) return 'generic';
    return null;
  }
  return null;
}

export function writeGenericJsonl(path: string, docs: readonly Document[]): void {
  const lines = docs.map((doc) =>
    JSON.stringify({
      id: doc.id,
      words: doc.words,
      entities: doc.entities.map((e) => {
        const score = (e as { score?: unknown }).score;
        return typeof score === 'number' ? { start: e.start, end: e.end, type: e.type, score } : { start: e.start, end: e.end, type: e.type };
      }),
    }),
  );
  writeFileAtomic(path, lines.length === 0 ? '' : lines.join('\n') + '\n');
}

export function writeSenerJsonl(path: string, docs: readonly Document[]): void {
  const lines = docs.map((doc) =>
    JSON.stringify({
      doc_id: doc.id,
      text: doc.words,
      entity: doc.entities.map((e) => [e.start, e.end, doc.words.slice(e.start, e.end), e.type]),
    }),
  );
  writeFileAtomic(path, lines.length === 0 ? '' : lines.join('\n') + '\n');
}

/** A path as a user should read it in a message: relative to the working directory when inside it. */
export function displayPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

// ---------------------------------------------------------------------------------------------
// Line iteration and validation helpers

interface LineAt {
  /** `<file>:<line>` */
  where: string;
}

function readText(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw new LongnerError(`${displayPath(path)}: cannot read the file (${typeof code === 'string' ? code : String(err)})`);
  }
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** One JSON.parse per line over the whole file read at once: the 20 MB SciREX train file reads in a few hundred ms. */
function forEachJsonLine(text: string, name: string, visit: (value: unknown, at: LineAt) => void): void {
  let start = 0;
  let lineNo = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    lineNo++;
    const line = text.slice(start, end);
    start = end + 1;
    if (line.trim() === '') continue;
    const at: LineAt = { where: `${name}:${lineNo}` };
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new LongnerError(`${at.where}: malformed JSON (${err instanceof Error ? err.message : String(err)})`);
    }
    visit(value, at);
  }
}

function asObject(value: unknown, at: LineAt, key: string, expected: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new LongnerError(`${at.where}: ${key === 'the line' ? 'the line' : `field "${key}"`} must be ${expected}, got ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}

function field(obj: Record<string, unknown>, key: string, at: LineAt): unknown {
  if (!(key in obj)) throw new LongnerError(`${at.where}: missing field "${key}"`);
  return obj[key];
}

function mistyped(at: LineAt, key: string, expected: string, got: unknown): LongnerError {
  return new LongnerError(`${at.where}: field "${key}" must be ${expected}, got ${describe(got)}`);
}

/** Ids are strings in every known dataset; an integer id from a user file is accepted and kept as text. */
function docId(obj: Record<string, unknown>, key: string, at: LineAt): string {
  const value = field(obj, key, at);
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isInteger(value)) return String(value);
  throw mistyped(at, key, 'a string', value);
}

function wordList(obj: Record<string, unknown>, key: string, at: LineAt): string[] {
  const value = field(obj, key, at);
  if (!Array.isArray(value)) throw mistyped(at, key, 'a list of word strings', value);
  for (let i = 0; i < value.length; i++) {
    if (typeof value[i] !== 'string') throw mistyped(at, `${key}[${i}]`, 'a string (a word)', value[i]);
  }
  return value as string[];
}

function checkedEntity(
  s: unknown,
  e: unknown,
  type: unknown,
  keys: [start: string, end: string, type: string],
  at: LineAt,
  id: string,
  nWords: number,
): Entity {
  if (typeof s !== 'number' || !Number.isInteger(s)) throw mistyped(at, keys[0], 'an integer word index (start)', s);
  if (typeof e !== 'number' || !Number.isInteger(e)) throw mistyped(at, keys[1], 'an integer word index (end, exclusive)', e);
  if (typeof type !== 'string' || type === '') throw mistyped(at, keys[2], 'a non-empty type string', type);
  const shown = `[${s}, ${e}, ${type}]`;
  if (s >= e) {
    throw new LongnerError(`${at.where}: document ${id}: entity ${shown} has start >= end (end is exclusive, so an entity needs start < end)`);
  }
  if (s < 0 || e > nWords) {
    throw new LongnerError(`${at.where}: document ${id}: entity ${shown} lies outside its ${nWords} words`);
  }
  return { start: s, end: e, type };
}

function sameWords(stored: unknown[], words: string[], start: number, end: number): boolean {
  if (stored.length !== end - start) return false;
  for (let i = 0; i < stored.length; i++) if (stored[i] !== words[start + i]) return false;
  return true;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const json = JSON.stringify(value);
  const kind = value === null ? 'null' : Array.isArray(value) ? 'a list' : typeof value;
  const shown = json.length > 40 ? json.slice(0, 37) + '...' : json;
  return `${kind} ${shown}`;
}
