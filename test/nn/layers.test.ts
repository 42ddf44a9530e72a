import test, { type ExecutionContext } from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { createLayerNorm, createLinear, dropout, embedding, gelu, initBiasToPrior, layerNorm, linear, linearSplit } from '../../src/nn/layers.js';
import { ParamStore } from '../../src/nn/params.js';
import { createRng } from '../../src/util/rng.js';
import { fusedGelu, fusedLayerNorm } from '../../src/backend/fused.js';
import { checkGradients } from '../../src/backend/gradcheck.js';
import { initBackend, type BackendName } from '../../src/backend/index.js';
import { backendsUnderTest } from '../backend/helpers.js';
import { checkVarGradients, maxAbsDiff, randomTensor, setupBackend } from './helpers.js';

test.before(async () => {
  await setupBackend();
});

/**
 * A serial test per backend under test (layerNorm and gelu are fused kernels on native): each
 * switches the global backend and restores the default afterwards, since ava runs the concurrent
 * tests after the serial ones.
 */
function onEachBackend(title: string, body: (t: ExecutionContext, backend: BackendName) => void): void {
  for (const backend of backendsUnderTest()) {
    test.serial(`${backend}: ${title}`, async (t) => {
      await initBackend(backend, { quiet: true });
      try {
        tf.tidy(() => body(t, backend));
      } finally {
        await setupBackend();
      }
    });
  }
}

function randomize(v: tf.Tensor, seed: number): void {
  if (!(v instanceof tf.Variable)) throw new Error('not a variable');
  tf.tidy(() => v.assign(randomTensor(v.shape, seed, 0.5)));
}

test('linear computes x W + b, and LoRA adds (alpha / r) x A B', (t) => {
  const s = new ParamStore(3);
  const plain = createLinear(s, 'p', 3, 2);
  const withLora = createLinear(s, 'p', 3, 2, { lora: { rank: 2, alpha: 4 } });
  t.is(withLora.W, plain.W);
  randomize(plain.b!, 1);
  const x = randomTensor([5, 3], 2) as tf.Tensor2D;
  // B starts at zero, so adding LoRA changes nothing.
  t.true(maxAbsDiff(linear(x, withLora), linear(x, plain)) < 1e-7);
  randomize(withLora.lora!.B, 3);
  const expected = tf.tidy(() =>
    tf.add(
      tf.add(tf.matMul(x, plain.W as tf.Tensor2D), plain.b!),
      tf.mul(tf.matMul(tf.matMul(x, withLora.lora!.A as tf.Tensor2D), withLora.lora!.B as tf.Tensor2D), 2),
    ),
  );
  t.is(withLora.lora!.scale, 2);
  t.true(maxAbsDiff(linear(x, withLora), expected) < 1e-6);
  t.true(maxAbsDiff(linear(x, withLora), linear(x, plain)) > 1e-3);
  s.dispose();
});

test('linearSplit equals column groups of linear', (t) => {
  const s = new ParamStore(3);
  const w = createLinear(s, 'q', 6, 8, { lora: { rank: 2, alpha: 2 } });
  randomize(w.b!, 4);
  randomize(w.lora!.B, 5);
  const x = randomTensor([4, 6], 6) as tf.Tensor2D;
  const whole = linear(x, w);
  const parts = linearSplit(x, w, 4);
  t.is(parts.length, 4);
  parts.forEach((p, i) => {
    t.true(maxAbsDiff(p, tf.slice(whole, [0, 2 * i], [4, 2])) < 1e-6);
  });
  t.throws(() => linearSplit(x, w, 3), { message: /do not split/ });
  s.dispose();
});

onEachBackend('layerNorm gives rows of mean 0 and variance 1 before the affine part', (t) => {
  const s = new ParamStore(3);
  const n = createLayerNorm(s, 'ln', 8);
  const x = randomTensor([3, 8], 7, 5) as tf.Tensor2D;
  const { mean, variance } = tf.moments(layerNorm(x, n), -1);
  t.true(Math.max(...mean.dataSync().map(Math.abs)) < 1e-5);
  t.true(Math.max(...variance.dataSync().map((v) => Math.abs(v - 1))) < 1e-3);
  s.dispose();
});

onEachBackend('gelu matches the tanh approximation at known points', (t) => {
  const y = gelu(tf.tensor1d([-3, -1, 0, 1, 2])).dataSync();
  const ref = (x: number): number => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
  [-3, -1, 0, 1, 2].forEach((x, i) => {
    t.true(Math.abs(y[i]! - ref(x)) < 1e-6);
  });
  t.true(Math.abs(y[3]! - 0.841192) < 1e-5);
});

test('dropout is seeded, scales kept units, and is the identity outside training', (t) => {
  const x = tf.ones([100, 50]);
  t.is(dropout(x, 0.3, false, undefined), x);
  const a = dropout(x, 0.3, true, createRng(1)).dataSync();
  const b = dropout(x, 0.3, true, createRng(1)).dataSync();
  const c = dropout(x, 0.3, true, createRng(2)).dataSync();
  t.deepEqual(a, b);
  t.notDeepEqual(a, c);
  const zeros = a.filter((v) => v === 0).length / a.length;
  t.true(Math.abs(zeros - 0.3) < 0.03);
  t.true(a.every((v) => v === 0 || Math.abs(v - 1 / 0.7) < 1e-6));
  t.throws(() => dropout(x, 0.3, true, undefined), { message: /needs an rng/ });
});

test('embedding picks table rows', (t) => {
  const table = tf.tensor2d([
    [0, 1],
    [2, 3],
    [4, 5],
  ]);
  t.deepEqual([...embedding(table, Int32Array.from([2, 0, 2])).dataSync()], [4, 5, 0, 1, 4, 5]);
});

onEachBackend('gradients: linear with LoRA (x, W, b, A, B) and linearSplit', (t) => {
  const inputs = [[5, 4], [4, 6], [6], [4, 2], [2, 6]].map((shape, i) => randomTensor(shape, 10 + i));
  const lin = (x: tf.Tensor, W: tf.Tensor, b: tf.Tensor, A: tf.Tensor, B: tf.Tensor) => ({
    x: x as tf.Tensor2D,
    w: { W: W as tf.Tensor2D, b: b as tf.Tensor1D, lora: { A: A as tf.Tensor2D, B: B as tf.Tensor2D, scale: 2 } },
  });
  const r1 = checkGradients((...xs) => {
    const { x, w } = lin(xs[0]!, xs[1]!, xs[2]!, xs[3]!, xs[4]!);
    return linear(x, w);
  }, inputs);
  t.true(r1.ok, JSON.stringify(r1));
  const r2 = checkGradients((...xs) => {
    const { x, w } = lin(xs[0]!, xs[1]!, xs[2]!, xs[3]!, xs[4]!);
    return tf.concat(
      linearSplit(x, w, 3).map((y, i) => tf.mul(y, i + 1)),
      1,
    );
  }, inputs);
  t.true(r2.ok, JSON.stringify(r2));
});

onEachBackend('gradients: layerNorm (x, gamma, beta) and gelu', (t, backend) => {
  const inputs = [randomTensor([4, 6], 3, 2), randomTensor([6], 4), randomTensor([6], 5)];
  // On native both run as fused kernels (src/backend/fused.ts), so this checks their hand-written gradients.
  if (backend === 'native') {
    t.not(fusedLayerNorm(inputs[0]!, inputs[1]!, inputs[2]!, 1e-5), null);
    t.not(fusedGelu(inputs[0]!), null);
  }
  const r1 = checkGradients((x, g, b) => layerNorm(x as tf.Tensor2D, { gamma: g as tf.Tensor1D, beta: b as tf.Tensor1D }), inputs);
  t.true(r1.ok, JSON.stringify(r1));
  const r2 = checkGradients((x) => gelu(x), [inputs[0]!], { coords: 12 });
  t.true(r2.ok, JSON.stringify(r2));
});

onEachBackend('gradients: embedding w.r.t. its table', (t) => {
  const ids = Int32Array.from([4, 1, 4, 0]);
  const r = checkGradients((table) => embedding(table as tf.Tensor2D, ids), [randomTensor([5, 3], 1)], { coords: 10 });
  t.true(r.ok, JSON.stringify(r));
});

test('the variable gradient check (test/nn/helpers.ts) catches a slightly wrong gradient', (t) => {
  // x^2 with the gradient 2x scaled by 1.02.
  const wrong = tf.customGrad((...args) => {
    const x = args[0] as tf.Tensor;
    (args[1] as tf.GradSaveFunc)([x]);
    return { value: tf.square(x), gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, tf.mul(saved[0]!, 2 * 1.02)) };
  });
  const v = tf.variable(randomTensor([3, 3], 2));
  const good = checkVarGradients(() => tf.square(v), [v]);
  const bad = checkVarGradients(() => wrong(v), [v]);
  t.true(good.ok, JSON.stringify(good));
  t.false(bad.ok, JSON.stringify(bad));
  v.dispose();
});

test('initBiasToPrior starts every sigmoid output at the prior', (t) => {
  const params = new ParamStore(1);
  const w = createLinear(params, 'out', 4, 3);
  initBiasToPrior(w, 0.01);
  const p = tf.tidy(() => tf.sigmoid(w.b!).dataSync());
  for (const v of p) t.true(Math.abs(v - 0.01) < 1e-6);
  initBiasToPrior(w, null); // keeps the values
  t.true(Math.abs(tf.tidy(() => tf.sigmoid(w.b!).dataSync())[0]! - 0.01) < 1e-6);
  params.dispose();
});
