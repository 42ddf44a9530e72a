/*
 * Layout kernels of the native engine: transpose, slice, pad, concat, split, gather and gather's
 * gradient. All copy into pooled outputs; in particular Slice never returns a view into its input
 * (the stock cpu Slice does), so a slice does not pin a large input's buffer.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { NativeBackend } from './backend.js';
import {
  attrNumber,
  attrNumbers,
  floats,
  input,
  inputList,
  int32s,
  isFloat,
  NATIVE_MAX_RANK,
  sizeOf,
  type KernelArgs,
  type KernelResult,
} from './kernel-util.js';

function transpose(args: KernelArgs, b: NativeBackend): KernelResult | null {
  const x = input(args, 'x');
  if (!isFloat(x) || x.shape.length === 0 || x.shape.length > NATIVE_MAX_RANK) return null;
  const perm = attrNumbers(args, 'perm');
  const out = b.floats(sizeOf(x.shape));
  b.addon.transpose(floats(b, x), out, [...x.shape], perm);
  return b.output(
    perm.map((p) => x.shape[p]!),
    out,
  );
}

function slice(args: KernelArgs, b: NativeBackend): KernelResult | null {
  const x = input(args, 'x');
  if (!isFloat(x) || x.shape.length === 0 || x.shape.length > NATIVE_MAX_RANK) return null;
  const [begin, size] = tf.slice_util.parseSliceParams(x, attrNumbers(args, 'begin'), attrNumbers(args, 'size'));
  tf.slice_util.assertParamsValid(x, begin!, size!);
  const out = b.floats(sizeOf(size!));
  b.addon.slice(floats(b, x), out, [...x.shape], begin!, size!);
  return b.output(size!, out);
}

function padV2(args: KernelArgs, b: NativeBackend): KernelResult | null {
  const x = input(args, 'x');
  const paddings = args.attrs?.paddings;
  if (!isFloat(x) || x.shape.length === 0 || x.shape.length > NATIVE_MAX_RANK || !Array.isArray(paddings)) return null;
  const pairs = paddings as unknown[];
  if (pairs.length !== x.shape.length || !pairs.every((p) => Array.isArray(p) && p.length === 2)) return null;
  const before = pairs.map((p) => Number((p as unknown[])[0]));
  const after = pairs.map((p) => Number((p as unknown[])[1]));
  const outShape = x.shape.map((d, i) => d + before[i]! + after[i]!);
  const out = b.floats(sizeOf(outShape));
  b.addon.pad(floats(b, x), out, [...x.shape], before, after, attrNumber(args, 'constantValue', 0));
  return b.output(outShape, out);
}

function concat(args: KernelArgs, b: NativeBackend): KernelResult | null {
  const xs = inputList(args);
  if (xs.length === 0 || !isFloat(...xs)) return null;
  const first = xs[0]!;
  const [axis] = tf.util.parseAxisParam(attrNumber(args, 'axis'), first.shape);
  tf.backend_util.assertParamsConsistent(
    xs.map((t) => t.shape),
    axis!,
  );
  const outShape = tf.backend_util.computeOutShape(
    xs.map((t) => t.shape),
    axis!,
  );
  const outer = sizeOf(outShape.slice(0, axis));
  const rowLen = sizeOf(outShape.slice(axis));
  const out = b.floats(sizeOf(outShape));
  let offset = 0;
  for (const t of xs) {
    const cols = sizeOf(t.shape.slice(axis));
    if (cols > 0 && outer > 0) b.addon.copyRows(floats(b, t), 0, cols, out, offset, rowLen, outer, cols);
    offset += cols;
  }
  return b.output(outShape, out);
}

function splitV(args: KernelArgs, b: NativeBackend): KernelResult | null {
  const x = input(args, 'x');
  if (!isFloat(x) || x.shape.length === 0) return null;
  const [axis] = tf.util.parseAxisParam(attrNumber(args, 'axis'), x.shape);
  const numOrSizeSplits = args.attrs?.numOrSizeSplits;
  if (typeof numOrSizeSplits !== 'number' && !Array.isArray(numOrSizeSplits)) return null;
  const sizes = tf.backend_util.prepareSplitSize(x, numOrSizeSplits as number | number[], axis);
  const outer = sizeOf(x.shape.slice(0, axis));
  const inner = sizeOf(x.shape.slice(axis! + 1));
  const rowLen = x.shape[axis!]! * inner;
  const src = floats(b, x);
  let start = 0;
  return sizes.map((s) => {
    const shape = [...x.shape];
    shape[axis!] = s;
    const out = b.floats(outer * s * inner);
    if (s > 0 && outer > 0 && inner > 0) b.addon.copyRows(src, start * inner, rowLen, out, 0, s * inner, outer, s * inner);
    start += s;
    return b.output(shape, out);
  });
}

function gatherV2(args: KernelArgs, b: NativeBackend): KernelResult | null {
  const x = input(args, 'x'),
    indices = input(args, 'indices');
  const idx = int32s(b, indices);
  if (!isFloat(x) || idx === null || attrNumber(args, 'batchDims', 0) !== 0 || x.shape.length === 0) return null;
  const [axis] = tf.util.parseAxisParam(attrNumber(args, 'axis'), x.shape);
  const outer = sizeOf(x.shape.slice(0, axis));
  const n = x.shape[axis!]!;
  const inner = sizeOf(x.shape.slice(axis! + 1));
  const outShape = [...x.shape.slice(0, axis), ...indices.shape, ...x.shape.slice(axis! + 1)];
  const out = b.floats(outer * idx.length * inner);
  b.addon.gather(floats(b, x), idx, out, outer, n, inner);
  return b.output(outShape, out);
}

function unsortedSegmentSum(args: KernelArgs, b: NativeBackend): KernelResult | null {
  const x = input(args, 'x'),
    segmentIds = input(args, 'segmentIds');
  const ids = int32s(b, segmentIds);
  if (!isFloat(x) || ids === null) return null;
  const numSegments = attrNumber(args, 'numSegments');
  const rankIds = segmentIds.shape.length;
  if (!segmentIds.shape.every((d, i) => d === x.shape[i])) return null;
  const innerShape = x.shape.slice(rankIds);
  const inner = sizeOf(innerShape);
  const out = b.floats(numSegments * inner);
  b.addon.segmentSum(floats(b, x), ids, out, inner, numSegments);
  return b.output([numSegments, ...innerShape], out);
}

export const LAYOUT_KERNELS = {
  Transpose: transpose,
  Slice: slice,
  PadV2: padV2,
  Concat: concat,
  SplitV: splitV,
  GatherV2: gatherV2,
  UnsortedSegmentSum: unsortedSegmentSum,
};
