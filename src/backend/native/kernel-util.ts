/*
 * Shared plumbing of the native kernels: typed access to tfjs's loosely typed kernel arguments, and
 * the fall-back to the stock cpu kernel for the cases a native kernel does not cover (other dtypes,
 * rare attribute combinations).
 */
import * as tf from '@tensorflow/tfjs-core';
import { asNative, type NativeBackend } from './backend.js';

export interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}
export type KernelResult = tf.TensorInfo | tf.TensorInfo[];
/** A native kernel: returns null to hand the call to the stock cpu kernel. */
export type NativeKernel = (args: KernelArgs, b: NativeBackend) => KernelResult | null;

export function stockKernel(name: string): tf.KernelFunc {
  const config = tf.getKernel(name, 'cpu');
  if (config === undefined) throw new Error(`longner native: the cpu backend has no ${name} kernel to fall back on`);
  return config.kernelFunc;
}

/** A kernel function that tries the native kernel first and falls back to the stock cpu one. */
export function withFallback(name: string, kernel: NativeKernel): tf.KernelFunc {
  const stock = stockKernel(name);
  return (args) => kernel(args, asNative(args.backend)) ?? stock(args);
}

export function input(args: KernelArgs, name: string): tf.TensorInfo {
  const t = args.inputs[name];
  if (t === undefined) throw new Error(`longner native: missing input ${name}`);
  return t;
}

export function inputList(args: KernelArgs): tf.TensorInfo[] {
  return Object.keys(args.inputs)
    .sort((a, b) => Number(a) - Number(b))
    .map((k) => args.inputs[k]!);
}

export function attrNumber(args: KernelArgs, name: string, fallback?: number): number {
  const v = args.attrs?.[name];
  if (typeof v === 'number') return v;
  if (v === undefined && fallback !== undefined) return fallback;
  throw new Error(`longner native: attribute ${name} should be a number`);
}

export function attrNumbers(args: KernelArgs, name: string): number[] {
  const v = args.attrs?.[name];
  if (typeof v === 'number') return [v];
  if (Array.isArray(v) && v.every((x): x is number => typeof x === 'number')) return v;
  throw new Error(`longner native: attribute ${name} should be numbers`);
}

export function attrBoolean(args: KernelArgs, name: string): boolean {
  return args.attrs?.[name] === true;
}

/** The highest rank the addon's shape arguments take (LN_MAX_RANK in native/src/kernels.h); above it the stock kernel runs. */
export const NATIVE_MAX_RANK = 8;

export function isFloat(...ts: tf.TensorInfo[]): boolean {
  return ts.every((t) => t.dtype === 'float32');
}

/**
 * The values of a float32 tensor as a Float32Array. The stock Cast kernel turns bool and int32
 * tensors into float32 ones that share the original Uint8Array / Int32Array storage, so those are
 * converted here (a temporary copy).
 */
export function floats(b: NativeBackend, t: tf.TensorInfo): Float32Array {
  const v = b.valuesOf(t);
  if (v instanceof Float32Array) return v;
  if (v instanceof Int32Array || v instanceof Uint8Array) return Float32Array.from(v);
  throw new Error(`longner native: expected numeric data for a ${t.dtype} tensor`);
}

export function int32s(b: NativeBackend, t: tf.TensorInfo): Int32Array | null {
  const v = b.valuesOf(t);
  return v instanceof Int32Array ? v : null;
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
