import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { maxPoolWords } from '../../src/nn/pooling.js';
import { checkGradients } from '../../src/backend/gradcheck.js';
import { randomTensor, setupBackend } from './helpers.js';

test.before(async () => {
  await setupBackend();
});

// [CLS] w0 w0 w1 w2 w2 w2 [SEP]
const tokenWord = Int32Array.from([-1, 0, 0, 1, 2, 2, 2, -1]);
const states = [
  [9, 9],
  [1, 5],
  [3, 2],
  [-4, -6],
  [0, 7],
  [2, 1],
  [8, -1],
  [9, 9],
];

test("max over each word's sub-word states, specials ignored", (t) => {
  const out = maxPoolWords(tf.tensor2d(states), tokenWord, 3);
  t.deepEqual(out.arraySync(), [
    [3, 5],
    [-4, -6],
    [8, 7],
  ]);
});

test('gradient goes to the arg-max token only, once (no double count from repeated tokens)', (t) => {
  const x = tf.variable(tf.tensor2d(states));
  const dy = tf.tensor2d([
    [1, 2],
    [3, 4],
    [5, 6],
  ]);
  const { grads } = tf.variableGrads(() => tf.sum(tf.mul(maxPoolWords(x, tokenWord, 3), dy)) as tf.Scalar, [x]);
  t.deepEqual(grads[x.name]!.arraySync(), [
    [0, 0],
    [0, 2],
    [1, 0],
    [3, 4], // the one-token word is repeated 3 times in the gather; it must still get dy once
    [0, 6],
    [0, 0],
    [5, 0],
    [0, 0],
  ]);
  x.dispose();
});

test('a word without tokens pools to zeros', (t) => {
  const out = maxPoolWords(
    tf.tensor2d([
      [1, -2],
      [3, 4],
    ]),
    Int32Array.from([0, 2]),
    3,
  );
  t.deepEqual(out.arraySync(), [
    [1, -2],
    [0, 0],
    [3, 4],
  ]);
});

test('rejects word indices out of range and length mismatches', (t) => {
  t.throws(() => maxPoolWords(tf.zeros([2, 2]), Int32Array.from([0, 3]), 2), { message: /there are 2 words/ });
  t.throws(() => maxPoolWords(tf.zeros([2, 2]), Int32Array.from([0]), 1), { message: /1 word indices for 2/ });
});

test('gradients: finite differences', (t) => {
  // eps stays below the gaps between competing values, so no step crosses the max's kink.
  const r = checkGradients((x) => maxPoolWords(x as tf.Tensor2D, tokenWord, 3), [randomTensor([8, 5], 3)], { coords: 20, eps: 1e-3 });
  t.true(r.ok, JSON.stringify(r));
});
