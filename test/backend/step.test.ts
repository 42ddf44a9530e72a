import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { measureStep, timeStep } from '../../src/backend/step.js';

test.before(async () => {
  await initBackend('cpu', { quiet: true });
});

test.serial('measureStep returns the value untouched and the peak of live tensor bytes', async (t) => {
  const x = tf.ones([256, 256]); // 256 KiB alive before the step
  const base = tf.memory().numBytes;
  const m = await measureStep(() =>
    tf.tidy(() => {
      const big = tf.mul(x, 2); // +256 KiB
      const bigger = tf.matMul(big, big); // +256 KiB, both alive
      return tf.sum(bigger).dataSync()[0]!;
    }),
  );
  t.is(m.value, 256 * 256 * 256 * 4);
  t.is(m.baselineBytes, base);
  t.true(m.peakBytes! >= base + 2 * 256 * 256 * 4, `peak ${m.peakBytes}, base ${base}`);
  t.true(m.ms >= 0);
  t.true(m.rssBytes > 0);
  t.is(m.wasmHeapBytes, null);
  t.is(tf.memory().numBytes, base, 'the probe keeps nothing');
  x.dispose();
});

test.serial('a step that throws leaves tfjs out of profiling mode', async (t) => {
  await t.throwsAsync(
    measureStep(() => {
      throw new Error('boom');
    }),
    { message: 'boom' },
  );
  t.false(tf.engine().state.profiling);
  const later = await measureStep(() => tf.tidy(() => tf.add(tf.scalar(1), 1).dataSync()[0]!), { profile: false });
  t.is(later.value, 2);
  t.is(later.peakBytes, null);
  // A profile after the failure still records its own kernels only.
  const again = await measureStep(() => tf.tidy(() => tf.add(tf.scalar(1), 1).dataSync()[0]!));
  t.true(again.peakBytes !== null);
});

test('timeStep times a function', (t) => {
  const r = timeStep(() => 42);
  t.is(r.value, 42);
  t.true(r.ms >= 0);
});
