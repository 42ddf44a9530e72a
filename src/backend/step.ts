/**
 * Step probes: wall time and memory of one unit of work (a training step, an inference batch).
 *
 * A probe only observes: the function runs exactly as it would without it, and its return value is
 * handed back untouched. `tf.profile` does not change what a kernel computes (it records a byte
 * snapshot after each kernel), but it keeps a record per kernel and is slower, so callers profile a
 * sample of steps and only time the rest (`timeStep`).
 *
 * Memory figures:
 * - peakBytes: the largest total of live tensor bytes during the step. It is an absolute figure: it
 *   includes everything alive before the step (weights, optimizer moments, cached tables), which is
 *   what has to fit in memory. On the native engine it is the high-water mark of live tensor
 *   buffers, each buffer once (what the memory budget counts), and the step runs without the
 *   profiler; elsewhere it is tf.profile's peakBytes, taken after each kernel, which counts a
 *   reshaped view of a tensor again.
 * - baselineBytes: live tensor bytes just before the step, so peakBytes - baselineBytes is what
 *   the step itself allocates at its peak.
 * - wasmHeapBytes: the wasm heap after the step (it grows to the high-water mark and never
 *   shrinks, so it is the process's peak so far; 4 GiB is the wasm32 cap). Null off wasm.
 * - rssBytes: the process's resident set after the step.
 */
import * as tf from '@tensorflow/tfjs-core';
import { backendMemory, watchBufferPeak } from './index.js';

export interface Timed<T> {
  value: T;
  ms: number;
}

export interface StepMeasure<T> extends Timed<T> {
  /** Null when the step was only timed, or ran no kernel. */
  peakBytes: number | null;
  baselineBytes: number;
  wasmHeapBytes: number | null;
  rssBytes: number;
}

/** Runs `fn` once and returns its value with the wall time in milliseconds. */
export function timeStep<T>(fn: () => T): Timed<T> {
  const start = performance.now();
  const value = fn();
  return { value, ms: performance.now() - start };
}

/**
 * Runs `fn` once under tf.profile (unless `profile: false`) and reports time and memory.
 * The time of a profiled step includes the profiler's own bookkeeping; use timeStep for
 * latency figures and this for memory.
 */
export async function measureStep<T>(fn: () => T, opts: { profile?: boolean } = {}): Promise<StepMeasure<T>> {
  const baselineBytes = backendMemory().tfBytes;
  let peakBytes: number | null = null;
  let value: T | undefined;
  let ms: number;
  const bufferPeak = opts.profile === false ? null : watchBufferPeak();
  if (opts.profile === false) {
    ({ value, ms } = timeStep(fn));
  } else if (bufferPeak !== null) {
    ({ value, ms } = timeStep(fn));
    peakBytes = bufferPeak();
  } else {
    const start = performance.now();
    // The error is caught inside the query: tfjs leaves its engine in profiling mode (every later
    // kernel recorded) when the query throws.
    let failure: { error: unknown } | null = null;
    const info = await tf.profile(() => {
      try {
        value = fn();
      } catch (error) {
        failure = { error };
      }
    });
    ms = performance.now() - start;
    if (failure !== null) throw (failure as { error: unknown }).error;
    // tf.profile reports -Infinity for a function that ran no kernel.
    peakBytes = Number.isFinite(info.peakBytes) ? Math.max(info.peakBytes, baselineBytes) : null;
  }
  const memory = backendMemory();
  return {
    value: value as T,
    ms,
    peakBytes,
    baselineBytes,
    wasmHeapBytes: memory.wasmHeapBytes ?? null,
    rssBytes: process.memoryUsage().rss,
  };
}
