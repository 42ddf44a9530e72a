/**
 * The banded layout of SeNER's span tensor (sener.md 2.1-2.2): instead of the L x L grid of word
 * pairs, only pairs at most w words apart are kept, as L rows of 2w + 1 cells.
 *
 * Symbols: L words, w the one-sided BiSPA window in words, k = 0 .. 2w a column (offset k - w),
 * c features per cell, R entity types.
 * - Cell (i, k) holds the ordered pair (head i, tail j = i + k - w). Columns k > w are forward pairs
 *   (the span [i .. j]), k = w the diagonal, k < w backward pairs (i is the span's end). Each span
 *   {s <= e} with e - s <= w therefore sits twice: at (s, w + (e - s)) and at (e, w - (e - s)).
 * - A cell is valid when its tail lies in [0, L); out-of-range cells exist only at the band's edges.
 * - roll+flip re-packs the band so that row i lists the pairs whose *tail* is i, ordered by head:
 *   cell (i, k) <-> pair (head i + k - w, tail i), i.e. rollFlip(x)(i, k) = x(i + k - w, 2w - k).
 *   It is an involution on valid cells (applying it twice gives x back) and keeps validity.
 * Gold spans longer than w + 1 words cannot be represented; bandLabels counts them.
 *
 * Everything here is built from pad, gather with constant indices, and matMul: no L x L tensor (but
 * in gridBiaffine and gridToBand, which serve the unbanded ablation), and no stridedSlice or gatherND,
 * which have no usable gradient on wasm (research/backends.md).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Entity } from '../data/types.js';
import type { Rng } from '../util/rng.js';
import { dropout } from './layers.js';

/** Band cell [row, column] of the pair (head i, tail j), or null when |j - i| > w. */
export function bandIndex(i: number, j: number, w: number): [number, number] | null {
  const k = w + j - i;
  return k >= 0 && k <= 2 * w ? [i, k] : null;
}

/** The pair [head, tail] stored at band cell (i, k). */
export function bandPair(i: number, k: number, w: number): [number, number] {
  return [i, i + k - w];
}

/** [L * (2w + 1)] row-major 0/1 validity of the band's cells (tail inside [0, L)). */
export function bandValidity(L: number, w: number): Float32Array {
  const K = 2 * w + 1;
  const out = new Float32Array(L * K);
  for (let i = 0; i < L; i++) {
    const lo = Math.max(0, w - i);
    const hi = Math.min(2 * w, L - 1 - i + w);
    out.fill(1, i * K + lo, i * K + hi + 1);
  }
  return out;
}

/** The band's validity as a [L, 2w + 1] tensor (1 = valid). */
export function bandValidMask(L: number, w: number): tf.Tensor2D {
  return tf.tensor2d(bandValidity(L, w), [L, 2 * w + 1]);
}

/** Flat row indices for gathering, from a padded [L + 2w, ...] table, the 2w + 1 tails of every row. */
function tailIndex(L: number, w: number): Int32Array {
  const K = 2 * w + 1;
  const idx = new Int32Array(L * K);
  // Tail j = i + k - w sits at row j + w = i + k of the table padded with w rows at each end.
  for (let i = 0; i < L; i++) for (let k = 0; k < K; k++) idx[i * K + k] = i + k;
  return idx;
}

/** Flat indices into a [L (2w + 1) + 1, c] table (last row zero) realising roll+flip. */
function rollFlipIndex(L: number, w: number): Int32Array {
  const K = 2 * w + 1;
  const zeroRow = L * K;
  const idx = new Int32Array(L * K);
  for (let i = 0; i < L; i++) {
    for (let k = 0; k < K; k++) {
      const head = i + k - w;
      idx[i * K + k] = head >= 0 && head < L ? head * K + (2 * w - k) : zeroRow;
    }
  }
  return idx;
}

/**
 * roll+flip (sener.md 2.2): out(i, k) = x(i + k - w, 2w - k), the pair (head i + k - w, tail i);
 * out-of-range cells are 0 (the reference wraps around instead; those cells are masked everywhere).
 * One gather with constant indices on a flattened 2D view.
 */
export function rollFlip<T extends tf.Tensor3D>(x: T): T {
  const [L, K, c] = x.shape;
  if (K % 2 !== 1) throw new Error(`rollFlip: the band needs an odd width 2w + 1, got ${K}`);
  const w = (K - 1) / 2;
  return tf.tidy(() => {
    const table = tf.concat([tf.reshape(x, [L * K, c]), tf.zeros([1, c])], 0);
    return tf.reshape(tf.gather(table, tf.tensor1d(rollFlipIndex(L, w), 'int32')), [L, K, c]) as T;
  });
}

export interface BiaffineDropout {
  /** Dropout on [h; 1] before the linear term W (the reference reuses its 0.4 MLP dropout there). */
  rate: number;
  training: boolean;
  rng?: Rng;
}

/** The parts of D shared by both layouts: (h_i' U) per head, h_j' per tail, and the two halves of W. */
interface BiaffineParts {
  /** [L, c, d + 1]: h_i' U_r for every feature r */
  hsU: tf.Tensor3D;
  /** [L, d + 1]: h_j' */
  he1: tf.Tensor2D;
  /** [L, c]: W_1 Dropout(h_i') */
  headLin: tf.Tensor2D;
  /** [L, c]: W_2 Dropout(h_j') */
  tailLin: tf.Tensor2D;
}

function biaffineParts(hs: tf.Tensor2D, he: tf.Tensor2D, U: tf.Tensor3D, W: tf.Tensor2D, where: string, dropoutOpts?: BiaffineDropout): BiaffineParts {
  const [L, d] = hs.shape;
  const c = U.shape[0];
  if (he.shape[0] !== L || he.shape[1] !== d) throw new Error(`${where}: hs is [${hs.shape}] but he is [${he.shape}]`);
  if (U.shape[1] !== d + 1 || U.shape[2] !== d + 1) throw new Error(`${where}: U must be [c, ${d + 1}, ${d + 1}], got [${U.shape}]`);
  if (W.shape[0] !== c || W.shape[1] !== 2 * (d + 1)) throw new Error(`${where}: W must be [${c}, ${2 * (d + 1)}], got [${W.shape}]`);
  const ones = tf.ones([L, 1]);
  const hs1 = tf.concat([hs, ones], 1) as tf.Tensor2D;
  const he1 = tf.concat([he, ones], 1) as tf.Tensor2D;
  // Bilinear: (h_i' U_r) for every feature r as one [L, d+1] x [d+1, c (d+1)] product.
  const Ucols = tf.reshape(tf.transpose(U, [1, 0, 2]), [d + 1, c * (d + 1)]);
  const hsU = tf.reshape(tf.matMul(hs1, Ucols), [L, c, d + 1]) as tf.Tensor3D;
  // Linear: W [h_i'; h_j'] = W_1 h_i' + W_2 h_j'.
  const drop = <X extends tf.Tensor>(x: X): X => (dropoutOpts ? dropout(x, dropoutOpts.rate, dropoutOpts.training, dropoutOpts.rng) : x);
  const headLin = tf.matMul(drop(hs1), tf.slice(W, [0, 0], [c, d + 1]), false, true) as tf.Tensor2D;
  const tailLin = tf.matMul(drop(he1), tf.slice(W, [0, d + 1], [c, d + 1]), false, true) as tf.Tensor2D;
  return { hsU, he1, headLin, tailLin };
}

/**
 * The biaffine span features of every band cell (sener.md 2.1):
 *   D(i, k) = h_i'^T U h_j' + W [h_i'; h_j'],  j = i + k - w,  h' = [h; 1],
 * with h_i from the start MLP (hs) and h_j from the end MLP (he), U [c, d + 1, d + 1], W [c, 2(d + 1)].
 * The appended 1s give the bias terms. The bilinear term is (h_i' U) [c, d + 1] per row against the
 * row's 2w + 1 gathered tails [2w + 1, d + 1]: a batched product over rows, O(L w (c + d)) memory
 * and never an L x L tensor. Invalid cells (tail outside the segment) are 0.
 */
export function bandedBiaffine(
  hs: tf.Tensor2D,
  he: tf.Tensor2D,
  U: tf.Tensor3D,
  W: tf.Tensor2D,
  w: number,
  opts: { dropout?: BiaffineDropout } = {},
): tf.Tensor3D {
  if (!Number.isInteger(w) || w < 0) throw new Error(`bandedBiaffine: window must be a non-negative integer, got ${w}`);
  const L = hs.shape[0];
  const K = 2 * w + 1;
  return tf.tidy(() => {
    const { hsU, he1, headLin, tailLin } = biaffineParts(hs, he, U, W, 'bandedBiaffine', opts.dropout);
    const c = U.shape[0];
    const tails = tf.tensor1d(tailIndex(L, w), 'int32');
    const gatherTails = (x: tf.Tensor2D): tf.Tensor =>
      tf.gather(
        tf.pad(x, [
          [w, w],
          [0, 0],
        ]),
        tails,
      );
    const heBand = tf.reshape(gatherTails(he1), [L, K, he1.shape[1]]) as tf.Tensor3D;
    const bilinear = tf.matMul(heBand, hsU, false, true); // [L, K, c]
    const tailBand = tf.reshape(gatherTails(tailLin), [L, K, c]);
    const valid = tf.reshape(bandValidMask(L, w), [L, K, 1]);
    return tf.mul(tf.add(tf.add(bilinear, tf.reshape(headLin, [L, 1, c])), tailBand), valid) as tf.Tensor3D;
  });
}

/**
 * The same features D(i, j) on the full L x L grid of pairs (head i, tail j), [L, L, c]: what the
 * band avoids, for the unbanded ablation (`sener.bispa: full`). O(L^2 c) memory; the bilinear term is
 * one [L c, d + 1] x [d + 1, L] product.
 */
export function gridBiaffine(hs: tf.Tensor2D, he: tf.Tensor2D, U: tf.Tensor3D, W: tf.Tensor2D, opts: { dropout?: BiaffineDropout } = {}): tf.Tensor3D {
  const L = hs.shape[0];
  return tf.tidy(() => {
    const { hsU, he1, headLin, tailLin } = biaffineParts(hs, he, U, W, 'gridBiaffine', opts.dropout);
    const [, c, d1] = hsU.shape;
    const bilinear = tf.transpose(tf.reshape(tf.matMul(tf.reshape(hsU, [L * c, d1]), he1, false, true), [L, c, L]), [0, 2, 1]);
    return tf.add(tf.add(bilinear, tf.reshape(headLin, [L, 1, c])), tf.reshape(tailLin, [1, L, c])) as tf.Tensor3D;
  });
}

/** Flat indices into a [L L + 1, n] table (last row zero): band cell (i, k) <- grid cell (i, i + k - w). */
function gridToBandIndex(L: number, w: number): Int32Array {
  const K = 2 * w + 1;
  const idx = new Int32Array(L * K);
  for (let i = 0; i < L; i++) {
    for (let k = 0; k < K; k++) {
      const j = i + k - w;
      idx[i * K + k] = j >= 0 && j < L ? i * L + j : L * L;
    }
  }
  return idx;
}

/**
 * The band of window w of a grid x [L, L, n]: out(i, k) = x(i, i + k - w), 0 on invalid cells. At
 * w = L - 1 the band holds every pair, so the unbanded ablation reuses the band's loss and decoder.
 */
export function gridToBand(x: tf.Tensor3D, w: number): tf.Tensor3D {
  const [L, L2, n] = x.shape;
  if (L !== L2) throw new Error(`gridToBand: the grid must be square, got [${x.shape}]`);
  if (!Number.isInteger(w) || w < 0) throw new Error(`gridToBand: window must be a non-negative integer, got ${w}`);
  return tf.tidy(() => {
    const table = tf.concat([tf.reshape(x, [L * L, n]), tf.zeros([1, n])], 0);
    return tf.reshape(tf.gather(table, tf.tensor1d(gridToBandIndex(L, w), 'int32')), [L, 2 * w + 1, n]) as tf.Tensor3D;
  });
}

export interface BandLabels {
  /** [L, 2w + 1, R] row-major 0/1: type r of the pair at cell (i, k). */
  values: Float32Array;
  shape: [number, number, number];
  /** Gold spans longer than w + 1 words: not representable in the band, so left out. */
  dropped: number;
}

/**
 * BCE targets on the band (sener.md 2.2): a gold span with first word s and last word e
 * (Entity.end is exclusive, so e = end - 1) of type r is 1 at (s, w + (e - s), r) and at
 * (e, w - (e - s), r). Spans with e - s > w are counted in `dropped` and not labelled.
 */
export function bandLabels(entities: readonly Entity[], L: number, w: number, types: readonly string[]): BandLabels {
  const K = 2 * w + 1;
  const R = types.length;
  const typeIndex = new Map(types.map((t, r) => [t, r]));
  const values = new Float32Array(L * K * R);
  let dropped = 0;
  for (const ent of entities) {
    const r = typeIndex.get(ent.type);
    if (r === undefined) throw new Error(`bandLabels: entity type '${ent.type}' is not one of ${types.join(', ')}`);
    const s = ent.start;
    const e = ent.end - 1;
    if (s < 0 || e < s || e >= L) throw new Error(`bandLabels: entity [${ent.start}, ${ent.end}) does not fit ${L} words`);
    if (e - s > w) {
      dropped++;
      continue;
    }
    values[(s * K + w + (e - s)) * R + r] = 1;
    values[(e * K + w - (e - s)) * R + r] = 1;
  }
  return { values, shape: [L, K, R], dropped };
}
