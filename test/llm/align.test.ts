import test from 'ava';
import { Aligner } from '../../src/llm/align.js';
import { renderWords, wordWindows } from '../../src/llm/text.js';

const words = ['Alice', 'works', 'in', 'Beijing', ',', 'China', '.', 'Alice', 'likes', 'Beijing', '.'];

test('every-occurrence maps an answer to each exact word sequence, ignoring whitespace', (t) => {
  const a = new Aligner(words, 'every-occurrence');
  t.deepEqual(a.align('Alice'), [
    { start: 0, end: 1 },
    { start: 7, end: 8 },
  ]);
  // "Beijing, China" has no space before the comma, the words do: whitespace is ignored.
  t.deepEqual(a.align('Beijing, China'), [{ start: 3, end: 6 }]);
  t.deepEqual(a.align('  Beijing  '), [
    { start: 3, end: 4 },
    { start: 9, end: 10 },
  ]);
});

test('first-occurrence keeps only the leftmost match', (t) => {
  const a = new Aligner(words, 'first-occurrence');
  t.deepEqual(a.align('Alice'), [{ start: 0, end: 1 }]);
  t.deepEqual(a.align('Beijing .'), [{ start: 9, end: 11 }]);
});

test('matches must start and end on word boundaries and respect case', (t) => {
  const a = new Aligner(words, 'every-occurrence');
  t.deepEqual(a.align('lice'), [], 'inside a word');
  t.deepEqual(a.align('Alicew'), [], 'runs into the next word');
  t.deepEqual(a.align('alice'), [], 'case-sensitive');
  t.deepEqual(a.align('Bob'), [], 'absent');
  t.deepEqual(a.align('   '), [], 'empty after whitespace removal');
});

test('windows cover every word with the configured overlap', (t) => {
  t.deepEqual(wordWindows(10, 4, 3), [
    { start: 0, end: 4 },
    { start: 3, end: 7 },
    { start: 6, end: 10 },
  ]);
  t.deepEqual(wordWindows(3, 4, 3), [{ start: 0, end: 3 }]);
  t.deepEqual(wordWindows(0, 4, 3), []);
  t.throws(() => wordWindows(10, 3, 4), { instanceOf: RangeError });
});

test('rendered text attaches punctuation to its word', (t) => {
  t.is(renderWords(['He', 'studied', 'at', 'MIT', '(', 'USA', ')', ',', 'then', 'left', '.']), 'He studied at MIT (USA), then left.');
});
