import * as tf from '@tensorflow/tfjs-core';
import { createRng, type Rng } from '../util/rng.js';

/*
 * Finite-difference gradient check for custom ops and model heads (research/backends.md §1d).
 *
 * The scalar checked is loss = sum(f(x) * R) for a fixed, seeded random R of f's output shape, so
 * every output element enters the gradient with its own weight.
 *
 * Float32 differences are noisy, so the numeric side avoids every rounding it can:
 * - the loss is never formed in float32: both perturbed outputs are read back and
 *   sum_i R_i * (y+_i - y-_i) is accumulated in float64, so the subtraction cancels only the
 *   per-element rounding of y, not the rounding of a float32 sum over all outputs;
 * - the step is the one actually taken: x +/- h is rounded to float32 first, and the difference of
 *   the two rounded values (exact in float64) is the divisor, not 2h;
 * - Richardson extrapolation, (4 D(h/2) - D(h)) / 3, cancels the O(h^2) truncation term of the
 *   central difference D, which lets h be large (5e-2), and float32 rounding, which grows as 1/h,
 *   stays small.
 * Measured on the op table of test/backend/gradients.test.ts (22 ops, wasm and cpu, 10 seeds each):
 * a plain central difference at h = 1e-2 reaches 1.4e-4 at worst; this estimator stays under
 * 3e-5, while a gradient scaled by 1.1 scores around 5e-2.
 */

export interface GradCheckOptions {
  /**
   * Largest step of the two central differences (default 5e-2; the other is eps / 2).
   * Keep every input more than eps away from kinks (relu, max, abs, where on x) or lower eps.
   */
  eps?: number;
  /** Coordinates checked per input, drawn without replacement (default 6; all of them if the input is smaller). */
  coords?: number;
  /** Seeds R and the choice of coordinates (default 1). */
  seed?: number;
  /** Largest relative error that passes (default 1.3e-4, the level research/backends.md §1d calls "ok"). */
  tol?: number;
}

export interface GradCheckResult {
  maxRelError: number;
  ok: boolean;
  /** The coordinate with the largest relative error: `index` is the flat index into input `input`. */
  worst: { input: number; index: number; analytic: number; numeric: number };
}

/**
 * Relative error |a - n| / max(|a| + |n|, scale).
 * |a| + |n| keeps the measure symmetric and at most 1. `scale` is the size of the terms that were
 * summed to get the gradient entry, sum_i |R_i dy_i/dx| (see checkGradients): when those terms
 * cancel, the entry is small but its rounding and truncation errors are not, so a plain ratio would
 * turn noise into failure. Without cancellation the two denominators agree.
 */
export function relativeError(analytic: number, numeric: number, scale: number): number {
  if (!Number.isFinite(analytic) || !Number.isFinite(numeric)) return Number.POSITIVE_INFINITY;
  if (analytic === numeric) return 0;
  return Math.abs(analytic - numeric) / Math.max(Math.abs(analytic) + Math.abs(numeric), scale);
}

function pickCoordinates(size: number, count: number, rng: Rng): number[] {
  if (size <= count) return Array.from({ length: size }, (_, i) => i);
  const picked = new Set<number>();
  while (picked.size < count) picked.add(rng.int(0, size));
  return [...picked];
}

function readFloat(t: tf.Tensor, what: string): Float32Array {
  if (t.dtype !== 'float32') throw new Error(`checkGradients: ${what} must be float32, got ${t.dtype}`);
  return Float32Array.from(t.dataSync() as Float32Array);
}

/**
 * Compares tf.grads of sum(f(...inputs) * R) with finite differences on a few seeded random
 * coordinates of every input. All inputs must be float32 and f deterministic (no dropout); integer
 * arguments (gather indices, masks) belong in f's closure. Leaves no tensor behind, except when an
 * op in f has no gradient: tf.grads then throws and tfjs itself leaks the tensors it saved for backprop.
 */
export function checkGradients(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[], opts: GradCheckOptions = {}): GradCheckResult {
  const eps = opts.eps ?? 5e-2;
  const coords = opts.coords ?? 6;
  const tol = opts.tol ?? 1.3e-4;
  const rng = createRng(opts.seed ?? 1);
  if (inputs.length === 0) throw new Error('checkGradients: no inputs');
  const values = inputs.map((x, i) => readFloat(x, `input ${i}`));

  const run = (xs: tf.Tensor[]): { y: Float32Array; shape: number[] } => {
    const out = tf.tidy(() => f(...xs));
    try {
      return { y: readFloat(out, 'the output of f'), shape: out.shape };
    } finally {
      out.dispose();
    }
  };

  const { y: y0, shape: outShape } = run(inputs);
  // Float32 weights, so the analytic side (a float32 tensor) and the numeric side use the very same R.
  const weights = Float32Array.from({ length: y0.length }, () => 2 * rng.next() - 1);

  const analytic: Float32Array[] = tf.tidy(() => {
    const r = tf.tensor(weights, outShape, 'float32');
    const gradsOf = tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(f(...xs), r)));
    return gradsOf(inputs).map((g) => Float32Array.from(g.dataSync() as Float32Array));
  });

  let worst = { input: 0, index: 0, analytic: 0, numeric: 0 };
  let maxRelError = -1;
  inputs.forEach((input, k) => {
    const base = values[k]!;
    const grad = analytic[k]!;
    // Where f does not depend on a coordinate both sides are ~0; this keeps a stray 1e-12 from scoring 1.
    const floor = 1e-6 * grad.reduce((m, g) => Math.max(m, Math.abs(g)), 0);

    const outputAt = (index: number, value: number): Float32Array => {
      const moved = base.slice();
      moved[index] = value;
      const xk = tf.tensor(moved, input.shape, 'float32');
      try {
        return run(inputs.map((x, i) => (i === k ? xk : x))).y;
      } finally {
        xk.dispose();
      }
    };

    for (const index of pickCoordinates(base.length, coords, rng)) {
      const { numeric, termScale } = numericDerivative(base, index, eps, weights, outputAt);
      const a = grad[index]!;
      const err = relativeError(a, numeric, Math.max(termScale, floor));
      if (err > maxRelError) {
        maxRelError = err;
        worst = { input: k, index, analytic: a, numeric };
      }
    }
  });
  return { maxRelError, ok: maxRelError <= tol, worst };
}

/**
 * d/dx_index of sum(weights * y) by central differences at eps/2 and eps, combined by Richardson
 * extrapolation (error O(eps^4)). `termScale` is the size of the sum's terms, the scale against
 * which float32 cancellation in the difference is judged.
 */
export function numericDerivative(
  base: Float32Array,
  index: number,
  eps: number,
  weights: Float32Array,
  outputAt: (index: number, value: number) => Float32Array,
): { numeric: number; termScale: number } {
  let termScale = 0;
  const central = (h: number): number => {
    const hi = Math.fround(base[index]! + h);
    const lo = Math.fround(base[index]! - h);
    const yHi = outputAt(index, hi);
    const yLo = outputAt(index, lo);
    let sum = 0;
    let absSum = 0;
    for (let i = 0; i < weights.length; i++) {
      const term = weights[i]! * (yHi[i]! - yLo[i]!);
      sum += term;
      absSum += Math.abs(term);
    }
    termScale = Math.max(termScale, absSum / (hi - lo));
    return sum / (hi - lo);
  };
  const numeric = (4 * central(eps / 2) - central(eps)) / 3;
  return { numeric, termScale };
}
