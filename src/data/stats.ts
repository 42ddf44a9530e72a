import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { LongnerError } from '../errors.js';
import { fromRoot } from '../util/paths.js';
import type { Document } from './types.js';

/**
 * The statistics of the paper's Table 1. Entities are counted as stored (no dedup), so the numbers
 * can be checked against the raw files and the paper.
 */
export interface DatasetStats {
  docs: number;
  avgWords: number;
  maxWords: number;
  entities: number;
  /** Distinct entity types present. */
  types: number;
  avgEntityWords: number;
  maxEntityWords: number;
}

export type PaperStats = DatasetStats;

export function computeStats(docs: readonly Document[]): DatasetStats {
  let words = 0;
  let maxWords = 0;
  let entities = 0;
  let entityWords = 0;
  let maxEntityWords = 0;
  const types = new Set<string>();
  for (const doc of docs) {
    words += doc.words.length;
    maxWords = Math.max(maxWords, doc.words.length);
    for (const e of doc.entities) {
      const len = e.end - e.start;
      entities++;
      entityWords += len;
      maxEntityWords = Math.max(maxEntityWords, len);
      types.add(e.type);
    }
  }
  return {
    docs: docs.length,
    avgWords: docs.length === 0 ? 0 : words / docs.length,
    maxWords,
    entities,
    types: types.size,
    avgEntityWords: entities === 0 ? 0 : entityWords / entities,
    maxEntityWords,
  };
}

/** Entity counts per type, in descending count order (ties by name), for per-type tables. */
export function countByType(docs: readonly Document[]): Array<{ type: string; count: number }> {
  const counts = new Map<string, number>();
  for (const doc of docs) for (const e of doc.entities) counts.set(e.type, (counts.get(e.type) ?? 0) + 1);
  return [...counts.entries()].map(([type, count]) => ({ type, count })).sort((a, b) => b.count - a.count || (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
}

const TABLE1_COLUMNS: ReadonlyArray<[column: string, key: keyof PaperStats]> = [
  ['docs', 'docs'],
  ['avg_words', 'avgWords'],
  ['max_words', 'maxWords'],
  ['entities', 'entities'],
  ['types', 'types'],
  ['avg_entity_words', 'avgEntityWords'],
  ['max_entity_words', 'maxEntityWords'],
];

/** The paper's Table 1 (all splits together), keyed by dataset name, from reports/paper/table1.csv. */
export function readPaperTable1(path: string = fromRoot('reports', 'paper', 'table1.csv')): Record<string, PaperStats> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new LongnerError(`${path}: cannot read the paper's Table 1 (${err instanceof Error ? err.message : String(err)})`);
  }
  let rows: unknown;
  try {
    rows = parse(text, { columns: true, skip_empty_lines: true, trim: true });
  } catch (err) {
    throw new LongnerError(`${path}: malformed CSV (${err instanceof Error ? err.message : String(err)})`);
  }
  if (!Array.isArray(rows)) throw new LongnerError(`${path}: expected a table with a header row`);
  const out: Record<string, PaperStats> = {};
  rows.forEach((row: unknown, i: number) => {
    const line = i + 2; // the header is line 1
    const rec = row as Record<string, unknown>;
    const name = rec.dataset;
    if (typeof name !== 'string' || name === '') throw new LongnerError(`${path}:${line}: column "dataset" must name a dataset`);
    const stats: Partial<Record<keyof PaperStats, number>> = {};
    for (const [column, key] of TABLE1_COLUMNS) {
      const raw = rec[column];
      const value = typeof raw === 'string' && raw !== '' ? Number(raw) : NaN;
      if (!Number.isFinite(value)) {
        throw new LongnerError(`${path}:${line}: column "${column}" must be a number, got ${JSON.stringify(raw ?? null)}`);
      }
      stats[key] = value;
    }
    out[name] = stats as PaperStats;
  });
  return out;
}
