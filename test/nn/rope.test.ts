import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { applyRope, ropeTables } from '../../src/nn/rope.js';
import { checkGradients } from '../../src/backend/gradcheck.js';
import { randomTensor, setupBackend } from './helpers.js';

test.before(async () => {
  await setupBackend();
});

test('rotates each interleaved pair by p * theta_k', (t) => {
  const d = 4;
  const x = tf.tensor2d([
    [1, 2, 3, 4],
    [1, 2, 3, 4],
    [1, 2, 3, 4],
  ]);
  const tables = ropeTables(Int32Array.from([0, 1, 7]), d);
  const y = applyRope(x, tables).arraySync();
  [0, 1, 7].forEach((p, row) => {
    for (let k = 0; k < d / 2; k++) {
      const a = p * 10000 ** ((-2 * k) / d);
      const [x0, x1] = [1 + 2 * k, 2 + 2 * k];
      t.true(Math.abs(y[row]![2 * k]! - (x0 * Math.cos(a) - x1 * Math.sin(a))) < 1e-5);
      t.true(Math.abs(y[row]![2 * k + 1]! - (x1 * Math.cos(a) + x0 * Math.sin(a))) < 1e-5);
    }
  });
  tables.dispose();
});

test('(R_i q) . (R_j k) depends only on j - i', (t) => {
  const d = 8;
  const q = randomTensor([1, d], 1) as tf.Tensor2D;
  const k = randomTensor([1, d], 2) as tf.Tensor2D;
  const dot = (i: number, j: number): number =>
    tf.tidy(() => {
      const ti = ropeTables(Int32Array.from([i]), d);
      const tj = ropeTables(Int32Array.from([j]), d);
      const v = tf.sum(tf.mul(applyRope(q, ti), applyRope(k, tj))).dataSync()[0]!;
      ti.dispose();
      tj.dispose();
      return v;
    });
  for (const delta of [0, 3, -5]) {
    const ref = dot(10, 10 + delta);
    t.true(Math.abs(dot(0 + 20, 20 + delta) - ref) < 1e-4);
    t.true(Math.abs(dot(300, 300 + delta) - ref) < 1e-3);
  }
  // and it does depend on the offset
  t.true(Math.abs(dot(0, 3) - dot(0, 0)) > 1e-3);
});

test('RoPE keeps row norms', (t) => {
  const x = randomTensor([6, 8], 3) as tf.Tensor2D;
  const tables = ropeTables(6, 8);
  const n0 = tf.norm(x, 2, 1).dataSync();
  const n1 = tf.norm(applyRope(x, tables), 2, 1).dataSync();
  n0.forEach((v, i) => {
    t.true(Math.abs(v - n1[i]!) < 1e-5);
  });
  t.throws(() => ropeTables(3, 5), { message: /even/ });
  tables.dispose();
});

test('gradients: RoPE w.r.t. its input', (t) => {
  const tables = ropeTables(5, 6);
  const r = checkGradients((x) => applyRope(x as tf.Tensor2D, tables), [randomTensor([5, 6], 4)], { coords: 12 });
  t.true(r.ok, JSON.stringify(r));
  tables.dispose();
});
