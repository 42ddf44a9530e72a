import test from 'ava';
import { PosWeigher, firstWordPos } from '../../src/llm/pos.js';
import { Retriever, TfidfEmbedder, charNgrams, cosine, demoPool, spanSim, topK, type Demo, type SparseVector } from '../../src/llm/retrieval.js';

const vec = (entries: Record<string, number>): SparseVector => new Map(Object.entries(entries));

test('SpanSim on hand-computed vectors', (t) => {
  // Query spans: s1 = x (weight 4, a proper noun), s2 = y (weight 2, a noun), s3 = 0.6x + 0.8y (weight 0: ignored).
  // Candidate gold spans: c1 = x, c2 = 0.6x + 0.8y.
  //   s1: max(cos(x, x) = 1, cos(x, c2) = 0.6) = 1
  //   s2: max(cos(y, x) = 0, cos(y, c2) = 0.8) = 0.8
  //   SpanSim = (4 * 1 + 2 * 0.8) / (4 + 2) = 5.6 / 6 = 0.9333...
  const query = [
    { vector: vec({ x: 1 }), weight: 4 },
    { vector: vec({ y: 1 }), weight: 2 },
    { vector: vec({ x: 0.6, y: 0.8 }), weight: 0 },
  ];
  const sim = spanSim(query, [vec({ x: 1 }), vec({ x: 0.6, y: 0.8 })]);
  t.true(Math.abs(sim! - 5.6 / 6) < 1e-12);
  // Only c2: s1 -> 0.6, s2 -> 0.8: (4 * 0.6 + 2 * 0.8) / 6 = 4.0 / 6.
  t.true(Math.abs(spanSim(query, [vec({ x: 0.6, y: 0.8 })])! - 4 / 6) < 1e-12);
  // A candidate with no gold spans, or only unrelated ones, scores 0.
  t.is(spanSim(query, []), 0);
  t.is(spanSim(query, [vec({ z: 1 })]), 0);
  // No query span with a positive weight: 0/0, undefined.
  t.is(spanSim([{ vector: vec({ x: 1 }), weight: 0 }], [vec({ x: 1 })]), null);
});

test('character n-gram TF-IDF cosine on a hand-computed case', (t) => {
  t.deepEqual(charNgrams('ab', 2, 3), ['#a', 'ab', 'b#', '#ab', 'ab#']);
  // Corpus "ab", "ac" (N = 2). Only '#a' is shared: df 2, idf = ln(3/3) + 1 = 1. Every other n-gram
  // has df 1, idf = ln(3/2) + 1 = 1.405465. Each string: one n-gram of weight 1 and four of 1.405465,
  // squared norm 1 + 4 * 1.405465^2 = 8.901329. cos("ab", "ac") = (1 * 1) / 8.901329 = 0.112343.
  const e = new TfidfEmbedder(['ab', 'ac'], 2, 3);
  const idf = Math.log(3 / 2) + 1;
  t.true(Math.abs(cosine(e.embed('ab'), e.embed('ac')) - 1 / (1 + 4 * idf * idf)) < 1e-12);
  t.true(Math.abs(cosine(e.embed('ab'), e.embed('AB')) - 1) < 1e-12, 'lowercased, L2-normalised');
});

test('top-k ranks by score with ties to the earlier candidate', (t) => {
  t.deepEqual(topK([0.2, 0.9, 0.5, 0.9, 0.1], 3), [1, 3, 2]);
  t.deepEqual(topK([0, 0, 0], 2), [0, 1]);
});

test('POS weights follow the first word: proper noun 4, noun 2, pronoun 1, else 0', async (t) => {
  const w = new PosWeigher();
  t.is(await firstWordPos('Tsinghua University'), 'PROPN');
  t.is(await w.weight('Tsinghua University'), 4);
  t.is(await w.weight('research interests'), 2);
  t.is(await w.weight('he'), 1);
  t.is(await w.weight('born in 1976'), 0);
});

test('the demonstration pool keeps only entities wholly inside each window', (t) => {
  const words = ['a', 'b', 'c', 'd', 'e'];
  const pool = demoPool(
    [
      {
        id: 'd',
        words,
        entities: [
          { start: 0, end: 1, type: 'T' },
          { start: 1, end: 3, type: 'T' },
          { start: 3, end: 5, type: 'U' },
        ],
      },
    ],
    2,
  );
  t.deepEqual(
    pool.map((p) => [p.id, p.words.join(''), p.entities]),
    [
      ['d@0', 'ab', [{ start: 0, end: 1, type: 'T' }]],
      ['d@2', 'cd', []],
      ['d@4', 'e', []],
    ],
  );
});

const pool: Demo[] = [
  { id: 'ml', words: ['He', 'studies', 'machine', 'learning', '.'], entities: [{ start: 2, end: 4, type: 'interest' }] },
  { id: 'tsinghua', words: ['She', 'joined', 'Tsinghua', 'University', '.'], entities: [{ start: 2, end: 4, type: 'org' }] },
  { id: 'empty', words: ['Nothing', 'here', '.'], entities: [] },
];

test('span-sim retrieval picks the candidate whose gold spans resemble the weighted query spans', async (t) => {
  const r = new Retriever(pool, { method: 'span-sim', k: 2, ngramMin: 3, ngramMax: 5, seed: 1 }, new PosWeigher());
  const picked = await r.select(['x'], ['Peking University', 'born in'], 'q');
  t.is(picked.length, 2);
  t.is(picked[0]!.id, 'tsinghua');
});

test('without a weighted query span, retrieval falls back to whole-window text similarity', async (t) => {
  const r = new Retriever(pool, { method: 'span-sim', k: 1, ngramMin: 3, ngramMax: 5, seed: 1 }, new PosWeigher());
  // "born in" starts with a verb (weight 0): SpanSim is undefined, the window text decides.
  const picked = await r.select(['Nothing', 'here', 'either', '.'], ['born in'], 'q');
  t.deepEqual(
    picked.map((d) => d.id),
    ['empty'],
  );
});

test('random retrieval is seeded per query window; none and k = 0 give no demonstrations', async (t) => {
  const random = (seed: number) => new Retriever(pool, { method: 'random', k: 2, ngramMin: 3, ngramMax: 5, seed }, new PosWeigher());
  const a = await random(5).select([], [], 'doc@0');
  t.deepEqual(
    (await random(5).select([], [], 'doc@0')).map((d) => d.id),
    a.map((d) => d.id),
  );
  t.is(a.length, 2);
  t.deepEqual(await new Retriever(pool, { method: 'none', k: 2, ngramMin: 3, ngramMax: 5, seed: 1 }, new PosWeigher()).select([], [], 'q'), []);
  t.deepEqual(await new Retriever(pool, { method: 'text-sim', k: 0, ngramMin: 3, ngramMax: 5, seed: 1 }, new PosWeigher()).select([], [], 'q'), []);
});
