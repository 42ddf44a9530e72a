/**
 * The paper's published numbers (reports/paper/*.csv), read for reports to put beside ours. They are
 * never used as results. Percentages stay percentages (the CSVs are in %, as the paper prints them).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { LongnerError } from '../errors.js';
import { fromRoot } from '../util/paths.js';

export interface PaperMainRow {
  group: string;
  method: string;
  dataset: string;
  precision: number;
  recall: number;
  f1: number;
}

export interface PaperAblationRow {
  row: string;
  dataset: string;
  f1: number | null;
  memoryGb: number | null;
  note: string;
}

export interface PaperClaim {
  claim: string;
  value: number;
  note: string;
}

export interface PaperNumbers {
  table2: PaperMainRow[];
  table3: PaperAblationRow[];
  fig7: PaperClaim[];
}

type Row = Record<string, string>;

function readCsv(file: string): Row[] {
  if (!existsSync(file)) throw new LongnerError(`${file}: the paper's reference numbers are missing`);
  try {
    return parse(readFileSync(file, 'utf8'), { columns: true, skip_empty_lines: true, trim: true }) as Row[];
  } catch (err) {
    throw new LongnerError(`${file}: malformed CSV (${err instanceof Error ? err.message : String(err)})`);
  }
}

function num(file: string, line: number, row: Row, column: string, optional: boolean): number | null {
  const raw = row[column];
  if ((raw === undefined || raw === '') && optional) return null;
  const value = Number(raw);
  if (raw === undefined || raw === '' || !Number.isFinite(value)) {
    throw new LongnerError(`${file}:${line}: column "${column}" must be a number, got ${JSON.stringify(raw ?? null)}`);
  }
  return value;
}

function text(file: string, line: number, row: Row, column: string): string {
  const value = row[column];
  if (value === undefined || value === '') throw new LongnerError(`${file}:${line}: column "${column}" is empty`);
  return value;
}

/** Reads table2.csv, table3.csv and fig7.csv from `dir` (default reports/paper). */
export function readPaperNumbers(dir: string = fromRoot('reports', 'paper')): PaperNumbers {
  const t2 = join(dir, 'table2.csv');
  const t3 = join(dir, 'table3.csv');
  const f7 = join(dir, 'fig7.csv');
  // The header is line 1.
  return {
    table2: readCsv(t2).map((r, i) => ({
      group: text(t2, i + 2, r, 'group'),
      method: text(t2, i + 2, r, 'method'),
      dataset: text(t2, i + 2, r, 'dataset'),
      precision: num(t2, i + 2, r, 'precision', false)!,
      recall: num(t2, i + 2, r, 'recall', false)!,
      f1: num(t2, i + 2, r, 'f1', false)!,
    })),
    table3: readCsv(t3).map((r, i) => ({
      row: text(t3, i + 2, r, 'row'),
      dataset: text(t3, i + 2, r, 'dataset'),
      f1: num(t3, i + 2, r, 'f1', true),
      memoryGb: num(t3, i + 2, r, 'memory_gb', true),
      note: r.note ?? '',
    })),
    fig7: readCsv(f7).map((r, i) => ({ claim: text(f7, i + 2, r, 'claim'), value: num(f7, i + 2, r, 'value', false)!, note: r.note ?? '' })),
  };
}

export function paperMain(paper: PaperNumbers, method: string, dataset: string): PaperMainRow | null {
  return paper.table2.find((r) => r.method === method && r.dataset === dataset) ?? null;
}

/** The rows of the paper's Table 3 (research/sener.md 5.3), by the row ids of experiments/table3-ablation.yaml. */
export const PAPER_TABLE3_ROWS: readonly string[] = ['sener', 'no-arrow', 'no-logn', 'swa', 'no-bispa', 'no-lora', 'no-wwm'];

export function paperAblation(paper: PaperNumbers, row: string, dataset: string): PaperAblationRow | null {
  return paper.table3.find((r) => r.row === row && r.dataset === dataset) ?? null;
}

export function paperClaim(paper: PaperNumbers, claim: string): PaperClaim | null {
  return paper.fig7.find((c) => c.claim === claim) ?? null;
}
