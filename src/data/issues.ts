/**
 * Readable-but-suspicious data (entity words that disagree with the text, bytes that are not UTF-8):
 * a warning with counts and examples by default, a one-line error under `--strict`
 * (LONGNER_STRICT=1, so the runs a grid starts in child processes are strict too).
 */
import { LongnerError } from '../errors.js';
import type { ReadReport } from './readers.js';

export function strictData(): boolean {
  return process.env.LONGNER_STRICT === '1';
}

/** Messages already printed by this process: a split read twice (pretraining, then fine-tuning) warns once. */
const warned = new Set<string>();

/** The problems of one file in one line, or null when it has none. */
export function describeIssues(report: Pick<ReadReport, 'name' | 'issues'>): string | null {
  const parts: string[] = [];
  const m = report.issues.wordMismatches;
  if (m.count > 0) {
    parts.push(
      `${m.count} entit${m.count === 1 ? 'y stores words' : 'ies store words'} that differ from text[start:end], e.g. ${m.examples.join('; ')} (the offsets are used)`,
    );
  }
  const u = report.issues.invalidUtf8;
  if (u.count > 0) {
    const lines = u.lines.slice(0, 5).join(', ') + (u.count > 5 ? ', ...' : '');
    parts.push(
      `${u.count} line${u.count === 1 ? '' : 's'} with bytes that are not UTF-8 (line${u.count === 1 ? '' : 's'} ${lines}; they read as U+FFFD); expected UTF-8 text`,
    );
  }
  return parts.length === 0 ? null : `${report.name}: ${parts.join('; ')}`;
}

/** Throws under --strict; otherwise prints one warning line per file (once per process). */
export function checkIssues(report: Pick<ReadReport, 'name' | 'issues'>, strict: boolean = strictData()): void {
  const text = describeIssues(report);
  if (text === null) return;
  if (strict) throw new LongnerError(`${text} (an error under --strict)`);
  if (warned.has(text)) return;
  warned.add(text);
  process.stderr.write(`longner: warning: ${text}; --strict makes this an error\n`);
}
