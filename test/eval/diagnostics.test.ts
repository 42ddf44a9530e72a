import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import type { Segment } from '../../src/data/segmenter.js';
import type { Document } from '../../src/data/types.js';
import { bestThreshold, oracleCeiling, summarizeScores, type ThresholdScore } from '../../src/eval/diagnostics.js';
import { evaluateDocuments, groupSegments } from '../../src/eval/evaluate.js';
import { prf } from '../../src/eval/metrics.js';
import { createModel } from '../../src/models/index.js';
import type { Method } from '../../src/config/schema.js';
import { setupBackend, syntheticSegments, tinyConfig } from '../models/helpers.js';

test.before(async () => {
  await setupBackend();
});

const seg = (docId: string, wordOffset: number, words: number, entities: Segment['entities']): Segment => ({
  docId,
  index: wordOffset === 0 ? 0 : 1,
  wordOffset,
  words,
  tokenIds: new Int32Array(words + 2),
  tokenWord: new Int32Array(words + 2),
  entities,
  droppedEntities: 0,
});

test('oracle ceiling by hand: a cut entity, one beyond the span limit, a duplicate in gold', (t) => {
  const docs: Document[] = [
    {
      id: 'd',
      words: Array.from({ length: 10 }, () => 'w'),
      entities: [
        { start: 0, end: 1, type: 'A' },
        { start: 0, end: 1, type: 'A' }, // a duplicate collapses, as in the metric
        { start: 4, end: 6, type: 'A' }, // crosses the cut at word 5
        { start: 6, end: 10, type: 'B' }, // 4 words: beyond a limit of 3
        { start: 7, end: 8, type: 'B' },
      ],
    },
  ];
  const segments = [
    seg('d', 0, 5, [{ start: 0, end: 1, type: 'A' }]),
    seg('d', 5, 5, [
      { start: 1, end: 5, type: 'B' },
      { start: 2, end: 3, type: 'B' },
    ]),
  ];
  const limit3 = (s: Segment, i: number) => s.entities[i]!.end - s.entities[i]!.start <= 3;
  const o = oracleCeiling(docs, segments, limit3);
  t.deepEqual(o, { gold: 4, reachable: 2, cutBySegments: 1, beyondSpanLimit: 1, recall: 0.5, f1: 2 / 3 });
  const unknown = oracleCeiling(docs, segments, null);
  t.is(unknown.reachable, 3);
  t.is(unknown.beyondSpanLimit, null);
});

test('score summary quantiles and share at the threshold, by hand', (t) => {
  const s = summarizeScores([0.9, 0.1, 0.5, 0.3, 0.7], 0.5)!;
  t.is(s.count, 5);
  t.true(Math.abs(s.mean - 0.5) < 1e-12);
  t.is(s.p50, 0.5);
  t.true(Math.abs(s.p25 - 0.3) < 1e-12);
  t.true(Math.abs(s.p10 - 0.18) < 1e-12);
  t.is(s.max, 0.9);
  t.is(s.atThreshold, 0.6);
  t.is(summarizeScores([], 0.5), null);
});

test('the tuned threshold is the best F1, ties going to the one nearest 0.5', (t) => {
  const at = (threshold: number, tp: number): ThresholdScore => ({ threshold, overall: prf(tp, 10 - tp, 10 - tp), predicted: 10 });
  t.is(bestThreshold([at(0.1, 3), at(0.3, 6), at(0.7, 6), at(0.9, 2)])!.threshold, 0.3);
  t.is(bestThreshold([at(0.2, 6), at(0.6, 6)])!.threshold, 0.6);
  t.is(bestThreshold([]), null);
});

const METHODS: Exclude<Method, 'el4ner'>[] = ['sener', 'cnn-ner', 'utc-ie', 'global-pointer', 'span-enum'];

for (const method of METHODS) {
  test.serial(`${method}: inspect decodes like predict at each threshold, and its gold scores are the probabilities decoding reads`, (t) => {
    const data = syntheticSegments({ seed: 3, docs: 4, words: 40, entitiesPerDoc: 10, entityLength: { dist: 'uniform', min: 1, max: 6 } });
    // Small span limits so that some gold is out of reach (SeNER: w + 1 = 4 words; the others: 4).
    const config = tinyConfig({ method, sener: { window: 3 }, spanEnum: { maxSpanWords: 4 }, globalPointer: { maxSpanWords: 4 } });
    const model = createModel(config, { types: data.types, vocabSize: data.vocabSize });
    const batch = { segments: data.segments };
    const thresholds = [0.5, 0.0, 0.3];
    const inspected = model.inspect!(batch, thresholds);
    thresholds.forEach((threshold, k) => {
      t.deepEqual(
        inspected.map((i) => i.spans[k]),
        model.predict(batch, { threshold }),
      );
    });
    let compared = 0;
    let unreachable = 0;
    data.segments.forEach((s, n) => {
      const scores = inspected[n]!.goldScores;
      t.is(scores.length, s.entities.length);
      s.entities.forEach((e, i) => {
        const g = scores[i];
        if (g === null || g === undefined) {
          unreachable++;
          t.true(e.end - e.start > 4, `${method}: a ${e.end - e.start}-word entity is not beyond the limit`);
          return;
        }
        t.true(g >= 0 && g <= 1);
        // At threshold 0 a predicted span with the gold's boundaries and type carries the probability decoding read for it.
        const hit = inspected[n]!.spans[1]!.find((p) => p.start === e.start && p.end === e.end && p.type === e.type);
        if (hit !== undefined) {
          compared++;
          t.true(Math.abs(hit.score - g) < 1e-6, `${method}: ${hit.score} vs ${g}`);
        }
      });
    });
    if (method !== 'cnn-ner' && method !== 'utc-ie') t.true(unreachable > 0, 'some gold lies beyond the span limit');
    t.true(compared > 0, 'at least one gold span was predicted at threshold 0');
    model.params.dispose();
  });
}

test.serial('evaluateDocuments: the sweep scores each threshold as a separate evaluation at that threshold would', async (t) => {
  const data = syntheticSegments({ seed: 5, docs: 3, words: 50, entitiesPerDoc: 5 });
  const model = createModel(tinyConfig({ method: 'cnn-ner' }), { types: data.types, vocabSize: data.vocabSize });
  const byDoc = groupSegments(data.segments);
  const ev = await evaluateDocuments(model, data.docs, byDoc, 2, { profile: false, threshold: 0.5, sweep: [0.2, 0.4] });
  t.is(ev.threshold, 0.5);
  for (const s of ev.sweep) {
    const alone = await evaluateDocuments(model, data.docs, byDoc, 2, { profile: false, threshold: s.threshold });
    t.deepEqual(s.overall, alone.metrics.overall);
    t.is(s.predicted, alone.diagnostics.predicted);
  }
  t.is(ev.diagnostics.oracle.gold, new Set(data.docs.flatMap((d) => d.entities.map((e) => `${d.id}:${e.start}:${e.end}:${e.type}`))).size);
  t.true(ev.diagnostics.goldScores !== null);
  t.is(tf.memory().numTensors >= 0, true);
  model.params.dispose();
});
