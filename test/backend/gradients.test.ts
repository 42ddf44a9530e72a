import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, type BackendName } from '../../src/backend/index.js';
import { checkGradients } from '../../src/backend/gradcheck.js';
import { backendsUnderTest, randn } from './helpers.js';

/*
 * Finite-difference checks of every op the models differentiate, written the way the models write
 * them, on both backends we train with (research/backends.md §1d recommends this in CI). The wasm
 * runs go through the BatchMatMul override and the UnsortedSegmentSum shim.
 */

interface GradCase {
  name: string;
  inputs: () => tf.Tensor[];
  f: (...xs: tf.Tensor[]) => tf.Tensor;
}

const flags = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
] as const;

/** [m, k] x [k, n] with the stored layout swapped where a transpose flag is set. */
const shapeOf = (batch: number[], rows: number, cols: number, transposed: boolean): number[] => (transposed ? [...batch, cols, rows] : [...batch, rows, cols]);

const matMulCases: GradCase[] = flags.flatMap(([tA, tB]) => [
  {
    name: `matMul 2D transposeA=${tA} transposeB=${tB}`,
    inputs: () => [randn(shapeOf([], 3, 4, tA), 1), randn(shapeOf([], 4, 5, tB), 2)],
    f: (a, b) => tf.matMul(a, b, tA, tB),
  },
  {
    name: `batchMatMul 3D transposeA=${tA} transposeB=${tB}`,
    inputs: () => [randn(shapeOf([2], 3, 4, tA), 3), randn(shapeOf([2], 4, 5, tB), 4)],
    f: (a, b) => tf.matMul(a, b, tA, tB),
  },
]);

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5))), gamma), beta);
}

const cases: GradCase[] = [
  ...matMulCases,
  { name: 'softmax', inputs: () => [randn([3, 5], 5)], f: (x) => tf.softmax(x) },
  { name: 'logSoftmax', inputs: () => [randn([3, 5], 6)], f: (x) => tf.logSoftmax(x) },
  { name: 'logSumExp', inputs: () => [randn([3, 5], 7)], f: (x) => tf.logSumExp(x, -1) },
  {
    name: 'layer norm (moments + rsqrt)',
    inputs: () => [randn([3, 6], 8), randn([6], 9, 0.5), randn([6], 10, 0.5)],
    f: (x, g, b) => layerNorm(x, g, b),
  },
  {
    name: 'gelu (tanh approximation)',
    inputs: () => [randn([3, 5], 11)],
    f: (x) => {
      const inner = tf.mul(SQRT_2_OVER_PI, tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
      return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
    },
  },
  {
    name: 'gelu (erf form)',
    inputs: () => [randn([3, 5], 12)],
    f: (x) => tf.mul(tf.mul(0.5, x), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))),
  },
  {
    // Repeated and unused rows: the table gradient is UnsortedSegmentSum (the shim on both backends).
    name: 'gather w.r.t. the table (embedding lookup)',
    inputs: () => [randn([10, 4], 13)],
    f: (table) => tf.tanh(tf.gather(table, tf.tensor1d([1, 1, 3, 9, 0, 3], 'int32'))),
  },
  {
    name: 'where(mask, x, -1e4) then softmax',
    inputs: () => [randn([3, 5], 14)],
    f: (x) => {
      const mask = tf.tensor2d(
        [
          [1, 1, 0, 1, 0],
          [1, 0, 0, 0, 0],
          [1, 1, 1, 1, 1],
        ],
        [3, 5],
        'bool',
      );
      return tf.softmax(tf.where(mask, x, tf.fill([3, 5], -1e4)));
    },
  },
  {
    name: 'concat (axis 0 and 1)',
    inputs: () => [randn([2, 3], 15), randn([2, 2], 16), randn([1, 5], 17)],
    f: (a, b, c) => tf.tanh(tf.concat([tf.concat([a, b], 1), c], 0)),
  },
  { name: 'slice', inputs: () => [randn([4, 5], 18)], f: (x) => tf.tanh(tf.slice(x, [1, 1], [2, 3])) },
  {
    name: 'pad',
    inputs: () => [randn([2, 3], 19)],
    f: (x) =>
      tf.tanh(
        tf.pad(
          x,
          [
            [1, 0],
            [0, 2],
          ],
          0.5,
        ),
      ),
  },
  {
    // The stable form max(x,0) - x*z + log(1+exp(-|x|)): smooth as a whole even though its parts have kinks at 0.
    name: 'sigmoid cross-entropy (stable formula)',
    inputs: () => [randn([3, 4], 20, 2)],
    f: (x) => {
      const z = tf.tensor2d([
        [1, 0, 1, 0],
        [0, 0, 1, 1],
        [1, 1, 0, 0],
      ]);
      return tf.add(tf.sub(tf.relu(x), tf.mul(x, z)), tf.log1p(tf.exp(tf.neg(tf.abs(x)))));
    },
  },
  {
    name: 'sigmoid cross-entropy (tf.losses, no reduction)',
    inputs: () => [randn([3, 4], 21, 2)],
    f: (x) =>
      tf.losses.sigmoidCrossEntropy(
        tf.tensor2d([
          [1, 0, 1, 0],
          [0, 0, 1, 1],
          [1, 1, 0, 0],
        ]),
        x,
        undefined,
        0,
        tf.Reduction.NONE,
      ),
  },
  {
    // Span-pair scores: start and end representations broadcast against each other.
    name: 'expandDims + broadcast add (span pair scores)',
    inputs: () => [randn([4, 3], 22), randn([4, 3], 23)],
    f: (s, e) => tf.sum(tf.tanh(tf.add(tf.expandDims(s, 1), tf.expandDims(e, 0))), -1),
  },
];

// native where its addon is built (always on CI)
const backends: BackendName[] = backendsUnderTest();

for (const backend of backends) {
  for (const c of cases) {
    test.serial(`${backend}: ${c.name}`, async (t) => {
      await initBackend(backend, { quiet: true });
      const inputs = c.inputs();
      try {
        const r = checkGradients(c.f, inputs);
        t.true(
          r.ok,
          `max relative error ${r.maxRelError.toExponential(2)} at input ${r.worst.input}[${r.worst.index}]: analytic ${r.worst.analytic}, numeric ${r.worst.numeric}`,
        );
      } finally {
        tf.dispose(inputs);
      }
    });
  }
}
