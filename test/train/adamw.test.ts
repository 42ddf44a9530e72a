import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { join } from 'node:path';
import { initBackend } from '../../src/backend/index.js';
import { AdamW, clipByGlobalNorm, decaysWeight, globalNorm, type AdamWParam } from '../../src/train/adamw.js';
import { backendsUnderTest } from '../backend/helpers.js';
import { setupBackend } from './helpers.js';
import { ToyModel } from './toy-model.js';
import { tempDirs } from '../temp-dirs.js';

const temp = tempDirs();

test.before(async () => {
  await setupBackend();
});

const close = (actual: ArrayLike<number>, expected: readonly number[], tol = 1e-6): boolean =>
  actual.length === expected.length && expected.every((e, i) => Math.abs(actual[i]! - e) <= tol * Math.max(1, Math.abs(e)));

/** PyTorch's AdamW written out in float64 for one parameter vector. */
function reference(p0: number[], grads: number[][], lrs: number[], wd: number): number[] {
  const [b1, b2, eps] = [0.9, 0.999, 1e-8];
  let p = [...p0];
  let m = p.map(() => 0);
  let v = p.map(() => 0);
  grads.forEach((g, k) => {
    const t = k + 1;
    const lr = lrs[k]!;
    p = p.map((x) => x * (1 - lr * wd));
    m = m.map((x, i) => b1 * x + (1 - b1) * g[i]!);
    v = v.map((x, i) => b2 * x + (1 - b2) * g[i]! * g[i]!);
    const stepSize = lr / (1 - b1 ** t);
    const bc2 = Math.sqrt(1 - b2 ** t);
    p = p.map((x, i) => x - (stepSize * m[i]!) / (Math.sqrt(v[i]!) / bc2 + eps));
  });
  return p;
}

function param(name: string, values: number[], group = 'head'): AdamWParam {
  return { name, variable: tf.variable(tf.tensor1d(values)), group, decay: decaysWeight(name) };
}

// On every backend under test: native runs the update as one fused kernel (src/backend/fused.ts).
// Serial, restoring the default backend for the concurrent tests, which ava runs after the serial ones.
for (const backend of backendsUnderTest()) {
  test.serial(`${backend}: two AdamW steps match the hand computation (decayed weight and undecayed bias, two groups)`, async (t) => {
    await initBackend(backend, { quiet: true });
    try {
      const w = param('lin.W', [1, -2, 0.5]);
      const b = param('lin.b', [0.3, -0.1], 'encoder');
      const opt = new AdamW([w, b], { weightDecay: 0.01 });
      const gw = [
        [0.5, -1, 0.02],
        [-0.3, 2, 0.02],
      ];
      const gb = [
        [1, -1],
        [0.5, 0.25],
      ];
      const lrs = [
        { head: 0.1, encoder: 0.05 },
        { head: 0.08, encoder: 0.04 },
      ];
      for (const k of [0, 1]) {
        const grads = { [w.variable.name]: tf.tensor1d(gw[k]!), [b.variable.name]: tf.tensor1d(gb[k]!) };
        opt.step(grads, lrs[k]!);
        tf.dispose(Object.values(grads));
      }
      const expectW = reference([1, -2, 0.5], gw, [0.1, 0.08], 0.01);
      const expectB = reference([0.3, -0.1], gb, [0.05, 0.04], 0);
      t.true(close(w.variable.dataSync(), expectW), `${w.variable.dataSync()} vs ${expectW}`);
      t.true(close(b.variable.dataSync(), expectB), `${b.variable.dataSync()} vs ${expectB}`);
      // Decay matters at this size: the same step without it lands elsewhere.
      t.false(close(w.variable.dataSync(), reference([1, -2, 0.5], gw, [0.1, 0.08], 0), 1e-7));
      t.deepEqual(opt.stepCounts().steps, { 'lin.W': 2, 'lin.b': 2 });
      opt.dispose();
      w.variable.dispose();
      b.variable.dispose();
    } finally {
      await setupBackend();
    }
  });
}

test('weight decay skips biases and LayerNorm weights (names as src/nn makes them)', (t) => {
  for (const name of ['encoder.l0.q.W', 'encoder.tok_embed', 'encoder.l1.v.lora_A', 'encoder.l1.v.lora_B', 'head.kiln.W', 'sener.conv0.filter']) {
    t.true(decaysWeight(name), name);
  }
  for (const name of [
    'encoder.l0.q.b',
    'encoder.l0.ln1.gamma',
    'encoder.l0.ln2.beta',
    'encoder.ln_f.gamma',
    'mlm.ln.beta',
    'mlm.out_bias',
    'head.bias',
    'x.layernorm.weight',
    'x.ln.scale',
  ]) {
    t.false(decaysWeight(name), name);
  }
  // With a zero gradient Adam's step is 0, so only the decay moves a weight.
  const model = new ToyModel();
  const opt = AdamW.forModel(model, { weightDecay: 0.5 });
  t.deepEqual(
    opt.params.map((p) => [p.name, p.group, p.decay]),
    [
      ['toy.embed', 'encoder', true],
      ['toy.ln.gamma', 'head', false],
      ['toy.ln.beta', 'head', false],
      ['toy.head.W', 'head', true],
      ['toy.head.b', 'head', false],
    ],
  );
  const before = model.snapshot();
  const grads = Object.fromEntries(opt.params.map((p) => [p.variable.name, tf.zerosLike(p.variable)]));
  opt.step(grads, { head: 0.1, encoder: 0.2 });
  tf.dispose(Object.values(grads));
  const after = model.snapshot();
  t.true(
    close(
      after.get('toy.embed')!,
      [...before.get('toy.embed')!].map((x) => x * (1 - 0.2 * 0.5)),
    ),
  );
  t.true(
    close(
      after.get('toy.head.W')!,
      [...before.get('toy.head.W')!].map((x) => x * (1 - 0.1 * 0.5)),
    ),
  );
  for (const n of ['toy.ln.gamma', 'toy.ln.beta', 'toy.head.b']) t.deepEqual(after.get(n), before.get(n), n);
  opt.dispose();
  model.dispose();
});

test('a parameter without a gradient is skipped, decay and step count included', (t) => {
  const a = param('a.W', [1, 2]);
  const c = param('c.W', [3, 4]);
  const opt = new AdamW([a, c], { weightDecay: 0.1 });
  const grads = { [a.variable.name]: tf.tensor1d([1, 1]) };
  opt.step(grads, { head: 0.1 });
  tf.dispose(Object.values(grads));
  t.deepEqual([...c.variable.dataSync()], [3, 4]);
  t.notDeepEqual([...a.variable.dataSync()], [1, 2]);
  t.deepEqual(opt.stepCounts().steps, { 'a.W': 1, 'c.W': 0 });
  t.throws(() => opt.step({ [a.variable.name]: a.variable }, { encoder: 1 }), { message: /no learning rate for group head/ });
  opt.dispose();
  a.variable.dispose();
  c.variable.dispose();
});

test('saved moments and step counts continue bit for bit', (t) => {
  const dir = temp('adamw');
  const run = (p: AdamWParam, opt: AdamW, g: number[]): void => {
    const grads = { [p.variable.name]: tf.tensor1d(g) };
    opt.step(grads, { head: 0.01 });
    tf.dispose(Object.values(grads));
  };
  const p1 = param('x.W', [0.1, 0.2, 0.3]);
  const o1 = new AdamW([p1], { weightDecay: 0.01 });
  run(p1, o1, [1, 2, 3]);
  run(p1, o1, [-1, 0.5, 2]);
  o1.saveMoments(join(dir, 'm.ckpt'));
  const p2 = param('x.W', [...p1.variable.dataSync()]);
  const o2 = new AdamW([p2], { weightDecay: 0.01 });
  o2.load(join(dir, 'm.ckpt'), o1.stepCounts());
  run(p1, o1, [0.3, 0.3, -0.7]);
  run(p2, o2, [0.3, 0.3, -0.7]);
  t.deepEqual([...p2.variable.dataSync()], [...p1.variable.dataSync()]);
  t.throws(() => o2.load(join(dir, 'm.ckpt'), { steps: { 'y.W': 1 } }), { message: /does not fit/ });
  for (const x of [o1, o2]) x.dispose();
  for (const x of [p1, p2]) x.variable.dispose();
});

test('global-norm clipping: the clipped norm equals the clip, small gradients pass unchanged', (t) => {
  const grads = { a: tf.tensor1d([3, 0]), b: tf.tensor2d([[0, 4]]) };
  t.true(Math.abs(globalNorm(grads) - 5) < 1e-6);
  const clipped = clipByGlobalNorm(grads, 1);
  t.true(clipped.clipped);
  t.true(Math.abs(clipped.norm - 5) < 1e-6);
  t.true(Math.abs(globalNorm(clipped.grads) - 1) < 1e-5);
  // Direction kept.
  t.true(close(clipped.grads.a!.dataSync(), [0.6, 0]));
  const loose = clipByGlobalNorm(grads, 10);
  t.false(loose.clipped);
  t.is(loose.grads, grads);
  t.is(clipByGlobalNorm(grads, null).grads, grads);
  const bad = { a: tf.tensor1d([NaN, 1]) };
  t.true(Number.isNaN(clipByGlobalNorm(bad, 1).norm));
  tf.dispose([...Object.values(grads), ...Object.values(clipped.grads), ...Object.values(bad)]);
});

test('an optimizer step leaves no tensor behind', (t) => {
  const p = param('q.W', [1, 2, 3]);
  const opt = new AdamW([p], { weightDecay: 0.01 });
  const step = (): void => {
    const grads = { [p.variable.name]: tf.tensor1d([0.1, 0.2, 0.3]) };
    const c = clipByGlobalNorm(grads, 0.1);
    opt.step(c.grads, { head: 0.1 });
    tf.dispose([...Object.values(grads), ...Object.values(c.grads)]);
  };
  step();
  const before = tf.memory().numTensors;
  step();
  step();
  t.is(tf.memory().numTensors, before);
  opt.dispose();
  p.variable.dispose();
});
