import * as tf from '@tensorflow/tfjs-core';
import type { DataType, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { isCpuBackend, isWasmBackend, numericValues, type NumericArray } from './kernel-backend.js';

/*
 * UnsortedSegmentSum is the gradient of `gather` (every embedding lookup). wasm has no kernel at all,
 * and the stock cpu kernel is O(segments * N * d): one step of an 8000-row embedding took 32.7 s
 * (research/backends.md §1c). This single pass over the rows is O(N * d) on both backends.
 */

/**
 * out[ids[i], ...] += x[i, ...]; ids outside [0, numSegments) are dropped, as TensorFlow does.
 * `inner` is the number of elements per row of x (x.size / ids.length).
 */
export function segmentSumInto(out: NumericArray, x: NumericArray, ids: NumericArray, numSegments: number, inner: number): void {
  for (let i = 0; i < ids.length; i++) {
    const s = ids[i]!;
    if (s < 0 || s >= numSegments) continue;
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) out[dst + j]! += x[src + j]!;
  }
}

function assertSupported(dtype: DataType): void {
  if (dtype !== 'float32' && dtype !== 'int32') throw new Error(`longner: UnsortedSegmentSum does not support dtype ${dtype}`);
}

export const unsortedSegmentSumKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, segmentIds } = inputs;
  const numSegments = attrs?.numSegments;
  if (x === undefined || segmentIds === undefined || typeof numSegments !== 'number') {
    throw new Error('longner: UnsortedSegmentSum called without x, segmentIds or numSegments');
  }
  const rowShape = x.shape.slice(segmentIds.shape.length);
  const inner = rowShape.reduce((a, b) => a * b, 1);
  const shape = [numSegments, ...rowShape];
  assertSupported(x.dtype);

  if (isWasmBackend(backend)) {
    // readSync copies out of the heap, so these stay valid when makeOutput grows it.
    const xv = numericValues(backend.readSync(x.dataId));
    const ids = numericValues(backend.readSync(segmentIds.dataId));
    const out: TensorInfo = backend.makeOutput(shape, x.dtype);
    // Taken after makeOutput and used before any other allocation, so the view is not detached.
    const ov = backend.typedArrayFromHeap(out);
    ov.fill(0);
    segmentSumInto(ov, xv, ids, numSegments, inner);
    return out;
  }
  if (isCpuBackend(backend)) {
    const xv = numericValues(backend.readSync(x.dataId));
    const ids = numericValues(backend.readSync(segmentIds.dataId));
    const ov = x.dtype === 'int32' ? new Int32Array(numSegments * inner) : new Float32Array(numSegments * inner);
    segmentSumInto(ov, xv, ids, numSegments, inner);
    return backend.makeTensorInfo(shape, x.dtype, ov);
  }
  throw new Error('longner: UnsortedSegmentSum shim called on a backend that is neither wasm nor cpu');
};

/** Replaces (cpu) or adds (wasm) the UnsortedSegmentSum kernel for one backend. */
export function registerSegmentSum(backendName: 'wasm' | 'cpu'): void {
  if (tf.getKernel('UnsortedSegmentSum', backendName) !== undefined) tf.unregisterKernel('UnsortedSegmentSum', backendName);
  tf.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName, kernelFunc: unsortedSegmentSumKernel });
}
