import * as tf from '@tensorflow/tfjs-core';
import type { BackendName } from '../../src/backend/index.js';
import { loadNativeAddon } from '../../src/backend/native/addon.js';
import { createRng } from '../../src/util/rng.js';

/** A seeded standard-normal tensor (Box-Muller over the project's PRNG), identical on every backend. */
export function randn(shape: number[], seed: number, scale = 1): tf.Tensor {
  const rng = createRng(seed);
  const size = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    const u = 1 - rng.next();
    values[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
  }
  return tf.tensor(values, shape, 'float32');
}

/**
 * Whether CI is set: there the native engine is installed, so a missing engine must fail the
 * native tests loudly instead of dropping them (CI=false or CI=0 count as unset).
 */
function onCi(): boolean {
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci !== 'false' && ci !== '0';
}

/**
 * The backends the correctness tests enumerate: cpu (the pure-JS reference) and wasm always, plus
 * native when its addon loads here, and always on CI (where an addon that fails to load must fail
 * the native tests, not skip them).
 */
export function backendsUnderTest(): BackendName[] {
  const names: BackendName[] = ['cpu', 'wasm'];
  if (onCi() || loadNativeAddon().ok) names.push('native');
  return names;
}

/** backendsUnderTest() without the cpu reference: for training-sized tests, where cpu is 5-20x slower. */
export function trainingBackendsUnderTest(): BackendName[] {
  return backendsUnderTest().filter((b) => b !== 'cpu');
}
