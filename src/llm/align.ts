/**
 * From answer strings to word offsets: the one rule every LLM answer goes through (research/baselines.md
 * B.7 and D.4 ask for a fixed, reported rule, because it moves strict F1).
 *
 * An answer matches a window where its characters, with all whitespace removed, equal the window's words
 * concatenated without whitespace, starting at the first character of a word and ending at the last
 * character of a word. Matching is exact otherwise (case-sensitive, Unicode NFC on both sides). Ignoring
 * whitespace lets "Beijing, China" match the words "Beijing" "," "China". Then:
 * - 'every-occurrence': every such match is a span;
 * - 'first-occurrence': only the leftmost.
 * An answer with no match yields no span; callers count it (it is neither a true nor a false positive).
 */
export type OffsetRule = 'every-occurrence' | 'first-occurrence';

export interface WordSpan {
  /** Word offsets within the aligned words, end exclusive. */
  start: number;
  end: number;
}

export class Aligner {
  private readonly text: string;
  /** Character offset in `text` -> index of the word starting there. */
  private readonly starts = new Map<number, number>();
  /** Character offset just past a word's last character -> index of that word. */
  private readonly ends = new Map<number, number>();

  constructor(
    words: readonly string[],
    readonly rule: OffsetRule,
  ) {
    let text = '';
    words.forEach((w, i) => {
      const piece = compact(w);
      if (piece === '') return; // a whitespace-only word can neither start nor end a match
      this.starts.set(text.length, i);
      text += piece;
      this.ends.set(text.length, i);
    });
    this.text = text;
  }

  align(answer: string): WordSpan[] {
    const needle = compact(answer);
    if (needle === '') return [];
    const out: WordSpan[] = [];
    for (let at = this.text.indexOf(needle); at !== -1; at = this.text.indexOf(needle, at + 1)) {
      const first = this.starts.get(at);
      const last = this.ends.get(at + needle.length);
      if (first === undefined || last === undefined) continue;
      out.push({ start: first, end: last + 1 });
      if (this.rule === 'first-occurrence') break;
    }
    return out;
  }
}

function compact(s: string): string {
  return s.normalize('NFC').replace(/\s+/gu, '');
}
