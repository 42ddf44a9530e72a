/**
 * Rotary position embedding (RoPE, Su et al. 2021), interleaved pairs.
 *
 * Symbols: d the (even) feature size, p the integer position of a row, theta_k = 10000^(-2k/d) for
 * k = 0 .. d/2 - 1. RoPE rotates each pair (x_{2k}, x_{2k+1}) by the angle p * theta_k:
 *   out_{2k}   = x_{2k} cos(p theta_k) - x_{2k+1} sin(p theta_k)
 *   out_{2k+1} = x_{2k+1} cos(p theta_k) + x_{2k} sin(p theta_k)
 * so (R_i q) . (R_j k) depends on positions only through j - i.
 * Written as out = x * cos + (x P) * sin with a constant signed permutation P [d, d]
 * ((x P)_{2k} = -x_{2k+1}, (x P)_{2k+1} = x_{2k}): everything stays 2D and differentiable.
 */
import * as tf from '@tensorflow/tfjs-core';

/** The 10000 of theta_k; pretrained weights are tied to it, so exported encoders record it (train/pretrain/export.ts). */
export const ROPE_BASE = 10000;

export interface RopeTables {
  /** [L, d]: cos(p theta_k) at columns 2k and 2k + 1. Constant. */
  cos: tf.Tensor2D;
  /** [L, d]: sin(p theta_k) at columns 2k and 2k + 1. Constant. */
  sin: tf.Tensor2D;
  /** [d, d]: the signed pair swap. Constant. */
  P: tf.Tensor2D;
  dispose(): void;
}

/**
 * Tables for rows at `positions` (or 0 .. L - 1 when given a length). The caller disposes them.
 * `scale` multiplies both tables, so every rotated vector is also scaled by it: UTC-IE's reference
 * divides its sinusoid table by sqrt(d) this way (utc-ie.ts scaleRope).
 */
export function ropeTables(positions: Int32Array | number, d: number, scale = 1): RopeTables {
  if (d % 2 !== 0) throw new Error(`RoPE needs an even feature size, got ${d}`);
  const pos = typeof positions === 'number' ? Int32Array.from({ length: positions }, (_, i) => i) : positions;
  const L = pos.length;
  const cos = new Float32Array(L * d);
  const sin = new Float32Array(L * d);
  for (let k = 0; k < d / 2; k++) {
    const theta = ROPE_BASE ** ((-2 * k) / d);
    for (let i = 0; i < L; i++) {
      const angle = pos[i]! * theta;
      const c = scale * Math.cos(angle);
      const s = scale * Math.sin(angle);
      cos[i * d + 2 * k] = c;
      cos[i * d + 2 * k + 1] = c;
      sin[i * d + 2 * k] = s;
      sin[i * d + 2 * k + 1] = s;
    }
  }
  const P = new Float32Array(d * d);
  for (let k = 0; k < d / 2; k++) {
    P[(2 * k + 1) * d + 2 * k] = -1; // column 2k takes -x_{2k+1}
    P[2 * k * d + 2 * k + 1] = 1; // column 2k+1 takes x_{2k}
  }
  const tables = {
    cos: tf.tensor2d(cos, [L, d]),
    sin: tf.tensor2d(sin, [L, d]),
    P: tf.tensor2d(P, [d, d]),
  };
  return { ...tables, dispose: () => tf.dispose([tables.cos, tables.sin, tables.P]) };
}

/** Rotates the rows of x [L, d] by their positions. */
export function applyRope(x: tf.Tensor2D, t: RopeTables): tf.Tensor2D {
  return tf.tidy(() => tf.add(tf.mul(x, t.cos), tf.mul(tf.matMul(x, t.P), t.sin)));
}
