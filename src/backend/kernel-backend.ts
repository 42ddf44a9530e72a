import type { DataId, DataType, TensorInfo } from '@tensorflow/tfjs-core';

/*
 * tfjs hands a kernel its backend typed as `{}`. These are the few backend methods our shims use,
 * written down so the shims stay typed; each guard checks the methods exist before we rely on them.
 * They are internal tfjs APIs (stable across 4.x, but not promised): a failed guard means a tfjs
 * upgrade changed them, which is a bug for us to fix, not a user error.
 */

export type NumericArray = Float32Array | Int32Array | Uint8Array;

interface BaseBackend {
  readSync(dataId: DataId): unknown;
  disposeData(dataId: DataId, force?: boolean): boolean;
}

export interface CpuBackend extends BaseBackend {
  makeTensorInfo(shape: number[], dtype: DataType, values?: NumericArray): TensorInfo;
}

export interface WasmBackend extends BaseBackend {
  /** Allocates an output on the wasm heap (malloc may grow the heap, detaching older heap views). */
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  /** A view (no copy) of a tensor's bytes on the heap; valid only until the next allocation. */
  typedArrayFromHeap(info: TensorInfo): NumericArray;
  wasm: { HEAPU8: Uint8Array };
}

function hasMethods(value: unknown, names: readonly string[]): boolean {
  if (value === null || typeof value !== 'object') return false;
  const record = value as Record<string, unknown>;
  return names.every((name) => typeof record[name] === 'function');
}

export function isWasmBackend(value: unknown): value is WasmBackend {
  if (!hasMethods(value, ['readSync', 'disposeData', 'makeOutput', 'typedArrayFromHeap'])) return false;
  const wasm = (value as { wasm?: unknown }).wasm;
  return wasm !== null && typeof wasm === 'object' && (wasm as { HEAPU8?: unknown }).HEAPU8 instanceof Uint8Array;
}

export function isCpuBackend(value: unknown): value is CpuBackend {
  return hasMethods(value, ['readSync', 'disposeData', 'makeTensorInfo']);
}

export function asWasmBackend(value: unknown): WasmBackend {
  if (!isWasmBackend(value)) throw new Error('longner: the wasm backend lacks the internal methods the kernel shims use (tfjs version change?)');
  return value;
}

/** Narrows what `readSync` returned for a numeric tensor (string tensors come back as byte arrays). */
export function numericValues(values: unknown): NumericArray {
  if (values instanceof Float32Array || values instanceof Int32Array || values instanceof Uint8Array) return values;
  throw new Error('longner: expected numeric tensor data from the backend');
}

/** Kernels return one TensorInfo or several; every kernel our shims call returns exactly one. */
export function single(result: TensorInfo | TensorInfo[]): TensorInfo {
  if (Array.isArray(result)) {
    const [first] = result;
    if (result.length !== 1 || first === undefined) throw new Error(`longner: expected one kernel output, got ${result.length}`);
    return first;
  }
  return result;
}
