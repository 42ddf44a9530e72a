import { sha256 } from '../util/hash.js';
import type { Document, Entity } from './types.js';

/**
 * Deduplication under the evaluation protocol (research/datasets.md):
 * - a document is identified by its word sequence, not its id (Scholar-XL repeats texts under new ids);
 * - training-side documents that also occur in the test side are dropped, so no test text is trained on;
 * - repeats inside the training side keep their first copy; the caller dedups before carving out
 *   validation so that no copy of a training document leaks into validation;
 * - the test side keeps every document (dropping would change the official denominator) and only reports repeats;
 * - duplicate (start, end, type) triples inside a document collapse in every split, because scoring
 *   compares tuple sets and a duplicate gold tuple can never be matched twice.
 */
export interface DedupReport {
  /** Training-side documents whose text also occurs in the test side. */
  trainDroppedAsTestOverlap: number;
  /** Further copies of a training-side text (the first copy is kept). */
  trainDroppedAsRepeat: number;
  /** Duplicate (start, end, type) triples removed, per protocol split. */
  triplesCollapsed: { train: number; validation: number; test: number };
  /** Further copies of a text inside the test side, kept. */
  testRepeatsKept: number;
}

export function emptyDedupReport(): DedupReport {
  return {
    trainDroppedAsTestOverlap: 0,
    trainDroppedAsRepeat: 0,
    triplesCollapsed: { train: 0, validation: 0, test: 0 },
    testRepeatsKept: 0,
  };
}

/** Identity of a document's text; a separator no tokenizer emits keeps ["a b"] apart from ["a", "b"]. */
export function documentKey(words: readonly string[]): string {
  return sha256(words.join('\u0000'));
}

export interface DocumentDedup {
  trainSide: Document[];
  trainDroppedAsTestOverlap: number;
  trainDroppedAsRepeat: number;
  testRepeatsKept: number;
}

/** Drops training-side documents seen in the test side or earlier in the training side; order is kept. */
export function dedupDocuments(trainSide: readonly Document[], test: readonly Document[]): DocumentDedup {
  const testKeys = new Set<string>();
  let testRepeatsKept = 0;
  for (const doc of test) {
    const key = documentKey(doc.words);
    if (testKeys.has(key)) testRepeatsKept++;
    else testKeys.add(key);
  }
  const seen = new Set<string>();
  const kept: Document[] = [];
  let overlap = 0;
  let repeat = 0;
  for (const doc of trainSide) {
    const key = documentKey(doc.words);
    if (testKeys.has(key)) overlap++;
    else if (seen.has(key)) repeat++;
    else {
      seen.add(key);
      kept.push(doc);
    }
  }
  return { trainSide: kept, trainDroppedAsTestOverlap: overlap, trainDroppedAsRepeat: repeat, testRepeatsKept };
}

/** Removes repeated (start, end, type) triples, keeping first occurrences in order; returns the same object when nothing repeats. */
export function collapseEntities(doc: Document): { doc: Document; collapsed: number } {
  const seen = new Set<string>();
  const kept: Entity[] = [];
  for (const e of doc.entities) {
    const key = `${e.start}\u0000${e.end}\u0000${e.type}`;
    if (seen.has(key)) continue;
    seen.add(key);
    kept.push(e);
  }
  const collapsed = doc.entities.length - kept.length;
  return collapsed === 0 ? { doc, collapsed } : { doc: { ...doc, entities: kept }, collapsed };
}

export function collapseAll(docs: readonly Document[]): { docs: Document[]; collapsed: number } {
  let collapsed = 0;
  const out = docs.map((d) => {
    const r = collapseEntities(d);
    collapsed += r.collapsed;
    return r.doc;
  });
  return { docs: out, collapsed };
}
