import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { Encoder, type EncoderConfig } from '../../src/nn/encoder.js';
import { ParamStore } from '../../src/nn/params.js';
import { createRng } from '../../src/util/rng.js';
import { checkVarGradients, maxAbsDiff, randomTensor, setupBackend } from './helpers.js';

test.before(async () => {
  await setupBackend();
});

const base: EncoderConfig = {
  vocabSize: 11,
  layers: 2,
  hidden: 8,
  heads: 2,
  ffn: 16,
  dropout: 0,
  attention: 'full',
  window: 3,
  logN: 'off',
};

function ids(T: number, seed = 1): Int32Array {
  const rng = createRng(seed);
  return Int32Array.from({ length: T }, () => rng.int(0, base.vocabSize));
}

/** Gives every parameter random values, so that zero-initialised biases and LoRA B matter too. */
function randomizeAll(store: ParamStore): void {
  store.names().forEach((n, i) => {
    tf.tidy(() => store.get(n).assign(randomTensor(store.get(n).shape, 1000 + i, 0.4)));
  });
}

test('forward gives [T, hidden], deterministic for a seed', (t) => {
  const a = new ParamStore(1);
  const b = new ParamStore(1);
  const ea = new Encoder(base, a);
  const eb = new Encoder(base, b);
  const x = ids(9);
  const ya = ea.forward(x, { training: false });
  t.deepEqual(ya.shape, [9, 8]);
  t.true(maxAbsDiff(ya, eb.forward(x, { training: false })) === 0);
  t.true(a.names().includes('encoder.l1.ffn2.W'));
  t.true(a.names().includes('encoder.ln_f.gamma'));
  t.false(a.names().some((n) => n.includes('lora')));
  a.dispose();
  b.dispose();
});

test('window and arrow (LogN off) equal full attention when the window covers the sequence', (t) => {
  const store = new ParamStore(2);
  const full = new Encoder(base, store);
  randomizeAll(store);
  const x = ids(7, 3);
  const yFull = full.forward(x, { training: false });
  const yWin = new Encoder({ ...base, attention: 'window', window: 6 }, store).forward(x, { training: false });
  const yArrow = new Encoder({ ...base, attention: 'arrow', window: 6 }, store).forward(x, { training: false });
  t.true(maxAbsDiff(yFull, yWin) < 1e-5);
  t.true(maxAbsDiff(yFull, yArrow) < 1e-5);
  // With a small window they differ (the test above is not vacuous).
  const ySmall = new Encoder({ ...base, attention: 'window', window: 1 }, store).forward(x, { training: false });
  t.true(maxAbsDiff(yFull, ySmall) > 1e-3);
  store.dispose();
});

test('arrow: LogN modes change the output through the [CLS] row', (t) => {
  const store = new ParamStore(3);
  randomizeAll(store);
  const x = ids(10, 4);
  const cfg: EncoderConfig = { ...base, attention: 'arrow', window: 2 };
  const off = new Encoder({ ...cfg, logN: 'off' }, store).forward(x, { training: false });
  const padded = new Encoder({ ...cfg, logN: 'padded' }, store).forward(x, { training: false });
  const trueLen = new Encoder({ ...cfg, logN: 'true' }, store).forward(x, { training: false });
  t.true(maxAbsDiff(off, padded) > 1e-4);
  t.true(maxAbsDiff(padded, trueLen) > 1e-4);
  store.dispose();
});

test('no absolute positions: the encoder runs at any length (here 300 tokens, window 4)', (t) => {
  const store = new ParamStore(4);
  const enc = new Encoder({ ...base, attention: 'arrow', window: 4, logN: 'padded' }, store);
  const y = enc.forward(ids(300, 5), { training: false });
  t.deepEqual(y.shape, [300, 8]);
  t.true(y.dataSync().every(Number.isFinite));
  store.dispose();
});

test('LoRA: new pairs leave the output unchanged until B moves', (t) => {
  const store = new ParamStore(5);
  const plain = new Encoder(base, store);
  const x = ids(6, 6);
  const y0 = plain.forward(x, { training: false });
  const lora = new Encoder({ ...base, lora: { rank: 2, alpha: 4, targets: ['q', 'v'] } }, store);
  t.true(store.names().includes('encoder.l0.q.lora_A'));
  t.true(store.names().includes('encoder.l1.v.lora_B'));
  t.false(store.names().includes('encoder.l0.k.lora_A'));
  t.true(maxAbsDiff(lora.forward(x, { training: false }), y0) < 1e-6);
  tf.tidy(() => store.get('encoder.l0.v.lora_B').assign(randomTensor([2, 8], 9, 0.5)));
  t.true(maxAbsDiff(lora.forward(x, { training: false }), y0) > 1e-4);
  store.dispose();
});

test('dropout: training is seeded, inference is deterministic', (t) => {
  const store = new ParamStore(6);
  const enc = new Encoder({ ...base, dropout: 0.2 }, store);
  const x = ids(8, 7);
  const a = enc.forward(x, { training: true, rng: createRng(1) });
  const b = enc.forward(x, { training: true, rng: createRng(1) });
  const c = enc.forward(x, { training: true, rng: createRng(2) });
  t.is(maxAbsDiff(a, b), 0);
  t.true(maxAbsDiff(a, c) > 1e-4);
  t.true(maxAbsDiff(a, enc.forward(x, { training: false })) > 1e-4);
  t.throws(() => enc.forward(x, { training: true }), { message: /needs an rng/ });
  store.dispose();
});

for (const attention of ['full', 'window', 'arrow'] as const) {
  test(`gradients: 1-layer ${attention} encoder w.r.t. every weight`, (t) => {
    const store = new ParamStore(7);
    const cfg: EncoderConfig = { ...base, layers: 1, vocabSize: 5, attention, window: 2, logN: 'true', lora: { rank: 2, alpha: 2, targets: ['q', 'v'] } };
    const enc = new Encoder(cfg, store);
    randomizeAll(store);
    const x = Int32Array.from([0, 3, 1, 4, 2, 3, 1]);
    // Float32 through a whole layer: measured at most 1.1e-3 over 5 seeds; a gradient 2% off scores ~1e-2.
    const r = checkVarGradients(() => enc.forward(x, { training: false }), store.trainable(), { coords: 3, eps: 0.1, floorShare: 1e-3, tol: 5e-3 });
    t.log(`${store.names().length} weights, max relative error ${r.maxRelError.toExponential(2)}`);
    t.true(r.ok, JSON.stringify(r));
    store.dispose();
  });
}

test.serial('no tensor leaks after forward + backward with disposal', (t) => {
  const store = new ParamStore(8);
  const enc = new Encoder({ ...base, attention: 'arrow', window: 2, logN: 'padded', dropout: 0.1 }, store);
  const x = ids(12, 9);
  const step = (): void => {
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(enc.forward(x, { training: true, rng: createRng(3) }))) as tf.Scalar, store.trainable());
    value.dispose();
    tf.dispose(Object.values(grads));
  };
  step();
  const before = tf.memory().numTensors;
  step();
  step();
  t.is(tf.memory().numTensors, before);
  const y = enc.forward(x, { training: false });
  t.is(tf.memory().numTensors, before + 1);
  y.dispose();
  store.dispose();
});
