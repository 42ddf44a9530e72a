/**
 * Ops on a grid of cells [R, C, c], shared by the span heads that work on a table of word pairs:
 * SeNER's band (R = L words, C = 2w + 1 offsets, sener.md 2.3) and the full L x L grid of CNN-NER and
 * UTC-IE (R = C = L).
 *
 * Symbols: x [R, C, c] the cell features, mask [R, C, 1] (1 = valid cell), taps [9, c_in, c_out]
 * the 3x3 kernel with tap t = 3 (dr + 1) + (dc + 1) for the offsets (dr, dc) in {-1, 0, 1}^2
 * (row-major, the layout of a [3, 3, c_in, c_out] conv2d filter).
 *
 * Both ops are written with pad, slice, reshape, matMul and softmax only: the wasm backend has no
 * Conv2DBackpropFilter (so tf.conv2d cannot be trained there) and no usable gradient for
 * stridedSlice or gatherND (research/backends.md).
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  fusedRowAttention,
  fusedRowAttentionGrad,
  hasFusedRowAttention,
  type RowAttentionAttrs,
  type RowAttentionInputs,
  fusedSoftmaxGrad,
  fusedWindowGemm,
  fusedWindowGemmGradInput,
  fusedWindowGemmGradWeights,
} from '../backend/fused.js';
import { counterDropoutMask, drawSeed, fillDropoutMask } from '../backend/random.js';
import type { Rng } from '../util/rng.js';
import { linearSplit, type LinearWeights } from './layers.js';
import type { RopeTables } from './rope.js';

/** The logit bias of an invalid key (the reference code's -10000). */
const INVALID_KEY = -10000;

/**
 * [L L, 2] one-hot of the triangle of each cell (i, j) of an L x L grid: column 0 below the diagonal
 * (i > j), column 1 on and above it (i <= j). A matMul with a [2, c] embedding adds the upper/lower
 * embedding of UTC-IE and of SeNER's unbanded grid.
 */
export function triangleOneHot(L: number): tf.Tensor2D {
  const m = new Float32Array(L * L * 2);
  for (let i = 0; i < L; i++) for (let j = 0; j < L; j++) m[(i * L + j) * 2 + (i <= j ? 1 : 0)] = 1;
  return tf.tensor2d(m, [L * L, 2]);
}

/**
 * Masked 3x3 'same' convolution without bias (the reference MaskConv2d): invalid input cells are
 * zeroed, out(r, c) = sum over taps of x(r + dr, c + dc) taps[t], and invalid output cells are zeroed
 * (the reference leaves them as they are; nothing reads them, and zeros keep later sums clean).
 *
 * Written as 9 shifted views of one zero-padded copy, each a [rows, c_in] x [c_in, c_out] product.
 * The grid is padded to [R + 2, C + 2] and flattened row-major to P rows (row stride C + 2), with
 * one more zero row at each end; the output is computed on the padded width, for the R (C + 2)
 * positions of the real rows, and the 2 pad columns are cut off once at the end. On that layout
 * the neighbour (dr, dc) of every position is the same row offset dr (C + 2) + dc, so each view is
 * one contiguous 2D slice (the pure-JS cpu kernel copies those in one block instead of element by
 * element; wasm copies its whole input per slice either way). The views that reach into the pad
 * columns wrap to the neighbouring row only at positions that are cut off.
 *
 * On the native engine the nine products are one fused kernel each way (backend/fused.ts: each tap a
 * product on a row window of the padded copy, accumulated in place; no slices, no sum of nine).
 *
 * The gradient is written out (tf.customGrad) so that a training step keeps only the padded input
 * for the backward pass, not the 9 views and the intermediate reshapes (which the wasm backend
 * would also copy once more each): with a grid of L x (2w + 1) cells this is most of a BiSPA
 * block's memory besides attention. d taps[t] = view_t^T dY and d view_t = dY taps[t]^T, with the
 * views re-sliced in the backward pass; the mask is a constant and gets no gradient.
 */
export function maskedConv3x3(x: tf.Tensor3D, taps: tf.Tensor3D, mask: tf.Tensor3D): tf.Tensor3D {
  const [R, C, cin] = x.shape;
  const [nt, tin, cout] = taps.shape;
  if (nt !== 9 || tin !== cin) throw new Error(`maskedConv3x3: taps must be [9, ${cin}, c_out], got [${taps.shape}]`);
  if (mask.shape[0] !== R || mask.shape[1] !== C || mask.shape[2] !== 1) {
    throw new Error(`maskedConv3x3: mask must be [${R}, ${C}, 1], got [${mask.shape}]`);
  }
  const Cp = C + 2;
  const n = R * Cp;
  // Output position p (cell (1 + p div Cp, p mod Cp) of the padded grid) reads flat row p + start(t).
  const start = (t: number): number => Cp + 1 + (Math.floor(t / 3) - 1) * Cp + ((t % 3) - 1);
  const starts = Array.from({ length: 9 }, (_, t) => start(t));
  const tap = (k: tf.Tensor3D, t: number): tf.Tensor2D => tf.reshape(tf.slice(k, [t, 0, 0], [1, cin, cout]), [cin, cout]);
  // customGrad passes the inputs and then the save function through one variadic parameter list.
  // The mask is a constant: it enters through the closure (and is saved for the backward pass).
  const m = mask;
  const conv = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xs, k, save] = args as [tf.Tensor3D, tf.Tensor3D, tf.GradSaveFunc];
    const grid = tf.pad(tf.mul(xs, m), [
      [1, 1],
      [1, 1],
      [0, 0],
    ]);
    // Flat row f is padded cell (f - 1) of the row-major [R + 2, C + 2] grid.
    const flat = tf.pad(tf.reshape(grid, [(R + 2) * Cp, cin]), [
      [1, 1],
      [0, 0],
    ]) as tf.Tensor2D;
    const fused = fusedWindowGemm(flat, k, starts, n);
    const sum = fused ?? tf.addN(Array.from({ length: 9 }, (_, t) => tf.matMul(tf.slice(flat, [start(t), 0], [n, cin]), tap(k, t))));
    const wide = tf.reshape(sum, [R, Cp, cout]);
    save([flat, k, m]);
    return {
      value: tf.mul(tf.slice(wide, [0, 1, 0], [R, C, cout]), m) as tf.Tensor,
      // tfjs calls gradFunc outside any tidy and keeps every gradient tensor until the backward pass
      // ends, so the intermediates are tidied here.
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] =>
        tf.tidy(() => {
          const [sFlat, sTaps, sMask] = saved as [tf.Tensor2D, tf.Tensor3D, tf.Tensor3D];
          // dY on the padded width: zero at the cut-off columns and at invalid cells.
          const dWide = tf.reshape(
            tf.pad(tf.mul(dy, sMask), [
              [0, 0],
              [1, 1],
              [0, 0],
            ]),
            [n, cout],
          ) as tf.Tensor2D;
          const rows = (R + 2) * Cp + 2;
          const dFlat =
            fusedWindowGemmGradInput(dWide, sTaps, starts, rows) ??
            tf.addN(
              Array.from({ length: 9 }, (_, t) =>
                tf.pad(tf.matMul(dWide, tap(sTaps, t), false, true), [
                  [start(t), rows - n - start(t)],
                  [0, 0],
                ]),
              ),
            );
          const dGrid = tf.reshape(tf.slice(dFlat, [1, 0], [(R + 2) * Cp, cin]), [R + 2, Cp, cin]);
          const dx = tf.mul(tf.slice(dGrid, [1, 1, 0], [R, C, cin]), sMask);
          const dTaps =
            fusedWindowGemmGradWeights(sFlat, dWide, starts) ??
            tf.stack(Array.from({ length: 9 }, (_, t) => tf.matMul(tf.slice(sFlat, [start(t), 0], [n, cin]), dWide, true, false)));
          return [dx, dTaps];
        }),
    };
  });
  return tf.tidy(() => conv(x, taps) as tf.Tensor3D);
}

export interface RowAttentionWeights {
  /** Linear(c -> 3c); its output splits into Q, K, V in that order. */
  qkv: LinearWeights;
}

export interface RowAttentionOptions {
  /** RoPE tables for C positions and c features; the position of a cell is its column index. */
  rope: RopeTables;
  /** [R, C], 1 = valid cell. Invalid cells are hidden as keys; a row without valid cells outputs 0. */
  validMask: tf.Tensor2D;
  /** Dropout on the attention probabilities (reference BiSPA: 0.2). */
  dropout?: number;
  training?: boolean;
  rng?: Rng;
  /**
   * The low-memory form: on the native engine one fused kernel per direction that keeps none of the
   * [R, C, C] tensors (the backward pass recomputes the probabilities), with the dropout mask drawn
   * from a counter instead of the stream (a different mask than the reference form's, same law).
   * Elsewhere the same counter mask goes through the stock-op composition. Default false.
   */
  lowMemory?: boolean;
}

/** Rotates [R, C, c] features by their column index: x cos + (x P) sin with [C, c] tables broadcast over rows. */
function ropeColumns(flat: tf.Tensor2D, R: number, C: number, t: RopeTables): tf.Tensor3D {
  const c = flat.shape[1];
  const x = tf.reshape(flat, [R, C, c]);
  const swapped = tf.reshape(tf.matMul(flat, t.P), [R, C, c]);
  return tf.add(tf.mul(x, t.cos), tf.mul(swapped, t.sin)) as tf.Tensor3D;
}

/**
 * Inverted-dropout mask with layers.ts dropout's rule and random stream (values 0 or 1 / (1 - rate),
 * drawn from `rng`), as a tensor of its own so the attention gradient can reuse it.
 */
function dropoutMask(shape: number[], rate: number, rng: Rng | undefined): tf.Tensor {
  if (rate >= 1) throw new Error(`dropout rate must be below 1, got ${rate}`);
  if (rng === undefined) throw new Error('dropout in training needs an rng');
  const mask = new Float32Array(shape.reduce((a, b) => a * b, 1));
  fillDropoutMask(mask, rate, rng);
  return tf.tensor(mask, shape, 'float32');
}

/**
 * softmax(Qa Ka^T) (times the dropout mask M) times V, for [R, C, .] operands, with the gradient
 * written out so that the backward pass keeps only P = softmax(.) and M of the [R, C, C] tensors
 * (autodiff would keep P for the softmax, P again and M for the dropout product, P M for the last
 * product, and the wasm backend copies each saved tensor once more):
 *   d(PM) = dY V^T, dV = (PM)^T dY, dS = P (dP - rowsum(dP P)) with dP = d(PM) M,
 *   dQa = dS Ka, dKa = dS^T Qa.
 */
/** dS = P (dP - rowsum(dP P)), the softmax's gradient, from stock ops. */
function softmaxGradOf(p: tf.Tensor3D, dp: tf.Tensor3D): tf.Tensor3D {
  return tf.mul(p, tf.sub(dp, tf.sum(tf.mul(dp, p), -1, true)));
}

/**
 * The lowMemory form on the native engine: RoPE, scaling, the key mask, softmax, counter-drawn
 * dropout and the product with V in one kernel per row, each way. The forward pass keeps only q, k, v
 * (and the constant tables), and the backward kernel recomputes a row's probabilities and mask.
 */
function rowAttentionFused(x: RowAttentionInputs, attrs: RowAttentionAttrs): tf.Tensor3D {
  // The tables and the mask are constants: they enter through the closure and are saved for the backward pass.
  const { cos, sin, valid } = x;
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [q, k, v, save] = args as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.GradSaveFunc];
    save([q, k, v, cos, sin, valid]);
    return {
      value: fusedRowAttention({ q, k, v, cos, sin, valid }, attrs)!,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => {
        const [sq, sk, sv, sc, ss, sValid] = saved as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
        return fusedRowAttentionGrad({ q: sq, k: sk, v: sv, cos: sc, sin: ss, valid: sValid }, dy as tf.Tensor3D, attrs)!;
      },
    };
  });
  return f(x.q, x.k, x.v) as tf.Tensor3D;
}

function attend(qa: tf.Tensor3D, ka: tf.Tensor3D, v: tf.Tensor3D, mask: tf.Tensor3D | null): tf.Tensor3D {
  // The mask is a constant: it enters through the closure (and is saved for the backward pass), so
  // it needs no [R, C, C] zero gradient of its own.
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [q, k, vv, save] = args as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.GradSaveFunc];
    const p = tf.softmax(tf.matMul(q, k, false, true)) as tf.Tensor3D;
    save(mask ? [q, k, vv, p, mask] : [q, k, vv, p]);
    return {
      value: tf.matMul(mask ? tf.mul(p, mask) : p, vv) as tf.Tensor,
      // tfjs calls gradFunc outside any tidy and keeps every gradient tensor until the backward pass
      // ends, so the intermediates are tidied here.
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] =>
        tf.tidy(() => {
          const [sq, sk, sv, sp, sm] = saved as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.Tensor3D | undefined];
          const dy3 = dy as tf.Tensor3D;
          const pm = sm ? (tf.mul(sp, sm) as tf.Tensor3D) : sp;
          const dv = tf.matMul(pm, dy3, true, false);
          const dpm = tf.matMul(dy3, sv, false, true) as tf.Tensor3D;
          const ds = fusedSoftmaxGrad(sp, dpm, sm ?? null) ?? softmaxGradOf(sp, sm ? (tf.mul(dpm, sm) as tf.Tensor3D) : dpm);
          return [tf.matMul(ds, sk), tf.matMul(ds, sq, true, false), dv];
        }),
    };
  });
  return f(qa, ka, v) as tf.Tensor3D;
}

/**
 * Single-head self-attention across the C cells of every row (sener.md 2.3, the horizontal branch
 * of a BiSPA block; UTC-IE's axis attention): Q, K, V = one Linear(c -> 3c) split, RoPE on Q and K
 * with the column index as position, logits Q K^T / sqrt(c), -10000 on invalid keys, softmax,
 * dropout, times V; a row without any valid cell outputs 0. All rows at once as batched products
 * [R, C, c] x [R, c, C]: no per-row slicing.
 *
 * The C x C scores per row make memory O(R C^2), so the score tensors are kept to the minimum a
 * backward pass needs (see attend): 1/sqrt(c) is applied to Q, and the key bias rides in the same
 * product as an extra feature (Q gets a constant 1, K the bias). The reference also sets the
 * probabilities of invalid keys to 0 after the softmax; here they are exactly 0 already
 * (exp(-10000 + ...) underflows in float32) whenever the row has a valid key, and rows without one
 * are zeroed on the [R, C, c] output.
 */
export function rowAttention(x: tf.Tensor3D, w: RowAttentionWeights, opts: RowAttentionOptions): tf.Tensor3D {
  const [R, C, c] = x.shape;
  const { rope, validMask } = opts;
  if (validMask.shape[0] !== R || validMask.shape[1] !== C) {
    throw new Error(`rowAttention: validMask must be [${R}, ${C}], got [${validMask.shape}]`);
  }
  if (rope.cos.shape[0] !== C || rope.cos.shape[1] !== c) {
    throw new Error(`rowAttention: RoPE tables must be [${C}, ${c}], got [${rope.cos.shape}]`);
  }
  const rate = opts.dropout ?? 0;
  return tf.tidy(() => {
    const flat = tf.reshape(x, [R * C, c]) as tf.Tensor2D;
    const [q, k, v] = linearSplit(flat, w.qkv, 3) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
    const drops = opts.training === true && rate > 0;
    if (drops && opts.rng === undefined) throw new Error('dropout in training needs an rng');
    // The low-memory form draws one seed for a counter mask; the reference form draws the mask itself.
    const seed = opts.lowMemory === true && drops ? drawSeed(opts.rng!) : 0;
    const shape3 = (t: tf.Tensor2D): tf.Tensor3D => tf.reshape(t, [R, C, c]);
    if (opts.lowMemory === true && hasFusedRowAttention()) {
      return rowAttentionFused(
        { q: shape3(q), k: shape3(k), v: shape3(v), cos: rope.cos, sin: rope.sin, valid: validMask },
        { scale: 1 / Math.sqrt(c), rate: drops ? rate : 0, seed },
      );
    }
    const qr = tf.mul(ropeColumns(q, R, C, rope), 1 / Math.sqrt(c));
    const kr = ropeColumns(k, R, C, rope);
    const keyBias = tf.reshape(tf.mul(tf.sub(1, validMask), INVALID_KEY), [R, C, 1]);
    const qa = tf.concat([qr, tf.ones([R, C, 1])], 2) as tf.Tensor3D;
    const ka = tf.concat([kr, keyBias], 2) as tf.Tensor3D;
    let mask: tf.Tensor3D | null = null;
    if (drops)
      mask = opts.lowMemory === true ? tf.tensor3d(counterDropoutMask(R, C, rate, seed), [R, C, C]) : (dropoutMask([R, C, C], rate, opts.rng) as tf.Tensor3D);
    const out = attend(qa, ka, shape3(v), mask);
    const rowAny = tf.reshape(tf.cast(tf.greater(tf.max(validMask, 1), 0), 'float32'), [R, 1, 1]);
    return tf.mul(out, rowAny) as tf.Tensor3D;
  });
}
