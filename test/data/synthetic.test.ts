import test from 'ava';
import { LongnerError } from '../../src/errors.js';
import { generateDocuments, pseudoWord, syntheticVocabulary, type SyntheticOptions } from '../../src/data/synthetic.js';
import type { Document, Entity } from '../../src/data/types.js';

const base: SyntheticOptions = {
  docs: 20,
  words: [200, 400],
  entityDensity: 3,
  entityLength: { dist: 'geometric', mean: 4, max: 40 },
  types: ['alpha', 'beta', 'gamma'],
  seed: 7,
};

const allEntities = (docs: Document[]): Entity[] => docs.flatMap((d) => d.entities);
const crosses = (a: Entity, b: Entity): boolean =>
  (a.start < b.start && b.start < a.end && a.end < b.end) || (b.start < a.start && a.start < b.end && b.end < a.end);

test('deterministic for a seed, different across seeds', (t) => {
  t.deepEqual(generateDocuments(base), generateDocuments(base));
  t.notDeepEqual(generateDocuments(base), generateDocuments({ ...base, seed: 8 }));
});

test('document sizes and entity counts follow the parameters', (t) => {
  const docs = generateDocuments(base);
  t.is(docs.length, 20);
  for (const d of docs) {
    t.true(d.words.length >= 200 && d.words.length <= 400);
    t.is(d.entities.length, Math.round((3 * d.words.length) / 100));
  }
  t.is(new Set(docs.map((d) => d.id)).size, 20);

  const fixed = generateDocuments({ ...base, entityDensity: undefined, entitiesPerDoc: 5, words: 100 });
  t.true(fixed.every((d) => d.words.length === 100 && d.entities.length === 5));
});

test('geometric lengths: mean near the parameter, never above max', (t) => {
  const docs = generateDocuments({ ...base, docs: 30, words: 2000, entityDensity: 2, entityLength: { dist: 'geometric', mean: 5, max: 60 } });
  const lens = allEntities(docs).map((e) => e.end - e.start);
  t.true(lens.length >= 1000);
  const mean = lens.reduce((a, b) => a + b, 0) / lens.length;
  t.true(Math.abs(mean - 5) < 0.5, `mean ${mean}`);
  t.true(Math.max(...lens) <= 60);
  // Geometric: length 1 is the most frequent, about 1/mean of all.
  const ones = lens.filter((l) => l === 1).length / lens.length;
  t.true(Math.abs(ones - 0.2) < 0.05, `share of length 1: ${ones}`);
});

test('uniform and fixed lengths stay in range', (t) => {
  const uni = allEntities(generateDocuments({ ...base, entityLength: { dist: 'uniform', min: 3, max: 6 } })).map((e) => e.end - e.start);
  t.true(uni.every((l) => l >= 3 && l <= 6));
  t.deepEqual([...new Set(uni)].sort(), [3, 4, 5, 6]);
  const fixed = allEntities(generateDocuments({ ...base, entityLength: { dist: 'fixed', length: 2 } }));
  t.true(fixed.every((e) => e.end - e.start === 2));
});

test('flat by default: no overlaps; entities inside their documents', (t) => {
  for (const d of generateDocuments(base)) {
    const sorted = [...d.entities].sort((a, b) => a.start - b.start);
    for (let i = 1; i < sorted.length; i++) t.true(sorted[i - 1]!.end <= sorted[i]!.start);
    t.true(d.entities.every((e) => e.start >= 0 && e.end <= d.words.length && e.start < e.end));
  }
});

test('nested entities when asked: some nesting, never crossing, no identical spans', (t) => {
  const docs = generateDocuments({ ...base, nested: 0.5, entityLength: { dist: 'geometric', mean: 6, max: 40 } });
  let nestedPairs = 0;
  for (const d of docs) {
    const es = d.entities;
    for (let i = 0; i < es.length; i++) {
      for (let j = i + 1; j < es.length; j++) {
        const a = es[i]!;
        const b = es[j]!;
        t.false(crosses(a, b));
        t.false(a.start === b.start && a.end === b.end);
        if ((a.start <= b.start && b.end <= a.end) || (b.start <= a.start && a.end <= b.end)) nestedPairs++;
      }
    }
  }
  t.true(nestedPairs > 10, `nested pairs: ${nestedPairs}`);
});

test('entity words carry type-specific boundary cues and sub-vocabularies', (t) => {
  const types = base.types;
  const vocab = syntheticVocabulary(1000, types.length);
  const docs = generateDocuments({ ...base, nested: 0.3 });
  const background = new Set(vocab.background);
  for (const d of docs) {
    for (const e of d.entities) {
      const ti = types.indexOf(e.type);
      t.is(d.words[e.start], vocab.first[ti]);
      if (e.end - e.start >= 2) t.is(d.words[e.end - 1], vocab.last[ti]);
    }
    // Words outside every entity are background words.
    const covered = new Uint8Array(d.words.length);
    for (const e of d.entities) covered.fill(1, e.start, e.end);
    d.words.forEach((w, i) => {
      if (!covered[i]) t.true(background.has(w));
    });
  }
  // All word sets are disjoint.
  const all = [...vocab.background, ...vocab.first, ...vocab.last, ...vocab.inner.flat()];
  t.is(new Set(all).size, all.length);
  t.not(pseudoWord(0), pseudoWord(20));
});

test('the vocabulary option bounds the background words', (t) => {
  const docs = generateDocuments({ ...base, vocabulary: 10, entityDensity: 0 });
  const words = new Set(docs.flatMap((d) => d.words));
  t.true(words.size <= 10);
  t.true(docs.every((d) => d.entities.length === 0));
});

test('bad options are user errors naming the key', (t) => {
  const bad = (o: Partial<SyntheticOptions>, key: string): void => {
    const err = t.throws(() => generateDocuments({ ...base, ...o }), { instanceOf: LongnerError });
    t.true(err?.message.includes(key), err?.message);
  };
  bad({ types: [] }, 'types');
  bad({ words: [10, 5] }, 'words');
  bad({ entitiesPerDoc: 3 }, 'not both');
  bad({ entityLength: { dist: 'uniform', min: 0, max: 3 } }, 'entityLength');
  bad({ nested: 2 }, 'nested');
});

test('long documents for memory probes: 100,000 words with their entities', (t) => {
  const [d] = generateDocuments({
    docs: 1,
    words: 100_000,
    entityDensity: 2,
    entityLength: { dist: 'geometric', mean: 3, max: 50 },
    types: ['x'],
    nested: 0.2,
    seed: 1,
  });
  t.is(d!.words.length, 100_000);
  t.true(d!.entities.length > 1900);
});
