import test from 'ava';
import { collapseAll, collapseEntities, dedupDocuments, documentKey } from '../../src/data/dedup.js';
import type { Document } from '../../src/data/types.js';

const doc = (id: string, text: string, entities: Document['entities'] = []): Document => ({ id, words: text.split(' '), entities });

// Hand-made: train side has one test overlap (under a different id), one text repeated twice more,
// and a doc whose words only differ in the split point; test has one repeat.
const test1 = doc('t1', 'the cat sat');
const test2 = doc('t2', 'a dog ran');
const test3 = doc('t3', 'the cat sat'); // repeat inside test, kept
const train = [
  doc('a', 'alpha beta gamma'),
  doc('b', 'the cat sat'), // also in test
  doc('c', 'alpha beta gamma'), // repeat of a
  doc('d', 'delta epsilon'),
  doc('e', 'alpha beta gamma'), // another repeat of a
  { id: 'f', words: ['delta epsilon'], entities: [] }, // one word, not a repeat of d
  doc('g', 'a dog ran'), // also in test
];

test('drops training docs that occur in test and repeats, by text not id, in order', (t) => {
  const r = dedupDocuments(train, [test1, test2, test3]);
  t.deepEqual(
    r.trainSide.map((d) => d.id),
    ['a', 'd', 'f'],
  );
  t.is(r.trainDroppedAsTestOverlap, 2);
  t.is(r.trainDroppedAsRepeat, 2);
  t.is(r.testRepeatsKept, 1);
  t.is(r.trainSide[0], train[0], 'kept documents are the same objects');
});

test('a document repeated inside the train side and also in test counts as a test overlap', (t) => {
  const r = dedupDocuments([doc('x', 'q r'), doc('y', 'q r')], [doc('z', 'q r')]);
  t.is(r.trainSide.length, 0);
  t.is(r.trainDroppedAsTestOverlap, 2);
  t.is(r.trainDroppedAsRepeat, 0);
});

test('document identity is the word sequence', (t) => {
  t.is(documentKey(['a', 'b']), documentKey(['a', 'b']));
  t.not(documentKey(['a b']), documentKey(['a', 'b']));
  t.not(documentKey(['a', 'b']), documentKey(['b', 'a']));
});

test('duplicate (start, end, type) triples collapse, keeping order; same span with another type stays', (t) => {
  const d = doc('d', 'w x y z', [
    { start: 0, end: 2, type: 'A' },
    { start: 1, end: 2, type: 'B' },
    { start: 0, end: 2, type: 'A' },
    { start: 0, end: 2, type: 'C' },
    { start: 1, end: 2, type: 'B' },
  ]);
  const r = collapseEntities(d);
  t.is(r.collapsed, 2);
  t.deepEqual(r.doc.entities, [
    { start: 0, end: 2, type: 'A' },
    { start: 1, end: 2, type: 'B' },
    { start: 0, end: 2, type: 'C' },
  ]);
  t.is(d.entities.length, 5, 'the input is not mutated');
  const clean = doc('c', 'w', [{ start: 0, end: 1, type: 'A' }]);
  t.is(collapseEntities(clean).doc, clean);

  const all = collapseAll([d, clean, d]);
  t.is(all.collapsed, 4);
  t.is(all.docs.length, 3);
});
