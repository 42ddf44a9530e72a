/*
 * Shared plumbing of the native-engine tests (native-*.test.ts): when they run, a cpu-vs-native
 * comparison with tolerances, and a spy on the addon that tells a native kernel from a fall-back to
 * the stock cpu kernel (withFallback gives the same answer either way, so only the spy can tell).
 */
import test, { type ExecutionContext } from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { loadNativeAddon, type NativeAddon } from '../../src/backend/native/addon.js';
import { createRng } from '../../src/util/rng.js';

export const nativeLoad = loadNativeAddon();

/** CI set (CI=false or CI=0 count as unset): there the engine is installed and must not be skipped. */
export function onCi(): boolean {
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci !== 'false' && ci !== '0';
}

/** Native tests run where the addon loads, and always on CI, where a missing addon must fail them. */
export const runNative = nativeLoad.ok || onCi();

const skipNote = nativeLoad.ok ? '' : ` [skipped: ${nativeLoad.reason}; outside CI only]`;

type Impl = (t: ExecutionContext) => void | Promise<void>;

/**
 * A serial test that needs the native backend (every test here switches tfjs's one global backend,
 * so none may interleave). Skipped, with the reason in its title, only when the addon is missing
 * and CI is unset.
 */
export function nativeTest(title: string, impl: Impl): void {
  if (runNative) test.serial(title, impl);
  else test.serial.skip(title + skipNote, impl);
}

/** Registers both backends once per test file (initBackend installs the cpu shims first). */
export function registerBackends(): void {
  test.before(async () => {
    if (!runNative) return;
    await initBackend('cpu', { quiet: true });
    await initBackend('native', { quiet: true });
  });
}

/** The loaded addon; throws (failing the test) where it did not load, i.e. on CI without it. */
export function addon(): NativeAddon {
  if (!nativeLoad.ok) throw new Error(`the native addon did not load: ${nativeLoad.reason}`);
  return nativeLoad.addon;
}

/** Seeded standard normals times `scale`, as a plain array (the same on every backend). */
export function normals(n: number, seed: number, scale = 1): Float32Array {
  const rng = createRng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = 1 - rng.next();
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
  }
  return out;
}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A seeded float32 tensor of normals on the current backend. */
export function rand(shape: number[], seed: number, scale = 1): tf.Tensor {
  return tf.tensor(normals(sizeOf(shape), seed, scale), shape, 'float32');
}

export type AddonFunction = Exclude<keyof NativeAddon, 'info' | 'setThreads'>;

/** Runs `fn` with every addon entry point wrapped in a call counter; restores them after. */
export function countAddonCalls<T>(fn: () => T): { result: T; calls: Map<string, number> } {
  const target = addon() as unknown as Record<string, unknown>;
  const calls = new Map<string, number>();
  const originals = new Map<string, (...args: unknown[]) => unknown>();
  for (const name of Object.keys(target)) {
    const original = target[name];
    if (typeof original !== 'function' || name === 'info' || name === 'setThreads') continue;
    const f = original as (...args: unknown[]) => unknown;
    originals.set(name, f);
    target[name] = (...args: unknown[]): unknown => {
      calls.set(name, (calls.get(name) ?? 0) + 1);
      return f.apply(target, args);
    };
  }
  try {
    return { result: fn(), calls };
  } finally {
    for (const [name, f] of originals) target[name] = f;
  }
}

export interface Tolerance {
  /** Relative tolerance; default 1e-5. */
  rtol?: number;
  /** Absolute tolerance; default 1e-6. */
  atol?: number;
}

/**
 * Indices where `actual` and `expected` differ beyond atol + rtol |expected| (NaN matches only NaN,
 * an infinity only the same infinity), as readable lines; empty when they match.
 */
export function mismatches(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance = {}): string[] {
  const rtol = tol.rtol ?? 1e-5,
    atol = tol.atol ?? 1e-6;
  if (actual.length !== expected.length) return [`length ${actual.length}, expected ${expected.length}`];
  const bad: string[] = [];
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!,
      e = expected[i]!;
    if (Number.isNaN(e) ? Number.isNaN(a) : a === e || Math.abs(a - e) <= atol + rtol * Math.abs(e)) continue;
    if (bad.length < 8) bad.push(`[${i}] ${a}, expected ${e} (rel err ${(Math.abs(a - e) / Math.abs(e)).toExponential(2)})`);
    else {
      bad.push('...');
      break;
    }
  }
  return bad;
}

export interface Output {
  shape: number[];
  dtype: tf.DataType;
  values: number[];
}

function read(out: tf.Tensor | tf.Tensor[]): Output[] {
  const list = Array.isArray(out) ? out : [out];
  return list.map((t) => ({ shape: [...t.shape], dtype: t.dtype, values: Array.from(t.dataSync(), Number) }));
}

/** Runs `build` on a backend inside tidy, reads its outputs, disposes them; also the tensor leak. */
export async function runOn(
  backend: 'cpu' | 'native',
  build: () => tf.Tensor | tf.Tensor[],
): Promise<{ outputs: Output[]; calls: Map<string, number>; leaked: number }> {
  await tf.setBackend(backend);
  const before = tf.memory().numTensors;
  const run = (): Output[] => {
    const out = tf.tidy(build);
    try {
      return read(out);
    } finally {
      tf.dispose(out);
    }
  };
  const { result, calls } = backend === 'native' ? countAddonCalls(run) : { result: run(), calls: new Map<string, number>() };
  return { outputs: result, calls, leaked: tf.memory().numTensors - before };
}

export interface CompareOptions extends Tolerance {
  /**
   * Addon entry points the native run must call (the native kernel ran), or 'none' when every
   * kernel must have fallen back to the stock one.
   */
  uses?: readonly AddonFunction[] | 'none';
  label?: string;
}

/** Asserts that `build` gives the same shapes, dtypes and values (within tolerance) on native as on cpu. */
export async function matchesCpu(t: ExecutionContext, build: () => tf.Tensor | tf.Tensor[], opts: CompareOptions = {}): Promise<void> {
  const label = opts.label === undefined ? '' : `${opts.label}: `;
  const cpu = await runOn('cpu', build);
  const native = await runOn('native', build);
  t.is(native.leaked, 0, `${label}tensors leaked on native`);
  t.is(native.outputs.length, cpu.outputs.length, `${label}number of outputs`);
  native.outputs.forEach((out, i) => {
    const ref = cpu.outputs[i]!;
    t.deepEqual(out.shape, ref.shape, `${label}output ${i} shape`);
    t.is(out.dtype, ref.dtype, `${label}output ${i} dtype`);
    t.deepEqual(mismatches(out.values, ref.values, opts), [], `${label}output ${i} values`);
  });
  if (opts.uses === 'none') {
    t.deepEqual([...native.calls.keys()], [], `${label}expected the stock kernel, but the addon was called`);
  } else {
    for (const name of opts.uses ?? []) t.true((native.calls.get(name) ?? 0) > 0, `${label}the native kernel did not run (no addon.${name} call)`);
  }
}
