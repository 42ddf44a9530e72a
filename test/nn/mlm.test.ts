import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { Encoder } from '../../src/nn/encoder.js';
import { createMlmHead, mlmLoss } from '../../src/nn/mlm.js';
import { ParamStore } from '../../src/nn/params.js';
import { checkGradients } from '../../src/backend/gradcheck.js';
import { asVariables, checkVarGradients, randomTensor, setupBackend } from './helpers.js';

test.before(async () => {
  await setupBackend();
});

function store(V: number, H: number): ParamStore {
  const s = new ParamStore(1);
  s.param('encoder.tok_embed', [V, H], { kind: 'normal', std: 0.5 });
  createMlmHead(s, H, V);
  s.names().forEach((n, i) => {
    tf.tidy(() => s.get(n).assign(randomTensor(s.get(n).shape, 50 + i, 0.5)));
  });
  return s;
}

test('loss equals a hand computation over the chosen rows only', (t) => {
  const V = 5;
  const H = 4;
  const s = store(V, H);
  const states = randomTensor([6, H], 3) as tf.Tensor2D;
  const targets = Int32Array.from([-1, 2, -1, -1, 4, -1]);
  const loss = mlmLoss(states, targets, s).dataSync()[0]!;
  // Reference in plain JS arithmetic on the downloaded weights.
  const W = s.get('mlm.dense.W').arraySync() as number[][];
  const b = s.get('mlm.dense.b').arraySync() as number[];
  const g = s.get('mlm.ln.gamma').arraySync() as number[];
  const be = s.get('mlm.ln.beta').arraySync() as number[];
  const E = s.get('encoder.tok_embed').arraySync() as number[][];
  const ob = s.get('mlm.out_bias').arraySync() as number[];
  const S = states.arraySync();
  const gelu = (x: number): number => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
  let total = 0;
  for (const [row, tgt] of [
    [1, 2],
    [4, 4],
  ] as const) {
    const h = b.map((bj, j) => gelu(bj + S[row]!.reduce((a, x, i) => a + x * W[i]![j]!, 0)));
    const mean = h.reduce((a, x) => a + x, 0) / H;
    const vr = h.reduce((a, x) => a + (x - mean) ** 2, 0) / H;
    const z = h.map((x, j) => ((x - mean) / Math.sqrt(vr + 1e-5)) * g[j]! + be[j]!);
    const logits = E.map((e, v) => e.reduce((a, x, j) => a + x * z[j]!, 0) + ob[v]!);
    const m = Math.max(...logits);
    const lse = m + Math.log(logits.reduce((a, x) => a + Math.exp(x - m), 0));
    total += lse - logits[tgt]!;
  }
  t.true(Math.abs(loss - total / 2) < 1e-4, `${loss} vs ${total / 2}`);
  s.dispose();
});

test('no chosen position gives 0 and a connected (zero) gradient', (t) => {
  const s = store(5, 4);
  const [x] = asVariables([randomTensor([3, 4], 1)]);
  const { value, grads } = tf.variableGrads(() => mlmLoss(x as tf.Variable<tf.Rank.R2>, Int32Array.from([-1, -1, -1]), s), [x!]);
  t.is(value.dataSync()[0], 0);
  t.true(grads[x!.name]!.dataSync().every((v) => v === 0));
  t.throws(() => mlmLoss(x as tf.Variable<tf.Rank.R2>, Int32Array.from([-1, 9, -1]), s), { message: /outside the vocabulary/ });
  s.dispose();
  x!.dispose();
});

test('gradients: MLM loss w.r.t. states and every head weight, including the tied embedding', (t) => {
  const s = store(6, 4);
  const states = randomTensor([5, 4], 2) as tf.Tensor2D;
  const targets = Int32Array.from([-1, 3, 0, -1, 5]);
  // The loss is one float32 scalar, so its rounding (~1e-7 relative) is not averaged away over many
  // outputs as in the per-op checks: the shared 1.3e-4 is at the noise level here, hence 1e-3.
  const r1 = checkGradients((x) => mlmLoss(x as tf.Tensor2D, targets, s), [states], { coords: 10, eps: 0.1, tol: 1e-3 });
  t.log(`states: ${r1.maxRelError.toExponential(2)}`);
  t.true(r1.ok, JSON.stringify(r1));
  const r2 = checkVarGradients(() => mlmLoss(states, targets, s), s.trainable(), { coords: 4, floorShare: 1e-3, tol: 1e-3 });
  t.log(`weights: ${r2.maxRelError.toExponential(2)}`);
  t.true(r2.ok, JSON.stringify(r2));
  s.dispose();
});

test('pretraining step: encoder + MLM loss decreases with a few plain SGD steps', (t) => {
  const s = new ParamStore(2);
  const enc = new Encoder({ vocabSize: 8, layers: 1, hidden: 8, heads: 2, ffn: 16, dropout: 0, attention: 'arrow', window: 2, logN: 'padded' }, s);
  createMlmHead(s, 8, 8);
  const input = Int32Array.from([0, 2, 5, 2, 6, 7, 1]);
  const targets = Int32Array.from([-1, 4, -1, 3, -1, -1, -1]);
  const lossNow = (): number => tf.tidy(() => mlmLoss(enc.forward(input, { training: false }), targets, s).dataSync()[0]!);
  const first = lossNow();
  for (let i = 0; i < 15; i++) {
    const { value, grads } = tf.variableGrads(() => mlmLoss(enc.forward(input, { training: false }), targets, s), s.trainable());
    for (const v of s.trainable()) tf.tidy(() => v.assign(tf.sub(v, tf.mul(grads[v.name]!, 0.1))));
    value.dispose();
    tf.dispose(Object.values(grads));
  }
  t.true(lossNow() < first * 0.7, `${first} -> ${lossNow()}`);
  s.dispose();
});
