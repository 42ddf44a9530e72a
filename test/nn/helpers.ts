/** Shared test helpers for src/nn: backend set-up, seeded tensors, a gradient check on variables. */
import * as tf from '@tensorflow/tfjs-core';
import { numericDerivative, relativeError, type GradCheckOptions, type GradCheckResult } from '../../src/backend/gradcheck.js';
import { initBackend, type BackendName } from '../../src/backend/index.js';
import { createRng } from '../../src/util/rng.js';

/** The backend LONGNER_TEST_BACKEND names (wasm or native), else cpu. */
export function defaultTestBackend(): BackendName {
  const wanted = process.env.LONGNER_TEST_BACKEND;
  return wanted === 'wasm' || wanted === 'native' ? wanted : 'cpu';
}

/** cpu by default; LONGNER_TEST_BACKEND=wasm or =native runs the same tests on that backend. */
export async function setupBackend(): Promise<BackendName> {
  const info = await initBackend(defaultTestBackend(), { quiet: true });
  return info.name;
}

/** Seeded uniform values in [-scale, scale). */
export function randomTensor(shape: number[], seed: number, scale = 1): tf.Tensor {
  const rng = createRng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, () => (2 * rng.next() - 1) * scale),
    shape,
  );
}

export function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

/**
 * src/backend/gradcheck.ts for a function of variables (a model that reads its weights from a
 * ParamStore cannot take them as arguments): the same estimator (outputs read back and weighted in
 * float64, the rounded step as divisor, Richardson extrapolation) and the same error measure, with
 * each coordinate moved by assigning to its variable. `floorShare` sets the error measure's floor as
 * a share of the largest gradient entry over all variables (1e-6 by default, as in gradcheck.ts).
 */
export function checkVarGradients(f: () => tf.Tensor, vars: tf.Variable[], opts: GradCheckOptions & { floorShare?: number } = {}): GradCheckResult {
  const floorShare = opts.floorShare ?? 1e-6;
  const eps = opts.eps ?? 5e-2;
  const coords = opts.coords ?? 6;
  const tol = opts.tol ?? 1.3e-4;
  const rng = createRng(opts.seed ?? 1);
  const run = (): Float32Array => tf.tidy(() => Float32Array.from(f().dataSync() as Float32Array));
  const outShape = tf.tidy(() => f().shape);
  const y0 = run();
  const weights = Float32Array.from({ length: y0.length }, () => 2 * rng.next() - 1);
  const R = tf.tensor(weights, outShape, 'float32');
  const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(f(), R)), vars);
  const analytic = vars.map((v) => Float32Array.from(grads[v.name]!.dataSync() as Float32Array));
  tf.dispose([R, value, ...Object.values(grads)]);
  // A whole model has entries far below float32 noise (e.g. a key bias, nearly shift-invariant
  // under softmax), so the floor is a share of the largest gradient entry of all variables.
  const globalMax = analytic.reduce((m, g) => g.reduce((mm, x) => Math.max(mm, Math.abs(x)), m), 0);
  let maxRelError = -1;
  let worst: GradCheckResult['worst'] = { input: 0, index: 0, analytic: 0, numeric: 0 };
  vars.forEach((v, k) => {
    const base = Float32Array.from(v.dataSync() as Float32Array);
    const grad = analytic[k]!;
    const floor = floorShare * globalMax;
    const set = (values: Float32Array): void => void tf.tidy(() => v.assign(tf.tensor(values, v.shape, 'float32')));
    const outputAt = (index: number, value: number): Float32Array => {
      const moved = base.slice();
      moved[index] = value;
      set(moved);
      return run();
    };
    const picked = new Set<number>();
    while (picked.size < Math.min(coords, base.length)) picked.add(rng.int(0, base.length));
    for (const index of picked) {
      const { numeric, termScale } = numericDerivative(base, index, eps, weights, outputAt);
      const a = grad[index]!;
      const err = relativeError(a, numeric, Math.max(termScale, floor));
      if (err > maxRelError) {
        maxRelError = err;
        worst = { input: k, index, analytic: a, numeric };
      }
    }
    set(base);
  });
  return { maxRelError, ok: maxRelError <= tol, worst };
}

/** Wraps tensors into fresh variables (disposes the originals). */
export function asVariables(ts: tf.Tensor[]): tf.Variable[] {
  return ts.map((t) => {
    const v = tf.variable(t);
    t.dispose();
    return v;
  });
}
