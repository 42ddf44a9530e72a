/**
 * Cuts a tokenized document into model inputs of at most `maxLen` tokens, [CLS] ... [SEP].
 *
 * As in the SeNER reference code (research/sener.md 1.4), the document's sub-words are split into
 * consecutive pieces of maxLen-2 tokens on sub-word boundaries, so one word can be split across two
 * segments; a segment's words are all the words any of its tokens belong to. `overlap` > 0 is our
 * extension: consecutive pieces then share that many tokens.
 */
import { LongnerError } from '../errors.js';
import type { Document, Entity } from './types.js';
import type { TokenizedWords } from './tokenizer.js';

export interface Segment {
  docId: string;
  /** Position of this segment in its document, from 0. */
  index: number;
  /** Document index of the segment's first word. */
  wordOffset: number;
  /** Number of words in the segment (words cut at either edge included). */
  words: number;
  /** [CLS] sub-words [SEP]; length <= maxLen. */
  tokenIds: Int32Array;
  /** Word index relative to `wordOffset` for each token; -1 for [CLS] and [SEP]. */
  tokenWord: Int32Array;
  /** Gold entities whose words all lie in this segment, relative to `wordOffset`, in document order. */
  entities: Entity[];
  /**
   * Gold entities that share a word with this segment but do not lie fully inside it, so are
   * missing from its labels. An entity crossing one cut counts in both segments it touches.
   */
  droppedEntities: number;
}

export interface SegmentOptions {
  maxLen: number;
  /** Tokens shared by consecutive segments (default 0, the reference's plain split). */
  overlap?: number;
  cls: number;
  sep: number;
}

export function validateSegmentOptions(opts: Pick<SegmentOptions, 'maxLen' | 'overlap'>): void {
  const { maxLen, overlap = 0 } = opts;
  if (!Number.isInteger(maxLen) || maxLen < 3) {
    throw new LongnerError(`segment.maxLen must be an integer >= 3 ([CLS], one token, [SEP]); got ${maxLen}`);
  }
  if (!Number.isInteger(overlap) || overlap < 0 || overlap >= maxLen - 2) {
    throw new LongnerError(`segment.overlap must be an integer with 0 <= overlap < segment.maxLen - 2 = ${maxLen - 2}; got ${overlap}`);
  }
}

/** O(tokens + entities x segments each entity touches). */
export function segmentDocument(doc: Document, tok: TokenizedWords, opts: SegmentOptions): Segment[] {
  validateSegmentOptions(opts);
  const { maxLen, overlap = 0, cls, sep } = opts;
  const n = tok.ids.length;
  checkTokens(doc, tok);

  const body = maxLen - 2;
  const stride = body - overlap;
  const ranges: { tokStart: number; tokEnd: number; wordStart: number; wordEnd: number }[] = [];
  if (n === 0) {
    ranges.push({ tokStart: 0, tokEnd: 0, wordStart: 0, wordEnd: 0 });
  } else {
    for (let start = 0; ; start += stride) {
      const end = Math.min(start + body, n);
      ranges.push({ tokStart: start, tokEnd: end, wordStart: tok.wordIndex[start]!, wordEnd: tok.wordIndex[end - 1]! + 1 });
      if (end === n) break;
    }
  }

  const segments: Segment[] = ranges.map((r, index) => {
    const len = r.tokEnd - r.tokStart;
    const tokenIds = new Int32Array(len + 2);
    const tokenWord = new Int32Array(len + 2);
    tokenIds[0] = cls;
    tokenWord[0] = -1;
    tokenIds.set(tok.ids.subarray(r.tokStart, r.tokEnd), 1);
    for (let k = 0; k < len; k++) tokenWord[k + 1] = tok.wordIndex[r.tokStart + k]! - r.wordStart;
    tokenIds[len + 1] = sep;
    tokenWord[len + 1] = -1;
    return {
      docId: doc.id,
      index,
      wordOffset: r.wordStart,
      words: r.wordEnd - r.wordStart,
      tokenIds,
      tokenWord,
      entities: [],
      droppedEntities: 0,
    };
  });

  // Segment word ranges only move right (both ends non-decreasing), so the segments an entity
  // touches form a run found by two binary searches.
  for (const e of doc.entities) {
    const first = firstIndex(ranges.length, (i) => ranges[i]!.wordEnd > e.start);
    const afterLast = firstIndex(ranges.length, (i) => ranges[i]!.wordStart >= e.end);
    for (let i = first; i < afterLast; i++) {
      const r = ranges[i]!;
      const seg = segments[i]!;
      if (r.wordStart <= e.start && e.end <= r.wordEnd) {
        seg.entities.push({ start: e.start - r.wordStart, end: e.end - r.wordStart, type: e.type });
      } else {
        seg.droppedEntities++;
      }
    }
  }
  return segments;
}

/** Smallest i in [0, n) with pred(i), or n; pred must be monotone (false...true). */
function firstIndex(n: number, pred: (i: number) => boolean): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (pred(mid)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Cheap consistency checks: a mismatch means the tokens belong to another document (a bug). */
function checkTokens(doc: Document, tok: TokenizedWords): void {
  const n = tok.ids.length;
  if (tok.wordIndex.length !== n) {
    throw new Error(`segmenter: ${doc.id}: ids (${n}) and wordIndex (${tok.wordIndex.length}) differ in length`);
  }
  const lastWord = n === 0 ? -1 : tok.wordIndex[n - 1]!;
  if (lastWord !== doc.words.length - 1 || (n > 0 && tok.wordIndex[0] !== 0)) {
    throw new Error(`segmenter: ${doc.id}: tokens cover words ${n === 0 ? 'none' : `0..${lastWord}`} but the document has ${doc.words.length} words`);
  }
}
