import test from 'ava';
import { LongnerError } from '../../src/errors.js';
import { segmentDocument } from '../../src/data/segmenter.js';
import type { TokenizedWords } from '../../src/data/tokenizer.js';
import type { Document, Entity } from '../../src/data/types.js';
import { createRng } from '../../src/util/rng.js';

const CLS = 2;
const SEP = 3;

/** Tokens per word -> TokenizedWords with ids 100, 101, ... so a token's id gives its position. */
function tokens(perWord: number[]): TokenizedWords {
  const wordIndex: number[] = [];
  perWord.forEach((n, w) => {
    for (let k = 0; k < n; k++) wordIndex.push(w);
  });
  return { ids: Int32Array.from(wordIndex, (_, i) => 100 + i), wordIndex: Int32Array.from(wordIndex) };
}

function doc(words: number, entities: Entity[] = []): Document {
  return { id: 'd1', words: Array.from({ length: words }, (_, i) => `w${i}`), entities };
}

// Six words with 1,2,1,3,1,1 tokens: wordIndex = [0,1,1,2,3,3,3,4,5] (9 tokens).
const TOK = tokens([1, 2, 1, 3, 1, 1]);
const A = { start: 0, end: 2, type: 'A' }; // inside segment 0
const B = { start: 1, end: 3, type: 'B' }; // crosses the cut between segments 0 and 1
const C = { start: 3, end: 4, type: 'C' }; // word 3, itself split between segments 1 and 2
const D = { start: 4, end: 6, type: 'D' }; // inside segment 2
const E = { start: 2, end: 6, type: 'E' }; // spans segments 1 and 2, fits in neither

test('cuts sub-words into pieces of maxLen-2 wrapped in [CLS] ... [SEP]', (t) => {
  // maxLen 5 -> 3 sub-words per segment: tokens [0,3) [3,6) [6,9).
  const segs = segmentDocument(doc(6, [A, B, C, D, E]), TOK, { maxLen: 5, overlap: 0, cls: CLS, sep: SEP });
  t.is(segs.length, 3);
  t.deepEqual(
    segs.map((s) => s.index),
    [0, 1, 2],
  );
  t.true(segs.every((s) => s.docId === 'd1'));
  t.deepEqual(
    segs.map((s) => [...s.tokenIds]),
    [
      [CLS, 100, 101, 102, SEP],
      [CLS, 103, 104, 105, SEP],
      [CLS, 106, 107, 108, SEP],
    ],
  );
  // Segment words: [0,2) then [2,4) then [3,6); word 3 is split, so it is in segments 1 and 2.
  t.deepEqual(
    segs.map((s) => [s.wordOffset, s.words]),
    [
      [0, 2],
      [2, 2],
      [3, 3],
    ],
  );
  t.deepEqual(
    segs.map((s) => [...s.tokenWord]),
    [
      [-1, 0, 1, 1, -1],
      [-1, 0, 1, 1, -1],
      [-1, 0, 1, 2, -1],
    ],
  );
});

test('keeps entities fully inside a segment, relative to its offset, and counts the cut ones', (t) => {
  const segs = segmentDocument(doc(6, [A, B, C, D, E]), TOK, { maxLen: 5, overlap: 0, cls: CLS, sep: SEP });
  t.deepEqual(segs[0]!.entities, [{ start: 0, end: 2, type: 'A' }]);
  t.is(segs[0]!.droppedEntities, 1); // B
  // C lies on the split word 3, which belongs to both segments, so both keep it.
  t.deepEqual(segs[1]!.entities, [{ start: 1, end: 2, type: 'C' }]);
  t.is(segs[1]!.droppedEntities, 2); // B, E
  t.deepEqual(segs[2]!.entities, [
    { start: 0, end: 1, type: 'C' },
    { start: 1, end: 3, type: 'D' },
  ]);
  t.is(segs[2]!.droppedEntities, 1); // E
});

test('a document that fits gives one segment at offset 0 with every entity', (t) => {
  const segs = segmentDocument(doc(6, [A, B, C, D, E]), TOK, { maxLen: 11, overlap: 0, cls: CLS, sep: SEP });
  t.is(segs.length, 1);
  const s = segs[0]!;
  t.is(s.wordOffset, 0);
  t.is(s.words, 6);
  t.is(s.tokenIds.length, 11);
  t.deepEqual([...s.tokenIds.subarray(1, 10)], [...TOK.ids]);
  t.deepEqual(s.entities, [A, B, C, D, E]);
  t.is(s.droppedEntities, 0);
});

test('overlap makes consecutive segments share that many tokens (stride maxLen-2-overlap)', (t) => {
  // maxLen 6 -> 4 sub-words, overlap 2 -> stride 2: tokens [0,4) [2,6) [4,8) [6,9).
  const segs = segmentDocument(doc(6, [A, B, C, D, E]), TOK, { maxLen: 6, overlap: 2, cls: CLS, sep: SEP });
  t.deepEqual(
    segs.map((s) => [...s.tokenIds.subarray(1, s.tokenIds.length - 1)].map((id) => id - 100)),
    [
      [0, 1, 2, 3],
      [2, 3, 4, 5],
      [4, 5, 6, 7],
      [6, 7, 8],
    ],
  );
  t.deepEqual(
    segs.map((s) => [s.wordOffset, s.words]),
    [
      [0, 3],
      [1, 3],
      [3, 2],
      [3, 3],
    ],
  );
  // B [1,3) now fits in segments 0 (words [0,3)) and 1 (words [1,4)); without overlap it was cut everywhere.
  t.deepEqual(segs[0]!.entities, [A, B]);
  t.deepEqual(segs[1]!.entities, [
    { start: 0, end: 2, type: 'B' },
    { start: 2, end: 3, type: 'C' },
  ]);
});

test('overlap defaults to 0', (t) => {
  const a = segmentDocument(doc(6), TOK, { maxLen: 5, cls: CLS, sep: SEP });
  const b = segmentDocument(doc(6), TOK, { maxLen: 5, overlap: 0, cls: CLS, sep: SEP });
  t.deepEqual(a, b);
});

test('an empty document gives one [CLS] [SEP] segment', (t) => {
  const segs = segmentDocument(doc(0), tokens([]), { maxLen: 5, overlap: 0, cls: CLS, sep: SEP });
  t.is(segs.length, 1);
  t.deepEqual([...segs[0]!.tokenIds], [CLS, SEP]);
  t.is(segs[0]!.words, 0);
});

test('random documents: shapes and indices hold for any maxLen and overlap', (t) => {
  const rng = createRng(7);
  for (let trial = 0; trial < 200; trial++) {
    const nWords = rng.int(1, 40);
    const perWord = Array.from({ length: nWords }, () => rng.int(1, 5));
    const tok = tokens(perWord);
    const maxLen = rng.int(3, 20);
    const overlap = rng.int(0, maxLen - 2);
    const ents: Entity[] = Array.from({ length: 10 }, () => {
      const start = rng.int(0, nWords);
      return { start, end: rng.int(start + 1, Math.min(nWords, start + 6) + 1), type: 'X' };
    });
    const segs = segmentDocument({ id: 'r', words: perWord.map(String), entities: ents }, tok, { maxLen, overlap, cls: CLS, sep: SEP });
    const stride = maxLen - 2 - overlap;
    let ok = true;
    segs.forEach((s, i) => {
      const n = s.tokenIds.length;
      ok &&= n <= maxLen && n >= 3 && s.tokenIds[0] === CLS && s.tokenIds[n - 1] === SEP;
      ok &&= s.tokenWord[0] === -1 && s.tokenWord[n - 1] === -1;
      for (let k = 1; k < n - 1; k++) {
        const docToken = s.tokenIds[k]! - 100;
        ok &&= docToken === i * stride + k - 1;
        ok &&= s.tokenWord[k]! + s.wordOffset === tok.wordIndex[docToken];
      }
      ok &&= s.tokenWord[1] === 0 && s.tokenWord[n - 2] === s.words - 1;
      for (const e of s.entities) ok &&= e.start >= 0 && e.end <= s.words;
    });
    const last = segs[segs.length - 1]!;
    ok &&= last.tokenIds[last.tokenIds.length - 2]! - 100 === tok.ids.length - 1;
    if (!ok) {
      t.fail(`trial ${trial}: maxLen ${maxLen} overlap ${overlap} perWord ${perWord.join(',')}`);
      return;
    }
  }
  t.pass();
});

test('bad options are user errors naming the config key', (t) => {
  const d = doc(6);
  t.throws(() => segmentDocument(d, TOK, { maxLen: 2, overlap: 0, cls: CLS, sep: SEP }), { instanceOf: LongnerError, message: /segment\.maxLen/ });
  t.throws(() => segmentDocument(d, TOK, { maxLen: 8.5, overlap: 0, cls: CLS, sep: SEP }), { instanceOf: LongnerError, message: /segment\.maxLen/ });
  t.throws(() => segmentDocument(d, TOK, { maxLen: 6, overlap: 4, cls: CLS, sep: SEP }), { instanceOf: LongnerError, message: /segment\.overlap/ });
  t.throws(() => segmentDocument(d, TOK, { maxLen: 6, overlap: -1, cls: CLS, sep: SEP }), { instanceOf: LongnerError, message: /segment\.overlap/ });
  t.notThrows(() => segmentDocument(d, TOK, { maxLen: 6, overlap: 3, cls: CLS, sep: SEP }));
});

test('tokens of another document are a bug, not silently cut', (t) => {
  const err = t.throws(() => segmentDocument(doc(5), TOK, { maxLen: 5, overlap: 0, cls: CLS, sep: SEP }));
  t.false(err instanceof LongnerError);
});
