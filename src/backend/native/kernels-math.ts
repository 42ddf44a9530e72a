/*
 * Arithmetic kernels of the native engine: the matmul family (transposes and batch strides go to
 * oneDNN as flags, never materialised), broadcasting binary ops, unary math, reductions, softmax.
 */
import * as tf from '@tensorflow/tfjs-core';
import { BINARY_OPS, COMPARE_OPS, REDUCE_OPS, UNARY_OPS } from './addon.js';
import type { NativeBackend } from './backend.js';
import {
  attrBoolean,
  attrNumber,
  attrNumbers,
  floats,
  input,
  inputList,
  isFloat,
  NATIVE_MAX_RANK,
  sizeOf,
  type KernelArgs,
  type KernelResult,
  type NativeKernel,
} from './kernel-util.js';

function batchMatMul(args: KernelArgs, b: NativeBackend): KernelResult | null {
  const a = input(args, 'a'),
    bb = input(args, 'b');
  if (!isFloat(a, bb) || a.shape.length < 2 || bb.shape.length < 2) return null;
  const tA = attrBoolean(args, 'transposeA'),
    tB = attrBoolean(args, 'transposeB');
  const ra = a.shape.length,
    rb = bb.shape.length;
  const m = tA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
  const k = tA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
  const kb = tB ? bb.shape[rb - 1]! : bb.shape[rb - 2]!;
  const n = tB ? bb.shape[rb - 2]! : bb.shape[rb - 1]!;
  if (k !== kb) return null; // the stock kernel throws tfjs's own message
  const batchShapeA = a.shape.slice(0, -2),
    batchShapeB = bb.shape.slice(0, -2);
  // The batch dims broadcast as in tfjs: [1, 1] with [5] gives [1, 5], [1, 3] with [3, 1] gives [3, 3].
  const outBatch = tf.backend_util.assertAndGetBroadcastShape(batchShapeA, batchShapeB);
  const batch = sizeOf(outBatch),
    batchA = sizeOf(batchShapeA),
    batchB = sizeOf(batchShapeB);
  // gemm pairs the matrices one to one (a side as large as the output has its batch shape) or
  // repeats a side that has one; other broadcasts go to the stock kernel.
  if ((batchA !== batch && batchA !== 1) || (batchB !== batch && batchB !== 1)) return null;
  const out = b.floats(batch * m * n);
  if (out.length > 0) b.addon.gemm(floats(b, a), floats(b, bb), out, batchA, batchB, m, n, k, tA ? 1 : 0, tB ? 1 : 0);
  return b.output([...outBatch, m, n], out);
}

/**
 * Element strides of `shape` broadcast to `outShape` (0 on broadcast dims), after merging adjacent
 * dimensions that are contiguous in every operand, so the C loop sees as few dims as possible.
 */
export function broadcastPlan(shapes: readonly (readonly number[])[], outShape: readonly number[]): { shape: number[]; strides: number[][] } {
  const rank = outShape.length;
  const strides = shapes.map((s) => {
    const padded = [...new Array<number>(rank - s.length).fill(1), ...s];
    const st = new Array<number>(rank).fill(0);
    let acc = 1;
    for (let d = rank - 1; d >= 0; d--) {
      st[d] = padded[d] === 1 && outShape[d] !== 1 ? 0 : acc;
      acc *= padded[d]!;
    }
    return st;
  });
  const shape: number[] = [];
  const merged: number[][] = shapes.map(() => []);
  for (let d = 0; d < rank; d++) {
    const dim = outShape[d]!;
    if (dim === 1) continue; // a size-1 dim moves nothing
    const last = shape.length - 1;
    const canMerge = last >= 0 && strides.every((st, i) => merged[i]![last] === st[d]! * dim);
    if (canMerge) {
      shape[last] = shape[last]! * dim;
      strides.forEach((st, i) => {
        merged[i]![last] = st[d]!;
      });
    } else {
      shape.push(dim);
      strides.forEach((st, i) => {
        merged[i]!.push(st[d]!);
      });
    }
  }
  if (shape.length === 0) return { shape: [1], strides: shapes.map(() => [1]) };
  return { shape, strides: merged };
}

/** Two float operands broadcast to one output shape, as the C loop wants them; null: not ours to run. */
function broadcastOperands(
  args: KernelArgs,
  b: NativeBackend,
): { a: Float32Array; b: Float32Array; outShape: number[]; plan: { shape: number[]; strides: number[][] } } | null {
  const x = input(args, 'a'),
    y = input(args, 'b');
  if (!isFloat(x, y)) return null;
  const outShape = tf.backend_util.assertAndGetBroadcastShape(x.shape, y.shape);
  const plan = broadcastPlan([x.shape, y.shape], outShape);
  if (plan.shape.length > NATIVE_MAX_RANK) return null;
  return { a: floats(b, x), b: floats(b, y), outShape, plan };
}

function binary(op: (typeof BINARY_OPS)[number]): NativeKernel {
  const code = BINARY_OPS.indexOf(op);
  return (args, b) => {
    const o = broadcastOperands(args, b);
    if (o === null) return null;
    const out = b.floats(sizeOf(o.outShape));
    b.addon.binary(code, o.a, o.plan.strides[0]!, o.b, o.plan.strides[1]!, out, o.plan.shape);
    return b.output(o.outShape, out);
  };
}

/** Comparisons give tfjs's bool tensors (one byte per element). */
function compare(op: (typeof COMPARE_OPS)[number]): NativeKernel {
  const code = COMPARE_OPS.indexOf(op);
  return (args, b) => {
    const o = broadcastOperands(args, b);
    if (o === null) return null;
    const out = new Uint8Array(sizeOf(o.outShape));
    b.addon.compare(code, o.a, o.plan.strides[0]!, o.b, o.plan.strides[1]!, out, o.plan.shape);
    return b.makeTensorInfo(o.outShape, 'bool', out);
  };
}

function logical(isOr: boolean): NativeKernel {
  return (args, b) => {
    const a = input(args, 'a'),
      bb = input(args, 'b');
    const av = b.valuesOf(a),
      bv = b.valuesOf(bb);
    const same = a.shape.length === bb.shape.length && a.shape.every((d, i) => d === bb.shape[i]);
    if (!same || !(av instanceof Uint8Array) || !(bv instanceof Uint8Array)) return null;
    const out = new Uint8Array(av.length);
    b.addon.logical(isOr ? 1 : 0, av, bv, out);
    return b.makeTensorInfo([...a.shape], 'bool', out);
  };
}

function unary(op: (typeof UNARY_OPS)[number]): NativeKernel {
  const code = UNARY_OPS.indexOf(op);
  return (args, b) => {
    const x = input(args, 'x');
    if (!isFloat(x)) return null;
    const out = b.floats(sizeOf(x.shape));
    b.addon.unary(code, floats(b, x), out);
    return b.output([...x.shape], out);
  };
}

function clipByValue(args: KernelArgs, b: NativeBackend): KernelResult | null {
  const x = input(args, 'x');
  const lo = attrNumber(args, 'clipValueMin'),
    hi = attrNumber(args, 'clipValueMax');
  if (!isFloat(x) || !(lo <= hi)) return null;
  const out = b.floats(sizeOf(x.shape));
  b.addon.clip(floats(b, x), out, lo, hi);
  return b.output([...x.shape], out);
}

/**
 * x viewed as [outer, r, inner] around the reduced axes when they are adjacent; otherwise null
 * (the caller transposes them to the end first).
 */
function reduceView(shape: readonly number[], axes: readonly number[]): { outer: number; r: number; inner: number } | null {
  const sorted = [...axes].sort((p, q) => p - q);
  const first = sorted[0]!,
    last = sorted[sorted.length - 1]!;
  // Size-1 dims between reduced axes do not break adjacency.
  for (let d = first; d <= last; d++) if (!sorted.includes(d) && shape[d] !== 1) return null;
  return { outer: sizeOf(shape.slice(0, first)), r: sizeOf(shape.slice(first, last + 1)), inner: sizeOf(shape.slice(last + 1)) };
}

function reduce(op: (typeof REDUCE_OPS)[number]): NativeKernel {
  const code = REDUCE_OPS.indexOf(op);
  return (args, b) => {
    const x = input(args, 'x');
    if (!isFloat(x) || x.shape.length === 0) return null;
    // Max names its axes reductionIndices; the other reductions call them axis.
    const axisName = op === 'Max' ? 'reductionIndices' : 'axis';
    const rawAxis = args.attrs?.[axisName];
    // No axis (null) reduces every axis.
    const axes = rawAxis === null || rawAxis === undefined ? [...x.shape.keys()] : tf.util.parseAxisParam(attrNumbers(args, axisName), x.shape);
    // An empty axis list reduces nothing: the stock kernel returns a copy.
    if (axes.length === 0) return null;
    const keepDims = attrBoolean(args, 'keepDims');
    const [outShapeNoKeep] = tf.backend_util.computeOutAndReduceShapes(x.shape, axes);
    const outShape = keepDims ? tf.backend_util.expandShapeToKeepDim(outShapeNoKeep, axes) : outShapeNoKeep;
    const src = floats(b, x);
    const view = reduceView(x.shape, axes);
    const out = b.floats(sizeOf(outShapeNoKeep));
    if (view !== null) {
      b.addon.reduce(code, src, out, view.outer, view.r, view.inner);
      return b.output(outShape, out);
    }
    // Axes that are not adjacent: move them to the end first, into a scratch buffer.
    if (x.shape.length > NATIVE_MAX_RANK) {
      b.pool.recycle(out);
      return null;
    }
    const perm = [...x.shape.keys()].filter((d) => !axes.includes(d)).concat(axes);
    const moved = b.floats(src.length);
    b.addon.transpose(src, moved, [...x.shape], perm);
    b.addon.reduce(code, moved, out, sizeOf(outShapeNoKeep), sizeOf(axes.map((d) => x.shape[d]!)), 1);
    b.pool.recycle(moved);
    return b.output(outShape, out);
  };
}

function argMinMax(isMin: boolean): NativeKernel {
  return (args, b) => {
    const x = input(args, 'x');
    if (!isFloat(x) || x.shape.length === 0) return null;
    const [axis] = tf.util.parseAxisParam(attrNumber(args, 'axis'), x.shape);
    const shape = x.shape;
    const outer = sizeOf(shape.slice(0, axis)),
      r = shape[axis!]!,
      inner = sizeOf(shape.slice(axis! + 1));
    if (r === 0) return null;
    const out = new Int32Array(outer * inner);
    b.addon.argMinMax(floats(b, x), out, outer, r, inner, isMin ? 1 : 0);
    return b.output(
      shape.filter((_, d) => d !== axis),
      out,
    );
  };
}

function softmax(args: KernelArgs, b: NativeBackend): KernelResult | null {
  const logits = input(args, 'logits');
  const dim = attrNumber(args, 'dim', -1);
  const rank = logits.shape.length;
  if (!isFloat(logits) || rank === 0 || (dim !== -1 && dim !== rank - 1)) return null;
  const cols = logits.shape[rank - 1]!;
  const out = b.floats(sizeOf(logits.shape));
  b.addon.softmax(floats(b, logits), out, cols === 0 ? 0 : out.length / cols, cols, 0);
  return b.output([...logits.shape], out);
}

function addN(args: KernelArgs, b: NativeBackend): KernelResult | null {
  const xs = inputList(args);
  if (xs.length === 0 || xs.length > 64 || !isFloat(...xs)) return null;
  const shape = xs[0]!.shape;
  if (!xs.every((t) => t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i]))) return null;
  const out = b.floats(sizeOf(shape));
  b.addon.addN(
    xs.map((t) => floats(b, t)),
    out,
  );
  return b.output([...shape], out);
}

function select(args: KernelArgs, b: NativeBackend): KernelResult | null {
  const cond = input(args, 'condition'),
    t = input(args, 't'),
    e = input(args, 'e');
  const condValues = b.valuesOf(cond);
  if (!isFloat(t, e) || !(condValues instanceof Uint8Array)) return null;
  const n = sizeOf(t.shape);
  // tfjs allows a rank-1 condition choosing whole rows of t and e, or one of t's own shape.
  const inner = cond.shape.length === t.shape.length ? 1 : sizeOf(t.shape.slice(1));
  if (sizeOf(cond.shape) * inner !== n || sizeOf(e.shape) !== n) return null;
  const out = b.floats(n);
  b.addon.select(condValues, floats(b, t), floats(b, e), out, inner);
  return b.output([...t.shape], out);
}

function filled(shape: readonly number[], value: number, b: NativeBackend): tf.TensorInfo {
  const out = b.floats(sizeOf(shape));
  b.addon.fill(out, value);
  return b.output([...shape], out);
}

function fill(args: KernelArgs, b: NativeBackend): KernelResult | null {
  if (args.attrs?.dtype !== 'float32') return null;
  return filled(attrNumbers(args, 'shape'), attrNumber(args, 'value'), b);
}

function likeKernel(value: number): NativeKernel {
  return (args, b) => {
    const x = input(args, 'x');
    return isFloat(x) ? filled(x.shape, value, b) : null;
  };
}

export const MATH_KERNELS: Record<string, NativeKernel> = {
  BatchMatMul: batchMatMul,
  ...Object.fromEntries(BINARY_OPS.map((op) => [op, binary(op)])),
  ...Object.fromEntries(COMPARE_OPS.map((op) => [op, compare(op)])),
  LogicalAnd: logical(false),
  LogicalOr: logical(true),
  ...Object.fromEntries(UNARY_OPS.map((op) => [op, unary(op)])),
  ClipByValue: clipByValue,
  ...Object.fromEntries(REDUCE_OPS.map((op) => [op, reduce(op)])),
  ArgMax: argMinMax(false),
  ArgMin: argMinMax(true),
  Softmax: softmax,
  AddN: addN,
  Select: select,
  Fill: fill,
  ZerosLike: likeKernel(0),
  OnesLike: likeKernel(1),
};
