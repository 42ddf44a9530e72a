import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { asWasmBackend, single, type WasmBackend } from './kernel-backend.js';

/*
 * Stock wasm sends only an untransposed 2D product through XNNPACK (~27 GFLOP/s); any transpose flag
 * or batch dimension falls to a slow loop (0.6-2.3 GFLOP/s), and every matMul gradient is a
 * transposed product (research/backends.md §1b). The override transposes explicitly and then runs one
 * plain 2D product per batch element through the stock kernel.
 *
 * One deviation from the research sketch: the per-batch operands and the stacked result are copied
 * straight on the wasm heap instead of through the Slice and Concat kernels, because the wasm Slice
 * kernel copies its whole input on every call (O(B^2) over a batch; the "slice trap" of §1b).
 */

const prod = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/**
 * The flat batch index of a source operand that feeds flat output batch `outIndex`, under numpy
 * broadcasting of the batch dimensions (a source dimension of 1 repeats; missing leading dims repeat).
 */
export function broadcastSourceIndex(outBatch: readonly number[], srcBatch: readonly number[], outIndex: number): number {
  let rest = outIndex;
  let srcIndex = 0;
  let srcStride = 1;
  for (let d = outBatch.length - 1; d >= 0; d--) {
    const size = outBatch[d]!;
    const pos = rest % size;
    rest = Math.floor(rest / size);
    const sd = d - (outBatch.length - srcBatch.length);
    if (sd < 0) continue;
    const srcSize = srcBatch[sd]!;
    if (srcSize !== 1) srcIndex += pos * srcStride;
    srcStride *= srcSize;
  }
  return srcIndex;
}

interface Operand {
  info: TensorInfo;
  /** The operand's batch dimensions (all but the last two). */
  batch: number[];
  rows: number;
  cols: number;
}

type Kernel = (params: Parameters<KernelFunc>[0]) => TensorInfo;

function wasmKernel(name: string): Kernel {
  const config = tf.getKernel(name, 'wasm') as KernelConfig | undefined;
  if (config === undefined) throw new Error(`longner: the wasm backend has no ${name} kernel`);
  return (params) => single(config.kernelFunc(params));
}

/** Copies batch element `index` of `op` into a new [rows, cols] tensor on the heap, in O(rows * cols). */
function sliceBatch(backend: WasmBackend, op: Operand, index: number): TensorInfo {
  const size = op.rows * op.cols;
  const out = backend.makeOutput([op.rows, op.cols], op.info.dtype);
  // Both views are taken after the allocation: makeOutput may grow the heap and detach older views.
  const src = backend.typedArrayFromHeap(op.info);
  backend.typedArrayFromHeap(out).set(src.subarray(index * size, (index + 1) * size));
  return out;
}

/** Builds the override around the stock kernel `orig`, which it calls for each untransposed 2D product. */
export function makeBatchMatMulOverride(orig: KernelFunc): KernelFunc {
  const transpose = wasmKernel('Transpose');
  const stock: Kernel = (params) => single(orig(params));

  return (params) => {
    const { inputs, attrs } = params;
    const { a, b } = inputs;
    if (a === undefined || b === undefined) throw new Error('longner: BatchMatMul called without a or b');
    const tA = attrs?.transposeA === true;
    const tB = attrs?.transposeB === true;
    // Untransposed 2D products already take the fast path; other dtypes and empty shapes keep the
    // stock kernel's behaviour (including its error messages).
    if (
      (a.shape.length === 2 && b.shape.length === 2 && !tA && !tB) ||
      a.dtype !== 'float32' ||
      b.dtype !== 'float32' ||
      prod(a.shape) === 0 ||
      prod(b.shape) === 0
    ) {
      return stock(params);
    }
    const backend = asWasmBackend(params.backend);
    const temps: TensorInfo[] = [];
    try {
      const operand = (x: TensorInfo, transposed: boolean): Operand => {
        const rank = x.shape.length;
        let info = x;
        if (transposed) {
          const perm = [...Array.from({ length: rank - 2 }, (_, i) => i), rank - 1, rank - 2];
          info = transpose({ inputs: { x }, backend, attrs: { perm } });
          temps.push(info);
        }
        return { info, batch: info.shape.slice(0, -2), rows: info.shape[rank - 2]!, cols: info.shape[rank - 1]! };
      };
      const A = operand(a, tA);
      const B = operand(b, tB);
      if (A.cols !== B.rows) {
        throw new Error(
          `Error in matMul: inner shapes (${A.cols}) and (${B.rows}) of Tensors with shapes ${a.shape} and ${b.shape} and transposeA=${tA} and transposeB=${tB} must match.`,
        );
      }
      const outBatch = tf.broadcast_util.assertAndGetBroadcastShape(A.batch, B.batch);
      const outShape = [...outBatch, A.rows, B.cols];
      const product = (x: TensorInfo, y: TensorInfo): TensorInfo => stock({ inputs: { a: x, b: y }, backend, attrs: { transposeA: false, transposeB: false } });

      const batches = prod(outBatch);
      const batchedA = prod(A.batch) > 1;
      const batchedB = prod(B.batch) > 1;
      if (!batchedA && !batchedB) {
        // The stock kernel sets `shape` on the result it returns the same way; the element count is unchanged.
        const out = product(A.info, B.info);
        return { ...out, shape: outShape };
      }
      const out = backend.makeOutput(outShape, 'float32');
      const block = A.rows * B.cols;
      for (let i = 0; i < batches; i++) {
        const step: TensorInfo[] = [];
        try {
          const x = batchedA ? sliceBatch(backend, A, broadcastSourceIndex(outBatch, A.batch, i)) : A.info;
          if (batchedA) step.push(x);
          const y = batchedB ? sliceBatch(backend, B, broadcastSourceIndex(outBatch, B.batch, i)) : B.info;
          if (batchedB) step.push(y);
          const p = product(x, y);
          step.push(p);
          backend.typedArrayFromHeap(out).set(backend.typedArrayFromHeap(p), i * block);
        } catch (err) {
          backend.disposeData(out.dataId);
          throw err;
        } finally {
          for (const t of step) backend.disposeData(t.dataId);
        }
      }
      return out;
    } finally {
      for (const t of temps) backend.disposeData(t.dataId);
    }
  };
}

/** Replaces the wasm BatchMatMul kernel; keeps the stock setup so the stock kernel stays callable. */
export function registerBatchMatMulOverride(): void {
  const orig = tf.getKernel('BatchMatMul', 'wasm') as KernelConfig | undefined;
  if (orig === undefined) throw new Error('longner: the wasm backend has no BatchMatMul kernel to override');
  tf.unregisterKernel('BatchMatMul', 'wasm');
  const config: KernelConfig = { kernelName: 'BatchMatMul', backendName: 'wasm', kernelFunc: makeBatchMatMulOverride(orig.kernelFunc) };
  // The stock kernel binds its wasm function in setupFunc, which tfjs runs for registered kernels on setBackend.
  if (orig.setupFunc !== undefined) config.setupFunc = orig.setupFunc;
  if (orig.disposeFunc !== undefined) config.disposeFunc = orig.disposeFunc;
  tf.registerKernel(config);
}
