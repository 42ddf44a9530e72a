/*
 * The `native` TensorFlow.js backend: tfjs-backend-cpu's MathBackendCPU with its hot kernels
 * replaced by the oneDNN addon (kernels-*.ts). Tensors stay JS typed arrays, so there is no heap
 * cap and memory returns to the OS on dispose; outputs of native kernels come from a BufferPool.
 * Every stock cpu kernel is registered under `native` as well, so ops without a native kernel
 * still run (at cpu speed: the profile in `npm run bench` shows which ones matter).
 */
import type * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { NativeAddon } from './addon.js';
import { BufferPool, type PoolStats } from './pool.js';

export const NATIVE_BACKEND = 'native';

type BackendValues = tf.backend_util.BackendValues;
type DataId = object;

/** Thrown when a tensor would take live memory past the budget; its message matches isOutOfMemory. */
export class MemoryBudgetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MemoryBudgetError';
  }
}

/** Requests at least this large also check the process's resident set (one /proc read, microseconds). */
const RSS_CHECK_BYTES = 32 * 2 ** 20;

let gc: (() => void) | undefined;

/**
 * A full collection, so that arrays nothing references any more stop counting in the resident set.
 * V8 frees an ArrayBuffer's memory only after the collection that finds it dead, in a second pass:
 * measured, one gc() left 3.7 GiB of dead Float32Arrays resident and two returned it all.
 * (--expose-gc at run time: the flag takes effect for a new context.)
 */
function collectGarbage(): void {
  if (gc === undefined) {
    const global = (globalThis as { gc?: () => void }).gc;
    if (global !== undefined) gc = global;
    else {
      setFlagsFromString('--expose-gc');
      gc = runInNewContext('gc') as () => void;
    }
  }
  gc();
  gc();
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
}

export class NativeBackend extends MathBackendCPU {
  readonly pool: BufferPool;
  private budgetBytes: number | null = null;
  /** The pool's cap without a budget: a budget lowers it (free bytes count against the budget) and lifting the budget restores it. */
  private readonly poolCapBytes: number;

  constructor(
    readonly addon: NativeAddon,
    poolCapBytes: number,
  ) {
    super();
    this.pool = new BufferPool(poolCapBytes);
    this.poolCapBytes = poolCapBytes;
    // MathBackendCPU prints a banner on first use telling Node users to install tfjs-node.
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  /** An uninitialised float output of n elements, from the pool, within the memory budget. */
  floats(n: number): Float32Array {
    this.checkBudget(n * 4);
    return this.pool.take(n);
  }

  /** Wraps a kernel's output array as a tensor of this backend. */
  output(shape: number[], values: Float32Array | Int32Array): tf.TensorInfo {
    return this.makeTensorInfo(shape, values instanceof Int32Array ? 'int32' : 'float32', values);
  }

  /** The stored values of a tensor (no copy: only for kernels, never to hand out). */
  valuesOf(info: tf.TensorInfo): BackendValues {
    const data = this.data.get(info.dataId);
    if (data === undefined || data.values === undefined) throw new Error('longner native: tensor has no data (disposed?)');
    return data.values;
  }

  override write(values: BackendValues, shape: number[], dtype: tf.DataType): DataId {
    if (ArrayBuffer.isView(values) && !this.pool.isPooled(values)) this.checkBudget(values.byteLength);
    const id = super.write(values, shape, dtype);
    this.pool.retain(values);
    return id;
  }

  override move(dataId: DataId, values: BackendValues, shape: number[], dtype: tf.DataType, refCount: number): void {
    super.move(dataId, values, shape, dtype, refCount);
    this.pool.retain(values);
  }

  override disposeData(dataId: DataId, force = false): boolean {
    const values = this.data.has(dataId) ? this.data.get(dataId).values : undefined;
    const released = super.disposeData(dataId, force);
    if (released && values !== undefined && !this.data.has(dataId)) this.pool.release(values);
    return released;
  }

  /** Values that leave the backend are copies when pooled, so a recycled buffer is never seen outside. */
  override readSync(dataId: DataId): BackendValues {
    const values = super.readSync(dataId);
    return this.pool.isPooled(values) && values instanceof Float32Array ? values.slice() : values;
  }

  override memory(): { unreliable: boolean; reasons: string[] } {
    return { unreliable: false, reasons: [] };
  }

  /** Live tensor bytes above `bytes` fail with MemoryBudgetError; null lifts the limit. */
  setBudget(bytes: number | null): void {
    this.budgetBytes = bytes;
    this.pool.setCap(bytes === null ? this.poolCapBytes : Math.min(this.poolCapBytes, bytes));
  }

  get budget(): number | null {
    return this.budgetBytes;
  }

  poolStats(): PoolStats {
    return this.pool.snapshot();
  }

  private checkBudget(bytes: number): void {
    if (this.budgetBytes === null) return;
    const stats = this.pool.snapshot();
    // In use: tensors' buffers, plus outputs a running kernel has taken but not yet wrapped.
    const inUse = stats.liveBytes + stats.outstandingBytes;
    if (inUse + stats.freeBytes + bytes > this.budgetBytes) {
      this.pool.trim(Math.max(0, this.budgetBytes - inUse - bytes));
      if (inUse + bytes > this.budgetBytes) {
        throw new MemoryBudgetError(
          `out of memory: a ${gib(bytes)} tensor on top of ${gib(inUse)} in use would pass the memory budget of ${gib(this.budgetBytes)}`,
        );
      }
    }
    // Disposed arrays outside the pool stay resident until V8 collects them, and stock kernels fill
    // theirs before they are counted: a CNN-NER probe at 1,024 words met the kernel's OOM killer
    // (SIGKILL) with its live tensors under the budget. So large requests also check the resident set.
    if (bytes >= RSS_CHECK_BYTES && process.memoryUsage.rss() + bytes > this.budgetBytes) {
      // Much of the resident set can be memory nothing uses: the pool's free buffers and disposed
      // arrays V8 has not collected yet (a SeNER probe failed with 15.9 GiB resident and 11.5 GiB in
      // tensors). Drop and collect them before deciding.
      this.pool.trim(0);
      collectGarbage();
      const rss = process.memoryUsage.rss();
      if (rss + bytes > this.budgetBytes) {
        throw new MemoryBudgetError(
          `out of memory: a ${gib(bytes)} tensor on top of ${gib(rss)} resident (${gib(inUse)} in tensors) would pass the memory budget of ${gib(this.budgetBytes)}`,
        );
      }
    }
  }
}

/** The active backend as a NativeBackend, for kernels (tfjs types a kernel's backend as `{}`). */
export function asNative(backend: unknown): NativeBackend {
  if (!(backend instanceof NativeBackend)) throw new Error('longner native: kernel called with another backend');
  return backend;
}
