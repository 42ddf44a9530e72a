import test, { type ExecutionContext } from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import {
  fusedAdamW,
  fusedGelu,
  fusedGeluGrad,
  fusedLayerNorm,
  fusedLayerNormGrad,
  fusedSoftmaxGrad,
  fusedWindowGemm,
  fusedWindowGemmGradInput,
  fusedWindowGemmGradWeights,
  type AdamWStep,
} from '../../src/backend/fused.js';
import { FUSED_KERNELS } from '../../src/backend/native/kernels-fused.js';
import { NATIVE_KERNELS } from '../../src/backend/native/register.js';
import { gelu, layerNorm } from '../../src/nn/layers.js';
import {
  addon,
  countAddonCalls,
  matchesCpu,
  mismatches,
  nativeTest,
  normals,
  rand,
  registerBackends,
  runOn,
  sizeOf,
  type CompareOptions,
} from './native-helpers.js';

/*
 * Every kernel the native backend puts in front of the stock cpu one, checked against the stock cpu
 * backend on seeded random inputs: shapes, dtypes and values within tolerance, and (through a spy on
 * the addon) that the native kernel really ran rather than falling back. The fused kernels are held
 * to the compositions of stock ops they replace (src/nn/layers.ts, src/train/adamw.ts), and the
 * addon's own argument checks to throwing instead of crashing.
 */

registerBackends();

/** The transcendentals run on a polynomial exp: about 1e-6 relative error. Results below FLT_MIN
 * (subnormal) may differ absolutely by up to FLT_MIN. */
const FLT_MIN = 1.1754944e-38;
const TRANSCENDENTAL: CompareOptions = { rtol: 1e-6, atol: FLT_MIN };

test('the kernel lists name the kernels these tests cover', (t) => {
  const covered = new Set([
    'BatchMatMul',
    'Add',
    'Sub',
    'Multiply',
    'RealDiv',
    'Maximum',
    'Minimum',
    'Pow',
    'SquaredDifference',
    'Exp',
    'Log',
    'Tanh',
    'Sqrt',
    'Rsqrt',
    'Square',
    'Neg',
    'Abs',
    'Sigmoid',
    'Relu',
    'Reciprocal',
    'Log1p',
    'Softplus',
    'Erf',
    'Sign',
    'Expm1',
    'Sum',
    'Mean',
    'Max',
    'Min',
    'Prod',
    'ArgMax',
    'ArgMin',
    'Softmax',
    'AddN',
    'Select',
    'Fill',
    'ZerosLike',
    'OnesLike',
    'Transpose',
    'Slice',
    'PadV2',
    'Concat',
    'SplitV',
    'GatherV2',
    'UnsortedSegmentSum',
    'Equal',
    'NotEqual',
    'Greater',
    'GreaterEqual',
    'Less',
    'LessEqual',
    'LogicalAnd',
    'LogicalOr',
    'ClipByValue',
  ]);
  // A kernel added to the native backend without a test here shows up in this list.
  t.deepEqual(
    Object.keys(NATIVE_KERNELS).filter((k) => !covered.has(k)),
    [],
  );
  t.deepEqual(Object.keys(FUSED_KERNELS).sort(), [
    'LongnerAdamW',
    'LongnerGelu',
    'LongnerGeluGrad',
    'LongnerLayerNorm',
    'LongnerLayerNormGrad',
    'LongnerRowAttention',
    'LongnerRowAttentionGrad',
    'LongnerSoftmaxGrad',
    'LongnerWindowGemm',
    'LongnerWindowGemmGradInput',
    'LongnerWindowGemmGradWeights',
  ]);
});

// ---- BatchMatMul ----

const FLAGS = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
] as const;

/** The stored shape of an [rows, cols] operand, transposed when its flag is set. */
const stored = (batch: number[], rows: number, cols: number, transposed: boolean): number[] => (transposed ? [...batch, cols, rows] : [...batch, rows, cols]);

for (const [tA, tB] of FLAGS) {
  nativeTest(`BatchMatMul transposeA=${tA} transposeB=${tB}: 2D, batched, and a batch of 1 broadcast on either side`, async (t) => {
    const m = 5,
      k = 7,
      n = 6;
    const cases: [string, number[], number[]][] = [
      ['2D', [], []],
      ['batched [3]', [3], [3]],
      ['batched [2, 3]', [2, 3], [2, 3]],
      ['a has batch 1', [1], [4]],
      ['b has batch 1', [4], [1]],
      ['a is 2D, b batched', [], [3]],
      ['a batched [2, 3], b is 2D', [2, 3], []],
    ];
    for (const [label, batchA, batchB] of cases) {
      await matchesCpu(t, () => tf.matMul(rand(stored(batchA, m, k, tA), 1), rand(stored(batchB, k, n, tB), 2), tA, tB), { uses: ['gemm'], label });
    }
  });
}

nativeTest('BatchMatMul: a larger product (multi-threaded sgemm)', async (t) => {
  await matchesCpu(t, () => tf.matMul(rand([96, 130], 3), rand([130, 70], 4)), { uses: ['gemm'], atol: 1e-5 });
  await matchesCpu(t, () => tf.matMul(rand([4, 64, 48], 5), rand([4, 80, 48], 6), false, true), { uses: ['gemm'], atol: 1e-5 });
});

nativeTest('BatchMatMul: batch dims broadcast as in tfjs (output rank and shape)', async (t) => {
  // Leading 1s on one side keep the output's rank: [1, 1] with [5] is [1, 5].
  await matchesCpu(t, () => tf.matMul(rand([1, 1, 2, 3], 7), rand([5, 3, 4], 8)), { uses: ['gemm'], label: '[1,1] x [5]' });
  await matchesCpu(t, () => tf.matMul(rand([3, 2, 3], 9), rand([1, 1, 3, 4], 10)), { uses: ['gemm'], label: '[3] x [1,1]' });
  await matchesCpu(t, () => tf.matMul(rand([1, 2, 3], 11), rand([1, 1, 3, 4], 12)), { uses: ['gemm'], label: '[1] x [1,1]' });
  // Equal batch sizes but different batch shapes: [1, 3] with [3, 1] is a [3, 3] batch, not 3 pairs.
  await matchesCpu(t, () => tf.matMul(rand([1, 3, 2, 3], 13), rand([3, 1, 3, 4], 14)), { label: '[1,3] x [3,1]' });
});

nativeTest('BatchMatMul: empty operands give empty (or zero) outputs', async (t) => {
  await matchesCpu(t, () => tf.matMul(rand([0, 2, 3], 15), rand([0, 3, 4], 16)), { label: 'empty batch' });
  await matchesCpu(t, () => tf.matMul(rand([0, 3], 17), rand([3, 2], 18)), { label: 'm = 0' });
  await matchesCpu(t, () => tf.matMul(rand([2, 3], 19), rand([3, 0], 20)), { label: 'n = 0' });
  await matchesCpu(t, () => tf.matMul(rand([2, 0], 21), rand([0, 3], 22)), { uses: ['gemm'], label: 'k = 0 (zeros)' });
});

nativeTest('BatchMatMul: mismatched inner dims throw as on cpu', async (t) => {
  await tf.setBackend('native');
  t.throws(() => tf.tidy(() => tf.matMul(rand([2, 3], 1), rand([4, 2], 2))));
});

// ---- binary ops ----

type BinaryFn = (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;
const BINARY: [string, BinaryFn][] = [
  ['Add', tf.add],
  ['Sub', tf.sub],
  ['Multiply', tf.mul],
  ['RealDiv', tf.div],
  ['Maximum', tf.maximum],
  ['Minimum', tf.minimum],
  ['Pow', tf.pow],
  ['SquaredDifference', tf.squaredDifference],
];

/** [label, shape of a, shape of b]; the last two exceed the threshold where the C loops go parallel. */
const BROADCASTS: [string, number[], number[]][] = [
  ['same shape', [4, 5], [4, 5]],
  ['[n,d] with [d]', [6, 5], [5]],
  ['[n,d] with [n,1]', [6, 5], [6, 1]],
  ['[a,1,c] with [1,b,c]', [3, 1, 4], [1, 5, 4]],
  ['[n,1] with [1,d]', [4, 1], [1, 7]],
  ['[d] with [n,d]', [5], [6, 5]],
  ['scalar on the left', [], [3, 4]],
  ['scalar on the right', [3, 4], []],
  ['both scalars', [], []],
  ['an empty operand', [0, 3], [3]],
  ['rank 5 with inner broadcast', [2, 3, 1, 2, 3], [1, 3, 4, 2, 1]],
  ['large [200,200] with [200]', [200, 200], [200]],
  ['large one row [40000] with scalar', [40000], []],
];

for (const [name, fn] of BINARY) {
  nativeTest(`${name}: every broadcast pattern matches cpu`, async (t) => {
    for (const [label, sa, sb] of BROADCASTS) {
      // Pow: a positive base for real exponents.
      const build =
        name === 'Pow'
          ? (): tf.Tensor => fn(tf.add(tf.abs(rand(sa, 31)), 0.1), rand(sb, 32))
          : (): tf.Tensor => fn(rand(sa, 31), rand(sb, 32, name === 'RealDiv' ? 2 : 1));
      await matchesCpu(t, build, { uses: ['binary'], label });
    }
  });
}

nativeTest('Pow: negative bases with integer exponents, and non-integer exponents giving NaN', async (t) => {
  await matchesCpu(t, () => tf.pow(rand([5, 4], 33), tf.tensor1d([2, 3, 0, -1])), { uses: ['binary'] });
  await matchesCpu(t, () => tf.pow(tf.tensor1d([-2, -0.5, 0, 4]), tf.tensor1d([0.5, 1.5, -1, 0.25])), { uses: ['binary'] });
});

nativeTest('Maximum and Minimum propagate NaN from either side, also when broadcast', async (t) => {
  const a = [NaN, 1, 2, NaN, -Infinity, Infinity];
  const b = [0, NaN, 3, NaN, 5, -5];
  for (const fn of [tf.maximum, tf.minimum]) {
    await matchesCpu(t, () => fn(tf.tensor1d(a), tf.tensor1d(b)), { uses: ['binary'] });
    await matchesCpu(t, () => fn(tf.tensor2d([...a, ...b], [2, 6]), tf.scalar(NaN)), { uses: ['binary'] });
    await matchesCpu(t, () => fn(tf.tensor2d([...a, ...b], [2, 6]), tf.tensor2d([NaN, 0.5], [2, 1])), { uses: ['binary'] });
  }
  const out = await runOn('native', () => tf.maximum(tf.tensor1d(a), tf.tensor1d(b)));
  t.deepEqual(
    out.outputs[0]!.values.map((v) => Number.isNaN(v)),
    [true, true, false, true, false, false],
  );
});

nativeTest('binary ops: infinities and signed zeros', async (t) => {
  const a = [Infinity, -Infinity, 0, -0, 1, -1, Infinity, 0];
  const b = [Infinity, Infinity, 0, 0, 0, -0, 2, -3];
  for (const [name, fn] of BINARY) {
    if (name === 'Pow') continue;
    await matchesCpu(t, () => fn(tf.tensor1d(a), tf.tensor1d(b)), { uses: ['binary'], label: name });
  }
});

// ---- comparisons and logical ops ----

const COMPARE: [string, BinaryFn][] = [
  ['Equal', tf.equal],
  ['NotEqual', tf.notEqual],
  ['Greater', tf.greater],
  ['GreaterEqual', tf.greaterEqual],
  ['Less', tf.less],
  ['LessEqual', tf.lessEqual],
];

nativeTest('comparisons: every broadcast pattern, with ties, NaN and infinities, give bool tensors as on cpu', async (t) => {
  // Rounded values so that ties occur.
  const ties = (shape: number[], seed: number): tf.Tensor => tf.round(rand(shape, seed, 2));
  const special = [NaN, NaN, 1, Infinity, -Infinity, 0, -0, Infinity];
  const other = [NaN, 1, NaN, Infinity, Infinity, -0, 0, -Infinity];
  for (const [name, fn] of COMPARE) {
    for (const [label, sa, sb] of BROADCASTS) {
      await matchesCpu(t, () => fn(ties(sa, 35), ties(sb, 36)), { uses: ['compare'], rtol: 0, atol: 0, label: `${name} ${label}` });
    }
    await matchesCpu(t, () => fn(tf.tensor1d(special), tf.tensor1d(other)), { uses: ['compare'], rtol: 0, atol: 0, label: `${name} special values` });
    await matchesCpu(t, () => fn(tf.tensor1d([1, 2, 3], 'int32'), tf.tensor1d([3, 2, 1], 'int32')), { uses: 'none', rtol: 0, atol: 0, label: `${name} int32` });
  }
});

nativeTest('LogicalAnd and LogicalOr on bool tensors; broadcasting falls back to the stock kernel', async (t) => {
  const bools = (shape: number[], seed: number): tf.Tensor => tf.tensor(mask(sizeOf(shape), seed), shape, 'bool');
  for (const fn of [tf.logicalAnd, tf.logicalOr]) {
    await matchesCpu(t, () => fn(bools([5, 7], 37), bools([5, 7], 38)), { uses: ['logical'], rtol: 0, atol: 0 });
    await matchesCpu(t, () => fn(bools([200, 200], 39), bools([200, 200], 40)), { uses: ['logical'], rtol: 0, atol: 0, label: 'large' });
    await matchesCpu(t, () => fn(bools([5, 7], 41), bools([7], 42)), { rtol: 0, atol: 0, label: 'broadcast' });
    // A comparison's output feeding a logical op: the attention masks.
    await matchesCpu(t, () => fn(tf.greater(rand([4, 6], 43), 0), tf.less(rand([4, 6], 44), 0.5)), {
      uses: ['compare', 'logical'],
      rtol: 0,
      atol: 0,
      label: 'masks',
    });
  }
});

// ---- unary ops ----

type UnaryFn = (x: tf.Tensor) => tf.Tensor;
const UNARY: [string, UnaryFn, CompareOptions][] = [
  ['Exp', tf.exp, TRANSCENDENTAL],
  ['Log', tf.log, {}],
  ['Tanh', tf.tanh, TRANSCENDENTAL],
  ['Sqrt', tf.sqrt, {}],
  ['Rsqrt', tf.rsqrt, {}],
  ['Square', tf.square, {}],
  ['Neg', tf.neg, {}],
  ['Abs', tf.abs, {}],
  ['Sigmoid', tf.sigmoid, TRANSCENDENTAL],
  ['Relu', tf.relu, {}],
  ['Reciprocal', tf.reciprocal, {}],
  ['Log1p', tf.log1p, {}],
  ['Softplus', tf.softplus, TRANSCENDENTAL],
  // The stock cpu erf is Abramowitz-Stegun 7.1.26 (absolute error up to 1.5e-7), the native one is
  // libm's erff: they can differ by that much absolutely near 0, where erf is small.
  ['Erf', tf.erf, { atol: 3e-7 }],
  ['Sign', tf.sign, {}],
  ['Expm1', tf.expm1, {}],
];

const SPECIAL = [0, -0, NaN, Infinity, -Infinity, 1e-30, -1e-30, 1e-10, -1e-7, 0.0625, -0.7, 1, -1, 5, -5, 20, -20, 50, -50, 88, -88, 100, -100];

for (const [name, fn, tol] of UNARY) {
  nativeTest(`${name}: random, special and large inputs match cpu`, async (t) => {
    await matchesCpu(t, () => fn(rand([7, 9], 41, 3)), { ...tol, uses: ['unary'], label: 'random [7, 9]' });
    await matchesCpu(t, () => fn(tf.tensor1d(SPECIAL)), { ...tol, uses: ['unary'], label: 'special values' });
    // 40000 elements: above the threshold where the C loop is split over threads.
    await matchesCpu(t, () => fn(rand([200, 200], 42, 4)), { ...tol, uses: ['unary'], label: 'large [200, 200]' });
    // 17 elements: not a multiple of any vector width.
    await matchesCpu(t, () => fn(rand([17], 43, 2)), { ...tol, uses: ['unary'], label: 'odd length' });
    await matchesCpu(t, () => fn(rand([0, 3], 44)), { ...tol, label: 'empty' });
  });
}

nativeTest('Exp at the ends of the float range: overflow to inf, subnormal and zero results, NaN', async (t) => {
  const xs = [
    88,
    88.5,
    88.72,
    88.7228,
    88.73,
    89,
    100,
    1000,
    Infinity,
    -80,
    -86.9,
    -87,
    -87.3,
    -87.4,
    -87.7,
    -88,
    -90,
    -100,
    -103,
    -104,
    -110,
    -1000,
    -Infinity,
    NaN,
  ];
  await matchesCpu(t, () => tf.exp(tf.tensor1d(xs)), { ...TRANSCENDENTAL, uses: ['unary'] });
  // Down to FLT_MIN the result is a normal float and must be relatively accurate: exp(-87) is not 0.
  const out = await runOn('native', () => tf.exp(tf.tensor1d([-86.9, -87, -87.3])));
  for (const [i, x] of [-86.9, -87, -87.3].entries()) {
    const want = Math.fround(Math.exp(Math.fround(x)));
    t.true(Math.abs(out.outputs[0]!.values[i]! - want) <= 1e-6 * want, `exp(${x}) = ${out.outputs[0]!.values[i]}, want ${want}`);
  }
  // log(exp(x)) recovers x down to the subnormal range.
  await matchesCpu(t, () => tf.log(tf.exp(tf.tensor1d([-80, -87, -87.3]))), { rtol: 1e-6, uses: ['unary'] });
});

nativeTest('Tanh on tiny and small values keeps its relative accuracy', async (t) => {
  const tiny = [1e-38, -1e-38, 1e-30, 1e-20, -1e-10, 1e-7, 3e-4, -0.01, 0.05, 0.0624, 0.0625, -0.0626, 0.07, 0.1, -0.3, 0.5, 0.62, 0.625, -0.63, 0.9];
  await matchesCpu(t, () => tf.tanh(tf.tensor1d(tiny)), { rtol: 1e-6, atol: 0, uses: ['unary'] });
  // A dense sweep of the region where the polynomial and the exp form meet.
  const sweep = Array.from({ length: 4001 }, (_, i) => -1 + i / 2000);
  await matchesCpu(t, () => tf.tanh(tf.tensor1d(sweep)), { rtol: 1e-6, atol: 0, uses: ['unary'] });
});

nativeTest('Sigmoid and Softplus over a dense sweep of their range', async (t) => {
  const sweep = Array.from({ length: 4001 }, (_, i) => -100 + i / 20);
  await matchesCpu(t, () => tf.sigmoid(tf.tensor1d(sweep)), { ...TRANSCENDENTAL, uses: ['unary'] });
  await matchesCpu(t, () => tf.softplus(tf.tensor1d(sweep)), { ...TRANSCENDENTAL, uses: ['unary'] });
  await matchesCpu(t, () => tf.exp(tf.tensor1d(sweep.map((x) => x * 0.88))), { ...TRANSCENDENTAL, uses: ['unary'] });
});

// ---- reductions ----

type ReduceFn = (x: tf.Tensor, axis?: number | number[], keepDims?: boolean) => tf.Tensor;
const REDUCE: [string, ReduceFn][] = [
  ['Sum', tf.sum],
  ['Mean', tf.mean],
  ['Max', tf.max],
  ['Min', tf.min],
  ['Prod', tf.prod],
];

const AXES: [string, number | number[] | undefined][] = [
  ['all axes', undefined],
  ['last axis', -1],
  ['first axis', 0],
  ['middle axis', 1],
  ['two adjacent axes', [1, 2]],
  ['two adjacent axes, first two', [0, 1]],
  ['two non-adjacent axes', [0, 2]],
  ['all axes listed', [0, 1, 2]],
];

for (const [name, fn] of REDUCE) {
  nativeTest(`${name}: every axis pattern, keepDims true and false`, async (t) => {
    // Prod of values near 1 stays in range over all 120 elements.
    const x = (): tf.Tensor => (name === 'Prod' ? tf.add(1, rand([4, 5, 6], 51, 0.2)) : rand([4, 5, 6], 51));
    for (const [label, axis] of AXES) {
      for (const keepDims of [false, true]) {
        await matchesCpu(t, () => fn(x(), axis, keepDims), { uses: ['reduce'], label: `${label}, keepDims ${keepDims}`, atol: 1e-5 });
      }
    }
    // Size-1 dims between reduced axes do not break adjacency; rank 4 non-adjacent.
    await matchesCpu(t, () => fn(name === 'Prod' ? tf.add(1, rand([3, 1, 4, 2], 52, 0.2)) : rand([3, 1, 4, 2], 52), [0, 2]), {
      uses: ['reduce'],
      label: 'size-1 dim between',
      atol: 1e-5,
    });
    await matchesCpu(t, () => fn(name === 'Prod' ? tf.add(1, rand([2, 3, 4, 5], 53, 0.2)) : rand([2, 3, 4, 5], 53), [1, 3], true), {
      uses: ['reduce', 'transpose'],
      label: 'rank 4, axes 1 and 3',
      atol: 1e-5,
    });
    // Large: above the parallel threshold, on the inner==1 path and the strided path.
    await matchesCpu(t, () => fn(name === 'Prod' ? tf.add(1, rand([300, 200], 54, 0.01)) : rand([300, 200], 54), 1), {
      uses: ['reduce'],
      label: 'large, last axis',
      atol: 1e-4,
    });
    await matchesCpu(t, () => fn(name === 'Prod' ? tf.add(1, rand([300, 200], 55, 0.01)) : rand([300, 200], 55), 0), {
      uses: ['reduce'],
      label: 'large, first axis',
      atol: 1e-4,
    });
    // An empty axis list reduces nothing (a copy).
    await matchesCpu(t, () => fn(rand([2, 3], 56), []), { label: 'empty axis list' });
    // 1-D, and a reduction to a scalar of a single element.
    await matchesCpu(t, () => fn(rand([9], 57)), { uses: ['reduce'], label: '1-D' });
    await matchesCpu(t, () => fn(rand([1], 58), 0), { uses: ['reduce'], label: 'one element' });
  });
}

nativeTest('Sum, Max and Min propagate NaN; Max and Min of infinities', async (t) => {
  const values = [1, NaN, 3, -Infinity, 2, 5, Infinity, 0];
  for (const [name, fn] of REDUCE) {
    await matchesCpu(t, () => fn(tf.tensor2d(values, [2, 4]), 1), { uses: ['reduce'], label: `${name} last axis` });
    await matchesCpu(t, () => fn(tf.tensor2d(values, [2, 4]), 0), { uses: ['reduce'], label: `${name} first axis` });
  }
});

nativeTest('ArgMax and ArgMin on every axis, with ties resolved to the first index', async (t) => {
  for (const fn of [tf.argMax, tf.argMin]) {
    for (const axis of [0, 1, 2, -1]) await matchesCpu(t, () => fn(rand([4, 5, 6], 61), axis), { uses: ['argMinMax'], label: `axis ${axis}` });
    await matchesCpu(t, () => fn(tf.tensor2d([1, 3, 3, 2, 0, 0, -1, -1], [2, 4]), 1), { uses: ['argMinMax'], label: 'ties' });
    await matchesCpu(t, () => fn(tf.tensor1d([2, -Infinity, Infinity, 7])), { uses: ['argMinMax'], label: 'infinities' });
    await matchesCpu(t, () => fn(rand([300, 150], 62), 1), { uses: ['argMinMax'], label: 'large' });
  }
});

// ---- softmax, addN, select, fill ----

nativeTest('Softmax on the last axis: random, extreme and -inf logits', async (t) => {
  const tol: CompareOptions = { rtol: 2e-6, atol: 1e-9, uses: ['softmax'] };
  await matchesCpu(t, () => tf.softmax(rand([7, 13], 71, 3)), { ...tol, label: '[7, 13]' });
  await matchesCpu(t, () => tf.softmax(rand([2, 3, 50], 72, 5)), { ...tol, label: '[2, 3, 50]' });
  await matchesCpu(t, () => tf.softmax(rand([10], 73)), { ...tol, label: '1-D' });
  await matchesCpu(t, () => tf.softmax(tf.tensor2d([1000, 0, -1000, 999, -Infinity, 0, 1, -Infinity, 88, 89, 90, 91], [3, 4])), { ...tol, label: 'extreme' });
  await matchesCpu(t, () => tf.softmax(rand([300, 128], 74, 4)), { ...tol, label: 'large' });
  await matchesCpu(t, () => tf.softmax(rand([3, 1], 75)), { ...tol, label: 'one column' });
});

nativeTest('AddN of 2, 3 and 9 tensors', async (t) => {
  for (const count of [2, 3, 9]) {
    await matchesCpu(t, () => tf.addN(Array.from({ length: count }, (_, i) => rand([6, 7], 80 + i))), { uses: ['addN'], label: `${count} tensors` });
  }
  await matchesCpu(t, () => tf.addN([rand([200, 200], 90), rand([200, 200], 91)]), { uses: ['addN'], label: 'large' });
});

function mask(n: number, seed: number): boolean[] {
  return Array.from(normals(n, seed), (v) => v > 0);
}

nativeTest('Select (where) with a same-rank condition, broadcast conditions and NaN values', async (t) => {
  await matchesCpu(t, () => tf.where(tf.tensor2d(mask(20, 101), [4, 5], 'bool'), rand([4, 5], 102), rand([4, 5], 103)), { uses: ['select'] });
  await matchesCpu(t, () => tf.where(tf.tensor2d(mask(4, 104), [4, 1], 'bool'), rand([4, 5], 105), tf.scalar(-1e4)), { uses: ['select'], label: 'broadcast' });
  await matchesCpu(t, () => tf.where(tf.tensor1d([true, false, true], 'bool'), tf.tensor1d([NaN, 1, 2]), tf.tensor1d([0, NaN, 5])), {
    uses: ['select'],
    label: 'NaN',
  });
  await matchesCpu(t, () => tf.where(tf.tensor2d(mask(40000, 106), [200, 200], 'bool'), rand([200, 200], 107), rand([200, 200], 108)), {
    uses: ['select'],
    label: 'large',
  });
});

nativeTest('Select with a rank-1 condition picks whole rows', async (t) => {
  // tf.where broadcasts its inputs to one shape, so the rank-1 form is reachable only through the kernel.
  // The stock cpu kernel gets this case wrong (it repeats t[i] / e[i] along each row: tfjs 4.22
  // Select.js indexes the values by the condition's index), so the reference is computed here.
  const cond = [true, false, true];
  const tv = normals(12, 111),
    ev = normals(12, 112);
  const out = await runOn(
    'native',
    () => tf.engine().runKernel('Select', { condition: tf.tensor1d(cond, 'bool'), t: tf.tensor2d(tv, [3, 4]), e: tf.tensor2d(ev, [3, 4]) }) as tf.Tensor,
  );
  t.true((out.calls.get('select') ?? 0) > 0);
  t.deepEqual(out.outputs[0]!.shape, [3, 4]);
  const want = Array.from({ length: 12 }, (_, i) => (cond[Math.floor(i / 4)] ? tv[i]! : ev[i]!));
  t.deepEqual(out.outputs[0]!.values, want);
});

nativeTest('ClipByValue: inside, at and beyond both bounds, NaN and infinities kept as on cpu', async (t) => {
  await matchesCpu(t, () => tf.clipByValue(rand([7, 9], 131, 3), -1, 1), { uses: ['clip'], label: 'random' });
  await matchesCpu(t, () => tf.clipByValue(rand([600, 700], 132, 2000), -1000, 1000), { uses: ['clip'], label: 'large (BiSPA input clip)' });
  await matchesCpu(t, () => tf.clipByValue(tf.tensor1d([-Infinity, -2, -1, 0, 1, 2, Infinity, NaN]), -1, 1), { uses: ['clip'], label: 'specials' });
  // tfjs's op turns lo = hi into a fill before any kernel runs.
  await matchesCpu(t, () => tf.clipByValue(tf.tensor1d([-3, 0.5, 3]), 0.5, 0.5), { uses: ['fill'], label: 'lo = hi' });
  await matchesCpu(t, () => tf.clipByValue(tf.tensor1d([-3, 5, 9], 'int32'), 0, 6), { uses: 'none', label: 'int32' });
});

nativeTest('Fill, ZerosLike and OnesLike', async (t) => {
  await matchesCpu(t, () => tf.fill([3, 4], 2.5), { uses: ['fill'], label: 'fill' });
  await matchesCpu(t, () => tf.fill([300, 500], -1.25), { uses: ['fill'], label: 'large fill' });
  await matchesCpu(t, () => tf.fill([2, 2], NaN), { uses: ['fill'], label: 'fill NaN' });
  await matchesCpu(t, () => tf.zerosLike(rand([5, 6], 121)), { uses: ['fill'], label: 'zerosLike' });
  await matchesCpu(t, () => tf.onesLike(rand([5, 6], 122)), { uses: ['fill'], label: 'onesLike' });
  await matchesCpu(t, () => tf.fill([0, 3], 1), { label: 'empty fill' });
  await matchesCpu(t, () => tf.fill([], 4), { uses: ['fill'], label: 'scalar fill' });
  // Other dtypes are the stock kernels' business.
  await matchesCpu(t, () => tf.fill([2, 3], 7, 'int32'), { uses: 'none', label: 'int32 fill' });
  await matchesCpu(t, () => tf.onesLike(tf.tensor1d([1, 2, 3], 'int32')), { uses: 'none', label: 'int32 onesLike' });
});

// ---- layout ----

nativeTest('Transpose: swap-last-two fast path and general permutations up to rank 4', async (t) => {
  const cases: [number[], number[]][] = [
    [
      [5, 7],
      [1, 0],
    ],
    [
      [37, 45],
      [1, 0],
    ], // not a multiple of the 32 tile
    [
      [3, 37, 45],
      [0, 2, 1],
    ],
    [
      [2, 3, 33, 40],
      [0, 1, 3, 2],
    ],
    [
      [3, 4, 5],
      [2, 0, 1],
    ],
    [
      [3, 4, 5],
      [1, 0, 2],
    ],
    [
      [3, 4, 5],
      [0, 1, 2],
    ],
    [
      [2, 3, 4, 5],
      [3, 1, 0, 2],
    ],
    [
      [2, 3, 4, 5],
      [0, 2, 1, 3],
    ],
    [
      [2, 3, 4, 5],
      [3, 2, 1, 0],
    ],
    [[9], [0]], // rank 1: tf.transpose returns a clone without calling the kernel
    [
      [2, 150, 130],
      [0, 2, 1],
    ], // large, fast path
    [
      [40, 30, 30],
      [2, 0, 1],
    ], // large, general path
    [
      [2, 0, 3],
      [2, 0, 1],
    ], // empty
  ];
  for (const [shape, perm] of cases) {
    const viaKernel = sizeOf(shape) > 0 && shape.length > 1;
    await matchesCpu(t, () => tf.transpose(rand(shape, 131), perm), { uses: viaKernel ? ['transpose'] : [], rtol: 0, atol: 0, label: `${shape} by ${perm}` });
  }
});

nativeTest('Transpose above rank 8 falls back to the stock kernel', async (t) => {
  await matchesCpu(t, () => tf.transpose(rand([1, 2, 1, 2, 1, 2, 1, 2, 2], 132), [8, 7, 6, 5, 4, 3, 2, 1, 0]), { rtol: 0, atol: 0 });
  await matchesCpu(t, () => tf.add(rand([2, 1, 2, 1, 2, 1, 2, 1, 2], 133), rand([1, 2, 1, 2, 1, 2, 1, 2, 1], 134)));
});

nativeTest('Slice: begin and size, -1 sizes, empty and full slices, ranks 1 to 4', async (t) => {
  const exact: CompareOptions = { rtol: 0, atol: 0, uses: ['slice'] };
  await matchesCpu(t, () => tf.slice(rand([5, 6, 7], 141), [1, 2, 3], [2, -1, 3]), { ...exact, label: 'rank 3 with -1' });
  await matchesCpu(t, () => tf.slice(rand([5, 6, 7], 142), [0, 0, 0], [-1, -1, -1]), { ...exact, label: 'everything' });
  await matchesCpu(t, () => tf.slice(rand([5, 6, 7], 143), [4, 5, 6], [1, 1, 1]), { ...exact, label: 'last element' });
  await matchesCpu(t, () => tf.slice(rand([10], 144), 3, 4), { ...exact, label: 'rank 1' });
  await matchesCpu(t, () => tf.slice(rand([2, 3, 4, 5], 145), [1, 0, 1, 2], [1, 3, 2, -1]), { ...exact, label: 'rank 4' });
  await matchesCpu(t, () => tf.slice(rand([3, 4], 146), [1, 1], [0, 2]), { rtol: 0, atol: 0, label: 'empty' });
  await matchesCpu(t, () => tf.slice(rand([300, 400], 147), [10, 20], [250, 300]), { ...exact, label: 'large' });
  await tf.setBackend('native');
  t.throws(() => tf.tidy(() => tf.slice(rand([3, 4], 148), [2, 0], [2, 4])), undefined, 'a slice past the end throws');
});

nativeTest('PadV2 with constant values on ranks 1 to 3', async (t) => {
  const exact: CompareOptions = { rtol: 0, atol: 0, uses: ['pad'] };
  await matchesCpu(
    t,
    () =>
      tf.pad(
        rand([3, 4], 151),
        [
          [1, 2],
          [0, 3],
        ],
        1.5,
      ),
    { ...exact, label: 'rank 2' },
  );
  await matchesCpu(
    t,
    () =>
      tf.pad(rand([2, 3, 4], 152), [
        [0, 0],
        [2, 1],
        [1, 0],
      ]),
    { ...exact, label: 'rank 3' },
  );
  await matchesCpu(t, () => tf.pad(rand([5], 153), [[3, 0]], -2), { ...exact, label: 'rank 1' });
  await matchesCpu(
    t,
    () =>
      tf.pad(
        rand([0, 2], 154),
        [
          [1, 1],
          [0, 1],
        ],
        3,
      ),
    { ...exact, label: 'empty input' },
  );
  await matchesCpu(
    t,
    () =>
      tf.pad(
        rand([200, 180], 155),
        [
          [5, 6],
          [7, 8],
        ],
        0.5,
      ),
    { ...exact, label: 'large' },
  );
});

nativeTest('Concat on each axis, with unequal sizes and a zero-size input', async (t) => {
  const exact: CompareOptions = { rtol: 0, atol: 0, uses: ['copyRows'] };
  await matchesCpu(t, () => tf.concat([rand([2, 3, 4], 161), rand([5, 3, 4], 162), rand([1, 3, 4], 163)], 0), { ...exact, label: 'axis 0' });
  await matchesCpu(t, () => tf.concat([rand([2, 3, 4], 164), rand([2, 1, 4], 165), rand([2, 2, 4], 166)], 1), { ...exact, label: 'axis 1' });
  await matchesCpu(t, () => tf.concat([rand([2, 3, 4], 167), rand([2, 3, 2], 168)], 2), { ...exact, label: 'axis 2' });
  await matchesCpu(t, () => tf.concat([rand([2, 3, 4], 169), rand([2, 3, 1], 170)], -1), { ...exact, label: 'axis -1' });
  await matchesCpu(t, () => tf.concat([rand([2, 0, 4], 171), rand([2, 3, 4], 172)], 1), { ...exact, label: 'zero-size first' });
  await matchesCpu(t, () => tf.concat([rand([2, 3, 4], 173), rand([2, 0, 4], 174), rand([2, 1, 4], 175)], 1), { ...exact, label: 'zero-size middle' });
  await matchesCpu(t, () => tf.concat([rand([4], 176), rand([3], 177)]), { ...exact, label: '1-D' });
  await matchesCpu(t, () => tf.concat([rand([300, 100], 178), rand([300, 150], 179)], 1), { ...exact, label: 'large' });
});

nativeTest('SplitV with sizes (incl. -1) and with a count, on each axis', async (t) => {
  const exact: CompareOptions = { rtol: 0, atol: 0, uses: ['copyRows'] };
  await matchesCpu(t, () => tf.split(rand([4, 6, 3], 181), [1, 3, 2], 1), { ...exact, label: 'sizes, axis 1' });
  await matchesCpu(t, () => tf.split(rand([4, 6, 3], 182), [1, -1, 2], 1), { ...exact, label: 'sizes with -1' });
  await matchesCpu(t, () => tf.split(rand([6, 4], 183), 3, 0), { ...exact, label: 'count, axis 0' });
  await matchesCpu(t, () => tf.split(rand([4, 6, 3], 184), 3, 2), { ...exact, label: 'count, last axis' });
  await matchesCpu(t, () => tf.split(rand([4, 6], 185), [0, 6], 1), { ...exact, label: 'an empty part' });
});

nativeTest('GatherV2 on axis 0 and 1, with repeated and 2-D indices', async (t) => {
  const exact: CompareOptions = { rtol: 0, atol: 0, uses: ['gather'] };
  await matchesCpu(t, () => tf.gather(rand([10, 4], 191), tf.tensor1d([1, 1, 3, 9, 0, 3], 'int32')), { ...exact, label: 'axis 0' });
  await matchesCpu(t, () => tf.gather(rand([3, 10, 2], 192), tf.tensor1d([9, 0, 4], 'int32'), 1), { ...exact, label: 'axis 1' });
  await matchesCpu(t, () => tf.gather(rand([10, 4], 193), tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3], 'int32')), { ...exact, label: '2-D indices' });
  await matchesCpu(t, () => tf.gather(rand([5, 6], 194), tf.tensor1d([5, 0], 'int32'), -1), { ...exact, label: 'axis -1' });
  await matchesCpu(t, () => tf.gather(rand([3, 4], 195), tf.tensor1d([], 'int32')), { rtol: 0, atol: 0, label: 'no indices' });
});

nativeTest('GatherV2 with an index out of range throws instead of reading outside', async (t) => {
  await tf.setBackend('native');
  for (const index of [10, -1, 1000000]) {
    const err = t.throws(() => tf.tidy(() => tf.gather(rand([10, 4], 196), tf.tensor1d([0, index], 'int32'))));
    t.regex(err?.message ?? '', /index|range/i);
  }
});

nativeTest('UnsortedSegmentSum: repeated, missing and out-of-range segment ids, rank 3', async (t) => {
  await matchesCpu(t, () => tf.unsortedSegmentSum(rand([6, 4], 201), tf.tensor1d([0, 2, 2, 1, 0, 2], 'int32'), 3), { uses: ['segmentSum'], label: 'rank 2' });
  await matchesCpu(t, () => tf.unsortedSegmentSum(rand([5, 3], 202), tf.tensor1d([0, 4, -1, 0, 7], 'int32'), 5), {
    uses: ['segmentSum'],
    label: 'ids outside are dropped',
  });
  // tf.unsortedSegmentSum types its ids as 1-D; the kernel takes ids of any rank that prefix x's shape.
  const rank2Ids = (): tf.Tensor =>
    tf
      .engine()
      .runKernel(
        'UnsortedSegmentSum',
        { x: rand([2, 3, 4], 203), segmentIds: tf.tensor2d([0, 1, 0, 2, 2, 1], [2, 3], 'int32') },
        { numSegments: 3 },
      ) as tf.Tensor;
  await matchesCpu(t, rank2Ids, { uses: ['segmentSum'], label: 'ids of rank 2' });
  await matchesCpu(
    t,
    () =>
      tf.unsortedSegmentSum(
        rand([400, 128], 204),
        tf.tensor1d(
          Array.from({ length: 400 }, (_, i) => (i * 7) % 50),
          'int32',
        ),
        50,
      ),
    { uses: ['segmentSum'], atol: 1e-5, label: 'large' },
  );
});

// ---- other dtypes ----

nativeTest('int32 inputs run the stock kernels and give the right answers', async (t) => {
  const ints = (seed: number, shape: number[]): tf.Tensor => tf.tensor(Array.from(normals(sizeOf(shape), seed, 10), Math.round), shape, 'int32');
  const none: CompareOptions = { uses: 'none', rtol: 0, atol: 0 };
  await matchesCpu(t, () => tf.add(ints(211, [3, 4]), ints(212, [4])), { ...none, label: 'add' });
  await matchesCpu(t, () => tf.mul(ints(213, [3, 4]), ints(214, [3, 1])), { ...none, label: 'mul' });
  await matchesCpu(t, () => tf.maximum(ints(215, [3, 4]), ints(216, [3, 4])), { ...none, label: 'maximum' });
  await matchesCpu(t, () => tf.sum(ints(217, [3, 4]), 1), { ...none, label: 'sum' });
  await matchesCpu(t, () => tf.max(ints(218, [3, 4]), 0), { ...none, label: 'max' });
  await matchesCpu(t, () => tf.argMax(ints(219, [3, 4]), 1), { ...none, label: 'argMax' });
  await matchesCpu(t, () => tf.transpose(ints(220, [3, 4])), { ...none, label: 'transpose' });
  await matchesCpu(t, () => tf.slice(ints(221, [3, 4]), [1, 1], [2, 2]), { ...none, label: 'slice' });
  await matchesCpu(t, () => tf.concat([ints(222, [2, 2]), ints(223, [2, 3])], 1), { ...none, label: 'concat' });
  await matchesCpu(t, () => tf.gather(ints(224, [5, 2]), tf.tensor1d([4, 0], 'int32')), { ...none, label: 'gather' });
  await matchesCpu(t, () => tf.matMul(ints(225, [2, 3]), ints(226, [3, 2])), { ...none, label: 'matMul' });
  await matchesCpu(t, () => tf.neg(ints(227, [5])), { ...none, label: 'neg' });
  await matchesCpu(t, () => tf.abs(ints(228, [5])), { ...none, label: 'abs' });
});

nativeTest('bool and int32 tensors cast to float32 share their storage and still compute right', async (t) => {
  // The stock Cast to float32 keeps the Uint8Array / Int32Array storage; the native kernels convert it.
  const bools = (seed: number, shape: number[]): tf.Tensor => tf.tensor(mask(sizeOf(shape), seed), shape, 'bool');
  await matchesCpu(t, () => tf.mul(tf.cast(bools(231, [3, 4]), 'float32'), rand([3, 4], 232)), { uses: ['binary'], label: 'bool -> float32, multiply' });
  await matchesCpu(t, () => tf.sum(tf.cast(bools(233, [3, 4]), 'float32'), 1), { uses: ['reduce'], label: 'bool -> float32, sum' });
  await matchesCpu(t, () => tf.matMul(tf.cast(tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3], 'int32'), 'float32'), rand([3, 2], 234)), {
    uses: ['gemm'],
    label: 'int32 -> float32, matMul',
  });
  await matchesCpu(t, () => tf.exp(tf.cast(tf.tensor1d([-1, 0, 2], 'int32'), 'float32')), {
    ...TRANSCENDENTAL,
    uses: ['unary'],
    label: 'int32 -> float32, exp',
  });
  // The attention masks: where(mask, x, -1e4) then softmax.
  await matchesCpu(t, () => tf.softmax(tf.where(bools(235, [4, 6]), rand([4, 6], 236), tf.scalar(-1e4))), {
    rtol: 2e-6,
    atol: 1e-9,
    uses: ['softmax'],
    label: 'masked softmax',
  });
});

// ---- fused kernels ----

const EPS = 1e-5;

/** The composite layer norm of src/nn/layers.ts (its non-fused branch). */
function layerNormComposite(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): { y: tf.Tensor; xhat: tf.Tensor; rsigma: tf.Tensor } {
  const { mean, variance } = tf.moments(x, -1, true);
  const rsigma = tf.rsqrt(tf.add(variance, EPS));
  const xhat = tf.mul(tf.sub(x, mean), rsigma);
  return { y: tf.add(tf.mul(xhat, gamma), beta), xhat, rsigma };
}

function layerNormGradComposite(dy: tf.Tensor, xhat: tf.Tensor, rsigma: tf.Tensor, gamma: tf.Tensor): tf.Tensor[] {
  const g = tf.mul(dy, gamma);
  const centred = tf.sub(g, tf.mean(g, -1, true));
  const dx = tf.mul(tf.sub(centred, tf.mul(xhat, tf.mean(tf.mul(g, xhat), -1, true))), rsigma);
  const rows = dy.reshape([-1, dy.shape[dy.shape.length - 1]!]);
  return [dx, tf.sum(tf.mul(rows, xhat.reshape(rows.shape)), 0), tf.sum(rows, 0)];
}

const GELU_C = Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;

function geluComposite(x: tf.Tensor): tf.Tensor {
  const t = tf.tanh(tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), GELU_A)), GELU_C));
  return tf.mul(tf.mul(x, 0.5), tf.add(t, 1));
}

function geluGradComposite(x: tf.Tensor, dy: tf.Tensor): tf.Tensor {
  const x2 = tf.square(x);
  const th = tf.tanh(tf.mul(tf.mul(x, tf.add(tf.mul(x2, GELU_A), 1)), GELU_C));
  const du = tf.mul(tf.add(tf.mul(x2, 3 * GELU_A), 1), GELU_C);
  const d = tf.add(tf.mul(tf.add(th, 1), 0.5), tf.mul(tf.mul(tf.mul(x, 0.5), tf.sub(1, tf.square(th))), du));
  return tf.mul(dy, d);
}

function adamWComposite(p: tf.Tensor, g: tf.Tensor, m: tf.Tensor, v: tf.Tensor, s: AdamWStep): tf.Tensor[] {
  const m2 = tf.add(tf.mul(m, s.beta1), tf.mul(g, 1 - s.beta1));
  const v2 = tf.add(tf.mul(v, s.beta2), tf.mul(tf.square(g), 1 - s.beta2));
  const denom = tf.add(tf.div(tf.sqrt(v2), s.biasCorrection2Sqrt), s.epsilon);
  return [tf.sub(tf.mul(p, s.decay), tf.mul(tf.div(m2, denom), s.stepSize)), m2, v2];
}

/** Runs `fused` on native and `composite` on cpu and compares their outputs in order. */
async function fusedMatchesComposite(
  t: ExecutionContext,
  fused: () => tf.Tensor[],
  composite: () => tf.Tensor[],
  tol: CompareOptions,
  kernel: string,
): Promise<void> {
  const label = tol.label ?? kernel;
  const cpu = await runOn('cpu', composite);
  const native = await runOn('native', fused);
  t.is(native.leaked, 0, `${label}: tensors leaked`);
  t.true((native.calls.get(kernel) ?? 0) > 0, `${label}: addon.${kernel} not called`);
  t.is(native.outputs.length, cpu.outputs.length);
  native.outputs.forEach((out, i) => {
    t.deepEqual(out.shape, cpu.outputs[i]!.shape, `${label}: output ${i} shape`);
    t.deepEqual(mismatches(out.values, cpu.outputs[i]!.values, tol), [], `${label}: output ${i} values`);
  });
}

function present<T>(value: T | null): T {
  if (value === null) throw new Error('the fused kernel is missing on the native backend');
  return value;
}

nativeTest('fusedLayerNorm matches the composite layer norm (2-D and 3-D, large)', async (t) => {
  for (const [label, shape] of [
    ['[6, 16]', [6, 16]],
    ['[2, 3, 8]', [2, 3, 8]],
    ['[256, 192]', [256, 192]],
    ['[3, 1]', [3, 1]],
  ] as const) {
    const d = shape[shape.length - 1]!;
    const inputs = (): tf.Tensor[] => [rand([...shape], 301, 2), tf.add(1, rand([d], 302, 0.3)), rand([d], 303, 0.3)];
    await fusedMatchesComposite(
      t,
      () => {
        const [x, g, b] = inputs();
        const r = present(fusedLayerNorm(x!, g!, b!, EPS));
        return [r.y, r.xhat, r.rsigma];
      },
      () => {
        const [x, g, b] = inputs();
        const r = layerNormComposite(x!, g!, b!);
        return [r.y, r.xhat, r.rsigma];
      },
      { rtol: 1e-5, atol: 1e-5, label },
      'layerNorm',
    );
  }
});

nativeTest('fusedLayerNormGrad matches the composite gradient', async (t) => {
  for (const [label, shape] of [
    ['[6, 16]', [6, 16]],
    ['[2, 3, 8]', [2, 3, 8]],
    ['[256, 192]', [256, 192]],
  ] as const) {
    const d = shape[shape.length - 1]!;
    // x_hat and 1 / sigma from the composite forward pass on both backends, so only the gradient differs.
    const inputs = (): tf.Tensor[] => {
      const x = rand([...shape], 311, 2),
        gamma = tf.add(1, rand([d], 312, 0.3));
      const { xhat, rsigma } = layerNormComposite(x, gamma, tf.zeros([d]));
      return [rand([...shape], 313), xhat, rsigma, gamma];
    };
    await fusedMatchesComposite(
      t,
      () => {
        const [dy, xhat, rsigma, gamma] = inputs();
        const r = present(fusedLayerNormGrad(dy!, xhat!, rsigma!, gamma!));
        return [r.dx, r.dgamma, r.dbeta];
      },
      () => {
        const [dy, xhat, rsigma, gamma] = inputs();
        return layerNormGradComposite(dy!, xhat!, rsigma!, gamma!);
      },
      { rtol: 1e-5, atol: 2e-5, label },
      'layerNormGrad',
    );
  }
});

nativeTest('fusedGelu and fusedGeluGrad match the composite tanh-approximation GELU', async (t) => {
  const sweep = (): tf.Tensor => tf.tensor1d(Array.from({ length: 2001 }, (_, i) => -12 + i * 0.012));
  for (const [label, x] of [
    ['random', () => rand([33, 65], 321, 3)],
    ['sweep', sweep],
    ['special', () => tf.tensor1d([0, -0, 1e-20, -1e-6, 1e-3, 20, -20, 100, -100])],
  ] as const) {
    // 0.5 x (1 + tanh u) cancels for negative x in float32: both forms are off the exact value by up
    // to about 4e-7 absolutely there (measured against float64), so that is the tolerance.
    await fusedMatchesComposite(
      t,
      () => [present(fusedGelu(x()))],
      () => [geluComposite(x())],
      { rtol: 2e-6, atol: 1e-6, label: `gelu ${label}` },
      'gelu',
    );
    const dy = (): tf.Tensor => tf.add(1, tf.zerosLike(x()));
    // The composite's 1 - tanh(u)^2 cancels once tanh(u) rounds to +-1 (|u| > 8, x < -4.8) and is
    // off the float64 value by up to 5.5e-7 absolutely there; the fused kernel forms sech^2 from
    // exp(-2|u|) instead, so the two differ by about the composite's own error.
    await fusedMatchesComposite(
      t,
      () => [present(fusedGeluGrad(x(), dy()))],
      () => [geluGradComposite(x(), dy())],
      { rtol: 2e-6, atol: 1e-6, label: `geluGrad ${label}` },
      'geluGrad',
    );
  }
  await fusedMatchesComposite(
    t,
    () => [present(fusedGeluGrad(rand([300, 200], 322, 2), rand([300, 200], 323)))],
    // (dy up to about 4 here scales the error above by as much)
    () => [geluGradComposite(rand([300, 200], 322, 2), rand([300, 200], 323))],
    { rtol: 2e-6, atol: 1.2e-5, label: 'geluGrad large' },
    'geluGrad',
  );
});

nativeTest('fusedSoftmaxGrad matches P (G - rowsum(G P)) with and without a dropout mask', async (t) => {
  for (const [label, shape] of [
    ['[5, 7]', [5, 7]],
    ['[3, 17, 33]', [3, 17, 33]],
    ['[40, 300]', [40, 300]],
  ] as const) {
    const p = (): tf.Tensor => tf.softmax(rand([...shape], 401, 2));
    const dp = (): tf.Tensor => rand([...shape], 402);
    const mask = (): tf.Tensor => tf.mul(tf.cast(tf.greater(rand([...shape], 403), -0.8), 'float32'), 1.25);
    const composite = (g: tf.Tensor, pp: tf.Tensor): tf.Tensor => tf.mul(pp, tf.sub(g, tf.sum(tf.mul(g, pp), -1, true)));
    await fusedMatchesComposite(
      t,
      () => [present(fusedSoftmaxGrad(p(), dp(), null))],
      () => [composite(dp(), p())],
      { rtol: 1e-5, atol: 1e-6, label: `softmaxGrad ${label}` },
      'softmaxGrad',
    );
    await fusedMatchesComposite(
      t,
      () => [present(fusedSoftmaxGrad(p(), dp(), mask()))],
      () => [composite(tf.mul(dp(), mask()), p())],
      { rtol: 1e-5, atol: 1e-6, label: `softmaxGrad masked ${label}` },
      'softmaxGrad',
    );
  }
});

nativeTest('fusedWindowGemm and its gradients match sums of products over sliced row windows', async (t) => {
  // A 3x3 convolution's layout (nn/grid.ts): 9 windows of n rows in a [p, cin] matrix, overlapping.
  const [p, cin, cout, n] = [60, 5, 4, 40];
  const starts = [0, 1, 2, 9, 10, 11, 18, 19, 20];
  const x = (): tf.Tensor2D => rand([p, cin], 411) as tf.Tensor2D;
  const w = (): tf.Tensor3D => rand([9, cin, cout], 412) as tf.Tensor3D;
  const dOut = (): tf.Tensor2D => rand([n, cout], 413) as tf.Tensor2D;
  const tap = (k: tf.Tensor3D, i: number): tf.Tensor2D => tf.reshape(tf.slice(k, [i, 0, 0], [1, cin, cout]), [cin, cout]);
  const window = (m: tf.Tensor2D, i: number): tf.Tensor2D => tf.slice(m, [starts[i]!, 0], [n, cin]);
  await fusedMatchesComposite(
    t,
    () => [present(fusedWindowGemm(x(), w(), starts, n))],
    () => [tf.addN(starts.map((_, i) => tf.matMul(window(x(), i), tap(w(), i))))],
    { rtol: 1e-5, atol: 1e-5, label: 'windowGemm' },
    'windowGemm',
  );
  await fusedMatchesComposite(
    t,
    () => [present(fusedWindowGemmGradInput(dOut(), w(), starts, p))],
    () => [
      tf.addN(
        starts.map((s0, i) =>
          tf.pad(tf.matMul(dOut(), tap(w(), i), false, true), [
            [s0, p - n - s0],
            [0, 0],
          ]),
        ),
      ),
    ],
    { rtol: 1e-5, atol: 1e-5, label: 'windowGemmGradInput' },
    'windowGemmGradInput',
  );
  await fusedMatchesComposite(
    t,
    () => [present(fusedWindowGemmGradWeights(x(), dOut(), starts))],
    () => [tf.stack(starts.map((_, i) => tf.matMul(window(x(), i), dOut(), true, false)))],
    { rtol: 1e-5, atol: 1e-5, label: 'windowGemmGradWeights' },
    'windowGemmGradWeights',
  );
  // A window that leaves the input is refused at the boundary, not read past the end.
  t.throws(() => tf.tidy(() => present(fusedWindowGemm(x(), w(), [0, 1, 2, 9, 10, 11, 18, 19, 21], n))), {
    instanceOf: RangeError,
    message: /windowGemm: window outside the input/,
  });
});

nativeTest('fusedAdamW matches the composite AdamW update', async (t) => {
  for (const [label, n, step] of [
    ['small', 37, 1],
    ['large', 70000, 3],
    ['late step', 129, 1000],
  ] as const) {
    const lr = 1e-3,
      wd = 0.01,
      b1 = 0.9,
      b2 = 0.999;
    const s: AdamWStep = {
      beta1: b1,
      beta2: b2,
      epsilon: 1e-8,
      decay: 1 - lr * wd,
      stepSize: lr / (1 - b1 ** step),
      biasCorrection2Sqrt: Math.sqrt(1 - b2 ** step),
    };
    const inputs = (): tf.Tensor[] => [rand([n], 331), rand([n], 332, 0.1), rand([n], 333, 0.01), tf.square(rand([n], 334, 0.01))];
    await fusedMatchesComposite(
      t,
      () => {
        const [p, g, m, v] = inputs();
        const r = present(fusedAdamW(p!, g!, m!, v!, s));
        return [r.p, r.m, r.v];
      },
      () => {
        const [p, g, m, v] = inputs();
        return adamWComposite(p!, g!, m!, v!, s);
      },
      { rtol: 1e-5, atol: 1e-8, label },
      'adamw',
    );
  }
});

nativeTest('the fused kernels are native-only: on cpu each returns null', async (t) => {
  await tf.setBackend('cpu');
  tf.tidy(() => {
    const x = rand([2, 4], 341),
      g = tf.ones([4]),
      b = tf.zeros([4]);
    t.is(fusedLayerNorm(x, g, b, EPS), null);
    t.is(fusedLayerNormGrad(x, x, tf.ones([2, 1]), g), null);
    t.is(fusedGelu(x), null);
    t.is(fusedGeluGrad(x, x), null);
    t.is(fusedAdamW(x, x, x, x, { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, decay: 1, stepSize: 1e-3, biasCorrection2Sqrt: 1 }), null);
  });
  await tf.setBackend('native');
  tf.tidy(() => t.not(fusedGelu(rand([2], 342)), null));
});

nativeTest('layerNorm and gelu of src/nn: value and gradients through the fused kernels match cpu', async (t) => {
  const f = (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor =>
    tf.sum(tf.mul(gelu(layerNorm(x as tf.Tensor2D, { gamma: gamma as tf.Tensor1D, beta: beta as tf.Tensor1D })), rand([5, 12], 353)));
  const build = (): tf.Tensor[] => {
    const inputs = [rand([5, 12], 350, 2), tf.add(1, rand([12], 351, 0.3)), rand([12], 352, 0.3)];
    const { value, grads } = tf.valueAndGrads((...xs: tf.Tensor[]) => f(xs[0]!, xs[1]!, xs[2]!))(inputs);
    return [value, ...grads];
  };
  await matchesCpu(t, build, { rtol: 1e-5, atol: 1e-5, uses: ['layerNorm', 'layerNormGrad', 'gelu', 'geluGrad'] });
});

// ---- the addon's argument checks ----

/** Asserts that a raw addon call throws a RangeError whose message names the entry point. */
function throwsRange(t: ExecutionContext, name: string, call: () => void, what?: RegExp): void {
  const err = t.throws(call, { instanceOf: RangeError }, `${name} should throw a RangeError`);
  t.regex(err?.message ?? '', new RegExp(`^longner-native ${name}: `), `${name}: ${err?.message}`);
  if (what !== undefined) t.regex(err?.message ?? '', what);
}

const f32 = (n: number): Float32Array => new Float32Array(n);

nativeTest('addon: arrays too short for the shape they are used with throw a RangeError naming the call', (t) => {
  const a = addon();
  const short = /shorter/;
  throwsRange(t, 'gemm', () => a.gemm(f32(6), f32(12), f32(8), 1, 1, 2, 4, 4, 0, 0), short); // a needs 8
  throwsRange(t, 'gemm', () => a.gemm(f32(8), f32(12), f32(8), 1, 1, 2, 4, 4, 0, 0), short); // b needs 16
  throwsRange(t, 'gemm', () => a.gemm(f32(8), f32(16), f32(7), 1, 1, 2, 4, 4, 0, 0), short); // c needs 8
  throwsRange(t, 'gemm', () => a.gemm(f32(16), f32(16), f32(8), 2, 1, 2, 4, 4, 0, 0), short); // c needs 16 for 2 batches
  throwsRange(t, 'gemm', () => a.gemm(f32(8), f32(16), f32(8), 2, 3, 2, 4, 4, 0, 0), /broadcast/);
  throwsRange(t, 'binary', () => a.binary(0, f32(5), [1], f32(6), [1], f32(6), [6]), short);
  throwsRange(t, 'binary', () => a.binary(0, f32(12), [4, 1], f32(3), [0, 1], f32(12), [3, 4]), short); // b needs 4
  throwsRange(t, 'binary', () => a.binary(0, f32(12), [4, 1], f32(4), [0, 1], f32(11), [3, 4]), short);
  throwsRange(t, 'binary', () => a.binary(99, f32(1), [1], f32(1), [1], f32(1), [1]), /unknown op/);
  throwsRange(t, 'binary', () => a.binary(0, f32(4), [1, 1], f32(4), [1], f32(4), [4]), /rank/);
  throwsRange(t, 'compare', () => a.compare(0, f32(5), [1], f32(6), [1], new Uint8Array(6), [6]), short);
  throwsRange(t, 'compare', () => a.compare(0, f32(6), [1], f32(6), [1], new Uint8Array(5), [6]), short);
  throwsRange(t, 'compare', () => a.compare(99, f32(1), [1], f32(1), [1], new Uint8Array(1), [1]), /unknown op/);
  throwsRange(t, 'logical', () => a.logical(0, new Uint8Array(4), new Uint8Array(3), new Uint8Array(4)), /length/);
  throwsRange(t, 'logical', () => a.logical(1, new Uint8Array(4), new Uint8Array(4), new Uint8Array(0)), /length/);
  throwsRange(t, 'unary', () => a.unary(0, f32(10), f32(9)), short);
  throwsRange(t, 'unary', () => a.unary(99, f32(1), f32(1)), /unknown op/);
  throwsRange(t, 'reduce', () => a.reduce(0, f32(23), f32(4), 2, 3, 4), short);
  throwsRange(t, 'reduce', () => a.reduce(0, f32(24), f32(7), 2, 3, 4), short);
  throwsRange(t, 'reduce', () => a.reduce(0, f32(24), f32(8), -2, 3, 4), /negative/);
  throwsRange(t, 'argMinMax', () => a.argMinMax(f32(11), new Int32Array(4), 1, 3, 4, 0), short);
  throwsRange(t, 'argMinMax', () => a.argMinMax(f32(12), new Int32Array(3), 1, 3, 4, 0), /shorter/);
  throwsRange(t, 'argMinMax', () => a.argMinMax(f32(12), new Int32Array(4), 4, 0, 3, 0), /empty axis/);
  throwsRange(t, 'softmax', () => a.softmax(f32(11), f32(12), 3, 4, 0), short);
  throwsRange(t, 'transpose', () => a.transpose(f32(23), f32(24), [2, 3, 4], [2, 0, 1]), short);
  throwsRange(t, 'transpose', () => a.transpose(f32(24), f32(24), [2, 3, 4], [2, 2, 1]), /permutation/);
  throwsRange(t, 'slice', () => a.slice(f32(12), f32(4), [3, 4], [2, 1], [2, 2]), /outside/);
  throwsRange(t, 'slice', () => a.slice(f32(12), f32(4), [3, 4], [-1, 0], [2, 2]), /outside/);
  throwsRange(t, 'slice', () => a.slice(f32(11), f32(4), [3, 4], [0, 0], [2, 2]), short);
  throwsRange(t, 'slice', () => a.slice(f32(12), f32(3), [3, 4], [0, 0], [2, 2]), short);
  throwsRange(t, 'pad', () => a.pad(f32(6), f32(17), [2, 3], [1, 1], [0, 2], 0), short); // out needs 3 * 6
  throwsRange(t, 'pad', () => a.pad(f32(6), f32(20), [2, 3], [-1, 1], [0, 2], 0), /negative/);
  throwsRange(t, 'copyRows', () => a.copyRows(f32(10), 2, 4, f32(12), 0, 4, 3, 2), short); // src needs 2 + 8 + 2
  throwsRange(t, 'copyRows', () => a.copyRows(f32(12), 0, 4, f32(10), 1, 4, 3, 2), short);
  throwsRange(t, 'gather', () => a.gather(f32(12), new Int32Array([0, 3]), f32(8), 1, 3, 4), /index out of range/);
  throwsRange(t, 'gather', () => a.gather(f32(12), new Int32Array([0, -1]), f32(8), 1, 3, 4), /index out of range/);
  throwsRange(t, 'gather', () => a.gather(f32(11), new Int32Array([0, 2]), f32(8), 1, 3, 4), short);
  throwsRange(t, 'gather', () => a.gather(f32(12), new Int32Array([0, 2]), f32(7), 1, 3, 4), short);
  throwsRange(t, 'segmentSum', () => a.segmentSum(f32(11), new Int32Array(3), f32(8), 4, 2), short);
  throwsRange(t, 'segmentSum', () => a.segmentSum(f32(12), new Int32Array(3), f32(7), 4, 2), short);
  throwsRange(t, 'select', () => a.select(new Uint8Array(2), f32(12), f32(12), f32(12), 4), /condition/);
  throwsRange(t, 'select', () => a.select(new Uint8Array(3), f32(12), f32(11), f32(12), 4), short);
  throwsRange(t, 'select', () => a.select(new Uint8Array(3), f32(12), f32(12), f32(12), 0), /positive/);
  throwsRange(t, 'addN', () => a.addN([f32(6), f32(5)], f32(6)), short);
  throwsRange(t, 'addN', () => a.addN([], f32(6)), /1 to 64/);
  throwsRange(t, 'adamw', () => a.adamw(f32(6), f32(6), f32(5), f32(6), f32(6), f32(6), f32(6), 0.9, 0.999, 1e-8, 1, 1e-3, 1), short);
  throwsRange(t, 'adamw', () => a.adamw(f32(6), f32(6), f32(6), f32(6), f32(6), f32(6), f32(2), 0.9, 0.999, 1e-8, 1, 1e-3, 1), short);
  throwsRange(t, 'layerNorm', () => a.layerNorm(f32(12), f32(4), f32(4), f32(12), f32(12), f32(2), 3, 4, 1e-5), short);
  throwsRange(t, 'layerNorm', () => a.layerNorm(f32(12), f32(3), f32(4), f32(12), f32(12), f32(3), 3, 4, 1e-5), short);
  throwsRange(t, 'layerNormGrad', () => a.layerNormGrad(f32(12), f32(11), f32(3), f32(4), f32(12), f32(4), f32(4), 3, 4), short);
  throwsRange(t, 'gelu', () => a.gelu(f32(5), f32(4)), short);
  throwsRange(t, 'geluGrad', () => a.geluGrad(f32(5), f32(5), f32(4)), short);
  // R 2, C 3, c 4: q, k, v, out need 24, cos and sin 12, valid 6.
  const ra = (q: number, cs: number, valid: number, out: number, c = 4, rate = 0, seed = 1): void =>
    a.rowAttention(f32(q), f32(24), f32(24), f32(cs), f32(12), f32(valid), f32(out), 2, 3, c, 0.5, rate, seed);
  throwsRange(t, 'rowAttention', () => ra(23, 12, 6, 24), short);
  throwsRange(t, 'rowAttention', () => ra(24, 11, 6, 24), short);
  throwsRange(t, 'rowAttention', () => ra(24, 12, 5, 24), short);
  throwsRange(t, 'rowAttention', () => ra(24, 12, 6, 23), short);
  throwsRange(t, 'rowAttention', () => ra(24, 12, 6, 24, 4, 1), /rate/);
  throwsRange(t, 'rowAttention', () => ra(24, 12, 6, 24, 4, 0.1, -1), /seed/);
  throwsRange(t, 'rowAttention', () => ra(18, 9, 6, 18, 3), /even/);
  throwsRange(
    t,
    'rowAttentionGrad',
    () => a.rowAttentionGrad(f32(24), f32(24), f32(24), f32(12), f32(12), f32(6), f32(23), f32(24), f32(24), f32(24), 2, 3, 4, 0.5, 0, 1),
    short,
  );
  throwsRange(
    t,
    'rowAttentionGrad',
    () => a.rowAttentionGrad(f32(24), f32(24), f32(24), f32(12), f32(12), f32(6), f32(24), f32(24), f32(24), f32(20), 2, 3, 4, 0.5, 0, 1),
    short,
  );
  throwsRange(t, 'setThreads', () => a.setThreads(0), /threads/);
});

nativeTest('addon: wrong argument types throw a RangeError naming the call', (t) => {
  const a = addon();
  const call = (name: string, f: (...args: unknown[]) => unknown, ...args: unknown[]): void => throwsRange(t, name, () => f(...args));
  const raw = a as unknown as Record<string, (...args: unknown[]) => unknown>;
  call('unary', raw.unary!, 0, new Float64Array(4), f32(4));
  call('unary', raw.unary!, 0, [1, 2, 3], f32(3));
  call('gemm', raw.gemm!, f32(4), f32(4), f32(4), 1, 1, 2, 2, 'two', 0, 0);
  call('gather', raw.gather!, f32(4), new Float32Array([0]), f32(4), 1, 4, 1);
  call('transpose', raw.transpose!, f32(4), f32(4), 4, [0]);
  call('binary', raw.binary!, 0, f32(4), [1, 1, 1, 1, 1, 1, 1, 1, 1], f32(4), [1], f32(4), [4]);
  call('reduce', raw.reduce!, 0, f32(4), f32(4));
});

nativeTest('addon: in-range calls still work after the failures above (no state is left behind)', (t) => {
  const a = addon();
  const out = f32(4);
  a.gemm(new Float32Array([1, 2, 3, 4]), new Float32Array([1, 0, 0, 1]), out, 1, 1, 2, 2, 2, 0, 0);
  t.deepEqual(Array.from(out), [1, 2, 3, 4]);
  const g = f32(2);
  a.gather(new Float32Array([5, 6, 7]), new Int32Array([2, 0]), g, 1, 3, 1);
  t.deepEqual(Array.from(g), [7, 5]);
});

nativeTest('addon: empty arrays and sizes whose product overflows throw instead of crashing the process', (t) => {
  // Run in a child process: a regression here is a segfault, which would take the test worker with it.
  const addonPath = createRequire(import.meta.url).resolve('longner-native');
  const script = `
    const a = require(${JSON.stringify(addonPath)});
    const f = (n) => new Float32Array(n);
    const big = 2 ** 32, huge = 2 ** 62;
    const calls = {
      'unary into an empty output': () => a.unary(0, f(1024), f(0)),
      'gemm on empty arrays': () => a.gemm(f(0), f(0), f(0), 1, 1, 64, 64, 64, 0, 0),
      'binary on an empty input': () => a.binary(0, f(0), [1], f(64), [1], f(64), [64]),
      'gather from an empty table': () => a.gather(f(0), new Int32Array([0]), f(4), 1, 1, 4),
      'argMinMax into an empty output': () => a.argMinMax(f(16), new Int32Array(0), 4, 4, 1, 0),
      'layerNorm on empty arrays': () => a.layerNorm(f(0), f(0), f(0), f(0), f(0), f(0), 16, 16, 1e-5),
      'gemm sizes whose product wraps': () => a.gemm(f(4), f(4), f(4), 1, 1, big, big, big, 0, 0),
      'reduce sizes whose product wraps': () => a.reduce(0, f(4), f(4), big, big, big),
      'softmax sizes whose product wraps': () => a.softmax(f(4), f(4), big, big, 0),
      'copyRows strides past 2^63': () => a.copyRows(f(4), 0, huge, f(4), 0, huge, 3, 1),
      'binary strides past 2^53': () => a.binary(0, f(4), [huge, huge, 1], f(4), [0, 0, 1], f(8), [2, 2, 2]),
      'binary strides whose product wraps': () => a.binary(0, f(4), [2 ** 53, 1], f(4), [0, 1], f(2050), [1025, 2]),
      'compare strides whose product wraps': () => a.compare(0, f(4), [2 ** 53, 1], f(4), [0, 1], new Uint8Array(2050), [1025, 2]),
      'compare into an empty output': () => a.compare(0, f(4), [1], f(4), [1], new Uint8Array(0), [4]),
      'gather sizes whose product wraps': () => a.gather(f(4), new Int32Array([0]), f(4), big, 1, big),
      'layerNorm sizes whose product wraps': () => a.layerNorm(f(4), f(4), f(4), f(4), f(4), f(4), big, big, 1e-5),
      'a size of 2^64': () => a.reduce(0, f(4), f(4), 2 ** 64, 1, 1),
      'a NaN size': () => a.reduce(0, f(4), f(4), NaN, 1, 1),
    };
    const out = {};
    for (const [name, call] of Object.entries(calls)) {
      try { call(); out[name] = 'returned'; } catch (e) { out[name] = e.constructor.name + ': ' + e.message; }
    }
    process.stdout.write(JSON.stringify(out));
  `;
  const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
  t.is(child.signal, null, `the child died of ${child.signal}: ${child.stderr}`);
  t.is(child.status, 0, child.stderr);
  const results = JSON.parse(child.stdout || '{}') as Record<string, string>;
  t.true(Object.keys(results).length >= 18, child.stdout);
  for (const [name, result] of Object.entries(results)) t.regex(result, /^RangeError: longner-native \w+: /, name);
});

nativeTest('the spy sees no addon call for a kernel without a native form', async (t) => {
  await tf.setBackend('native');
  const { calls } = countAddonCalls(() => tf.tidy(() => tf.cumsum(rand([4], 400)).dataSync()));
  t.deepEqual([...calls.keys()], []);
});
