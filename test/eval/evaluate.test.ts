import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { segmentDocument, type Segment } from '../../src/data/segmenter.js';
import type { Document, ScoredEntity } from '../../src/data/types.js';
import { evaluateDocuments, groupSegments, predictDocuments } from '../../src/eval/evaluate.js';
import type { Batch, SpanModel } from '../../src/models/span-model.js';
import { ParamStore } from '../../src/nn/params.js';
import { setupBackend } from '../train/helpers.js';
import { segmentToy } from '../train/toy-model.js';

test.before(async () => {
  await setupBackend();
});

const words = (n: number): string[] => Array.from({ length: n }, (_, i) => `w${i % 10}`);

/** 14 words; maxLen 8 gives segments of 6 words at offsets 0, 6, 12. */
const long: Document = {
  id: 'long',
  words: words(14),
  entities: [
    { start: 1, end: 2, type: 'A' },
    { start: 5, end: 8, type: 'B' }, // crosses the cut at word 6: no segment holds it
    { start: 12, end: 14, type: 'A' },
  ],
};
const short: Document = { id: 'short', words: words(4), entities: [{ start: 0, end: 2, type: 'A' }] };

/** Predicts scripted spans per (document, segment index), relative to the segment; leaks a tensor on purpose. */
class ScriptedModel implements SpanModel {
  readonly method = 'scripted';
  readonly types = ['A', 'B'];
  readonly params = new ParamStore(1);
  readonly batches: string[][] = [];
  constructor(private readonly script: Record<string, ScoredEntity[]>) {}
  loss(): tf.Scalar {
    return tf.scalar(0);
  }
  predict(batch: Batch): ScoredEntity[][] {
    this.batches.push(batch.segments.map((s) => `${s.docId}#${s.index}`));
    tf.ones([4, 4]).mul(2); // forgotten tensors: the evaluator's scope must clean them up
    return batch.segments.map((s) => this.script[`${s.docId}#${s.index}`] ?? []);
  }
  paramGroup(): 'head' {
    return 'head';
  }
}

const span = (start: number, end: number, type: string, score = 0.9): ScoredEntity => ({ start, end, type, score });

const segments = new Map<string, Segment[]>([
  ['long', segmentToy(long, 8)],
  ['short', segmentToy(short, 8)],
]);

const script = {
  // segment 0 covers words 0-5, segment 1 words 6-11, segment 2 words 12-13
  'long#0': [span(1, 2, 'A'), span(5, 6, 'B', 0.6)],
  'long#1': [span(0, 2, 'B', 0.8)], // words 6-7: shares no word with segment 0's B [5,6), so both stay
  'long#2': [span(0, 2, 'A')],
  'short#0': [span(0, 2, 'A'), span(3, 4, 'B')],
};

test('segments are predicted in batches across documents and merged per document at word offsets', (t) => {
  t.deepEqual(
    segments.get('long')!.map((s) => s.wordOffset),
    [0, 6, 12],
  );
  const model = new ScriptedModel(script);
  const before = tf.memory().numTensors;
  const preds = predictDocuments(model, [long, short], segments, 3);
  t.is(tf.memory().numTensors, before, 'tensors leaked by predict are disposed');
  t.deepEqual(model.batches, [['long#0', 'long#1', 'long#2'], ['short#0']]);
  t.deepEqual(preds.get('long'), [span(1, 2, 'A'), span(5, 6, 'B', 0.6), span(6, 8, 'B', 0.8), span(12, 14, 'A')]);
  t.deepEqual(preds.get('short'), [span(0, 2, 'A'), span(3, 4, 'B')]);
  // Batch size does not change the result.
  t.deepEqual(predictDocuments(new ScriptedModel(script), [long, short], segments, 1), preds);
});

test('an entity split by overlapping segments is united by the merge rule and scores as found', async (t) => {
  // maxLen 8, overlap 2: segments cover words [0,6) and [4,10), sharing words 4 and 5.
  const doc: Document = { id: 'ov', words: words(10), entities: [{ start: 3, end: 7, type: 'A' }] };
  const ids = Int32Array.from(doc.words, (w) => Number(w.slice(1)) + 2);
  const segs = segmentDocument(doc, { ids, wordIndex: Int32Array.from(ids, (_, i) => i) }, { maxLen: 8, overlap: 2, cls: 0, sep: 1 });
  t.deepEqual(
    segs.map((s) => s.wordOffset),
    [0, 4],
  );
  const model = new ScriptedModel({ 'ov#0': [span(3, 6, 'A', 0.7)], 'ov#1': [span(0, 3, 'A', 0.8)] });
  const ev = await evaluateDocuments(model, [doc], new Map([['ov', segs]]), 4, { profile: false });
  t.deepEqual(ev.predictions.get('ov'), [span(3, 7, 'A', 0.8)]);
  t.is(ev.metrics.overall.f1, 1);
});

test('scores use the full documents as gold: an entity lost at a segment cut is a false negative', async (t) => {
  const ev = await evaluateDocuments(new ScriptedModel(script), [long, short], segments, 2);
  // gold: long A[1,2) B[5,8) A[12,14), short A[0,2); predicted: long A[1,2) B[5,6) B[6,8) A[12,14), short A[0,2) B[3,4)
  t.deepEqual([ev.metrics.overall.tp, ev.metrics.overall.fp, ev.metrics.overall.fn], [3, 3, 1]);
  t.is(ev.metrics.perType.B!.fn, 1);
  t.true(ev.msPerDocument !== null && ev.msPerDocument >= 0);
  t.true(ev.peakBytesInference !== null && ev.peakBytesInference >= 4 * 16);
  t.true(ev.rssBytes > 0);
  t.is(ev.predictions.get('short')!.length, 2);
  const unprofiled = await evaluateDocuments(new ScriptedModel(script), [long, short], segments, 2, { profile: false });
  t.is(unprofiled.peakBytesInference, null);
  t.deepEqual(unprofiled.metrics, ev.metrics);
});

test('mistakes of the caller or the model are errors', (t) => {
  t.throws(() => predictDocuments(new ScriptedModel(script), [long, short], new Map([['long', segments.get('long')!]]), 2), {
    message: /"short" has no segments/,
  });
  t.throws(() => predictDocuments(new ScriptedModel(script), [short, short], segments, 2), { message: /appears twice/ });
  const wrong = new ScriptedModel(script);
  wrong.predict = () => [];
  t.throws(() => predictDocuments(wrong, [short], segments, 2), { message: /returned 0 span lists for 1 segments/ });
});

test("groupSegments sorts each document's segments by index", (t) => {
  const segs = segments.get('long')!;
  const grouped = groupSegments([segs[2]!, ...segments.get('short')!, segs[0]!, segs[1]!]);
  t.deepEqual(
    grouped.get('long')!.map((s) => s.index),
    [0, 1, 2],
  );
  t.is(grouped.get('short')!.length, 1);
});
