import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, type BackendName } from '../../src/backend/index.js';
import { checkGradients, relativeError } from '../../src/backend/gradcheck.js';
import { backendsUnderTest, randn } from './helpers.js';

/** x -> x^2 * w (w broadcast over rows), with the gradient w.r.t. x multiplied by `scale` (1 = correct). */
function squareTimes(scale: number): (x: tf.Tensor, w: tf.Tensor) => tf.Tensor {
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [x, w, save] = args;
    if (!(x instanceof tf.Tensor) || !(w instanceof tf.Tensor) || typeof save !== 'function') throw new Error('bad customGrad call');
    save([x, w]);
    return {
      value: tf.mul(tf.square(x), w),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sw] = saved;
        if (sx === undefined || sw === undefined) throw new Error('nothing saved');
        const dx = tf.mul(dy, tf.mul(tf.mul(sx, sw), 2 * scale));
        const dw = tf.sum(tf.mul(dy, tf.square(sx)), 0);
        return [dx, dw];
      },
    };
  });
  return (x, w) => op(x, w);
}

// native where its addon is built (always on CI)
const backends: BackendName[] = backendsUnderTest();

for (const backend of backends) {
  test.serial(`${backend}: a correct custom gradient passes`, async (t) => {
    await initBackend(backend, { quiet: true });
    const inputs = [randn([3, 4], 1), randn([4], 2)];
    const r = checkGradients(squareTimes(1), inputs);
    tf.dispose(inputs);
    t.true(r.ok, `max relative error ${r.maxRelError}`);
  });

  test.serial(`${backend}: a gradient scaled by 1.1 fails clearly`, async (t) => {
    await initBackend(backend, { quiet: true });
    const inputs = [randn([3, 4], 1), randn([4], 2)];
    const r = checkGradients(squareTimes(1.1), inputs);
    tf.dispose(inputs);
    t.false(r.ok);
    t.true(r.maxRelError > 1e-2, `max relative error ${r.maxRelError}`);
    t.is(r.worst.input, 0); // only the gradient w.r.t. x is wrong
    t.true(Math.abs(r.worst.analytic / r.worst.numeric - 1.1) < 1e-3);
  });

  test.serial(`${backend}: no tensor is left behind`, async (t) => {
    await initBackend(backend, { quiet: true });
    const inputs = [randn([2, 3, 4], 3), randn([2, 4, 5], 4)];
    const custom = [randn([3, 4], 1), randn([4], 2)];
    const before = tf.memory();
    checkGradients((a, b) => tf.softmax(tf.matMul(a, b)), inputs);
    checkGradients(squareTimes(1.1), custom);
    const after = tf.memory();
    t.is(after.numTensors, before.numTensors);
    t.is(after.numBytes, before.numBytes);
    tf.dispose([...inputs, ...custom]);
  });
}

test.serial('a 0.1% error is caught where the terms do not cancel (elementwise op)', async (t) => {
  await initBackend('cpu', { quiet: true });
  const x = randn([3, 4], 5);
  const w = tf.onesLike(x);
  const r = checkGradients((a) => squareTimes(1.001)(a, w), [x], { coords: 12 });
  tf.dispose([x, w]);
  t.false(r.ok);
  t.true(r.maxRelError > 3e-4 && r.maxRelError < 7e-4, `max relative error ${r.maxRelError}`);
});

test.serial('coordinates the output does not depend on score zero', async (t) => {
  await initBackend('cpu', { quiet: true });
  const x = randn([4, 5], 6);
  // Every coordinate is checked; 14 of the 20 do not reach the output.
  const r = checkGradients((a) => tf.tanh(tf.slice(a, [1, 1], [2, 3])), [x], { coords: 20 });
  x.dispose();
  t.true(r.ok, `max relative error ${r.maxRelError}`);
});

test.serial('the same seed gives the same result; int inputs are rejected', async (t) => {
  await initBackend('cpu', { quiet: true });
  const x = randn([5, 6], 7);
  const f = (a: tf.Tensor): tf.Tensor => tf.logSumExp(a, -1);
  t.deepEqual(checkGradients(f, [x], { seed: 3 }), checkGradients(f, [x], { seed: 3 }));
  x.dispose();
  const ids = tf.tensor1d([1, 2], 'int32');
  t.throws(() => checkGradients((a) => tf.mul(a, 2), [ids]), { message: /input 0 must be float32, got int32/ });
  ids.dispose();
});

test('relativeError: symmetric, bounded, floored by the term scale, infinite on NaN', (t) => {
  t.is(relativeError(2, 2, 0), 0);
  t.is(relativeError(0, 0, 0), 0);
  t.true(Math.abs(relativeError(1, 1.1, 0) - 0.1 / 2.1) < 1e-12);
  t.is(relativeError(1, 1.1, 0), relativeError(1.1, 1, 0));
  t.is(relativeError(1, -1, 0), 1);
  t.true(Math.abs(relativeError(0.01, 0.011, 1) - 0.001) < 1e-12);
  t.is(relativeError(Number.NaN, 1, 0), Number.POSITIVE_INFINITY);
  t.is(relativeError(1, Number.POSITIVE_INFINITY, 0), Number.POSITIVE_INFINITY);
});
