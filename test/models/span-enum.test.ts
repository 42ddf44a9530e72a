import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { checkGradients } from '../../src/backend/gradcheck.js';
import { initBackend } from '../../src/backend/index.js';
import type { Segment } from '../../src/data/segmenter.js';
import { ParamStore } from '../../src/nn/params.js';
import {
  createSpanEnumHead,
  createSpanEnumModel,
  decodeSpanEnum,
  spanEnumLogits,
  spanEnumLoss,
  spanEnumNll,
  spanLabels,
  spanPlan,
  widthBucket,
  WIDTH_BUCKETS,
  type SpanEnumHead,
} from '../../src/models/span-enum.js';
import { createRng } from '../../src/util/rng.js';
import { randomTensor } from '../nn/helpers.js';
import { backendsUnderTest, fitUntilPerfect, setupBackend, syntheticSegments, tinyConfig } from './helpers.js';

// Every test sets its backend first and runs serially: tfjs has one global backend, and the gradient
// checks switch between cpu and wasm.

const types = ['A', 'B'];
const typeIndex = new Map(types.map((t, i) => [t, i]));

test.serial('width buckets: exact up to 16, then powers of two, capped', async (t) => {
  await setupBackend();
  t.deepEqual([1, 2, 16].map(widthBucket), [0, 1, 15]);
  t.deepEqual([17, 32, 33, 64, 65].map(widthBucket), [16, 16, 17, 17, 18]);
  t.is(widthBucket(10 ** 9), WIDTH_BUCKETS - 1);
  t.throws(() => widthBucket(0));
});

test.serial('span plan: every span of at most K words, ordered by start then end', async (t) => {
  await setupBackend();
  const p = spanPlan(5, 2);
  t.is(p.starts.length, 9); // 4 spans of 2 words + 5 of 1
  t.deepEqual([...p.starts], [0, 0, 1, 1, 2, 2, 3, 3, 4]);
  t.deepEqual([...p.ends], [0, 1, 1, 2, 2, 3, 3, 4, 4]);
  t.deepEqual([...p.buckets], [0, 1, 0, 1, 0, 1, 0, 1, 0]);
  const all = spanPlan(5, 'all');
  t.is(all.starts.length, 15); // L (L + 1) / 2
  t.is(
    all.offsets[2]! + (4 - 2),
    [...all.starts].findIndex((s, n) => s === 2 && all.ends[n] === 4),
  );
  t.is(spanPlan(3, 16).starts.length, 6); // K larger than L: all spans
});

test.serial('labels: too long dropped, two types on one span keep the first type, duplicates are fine', async (t) => {
  await setupBackend();
  const p = spanPlan(6, 3);
  const { classes, dropped } = spanLabels(
    p,
    [
      { start: 0, end: 2, type: 'B' },
      { start: 0, end: 2, type: 'A' }, // same span, second type: A comes first in the type order
      { start: 3, end: 4, type: 'B' },
      { start: 3, end: 4, type: 'B' }, // duplicate tuple: not a loss
      { start: 1, end: 5, type: 'A' }, // 4 words > K = 3
    ],
    typeIndex,
  );
  t.is(dropped, 2);
  t.is(classes[p.offsets[0]! + 1], 0);
  t.is(classes[p.offsets[3]!], 1);
  t.is([...classes].filter((c) => c !== 2).length, 2);
  t.throws(() => spanLabels(p, [{ start: 0, end: 1, type: 'C' }], typeIndex), { message: /not one of the model's types/ });
});

test.serial('loss: the cross-entropy of a hand case, averaged over spans', async (t) => {
  await setupBackend();
  // Two spans, classes [A, B, none]. Span 0 logits (0, 1, 2), gold A; span 1 logits (1, 1, 1), gold none.
  // -log softmax: span 0: log(e^0 + e^1 + e^2) - 0 = 2.40760596; span 1: log 3 = 1.09861229. Mean 1.75310912.
  const logits = tf.tensor2d([0, 1, 2, 1, 1, 1], [2, 3]);
  const loss = spanEnumLoss(logits, Int32Array.from([0, 2]));
  t.true(Math.abs(loss.dataSync()[0]! - 1.75310912) < 1e-5);
  tf.dispose([logits, loss]);
});

test.serial('decode: argmax over types + none, none dropped, nested spans kept, probability as score', async (t) => {
  await setupBackend();
  const p = spanPlan(3, 'all'); // (0,0) (0,1) (0,2) (1,1) (1,2) (2,2)
  // prettier-ignore
  const probs = Float32Array.from([
    0.2,
    0.1,
    0.7, // (0,0) none
    0.4,
    0.0,
    0.6, // (0,1) none
    0.6,
    0.3,
    0.1, // (0,2) A
    0.1,
    0.5,
    0.4, // (1,1) B, nested in (0,2)
    0.3,
    0.3,
    0.4, // (1,2) none (the largest type probability is below none's)
    0.5,
    0.2,
    0.3, // (2,2) A, overlaps nothing new but nested in (0,2)
  ]);
  const out = decodeSpanEnum(probs, p, types);
  t.deepEqual(
    out.map((e) => [e.start, e.end, e.type]),
    [
      [0, 3, 'A'],
      [1, 2, 'B'],
      [2, 3, 'A'],
    ],
  );
  t.true(Math.abs(out[1]!.score - 0.5) < 1e-7);
});

/** A head of random values (not the init, so zero biases matter) given as plain tensors. */
function randomHead(H: number, E: number, M: number, R: number, seed: number): tf.Tensor[] {
  return [
    randomTensor([WIDTH_BUCKETS, E], seed, 0.5),
    randomTensor([2 * H + E, M], seed + 1, 0.4),
    randomTensor([M], seed + 2, 0.2),
    randomTensor([M, R + 1], seed + 3, 0.4),
    randomTensor([R + 1], seed + 4, 0.2),
  ];
}

const asHead = (width: tf.Tensor, W1: tf.Tensor, b1: tf.Tensor, W2: tf.Tensor, b2: tf.Tensor): SpanEnumHead => ({
  width: width as tf.Tensor2D,
  mlp1: { W: W1 as tf.Tensor2D, b: b1 as tf.Tensor1D, lora: null },
  mlp2: { W: W2 as tf.Tensor2D, b: b2 as tf.Tensor1D, lora: null },
});

for (const backend of backendsUnderTest()) {
  test.serial(`${backend}: finite-difference gradients of the per-span losses w.r.t. word states and head parameters`, async (t) => {
    await initBackend(backend, { quiet: true });
    const L = 6;
    const H = 5;
    const plan = spanPlan(L, 3);
    const { classes } = spanLabels(
      plan,
      [
        { start: 1, end: 3, type: 'A' },
        { start: 4, end: 5, type: 'B' },
      ],
      typeIndex,
    );
    const inputs = [randomTensor([L, H], 21), ...randomHead(H, 3, 7, 2, 30)];
    // The per-span losses, not their mean: a scalar loss of ~1 leaves float32 differences too
    // coarse for gradient entries of ~1e-3; spanEnumLoss is their mean (tested by hand above).
    const f = (X: tf.Tensor, ...w: tf.Tensor[]): tf.Tensor =>
      spanEnumNll(spanEnumLogits(X as tf.Tensor2D, asHead(w[0]!, w[1]!, w[2]!, w[3]!, w[4]!), plan, { dropout: 0, training: false }), classes);
    const before = tf.memory().numTensors;
    // eps 0.1 rather than 0.05: here float32 rounding of the N outputs, not truncation, dominates the
    // estimate (measured: the error shrinks as eps grows up to 0.2).
    const r = checkGradients(f, inputs, { coords: 8, eps: 0.1 });
    t.true(r.ok, `max relative error ${r.maxRelError} at ${JSON.stringify(r.worst)}`);
    t.is(tf.memory().numTensors, before);
    tf.dispose(inputs);
  });
}

test.serial('model: parameter names and groups, droppedGold, dropout follows the rng', async (t) => {
  await setupBackend();
  const data = syntheticSegments({ docs: 1, words: 20, entitiesPerDoc: 3, entityLength: { dist: 'fixed', length: 3 }, split: true });
  const config = tinyConfig({ method: 'span-enum', spanEnum: { maxSpanWords: 2, widthEmbedding: 4, mlpHidden: 16, dropout: 0.5 } });
  const model = createSpanEnumModel(config, { types: data.types, vocabSize: data.vocabSize });
  t.deepEqual(model.params.names('head').sort(), ['head.mlp1.W', 'head.mlp1.b', 'head.mlp2.W', 'head.mlp2.b', 'head.width_embed']);
  t.is(model.params.get('head.mlp1.W').shape[0], 2 * 32 + 4);
  t.is(model.paramGroup('encoder.l0.q.W'), 'encoder');
  t.is(model.paramGroup('head.mlp1.W'), 'head');
  const batch = { segments: data.segments };
  const a = model.loss(batch, { rng: createRng(1) });
  const b = model.loss(batch, { rng: createRng(1) });
  const c = model.loss(batch, { rng: createRng(2) });
  t.is(a.dataSync()[0], b.dataSync()[0]);
  t.not(a.dataSync()[0], c.dataSync()[0]);
  // Every entity has 3 words > maxSpanWords 2: all of them dropped, on each of the 3 calls.
  t.is(model.droppedGold, 3 * 3);
  tf.dispose([a, b, c]);
  // No dropout at inference: predictions repeat exactly.
  t.deepEqual(model.predict(batch), model.predict(batch));
  model.params.dispose();
});

test.serial('model: an empty segment gives loss 0 and no predictions', async (t) => {
  await setupBackend();
  const config = tinyConfig({ method: 'span-enum' });
  const model = createSpanEnumModel(config, { types, vocabSize: 10 });
  const empty: Segment = {
    docId: 'e',
    index: 0,
    wordOffset: 0,
    words: 0,
    tokenIds: Int32Array.from([2, 3]),
    tokenWord: Int32Array.from([-1, -1]),
    entities: [],
    droppedEntities: 0,
  };
  const { value, grads } = tf.variableGrads(() => model.loss({ segments: [empty] }, { rng: createRng(1) }), model.params.trainable());
  t.is(value.dataSync()[0], 0);
  tf.dispose([value, ...Object.values(grads)]);
  t.deepEqual(model.predict({ segments: [empty] }), [[]]);
  model.params.dispose();
});

for (const backend of backendsUnderTest()) {
  test.serial(`${backend}: overfit: two synthetic documents reach strict F1 = 1.0`, async (t) => {
    await initBackend(backend, { quiet: true });
    const data = syntheticSegments({ docs: 2, words: 30, entitiesPerDoc: 4, split: true, seed: 5 });
    const config = tinyConfig({ method: 'span-enum', spanEnum: { maxSpanWords: 6, widthEmbedding: 8, mlpHidden: 64, dropout: 0 } });
    const model = createSpanEnumModel(config, { types: data.types, vocabSize: data.vocabSize });
    const r = fitUntilPerfect(model, data, { lr: 1e-2, maxSteps: 300, checkEvery: 5 });
    t.log(`span-enum: F1 ${r.f1} after ${r.steps} steps, ${r.msPerStep.toFixed(1)} ms/step, loss ${r.firstLoss.toFixed(3)} -> ${r.lastLoss.toFixed(4)}`);
    t.is(r.f1, 1);
    t.true(r.lastLoss < r.firstLoss);
    model.params.dispose();
  });
}

test.serial('no tensor leaks: loss with gradients, and predict', async (t) => {
  await setupBackend();
  const data = syntheticSegments({ docs: 2, words: 15, split: true });
  const config = tinyConfig({ method: 'span-enum', spanEnum: { maxSpanWords: 'all', widthEmbedding: 4, mlpHidden: 16, dropout: 0.1 } });
  const params = new ParamStore(3);
  const model = createSpanEnumModel(config, { types: data.types, vocabSize: data.vocabSize }, params);
  t.is(model.params, params);
  const before = tf.memory().numTensors;
  for (let i = 0; i < 2; i++) {
    const { value, grads } = tf.variableGrads(() => model.loss({ segments: data.segments }, { rng: createRng(i) }), params.trainable());
    tf.dispose([value, ...Object.values(grads)]);
    model.predict({ segments: data.segments });
  }
  t.is(tf.memory().numTensors, before);
  // createSpanEnumHead reuses existing parameters instead of making new ones.
  createSpanEnumHead(params, 32, 2, config.spanEnum);
  t.is(tf.memory().numTensors, before);
  params.dispose();
});

test('noneWeight weights none spans in the mean (hand case)', (t) => {
  // Two spans: class 0 (an entity, logits [2, 0]: NLL ln(1 + e^-2)) and class 1 (none, the last
  // class, logits [0, 0]: NLL ln 2). Weighted mean with noneWeight 0.25: (nll0 + 0.25 nll1) / 1.25;
  // plain mean: (nll0 + nll1) / 2.
  const logits = tf.tensor2d([
    [2, 0],
    [0, 0],
  ]);
  const nll0 = Math.log(1 + Math.exp(-2));
  const nll1 = Math.log(2);
  const weighted = spanEnumLoss(logits, Int32Array.from([0, 1]), 0.25).dataSync()[0]!;
  t.true(Math.abs(weighted - (nll0 + 0.25 * nll1) / 1.25) < 1e-6);
  const plain = spanEnumLoss(logits, Int32Array.from([0, 1])).dataSync()[0]!;
  t.true(Math.abs(plain - (nll0 + nll1) / 2) < 1e-6);
  logits.dispose();
});
