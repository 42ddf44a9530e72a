import test from 'ava';
import { wholeWordMask, type WwmOptions } from '../../src/data/wwm.js';
import { LongnerError } from '../../src/errors.js';
import { createRng } from '../../src/util/rng.js';

const CLS = 0;
const SEP = 1;
const MASK = 2;
const VOCAB = 50;

/** [CLS], then `words` words of 1..3 sub-words each (ids from 3 up), then [SEP]. */
function sequence(words: number, seed: number): { ids: Int32Array; tokenWord: Int32Array } {
  const rng = createRng(seed);
  const ids = [CLS];
  const tw = [-1];
  for (let w = 0; w < words; w++) {
    const n = 1 + rng.int(0, 3);
    for (let i = 0; i < n; i++) {
      ids.push(3 + rng.int(0, VOCAB - 3));
      tw.push(w);
    }
  }
  ids.push(SEP);
  tw.push(-1);
  return { ids: Int32Array.from(ids), tokenWord: Int32Array.from(tw) };
}

function opts(seed: number, rate = 0.15): WwmOptions {
  return { rate, maskId: MASK, vocabSize: VOCAB, specialIds: [CLS, SEP, MASK], rng: createRng(seed) };
}

test('chooses whole words within the budget, never specials', (t) => {
  for (let seed = 0; seed < 50; seed++) {
    const { ids, tokenWord } = sequence(40, seed);
    const { input, targets } = wholeWordMask(ids, tokenWord, opts(seed));
    const chosen = [...targets.keys()].filter((i) => targets[i]! >= 0);
    const budget = Math.max(1, Math.round(0.15 * ids.length));
    t.true(chosen.length <= budget);
    // Words have at most 3 tokens, so the greedy fill can stop at most 2 short of the budget.
    t.true(chosen.length >= budget - 2);
    t.is(targets[0], -1);
    t.is(targets[ids.length - 1], -1);
    t.is(input[0], CLS);
    t.is(input[ids.length - 1], SEP);
    const chosenWords = new Set(chosen.map((i) => tokenWord[i]!));
    for (let i = 0; i < ids.length; i++) {
      // whole words: a token is chosen exactly when its word is
      t.is(targets[i]! >= 0, chosenWords.has(tokenWord[i]!) && tokenWord[i]! >= 0);
      if (targets[i]! >= 0) t.is(targets[i], ids[i]);
      else t.is(input[i], ids[i]);
    }
  }
});

test('deterministic for a seed, different across seeds', (t) => {
  const { ids, tokenWord } = sequence(60, 1);
  const a = wholeWordMask(ids, tokenWord, opts(7));
  const b = wholeWordMask(ids, tokenWord, opts(7));
  const c = wholeWordMask(ids, tokenWord, opts(8));
  t.deepEqual(a, b);
  t.notDeepEqual(a.targets, c.targets);
});

test('80 / 10 / 10: [MASK], random non-special id, unchanged', (t) => {
  let mask = 0;
  let random = 0;
  let kept = 0;
  for (let seed = 0; seed < 400; seed++) {
    const { ids, tokenWord } = sequence(50, 1000 + seed);
    const { input, targets } = wholeWordMask(ids, tokenWord, opts(seed));
    targets.forEach((tgt, i) => {
      if (tgt < 0) return;
      if (input[i] === MASK) mask++;
      else if (input[i] === ids[i]) kept++;
      else {
        random++;
        t.true(input[i]! >= 3 && input[i]! < VOCAB);
      }
    });
  }
  const n = mask + random + kept;
  t.true(n > 5000);
  // Random replacements can hit the original id (1 in 47), which counts as kept.
  t.true(Math.abs(mask / n - 0.8) < 0.02, `mask ${mask / n}`);
  t.true(Math.abs(random / n - 0.1) < 0.015, `random ${random / n}`);
  t.true(Math.abs(kept / n - 0.1) < 0.015, `kept ${kept / n}`);
});

test('at least one token, skipping words that would exceed the budget', (t) => {
  // [CLS] a a a b [SEP]: budget round(0.15 * 6) = 1, so only the one-token word b fits.
  const ids = Int32Array.from([CLS, 10, 11, 12, 13, SEP]);
  const tokenWord = Int32Array.from([-1, 0, 0, 0, 1, -1]);
  for (let seed = 0; seed < 20; seed++) {
    const { targets } = wholeWordMask(ids, tokenWord, opts(seed));
    t.deepEqual([...targets], [-1, -1, -1, -1, 13, -1]);
  }
});

test('special ids are never chosen even inside a word; rate 0 masks nothing', (t) => {
  const ids = Int32Array.from([CLS, MASK, 20, SEP]);
  const tokenWord = Int32Array.from([-1, 0, 0, -1]);
  for (let seed = 0; seed < 10; seed++) t.is(wholeWordMask(ids, tokenWord, opts(seed, 0.5)).targets[1], -1);
  const { ids: long, tokenWord: tw } = sequence(30, 2);
  t.true(wholeWordMask(long, tw, opts(1, 0)).targets.every((x) => x === -1));
});

test('rejects mismatched inputs', (t) => {
  t.throws(() => wholeWordMask(Int32Array.from([1, 2]), Int32Array.from([0]), opts(1)), { instanceOf: LongnerError });
  t.throws(() => wholeWordMask(Int32Array.from([1]), Int32Array.from([0]), opts(1, 1.5)), { instanceOf: LongnerError });
});
