/**
 * The backward pass frees each gradient once the next node is reached (src/backend/tape.ts): on a
 * chain of n element-wise ops the pass holds the n saved activations and a few gradients, not 2n
 * tensors (counted on the native engine); the values are unchanged and the caller's dy survives.
 * (Nested passes: test/train/recompute.test.ts.)
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, watchBufferPeak } from '../../src/backend/index.js';
import { backendsUnderTest } from './helpers.js';

const N = 24;
const SIZE = 4096;

/** y = sum(tanh^N(x)): tanh keeps its output for the backward pass, so the tape saves N activations. */
const chain = (x: tf.Tensor): tf.Scalar => {
  let h = x;
  for (let i = 0; i < N; i++) h = tf.tanh(h);
  return tf.sum(h);
};

for (const backend of backendsUnderTest()) {
  test.serial(`${backend}: a chain's backward pass holds its activations and a few gradients, not one gradient per op`, async (t) => {
    await initBackend(backend, { quiet: true });
    const x = tf.randomUniform([SIZE], -1, 1, 'float32', 1);
    const before = tf.memory().numTensors;
    // Buffers are counted on the native engine only (tf.profile counts a saved view of a tensor again).
    const base = tf.memory().numBytes;
    const peak = watchBufferPeak();
    tf.grad(chain)(x).dispose();
    if (peak !== null) {
      const tensors = (peak() - base) / (SIZE * 4);
      // N saved activations, dy, the gradients in flight and the sum's; without the release about 2N.
      t.true(tensors <= N + 6, `peak ${tensors.toFixed(1)} tensors of the chain's size`);
    }
    t.is(tf.memory().numTensors, before);
    // The values: d/dx of tanh^N by the chain rule, computed by hand.
    const xs = x.dataSync();
    const g = tf.grad(chain)(x);
    const gs = g.dataSync();
    let worst = 0;
    for (let i = 0; i < SIZE; i += 97) {
      let h = xs[i]!;
      let d = 1;
      for (let k = 0; k < N; k++) {
        h = Math.tanh(h);
        d *= 1 - h * h;
      }
      worst = Math.max(worst, Math.abs(d - gs[i]!));
    }
    t.true(worst < 1e-5, `max error ${worst}`);
    tf.dispose([x, g]);
  });

  test.serial(`${backend}: the caller's dy survives the release`, async (t) => {
    await initBackend(backend, { quiet: true });
    const x = tf.tensor1d([0.3, -0.2, 0.5]);
    const dy = tf.tensor1d([1, 2, 3]);
    const g = tf.grads((a: tf.Tensor) => tf.tanh(tf.tanh(a)))([x], dy)[0]!;
    t.false(dy.isDisposed);
    t.deepEqual(Array.from(dy.dataSync()), [1, 2, 3]);
    t.true(Math.max(...Array.from(g.dataSync()).map(Math.abs)) > 0);
    tf.dispose([x, dy, g]);
  });
}
