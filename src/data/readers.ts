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

/** What a file holds that is readable but suspicious: reported as a warning, or an error under --strict (issues.ts). */
export interface ReadIssues {
  /** SeNER layout: entities whose stored word list differs from `text[start:end]` (the offsets are used). */
  wordMismatches: { count: number; examples: string[] };
  /** Lines holding bytes that are not UTF-8; Node decodes them to U+FFFD, which would reach the tokenizer. */
  invalidUtf8: { count: number; lines: number[] };
}

export interface ReadReport {
  docs: Document[];
  /** The layout actually read (differs from the requested one only under 'auto'). */
  format: DatasetFormat;
  /** The 1-based line of each document, in `docs` order, for messages about a document. */
  lines: number[];
  /** The file as messages show it. */
  name: string;
  issues: ReadIssues;
}

/** At most this many examples of an issue are kept for a message. */
const EXAMPLES = 3;

type Parsed = { doc: Document; mismatches?: string[] };
type LineParser = (obj: Record<string, unknown>, at: LineAt) => Parsed;

function parseSenerLine(obj: Record<string, unknown>, at: LineAt): Parsed {
  const id = docId(obj, 'doc_id', at);
  const words = wordList(obj, 'text', at);
  const raw = field(obj, 'entity', at);
  if (!Array.isArray(raw)) throw mistyped(at, 'entity', 'a list of [start, end_exclusive, [words], type]', raw);
  const entities: Entity[] = [];
  const mismatches: string[] = [];
  for (let i = 0; i < raw.length; i++) {
    const item: unknown = raw[i];
    const key = `entity[${i}]`;
    if (!Array.isArray(item) || item.length !== 4) {
      throw mistyped(at, key, 'a list [start, end_exclusive, [words], type]', item);
    }
    const [s, e, stored, type] = item as unknown[];
    const entity = checkedEntity(s, e, type, [`${key}[0]`, `${key}[1]`, `${key}[3]`], at, id, words.length);
    if (!Array.isArray(stored)) throw mistyped(at, `${key}[2]`, "a list of the entity's words", stored);
    if (!sameWords(stored, words, entity.start, entity.end)) {
      mismatches.push(
        `${at.where}: entity [${entity.start}, ${entity.end}, ${entity.type}] stores ${clip(JSON.stringify(stored))}, the text has ${clip(JSON.stringify(words.slice(entity.start, entity.end)))}`,
      );
    }
    entities.push(entity);
  }
  return { doc: { id, words, entities }, mismatches };
}

/** Official SciREX layout; coreference, relations, sentences and sections are ignored. */
function parseScirexLine(obj: Record<string, unknown>, at: LineAt): Parsed {
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
  return { doc: { id, words, entities } };
}

/** The project's layout. A numeric `score` on an entity (predictions) is kept. */
function parseGenericLine(obj: Record<string, unknown>, at: LineAt): Parsed {
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
  return { doc: { id, words, entities } };
}

const PARSERS: Record<DatasetFormat, LineParser> = { sener: parseSenerLine, scirex: parseScirexLine, generic: parseGenericLine };

/**
 * One document per line. Two documents with one id would share a slot wherever documents are keyed by
 * id (segments, predictions, scores), so a repeated id is an error naming both lines.
 */
function parseFile(input: FileText, format: DatasetFormat): ReadReport {
  const docs: Document[] = [];
  const lines: number[] = [];
  const seen = new Map<string, number>();
  const mismatches: string[] = [];
  let mismatchCount = 0;
  forEachJsonLine(input.text, input.name, (value, at) => {
    const parsed = PARSERS[format](asObject(value, at, 'the line', 'a JSON object'), at);
    const first = seen.get(parsed.doc.id);
    if (first !== undefined) {
      throw new LongnerError(`${at.where}: document id "${parsed.doc.id}" already used on line ${first}; expected a unique id per document in a file`);
    }
    seen.set(parsed.doc.id, at.line);
    for (const m of parsed.mismatches ?? []) {
      if (mismatches.length < EXAMPLES) mismatches.push(m);
      mismatchCount++;
    }
    docs.push(parsed.doc);
    lines.push(at.line);
  });
  const issues: ReadIssues = {
    wordMismatches: { count: mismatchCount, examples: mismatches },
    invalidUtf8: { count: input.invalidUtf8Lines.length, lines: input.invalidUtf8Lines },
  };
  return { docs, format, lines, name: input.name, issues };
}

export function readSenerJsonlWithReport(path: string): ReadReport {
  return parseFile(readText(path), 'sener');
}

export function readSenerJsonl(path: string): Document[] {
  return readSenerJsonlWithReport(path).docs;
}

export function readScirexJsonl(path: string): Document[] {
  return parseFile(readText(path), 'scirex').docs;
}

export function readGenericJsonl(path: string): Document[] {
  return parseFile(readText(path), 'generic').docs;
}

/**
 * Reads a file in `format`; 'auto' guesses the layout from the first line's keys and falls back to
 * `fallback`, so a user who drops in a file of the other layout (the official SciREX test.jsonl where
 * the manifest expects SeNER's) still gets it read.
 */
export function readDocumentsWithReport(path: string, format: DatasetFormat | 'auto', fallback: DatasetFormat = 'sener'): ReadReport {
  const input = readText(path);
  return parseFile(input, format === 'auto' ? (formatOfText(input.text) ?? fallback) : format);
}

export function readDocuments(path: string, format: DatasetFormat | 'auto'): Document[] {
  return readDocumentsWithReport(path, format).docs;
}

/** The layout of a file judged by its first non-blank line, or null when it matches none. */
export function detectFormat(path: string): DatasetFormat | null {
  return formatOfText(readText(path).text);
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
  writeFileAtomic(path, lines.length === 0 ? '' : `${lines.join('\n')}\n`);
}

export function writeSenerJsonl(path: string, docs: readonly Document[]): void {
  const lines = docs.map((doc) =>
    JSON.stringify({
      doc_id: doc.id,
      text: doc.words,
      entity: doc.entities.map((e) => [e.start, e.end, doc.words.slice(e.start, e.end), e.type]),
    }),
  );
  writeFileAtomic(path, lines.length === 0 ? '' : `${lines.join('\n')}\n`);
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
  line: number;
}

interface FileText {
  text: string;
  name: string;
  /** 1-based numbers of the lines with bytes that are not UTF-8. */
  invalidUtf8Lines: number[];
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function readText(path: string): FileText {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw new LongnerError(`${displayPath(path)}: cannot read the file (${typeof code === 'string' ? code : String(err)})`);
  }
  const text = bytes.toString('utf8');
  return { text: text.charCodeAt(0) === 0xfeff ? text.slice(1) : text, name: displayPath(path), invalidUtf8Lines: invalidUtf8Lines(bytes) };
}

/** The lines that do not decode as UTF-8; the whole file is checked at once first, as nearly every file is valid. */
function invalidUtf8Lines(bytes: Buffer): number[] {
  try {
    strictUtf8.decode(bytes);
    return [];
  } catch {
    const bad: number[] = [];
    let start = 0;
    for (let line = 1; start <= bytes.length; line++) {
      let end = bytes.indexOf(0x0a, start);
      if (end < 0) end = bytes.length;
      try {
        strictUtf8.decode(bytes.subarray(start, end));
      } catch {
        bad.push(line);
      }
      start = end + 1;
    }
    return bad;
  }
}

const JSONL_EXPECTED = 'expected JSON Lines: one JSON object per line, one document per object';

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
    const trimmed = line.trim();
    if (trimmed === '') continue;
    const at: LineAt = { where: `${name}:${lineNo}`, line: lineNo };
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      // A JSON document spread over lines (an array of documents, or an indented object) is the usual cause.
      if (trimmed.startsWith('[')) throw new LongnerError(`${at.where}: ${JSONL_EXPECTED}; this looks like a JSON array spread over lines`);
      if (trimmed === '{') throw new LongnerError(`${at.where}: ${JSONL_EXPECTED}; this looks like an indented JSON object spread over lines`);
      throw new LongnerError(`${at.where}: malformed JSON (${err instanceof Error ? err.message : String(err)}); ${JSONL_EXPECTED}`);
    }
    if (Array.isArray(value)) throw new LongnerError(`${at.where}: ${JSONL_EXPECTED}, got a JSON array`);
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

function clip(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const json = JSON.stringify(value);
  const kind = value === null ? 'null' : Array.isArray(value) ? 'a list' : typeof value;
  const shown = json.length > 40 ? `${json.slice(0, 37)}...` : json;
  return `${kind} ${shown}`;
}
