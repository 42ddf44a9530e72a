/*
 * Fused kernels where the active backend has them (the native engine: kernels-fused.ts), for the
 * layers and the optimizer. Each returns null elsewhere, and the caller then composes the same
 * computation from stock ops; the gradient checks run both forms.
 */
import * as tf from '@tensorflow/tfjs-core';
import { FUSED } from './native/kernels-fused.js';

function has(kernelName: string): boolean {
  const backend = tf.getBackend();
  return typeof backend === 'string' && tf.getKernel(kernelName, backend) !== undefined;
}

/**
 * True on the native engine, where a slice of an activation is a cheap copy and one wide matrix
 * product runs faster than several narrow ones; on wasm both are the other way round.
 */
export function prefersWideProducts(): boolean {
  return has(FUSED.layerNorm);
}

function run(kernelName: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap = {}): tf.Tensor[] {
  const out: tf.Tensor | tf.Tensor[] = tf.engine().runKernel(kernelName, inputs, attrs);
  return Array.isArray(out) ? out : [out];
}

/** y = layerNorm(x) over the last axis, with the x_hat and 1 / sigma [.., 1] the gradient needs. */
export function fusedLayerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number): { y: tf.Tensor; xhat: tf.Tensor; rsigma: tf.Tensor } | null {
  if (!has(FUSED.layerNorm)) return null;
  const [y, xhat, rsigma] = run(FUSED.layerNorm, { x, gamma, beta }, { epsilon });
  return { y: y!, xhat: xhat!, rsigma: rsigma! };
}

export function fusedLayerNormGrad(
  dy: tf.Tensor,
  xhat: tf.Tensor,
  rsigma: tf.Tensor,
  gamma: tf.Tensor,
): { dx: tf.Tensor; dgamma: tf.Tensor; dbeta: tf.Tensor } | null {
  if (!has(FUSED.layerNormGrad)) return null;
  const [dx, dgamma, dbeta] = run(FUSED.layerNormGrad, { dy, xhat, rsigma, gamma });
  return { dx: dx!, dgamma: dgamma!, dbeta: dbeta! };
}

/** GELU, tanh approximation. */
export function fusedGelu(x: tf.Tensor): tf.Tensor | null {
  return has(FUSED.gelu) ? run(FUSED.gelu, { x })[0]! : null;
}

export function fusedGeluGrad(x: tf.Tensor, dy: tf.Tensor): tf.Tensor | null {
  return has(FUSED.geluGrad) ? run(FUSED.geluGrad, { x, dy })[0]! : null;
}

/** The gradient of softmax (last axis) given its output p and dp, with dp masked first when a mask is given. */
export function fusedSoftmaxGrad<T extends tf.Tensor>(p: T, dp: T, mask: T | null): T | null {
  if (!has(FUSED.softmaxGrad)) return null;
  return run(FUSED.softmaxGrad, mask === null ? { p, dp } : { p, dp, mask })[0] as T;
}

/** out [n, cout] = sum_t x[starts[t] .. starts[t] + n) w[t], for x [p, cin] and w [taps, cin, cout]. */
export function fusedWindowGemm(x: tf.Tensor2D, w: tf.Tensor3D, starts: readonly number[], rows: number): tf.Tensor2D | null {
  return has(FUSED.windowGemm) ? (run(FUSED.windowGemm, { x, w }, { starts: [...starts], rows })[0] as tf.Tensor2D) : null;
}

/** The gradient of fusedWindowGemm with respect to x: [rowsIn, cin]. */
export function fusedWindowGemmGradInput(dOut: tf.Tensor2D, w: tf.Tensor3D, starts: readonly number[], rowsIn: number): tf.Tensor2D | null {
  return has(FUSED.windowGemmGradInput) ? (run(FUSED.windowGemmGradInput, { dOut, w }, { starts: [...starts], rowsIn })[0] as tf.Tensor2D) : null;
}

/** The gradient of fusedWindowGemm with respect to w: [taps, cin, cout]. */
export function fusedWindowGemmGradWeights(x: tf.Tensor2D, dOut: tf.Tensor2D, starts: readonly number[]): tf.Tensor3D | null {
  return has(FUSED.windowGemmGradWeights) ? (run(FUSED.windowGemmGradWeights, { x, dOut }, { starts: [...starts] })[0] as tf.Tensor3D) : null;
}

/** The inputs of the low-memory row attention: q, k, v [R, C, c], RoPE tables cos, sin [C, c], key validity [R, C]. */
export interface RowAttentionInputs {
  q: tf.Tensor3D;
  k: tf.Tensor3D;
  v: tf.Tensor3D;
  cos: tf.Tensor2D;
  sin: tf.Tensor2D;
  valid: tf.Tensor2D;
}

/** scale on the RoPE'd q; the counter-drawn dropout mask of `rate` and `seed` (random.ts counterDropoutMask gives the same mask). */
export interface RowAttentionAttrs {
  scale: number;
  rate: number;
  seed: number;
}

export function hasFusedRowAttention(): boolean {
  return has(FUSED.rowAttention) && has(FUSED.rowAttentionGrad);
}

/**
 * Low-memory row attention (grid.ts rowAttention's lowMemory form): per row r,
 * (softmax(RoPE(q_r) scale RoPE(k_r)^T - 10000 on invalid keys) * M_r) v_r, 0 for a row without a
 * valid key. The [R, C, C] tensors never leave the kernel.
 */
export function fusedRowAttention(x: RowAttentionInputs, attrs: RowAttentionAttrs): tf.Tensor3D | null {
  return has(FUSED.rowAttention) ? (run(FUSED.rowAttention, { ...x }, { ...attrs })[0] as tf.Tensor3D) : null;
}

/** The gradients [dq, dk, dv] of fusedRowAttention for dy [R, C, c], recomputing the probabilities and the mask. */
export function fusedRowAttentionGrad(x: RowAttentionInputs, dy: tf.Tensor3D, attrs: RowAttentionAttrs): [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D] | null {
  if (!has(FUSED.rowAttentionGrad)) return null;
  const [dq, dk, dv] = run(FUSED.rowAttentionGrad, { ...x, dy }, { ...attrs });
  return [dq as tf.Tensor3D, dk as tf.Tensor3D, dv as tf.Tensor3D];
}

export interface AdamWStep {
  beta1: number;
  beta2: number;
  epsilon: number;
  /** multiplies the parameter before the update: 1 - lr * weightDecay */
  decay: number;
  /** lr / (1 - beta1^t) */
  stepSize: number;
  /** sqrt(1 - beta2^t) */
  biasCorrection2Sqrt: number;
}

/** One AdamW update in one pass: the new parameter and moments, as fresh tensors. */
export function fusedAdamW(p: tf.Tensor, g: tf.Tensor, m: tf.Tensor, v: tf.Tensor, step: AdamWStep): { p: tf.Tensor; m: tf.Tensor; v: tf.Tensor } | null {
  if (!has(FUSED.adamW)) return null;
  const [p2, m2, v2] = run(FUSED.adamW, { p, g, m, v }, { ...step });
  return { p: p2!, m: m2!, v: v2! };
}
