/**
 * Scaled dot-product attention for one head, on 2D tensors.
 *
 * Symbols (sener.md section 1): Q, K, V [L, d_h] the head's queries, keys and values; w the one-sided
 * window in tokens; position 0 is [CLS]. Scores are Q K^T / sqrt(d_h).
 * - full:   every query sees every key, one L x L softmax.
 * - window: query i sees keys j with |i - j| <= w.
 * - arrow:  (SeNER) query i >= 1 sees its window without position 0, plus the [CLS] key, in one
 *           softmax; [CLS] (i = 0) sees every key in its own softmax, with its logits multiplied by
 *           the LogN factor ln(n) / ln(512) (or unscaled when the factor is null).
 *
 * window and arrow never build an L x L tensor: queries go in blocks of w rows, each block against
 * the 3w keys around it (block b - 1, b, b + 1), so scores are [nb, w, 3w] (+1 column holding the
 * [CLS] key for arrow) with nb = ceil(L / w), i.e. O(L w) memory. Out-of-window and padding cells
 * get a constant -1e9 bias; the three key blocks come from 3 slices of the padded K (not one per
 * block: on wasm every slice costs its whole input).
 */
import * as tf from '@tensorflow/tfjs-core';
import { fusedSoftmaxGrad } from '../backend/fused.js';

const NEG = -1e9;

export type AttentionKind = 'full' | 'window' | 'arrow';
export type LogNMode = 'padded' | 'true' | 'off';

/** ln(n) / ln(512): 1 at n = 512, about 1.37 at n = 5120. */
export function logNScale(n: number): number {
  return Math.log(n) / Math.log(512);
}

/**
 * The [CLS]-row factor for a sequence of T tokens. 'padded' follows the reference code, where n is
 * the length padded to a multiple of 2w (one sequence per call here, so the batch is the sequence).
 */
export function logNFactor(T: number, w: number, mode: LogNMode): number | null {
  if (mode === 'off') return null;
  const n = mode === 'true' ? T : Math.ceil(T / (2 * w)) * 2 * w;
  return logNScale(n);
}

/**
 * softmax(q k^T + bias) v on [n, d] or batched [b, n, d] tensors, q already scaled, as one tape node
 * with a hand-written gradient. tfjs keeps the gradient of every intermediate until the backward pass
 * ends, so the op-by-op form would hold about six score-sized tensors per head; this keeps P only.
 * With dO the output gradient:
 *   dV = P^T dO,  dP = dO V^T,  dS = P * (dP - rowsum(dP * P)),  dQ = dS K,  dK = dS^T Q.
 * `bias` is a constant (masks), so it gets no gradient.
 */
function attend<T extends tf.Tensor2D | tf.Tensor3D>(q: T, k: T, v: T, bias: tf.Tensor | null): T {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [qi, ki, vi] = args as [T, T, T];
    const save = args[3] as tf.GradSaveFunc;
    const s = tf.matMul(qi, ki, false, true);
    const p = tf.softmax(bias ? tf.add(s, bias) : s);
    save([qi, ki, vi, p]);
    return {
      value: tf.matMul(p, vi) as T,
      gradFunc: (dO: T, saved: tf.Tensor[]) => {
        const [sq, sk, sv, sp] = saved as [T, T, T, T];
        const dV = tf.matMul(sp, dO, true, false);
        const dP = tf.matMul(dO, sv, false, true);
        const dS = fusedSoftmaxGrad(sp, dP, null) ?? tf.mul(sp, tf.sub(dP, tf.sum(tf.mul(dP, sp), -1, true)));
        return [tf.matMul(dS, sk), tf.matMul(dS, sq, true, false), dV];
      },
    };
  });
  return op(q, k, v) as T;
}

/**
 * Full attention. `keyMask[j]` false (or 0) hides key j from every query; `logitScale` multiplies
 * every logit (the [CLS] row's LogN factor).
 */
export function fullAttention(
  q: tf.Tensor2D,
  k: tf.Tensor2D,
  v: tf.Tensor2D,
  opts: { keyMask?: ArrayLike<boolean | number>; logitScale?: number | null } = {},
): tf.Tensor2D {
  return tf.tidy(() => {
    const dh = q.shape[1];
    const scale = (opts.logitScale ?? 1) / Math.sqrt(dh);
    let bias: tf.Tensor2D | null = null;
    if (opts.keyMask) {
      const Lk = k.shape[0];
      const values = new Float32Array(Lk);
      for (let j = 0; j < Lk; j++) if (!opts.keyMask[j]) values[j] = NEG;
      bias = tf.tensor2d(values, [1, Lk]);
    }
    return attend(tf.mul(q, scale), k, v, bias);
  });
}

/**
 * Dense reference: attention with an explicit [Lq, Lk] pattern (`allowed[i * Lk + j]` = 1 when query
 * i may see key j) and optional per-row logit factors. O(Lq Lk) memory and plain tfjs ops (no
 * hand-written gradient), so tests can hold the blocked and fused forms against it.
 */
export function denseMaskedAttention(q: tf.Tensor2D, k: tf.Tensor2D, v: tf.Tensor2D, allowed: Uint8Array, rowScale?: Float32Array): tf.Tensor2D {
  return tf.tidy(() => {
    const [Lq, dh] = q.shape;
    const Lk = k.shape[0];
    const bias = new Float32Array(Lq * Lk);
    for (let i = 0; i < bias.length; i++) if (!allowed[i]) bias[i] = NEG;
    let s: tf.Tensor2D = tf.div(tf.matMul(q, k, false, true), Math.sqrt(dh));
    if (rowScale) s = tf.mul(s, tf.tensor2d(rowScale, [Lq, 1]));
    return tf.matMul(tf.softmax(tf.add(s, tf.tensor2d(bias, [Lq, Lk]))), v);
  });
}

/** The window pattern as an explicit L x L matrix (for references and tests). */
export function windowPattern(L: number, w: number): Uint8Array {
  const m = new Uint8Array(L * L);
  for (let i = 0; i < L; i++) for (let j = Math.max(0, i - w); j <= Math.min(L - 1, i + w); j++) m[i * L + j] = 1;
  return m;
}

/** The arrow pattern as an explicit L x L matrix: window, plus a full first row and first column. */
export function arrowPattern(L: number, w: number): Uint8Array {
  const m = windowPattern(L, w);
  for (let j = 0; j < L; j++) m[j] = 1;
  for (let i = 0; i < L; i++) m[i * L] = 1;
  return m;
}

/**
 * The constants of blocked attention for one sequence length; build once per forward pass and share
 * across heads and layers, then dispose.
 */
export interface BandPlan {
  kind: 'window' | 'arrow';
  L: number;
  w: number;
  /** number of query blocks, ceil(L / w) */
  nb: number;
  /** padded length nb * w */
  Lp: number;
  /** [nb, w, 3w (+1 for arrow)]: 0 where a query may see a key slot, -1e9 elsewhere */
  bias: tf.Tensor3D;
  dispose(): void;
}

export function bandPlan(L: number, w: number, kind: 'window' | 'arrow'): BandPlan {
  if (!Number.isInteger(w) || w < 1) throw new Error(`attention window must be a positive integer, got ${w}`);
  if (L < 1) throw new Error('attention needs at least one token');
  const nb = Math.ceil(L / w);
  const cols = 3 * w + (kind === 'arrow' ? 1 : 0);
  const bias = new Float32Array(nb * w * cols).fill(NEG);
  for (let b = 0; b < nb; b++) {
    for (let i = 0; i < w; i++) {
      const p = b * w + i;
      const row = (b * w + i) * cols;
      for (let j = 0; j < 3 * w; j++) {
        const kp = (b - 1) * w + j;
        // arrow: the [CLS] key has its own column, so it is cut out of the window.
        const inside = kp >= 0 && kp < L && Math.abs(kp - p) <= w && !(kind === 'arrow' && kp === 0);
        if (inside) bias[row + j] = 0;
      }
      if (kind === 'arrow') bias[row + 3 * w] = 0;
    }
  }
  const t = tf.tensor3d(bias, [nb, w, cols]);
  return { kind, L, w, nb, Lp: nb * w, bias: t, dispose: () => t.dispose() };
}

/** Key blocks b - 1, b, b + 1 side by side, [nb, 3w, d], from a padded copy of x [L, d]. */
function neighbourBlocks(x: tf.Tensor2D, plan: BandPlan): tf.Tensor3D {
  const { nb, w, L, Lp } = plan;
  const d = x.shape[1];
  const padded = tf.reshape(
    tf.pad(x, [
      [w, Lp - L + w],
      [0, 0],
    ]),
    [nb + 2, w, d],
  );
  const blocks = [0, 1, 2].map((o) => tf.slice(padded, [o, 0, 0], [nb, w, d]));
  return tf.concat(blocks, 1) as tf.Tensor3D;
}

/** Blocked attention over the plan's pattern; returns the padded output [Lp, d_h]. */
function bandAttention(q: tf.Tensor2D, k: tf.Tensor2D, v: tf.Tensor2D, plan: BandPlan): tf.Tensor2D {
  const { nb, w, L, Lp } = plan;
  const dh = q.shape[1];
  if (q.shape[0] !== L || k.shape[0] !== L || v.shape[0] !== L) {
    throw new Error(`attention plan is for ${L} tokens, got Q/K/V with ${q.shape[0]}/${k.shape[0]}/${v.shape[0]}`);
  }
  const qb = tf.reshape(
    tf.pad(tf.mul(q, 1 / Math.sqrt(dh)), [
      [0, Lp - L],
      [0, 0],
    ]),
    [nb, w, dh],
  ) as tf.Tensor3D;
  let kb = neighbourBlocks(k, plan);
  let vb = neighbourBlocks(v, plan);
  if (plan.kind === 'arrow') {
    // One extra key slot per block holds [CLS], so its logit joins the window's softmax.
    const cls = (x: tf.Tensor2D) => tf.tile(tf.reshape(tf.slice(x, [0, 0], [1, dh]), [1, 1, dh]), [nb, 1, 1]);
    kb = tf.concat([kb, cls(k)], 1) as tf.Tensor3D;
    vb = tf.concat([vb, cls(v)], 1) as tf.Tensor3D;
  }
  return tf.reshape(attend(qb, kb, vb, plan.bias), [Lp, dh]);
}

/** Sliding-window attention: query i sees keys j with |i - j| <= w. */
export function windowAttention(q: tf.Tensor2D, k: tf.Tensor2D, v: tf.Tensor2D, w: number, plan?: BandPlan): tf.Tensor2D {
  return tf.tidy(() => {
    const p = plan ?? bandPlan(q.shape[0], w, 'window');
    if (p.kind !== 'window' || p.w !== w) throw new Error('windowAttention needs a window plan with the same w');
    const out = bandAttention(q, k, v, p);
    const result = p.Lp === p.L ? out : tf.slice(out, [0, 0], [p.L, q.shape[1]]);
    if (!plan) p.dispose();
    return result;
  });
}

/** SeNER's arrow attention (see the top of this file); `logN` is the [CLS]-row factor or null. */
export function arrowAttention(q: tf.Tensor2D, k: tf.Tensor2D, v: tf.Tensor2D, w: number, logN: number | null, plan?: BandPlan): tf.Tensor2D {
  return tf.tidy(() => {
    const [L, dh] = q.shape;
    const cls = fullAttention(tf.slice(q, [0, 0], [1, dh]), k, v, { logitScale: logN });
    if (L === 1) return cls;
    const p = plan ?? bandPlan(L, w, 'arrow');
    if (p.kind !== 'arrow' || p.w !== w) throw new Error('arrowAttention needs an arrow plan with the same w');
    const rest = tf.slice(bandAttention(q, k, v, p), [1, 0], [L - 1, dh]);
    if (!plan) p.dispose();
    return tf.concat([cls, rest], 0);
  });
}
