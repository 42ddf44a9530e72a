import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import {
  arrowAttention,
  arrowPattern,
  bandPlan,
  denseMaskedAttention,
  fullAttention,
  logNFactor,
  logNScale,
  windowAttention,
  windowPattern,
} from '../../src/nn/attention.js';
import { initBackend } from '../../src/backend/index.js';
import { checkGradients } from '../../src/backend/gradcheck.js';
import { backendsUnderTest } from '../backend/helpers.js';
import { maxAbsDiff, randomTensor, setupBackend } from './helpers.js';

test.before(async () => {
  await setupBackend();
});

function qkv(L: number, dh: number, seed: number): [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D] {
  // Scale 2 makes the softmax peaky enough that a wrong mask shows up clearly.
  return [0, 1, 2].map((i) => randomTensor([L, dh], seed + i, 2) as tf.Tensor2D) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
}

function allOnes(L: number): Uint8Array {
  return new Uint8Array(L * L).fill(1);
}

test('full attention equals the dense reference, and the key mask hides keys', (t) => {
  const [q, k, v] = qkv(7, 4, 1);
  t.true(maxAbsDiff(fullAttention(q, k, v), denseMaskedAttention(q, k, v, allOnes(7))) < 1e-5);
  const keyMask = [1, 1, 0, 1, 0, 1, 1];
  const allowed = new Uint8Array(49).map((_, i) => keyMask[i % 7]!);
  t.true(maxAbsDiff(fullAttention(q, k, v, { keyMask }), denseMaskedAttention(q, k, v, allowed)) < 1e-5);
  t.true(maxAbsDiff(fullAttention(q, k, v, { keyMask }), fullAttention(q, k, v)) > 1e-2);
});

for (const [L, w] of [
  [16, 4],
  [13, 4],
  [3, 4],
  [1, 2],
  [40, 8],
  [9, 1],
] as const) {
  test(`window attention equals dense attention with the band mask (L=${L}, w=${w})`, (t) => {
    const [q, k, v] = qkv(L, 6, L * 10 + w);
    const out = windowAttention(q, k, v, w);
    t.deepEqual(out.shape, [L, 6]);
    t.true(maxAbsDiff(out, denseMaskedAttention(q, k, v, windowPattern(L, w))) < 1e-5);
    if (L > 2 * w + 1) t.true(maxAbsDiff(out, fullAttention(q, k, v)) > 1e-2);
  });
}

// On every backend under test (serial: each switches the global backend, then restores the default
// for the concurrent tests, which ava runs after the serial ones).
for (const backend of backendsUnderTest()) {
  for (const [L, w] of [
    [16, 4],
    [13, 4],
    [3, 4],
    [2, 1],
    [40, 8],
    [9, 1],
  ] as const) {
    for (const logN of [null, 1.37]) {
      test.serial(`${backend}: arrow attention equals dense attention with the arrow mask (L=${L}, w=${w}, logN=${logN})`, async (t) => {
        await initBackend(backend, { quiet: true });
        try {
          tf.tidy(() => {
            const [q, k, v] = qkv(L, 6, L * 10 + w + 3);
            const out = arrowAttention(q, k, v, w, logN);
            t.deepEqual(out.shape, [L, 6]);
            const rowScale = new Float32Array(L).fill(1);
            rowScale[0] = logN ?? 1;
            const diff = maxAbsDiff(out, denseMaskedAttention(q, k, v, arrowPattern(L, w), rowScale));
            t.true(diff < 1e-5, `max difference ${diff}`);
            if (L > 2 * w + 1) t.true(maxAbsDiff(out, windowAttention(q, k, v, w)) > 1e-2);
          });
        } finally {
          await setupBackend();
        }
      });
    }
  }
}

test('arrow: LogN changes only the [CLS] row', (t) => {
  const [q, k, v] = qkv(20, 4, 5);
  const a = arrowAttention(q, k, v, 3, null).arraySync();
  const b = arrowAttention(q, k, v, 3, 2).arraySync();
  t.true(Math.max(...a[0]!.map((x, i) => Math.abs(x - b[0]![i]!))) > 1e-3);
  for (let r = 1; r < 20; r++) t.deepEqual(a[r], b[r]);
});

test('arrow: a single [CLS] token attends to itself', (t) => {
  const [q, k, v] = qkv(1, 4, 9);
  t.true(maxAbsDiff(arrowAttention(q, k, v, 4, 1.2), v) < 1e-6);
});

test('a shared plan gives the same result and is checked against the input', (t) => {
  const [q, k, v] = qkv(13, 4, 11);
  const plan = bandPlan(13, 4, 'arrow');
  t.true(maxAbsDiff(arrowAttention(q, k, v, 4, 0.9, plan), arrowAttention(q, k, v, 4, 0.9)) < 1e-7);
  t.throws(() => windowAttention(q, k, v, 4, plan), { message: /window plan/ });
  const [q2, k2, v2] = qkv(12, 4, 11);
  t.throws(() => arrowAttention(q2, k2, v2, 4, 0.9, plan), { message: /plan is for 13 tokens/ });
  plan.dispose();
});

test('LogN factor: ln(n) / ln(512) with the padded or true length', (t) => {
  t.is(logNScale(512), 1);
  t.true(Math.abs(logNFactor(200, 128, 'padded')! - 0.8889) < 1e-4);
  t.true(Math.abs(logNFactor(5000, 128, 'padded')! - logNScale(5120)) < 1e-12);
  t.true(Math.abs(logNFactor(5120, 128, 'padded')! - 1.3691) < 1e-4);
  t.is(logNFactor(700, 128, 'true'), logNScale(700));
  t.is(logNFactor(700, 128, 'off'), null);
});

test('window attention memory is O(L w): its plan grows linearly with L', (t) => {
  const a = bandPlan(256, 32, 'window');
  const b = bandPlan(512, 32, 'window');
  t.is(b.bias.size, 2 * a.bias.size);
  t.deepEqual(b.bias.shape, [16, 32, 96]);
  a.dispose();
  b.dispose();
});

for (const mode of ['full', 'window', 'arrow'] as const) {
  test(`gradients: ${mode} attention w.r.t. Q, K and V`, (t) => {
    const L = 11;
    const w = 3;
    const keyMask = [1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1];
    const f = (...xs: tf.Tensor[]): tf.Tensor => {
      const [q, k, v] = xs as tf.Tensor2D[];
      if (mode === 'full') return fullAttention(q!, k!, v!, { keyMask });
      return mode === 'window' ? windowAttention(q!, k!, v!, w) : arrowAttention(q!, k!, v!, w, 1.3);
    };
    const r = checkGradients(f, qkv(L, 4, 21), { coords: 8 });
    t.log(`max relative error ${r.maxRelError.toExponential(2)}`);
    t.true(r.ok, JSON.stringify(r));
  });
}
