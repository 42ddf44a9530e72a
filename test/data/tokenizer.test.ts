import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LongnerError } from '../../src/errors.js';
import { SPECIAL_TOKENS, SubwordTokenizer } from '../../src/data/tokenizer.js';
import { fromRoot } from '../../src/util/paths.js';

const corpusWords = readFileSync(fromRoot('test/fixtures/tokenizer/corpus.txt'), 'utf8')
  .split(/\s+/)
  .filter((w) => w.length > 0);
const alphabet = new Set(corpusWords.join(''));

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'longner-tokenizer-test-'));
}

/** Reads the library JSON inside a saved file, to look at the model's merges. */
function savedModel(tok: SubwordTokenizer): { merges: [string, string][]; vocab: Record<string, number> } {
  const dir = tempDir();
  try {
    const file = join(dir, 'tok.json');
    tok.save(file);
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { tokenizer: { model: { merges: [string, string][]; vocab: Record<string, number> } } };
    return parsed.tokenizer.model;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('the vocabulary is capped at vocabSize, specials included', async (t) => {
  const cap = SPECIAL_TOKENS.length + alphabet.size + 30;
  const tok = await SubwordTokenizer.train(corpusWords, { vocabSize: cap });
  t.is(tok.vocabSize, cap);
  const { ids } = await tok.encodeWords(corpusWords);
  t.true(ids.every((id) => id >= 0 && id < cap));
  t.throws(() => tok.idToToken(cap), { instanceOf: RangeError });
  // 30 merges on top of the alphabet; the corpus has no duplicate merge results this early.
  t.is(savedModel(tok).merges.length, 30);
});

test('a small corpus can fill less than the cap', async (t) => {
  const tok = await SubwordTokenizer.train(['aaa', 'ab'], { vocabSize: 1000 });
  // a, b + merges aa, aaa (or similar): far fewer than 1000.
  t.true(tok.vocabSize < 20);
  t.true(tok.vocabSize > SPECIAL_TOKENS.length + 2);
});

test('a capped vocabulary keeps exactly the first merges of a larger one, in learned order', async (t) => {
  const small = await SubwordTokenizer.train(corpusWords, { vocabSize: SPECIAL_TOKENS.length + alphabet.size + 20 });
  const large = await SubwordTokenizer.train(corpusWords, { vocabSize: SPECIAL_TOKENS.length + alphabet.size + 120 });
  const s = savedModel(small);
  const l = savedModel(large);
  t.is(s.merges.length, 20);
  t.deepEqual(s.merges, l.merges.slice(0, 20));
  // Ids follow learned order: each merge result gets the next id after the alphabet.
  const base = SPECIAL_TOKENS.length + alphabet.size;
  l.merges.forEach(([a, b], i) => {
    t.is(l.vocab[a + b], base + i);
  });
  // More merges can only make the corpus shorter in tokens.
  const ns = (await small.encodeWords(corpusWords)).ids.length;
  const nl = (await large.encodeWords(corpusWords)).ids.length;
  t.true(nl < ns);
});

test('special tokens sit at ids 0..4', async (t) => {
  const tok = await SubwordTokenizer.train(corpusWords, { vocabSize: 200 });
  t.deepEqual([tok.pad, tok.unk, tok.cls, tok.sep, tok.mask], [0, 1, 2, 3, 4]);
  t.deepEqual(
    [0, 1, 2, 3, 4].map((id) => tok.idToToken(id)),
    ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'],
  );
  // Specials are never produced for ordinary words.
  const { ids } = await tok.encodeWords(corpusWords);
  t.true(ids.every((id) => id > 4));
});

test('every word gets at least one token and wordIndex maps tokens back to their word', async (t) => {
  const tok = await SubwordTokenizer.train(corpusWords, { vocabSize: 150 });
  const words = ['The', 'researchers', '', 'segment', ' ', 'sub-word', 'a'];
  const { ids, wordIndex } = await tok.encodeWords(words);
  t.is(ids.length, wordIndex.length);
  for (let i = 1; i < wordIndex.length; i++) t.true(wordIndex[i]! - wordIndex[i - 1]! <= 1 && wordIndex[i]! >= wordIndex[i - 1]!);
  for (let w = 0; w < words.length; w++) {
    const pieces = [...ids].filter((_, k) => wordIndex[k] === w).map((id) => tok.idToToken(id));
    t.true(pieces.length >= 1, `word ${w} has no token`);
    // BPE pieces of a known-alphabet word spell the word; empty and blank words become [UNK].
    t.is(pieces.join(''), words[w]!.trim() === '' ? '[UNK]' : words[w]!);
  }
  t.is(wordIndex[0], 0);
  t.is(wordIndex[wordIndex.length - 1], words.length - 1);
});

test('characters never seen in training become [UNK]', async (t) => {
  const tok = await SubwordTokenizer.train(corpusWords, { vocabSize: 150 });
  t.false(alphabet.has('€'));
  const { ids, wordIndex } = await tok.encodeWords(['a€e', '€']);
  const tokens = [...ids].map((id) => tok.idToToken(id));
  t.deepEqual(tokens, ['a', '[UNK]', 'e', '[UNK]']);
  t.deepEqual([...wordIndex], [0, 0, 0, 1]);
});

test('save/load round-trips exactly', async (t) => {
  const tok = await SubwordTokenizer.train(corpusWords, { vocabSize: 120, lowercase: true });
  const dir = tempDir();
  try {
    const file = join(dir, 'nested', 'tok.json');
    tok.save(file);
    const loaded = SubwordTokenizer.load(file);
    t.is(loaded.vocabSize, tok.vocabSize);
    t.true(loaded.lowercase);
    const probe = [...corpusWords, 'UNSEEN', 'Zürich', ''];
    const a = await tok.encodeWords(probe);
    const b = await loaded.encodeWords(probe);
    t.deepEqual([...b.ids], [...a.ids]);
    t.deepEqual([...b.wordIndex], [...a.wordIndex]);
    for (let id = 0; id < tok.vocabSize; id++) t.is(loaded.idToToken(id), tok.idToToken(id));
    // Saving the loaded tokenizer gives the same bytes.
    const again = join(dir, 'again.json');
    loaded.save(again);
    t.is(readFileSync(again, 'utf8'), readFileSync(file, 'utf8'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('training twice gives the same tokenizer', async (t) => {
  const a = await SubwordTokenizer.train(corpusWords, { vocabSize: 140 });
  const b = await SubwordTokenizer.train(corpusWords, { vocabSize: 140 });
  t.deepEqual(savedModel(a), savedModel(b));
  t.deepEqual([...(await a.encodeWords(corpusWords)).ids], [...(await b.encodeWords(corpusWords)).ids]);
});

test('lowercase is off by default and folds case when on', async (t) => {
  const cased = await SubwordTokenizer.train(corpusWords, { vocabSize: 150 });
  const lower = await SubwordTokenizer.train(corpusWords, { vocabSize: 150, lowercase: true });
  t.false(cased.lowercase);
  const c = await cased.encodeWords(['The', 'the']);
  const l = await lower.encodeWords(['The', 'the']);
  t.notDeepEqual([...c.ids.subarray(0, c.wordIndex.indexOf(1))], [...c.ids.subarray(c.wordIndex.indexOf(1))]);
  t.deepEqual([...l.ids.subarray(0, l.wordIndex.indexOf(1))], [...l.ids.subarray(l.wordIndex.indexOf(1))]);
  for (let id = 5; id < lower.vocabSize; id++) t.is(lower.idToToken(id), lower.idToToken(id).toLowerCase());
});

test('the per-word cache gives the same answer as a fresh encode', async (t) => {
  const tok = await SubwordTokenizer.train(corpusWords, { vocabSize: 150 });
  const first = await tok.encodeWords(['segments', 'are', 'cut']);
  const second = await tok.encodeWords(['cut', 'segments', 'are', 'cut']);
  const n0 = first.wordIndex.indexOf(2);
  const cutIds = [...first.ids.subarray(n0)];
  t.deepEqual([...second.ids.subarray(0, cutIds.length)], cutIds);
  t.deepEqual([...second.ids.subarray(second.ids.length - cutIds.length)], cutIds);
});

test('bad vocabulary sizes are user errors', async (t) => {
  await t.throwsAsync(SubwordTokenizer.train(corpusWords, { vocabSize: 10 }), {
    instanceOf: LongnerError,
    message: /tokenizer\.vocabSize .*distinct characters/,
  });
  await t.throwsAsync(SubwordTokenizer.train(corpusWords, { vocabSize: 40_000 }), { instanceOf: LongnerError, message: /tokenizer\.vocabSize/ });
  await t.throwsAsync(SubwordTokenizer.train(corpusWords, { vocabSize: 100.5 }), { instanceOf: LongnerError });
});

test('loading a file that is not a tokenizer is a user error naming the file', (t) => {
  const dir = tempDir();
  try {
    const file = join(dir, 'other.json');
    writeFileSync(file, '{"hello": 1}');
    t.throws(() => SubwordTokenizer.load(file), { instanceOf: LongnerError, message: /other\.json/ });
    t.throws(() => SubwordTokenizer.load(join(dir, 'missing.json')), { instanceOf: LongnerError, message: /missing\.json/ });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
