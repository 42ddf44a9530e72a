/**
 * The two ensemble steps of EL4NER (research/baselines.md B.3): a union of the models' span sets (for
 * recall) and a plurality vote on each span's type (for precision).
 */

/** Union of string lists, first-seen order, duplicates (after whitespace normalisation) dropped. */
export function unionStrings(lists: ReadonlyArray<readonly string[]>): string[] {
  const seen = new Map<string, string>();
  for (const list of lists) {
    for (const s of list) {
      const key = normalizeSpace(s);
      if (key !== '' && !seen.has(key)) seen.set(key, key);
    }
  }
  return [...seen.values()];
}

export function normalizeSpace(s: string): string {
  return s.replace(/\s+/gu, ' ').trim();
}

/**
 * Plurality vote over the labels the models gave one span, `votes[i]` being the label of the model of
 * priority i (0 = highest, the order of el4ner.models), or null when that model gave none (failed call,
 * unparseable answer). 'none' is a label like any other: if it wins, the span is dropped by the caller.
 * Tie-break: among the labels with the most votes, the one given by the highest-priority model.
 * Returns null when no model voted.
 */
export function pluralityVote(votes: ReadonlyArray<string | null>): string | null {
  const counts = new Map<string, number>();
  for (const v of votes) if (v !== null) counts.set(v, (counts.get(v) ?? 0) + 1);
  if (counts.size === 0) return null;
  const top = Math.max(...counts.values());
  // Walking the votes in priority order finds the highest-priority model whose label is among the tied ones.
  for (const v of votes) if (v !== null && counts.get(v) === top) return v;
  return null;
}
