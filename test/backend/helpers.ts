import * as tf from '@tensorflow/tfjs-core';
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
