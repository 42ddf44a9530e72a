/**
 * Global Pointer (GP, Su et al., arXiv 2208.03054) and Efficient Global Pointer (EGP, kexue.fm 8877),
 * as bert4keras implements them (research/baselines.md A.2-A.6, A.10).
 *
 * Symbols: L words of a segment, h_t [H] the state of word t, R types (a = 0..R-1), d = headSize,
 * R_t the interleaved-pair RoPE rotation at position t (src/nn/rope.ts).
 * We score word pairs, where the reference scores sub-word pairs: all span machinery of this
 * framework works on words (encode.ts pools sub-words into words), so the positions t are word
 * indices 0..L-1 and cell (i, j) is the span of words i..j. RoPE makes a score depend on positions
 * only through j - i, so where the positions start does not matter.
 *
 * GP   [q_{t,0}; k_{t,0}; ...; q_{t,R-1}; k_{t,R-1}] = W h_t + b    one dense layer, R chunks of 2d:
 *                                                                   the first d are q, the last d are k
 *      s_a(i, j) = (R_i q_{i,a})^T (R_j k_{j,a}) / sqrt(d)
 * EGP  u_t = W h_t + b [2d];  q_t = u_t[0::2], k_t = u_t[1::2]     shared by all types, interleaved
 *      c_t = (V u_t + c) / 2 [2R]                                   on the pre-RoPE u_t
 *      s_a(i, j) = (R_i q_i)^T (R_j k_j) / sqrt(d) + c_i[2a+1] + c_j[2a]
 *                  (the odd channel of the start word i is the start term, the even channel of the
 *                  end word j the end term)
 * Masks: cells below the diagonal (i > j) and cells in a padding row or column get MASK = -1e12 (the
 *      reference's value). It is far inside float32's range (3.4e38), exp(MASK) underflows to exactly
 *      0, and adding any real score leaves it near -1e12; the loss never negates it (see below). The
 *      model runs one segment per forward pass, so it has no padding; the mask builder takes a valid
 *      length for callers that pad (and for the tests).
 * Loss (ZLPR with the zero threshold), per type a, with P_a the gold cells and Q_a the other valid cells:
 *      L_a = log(1 + sum_{P_a} exp(-s_a)) + log(1 + sum_{Q_a} exp(s_a))
 *      averaged over the R types of a segment, then over the segments (= the mean over batch x types).
 *      Masked cells enter neither sum: the first sum gathers the gold cells only, the second selects
 *      valid non-gold cells with tf.where. So a masked cell can never act as a positive, whatever
 *      value the score tensor holds there.
 * Decode: (a, i, j) is an entity iff s_a(i, j) > logit(eval.threshold), i.e. sigmoid(s) > threshold;
 *      at the default threshold 0.5 this is the reference's rule s > 0. The reported score is
 *      sigmoid(s). No overlap resolution: nested and overlapping predictions are kept as in the
 *      reference, and one span may get several types.
 * Band (our option, maxSpanWords = K; null = the paper): only spans of at most K words are scored,
 *      held per type as an [L, K] tensor whose cell (i, o) is the span (i, i + o). Gold entities
 *      longer than K are left out of the labels (they stay in gold at evaluation) and counted in
 *      `droppedGold`. Without a band the score tensors are R x L x L: that memory is the point of
 *      this baseline.
 * Initialisation: bert4keras's dense default, lecun_normal (std 1 / sqrt(fan_in), untruncated here), zero biases.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Config } from '../config/schema.js';
import type { Segment } from '../data/segmenter.js';
import type { Entity, ScoredEntity } from '../data/types.js';
import { LongnerError } from '../errors.js';
import { linear, linearSplit, type LinearWeights } from '../nn/layers.js';
import { ParamStore } from '../nn/params.js';
import { applyRope, ropeTables } from '../nn/rope.js';
import { createEncoder } from './encode.js';
import { HEAD_PREFIX, initialThreshold, requireTypes, SegmentSpanModel } from './segment-model.js';
import type { ModelContext } from './span-model.js';

// ---------------------------------------------------------------------------------------------
// Config

export interface GlobalPointerConfig {
  variant: 'gp' | 'egp';
  headSize: number;
  rope: boolean;
  maxSpanWords: number | null;
}

/** The value of masked cells (see the header). */
export const MASK = -1e12;

// ---------------------------------------------------------------------------------------------
// Cell layout and masks

/**
 * Which word pairs a score tensor [L, cols] holds. 'full': cols = L, cell (i, j). 'band': cols = K,
 * cell (i, o) = the pair (i, i + o). Rows and columns at or beyond `valid` are padding.
 */
export interface PairLayout {
  kind: 'full' | 'band';
  L: number;
  cols: number;
  valid: number;
}

export function pairLayout(L: number, maxSpanWords: number | null, valid = L): PairLayout {
  if (valid > L || valid < 0) throw new Error(`valid length ${valid} outside 0..${L}`);
  if (maxSpanWords === null) return { kind: 'full', L, cols: L, valid };
  return { kind: 'band', L, cols: Math.max(1, Math.min(maxSpanWords, L)), valid };
}

/** End word (inclusive) of cell (i, c). */
export function cellEnd(layout: PairLayout, i: number, c: number): number {
  return layout.kind === 'full' ? c : i + c;
}

/** True for cells that are real spans: start <= end, both real words. */
export function cellValid(layout: PairLayout, i: number, c: number): boolean {
  const j = cellEnd(layout, i, c);
  return i <= j && j < layout.valid;
}

/** Flat index of the span (i, j) (inclusive end), or -1 when the layout cannot hold it (band too short). */
export function cellIndex(layout: PairLayout, i: number, j: number): number {
  if (layout.kind === 'full') return i * layout.cols + j;
  const o = j - i;
  return o < layout.cols ? i * layout.cols + o : -1;
}

/** The valid cells as 0/1, flat [L * cols]. */
export function validCells(layout: PairLayout): Uint8Array {
  const m = new Uint8Array(layout.L * layout.cols);
  for (let i = 0; i < layout.L; i++) for (let c = 0; c < layout.cols; c++) if (cellValid(layout, i, c)) m[i * layout.cols + c] = 1;
  return m;
}

/** The additive mask [L, cols]: 0 on valid cells, MASK elsewhere. */
export function maskBias(layout: PairLayout): tf.Tensor2D {
  const valid = validCells(layout);
  const bias = new Float32Array(valid.length);
  for (let n = 0; n < valid.length; n++) if (!valid[n]) bias[n] = MASK;
  return tf.tensor2d(bias, [layout.L, layout.cols]);
}

// ---------------------------------------------------------------------------------------------
// Labels

export interface GpLabels {
  /** Per type: the flat cell indices of its gold spans, sorted, without duplicates. */
  positives: Int32Array[];
  /** Gold entities the layout cannot hold (longer than the band). */
  dropped: number;
}

export function gpLabels(layout: PairLayout, entities: readonly Entity[], typeIndex: ReadonlyMap<string, number>, where = 'segment'): GpLabels {
  const sets = Array.from({ length: typeIndex.size }, () => new Set<number>());
  let dropped = 0;
  for (const e of entities) {
    const t = typeIndex.get(e.type);
    if (t === undefined) throw new LongnerError(`${where}: entity type "${e.type}" is not one of the model's types (${[...typeIndex.keys()].join(', ')})`);
    if (e.start < 0 || e.end > layout.valid || e.end <= e.start)
      throw new Error(`${where}: entity [${e.start}, ${e.end}) is outside the segment's ${layout.valid} words`);
    const cell = cellIndex(layout, e.start, e.end - 1);
    if (cell < 0) dropped++;
    else sets[t]!.add(cell);
  }
  return { positives: sets.map((s) => Int32Array.from([...s].sort((a, b) => a - b))), dropped };
}

// ---------------------------------------------------------------------------------------------
// Parameters

export interface GpHead {
  variant: 'gp' | 'egp';
  headSize: number;
  rope: boolean;
  types: number;
  /** GP: W [H, R * 2d]; EGP: W [H, 2d]. */
  qk: LinearWeights;
  /** EGP only: V [2d, 2R]. */
  typeBias: LinearWeights | null;
}

function lecunLinear(params: ParamStore, name: string, dIn: number, dOut: number): LinearWeights {
  return {
    W: params.param(`${name}.W`, [dIn, dOut], { kind: 'normal', std: 1 / Math.sqrt(dIn) }) as tf.Variable<tf.Rank.R2>,
    b: params.param(`${name}.b`, [dOut], { kind: 'zeros' }) as tf.Variable<tf.Rank.R1>,
    lora: null,
  };
}

export function createGpHead(params: ParamStore, hidden: number, types: number, cfg: GlobalPointerConfig): GpHead {
  const d = cfg.headSize;
  if (d % 2 !== 0) throw new LongnerError(`globalPointer.headSize must be even (RoPE rotates pairs), got ${d}`);
  const p = HEAD_PREFIX;
  if (cfg.variant === 'gp') {
    return { variant: 'gp', headSize: d, rope: cfg.rope, types, qk: lecunLinear(params, `${p}.qk`, hidden, types * 2 * d), typeBias: null };
  }
  return {
    variant: 'egp',
    headSize: d,
    rope: cfg.rope,
    types,
    qk: lecunLinear(params, `${p}.qk`, hidden, 2 * d),
    typeBias: lecunLinear(params, `${p}.type_bias`, 2 * d, 2 * types),
  };
}

// ---------------------------------------------------------------------------------------------
// Forward

/**
 * Band scores B [L, K], B[i, o] = q_i . k_{i+o} (0 where i + o >= L), without an L x L tensor: rows go
 * in blocks of K, each block against the 2K keys from its own start on ([nb, K, 2K]); the skew trick
 * (flatten a block row-major, pad each block by K, re-read it with rows of 2K + 1) moves entry
 * (a, a + o) to (a, o). Reshape, pad and slice only: all have gradients on every backend.
 */
export function bandPairScores(q: tf.Tensor2D, k: tf.Tensor2D, K: number): tf.Tensor2D {
  return tf.tidy(() => {
    const [L, d] = q.shape;
    const nb = Math.ceil(L / K);
    const Lp = nb * K;
    const qb = tf.reshape(
      tf.pad(q, [
        [0, Lp - L],
        [0, 0],
      ]),
      [nb, K, d],
    );
    const kp = tf.reshape(
      tf.pad(k, [
        [0, Lp - L + K],
        [0, 0],
      ]),
      [nb + 1, K, d],
    );
    const kb = tf.concat([tf.slice(kp, [0, 0, 0], [nb, K, d]), tf.slice(kp, [1, 0, 0], [nb, K, d])], 1);
    const m = tf.matMul(qb, kb, false, true); // [nb, K, 2K]
    const skewed = tf.reshape(
      tf.pad(tf.reshape(m, [nb, 2 * K * K]), [
        [0, 0],
        [0, K],
      ]),
      [nb, K, 2 * K + 1],
    );
    const band = tf.reshape(tf.slice(skewed, [0, 0, 0], [nb, K, K]), [Lp, K]) as tf.Tensor2D;
    return Lp === L ? band : tf.slice(band, [0, 0], [L, K]);
  });
}

/** q_i . k_j for every cell of the layout: [L, cols]. */
function pairScores(q: tf.Tensor2D, k: tf.Tensor2D, layout: PairLayout): tf.Tensor2D {
  return layout.kind === 'full' ? tf.matMul(q, k, false, true) : bandPairScores(q, k, layout.cols);
}

/** x_{i + o} laid out as the band's end term [L, K] from a column x [L, 1]; cells past the end read x_{L-1} (they are masked). */
function endTermBand(x: tf.Tensor2D, layout: PairLayout): tf.Tensor2D {
  const { L, cols } = layout;
  const idx = new Int32Array(L * cols);
  for (let i = 0; i < L; i++) for (let o = 0; o < cols; o++) idx[i * cols + o] = Math.min(i + o, L - 1);
  return tf.reshape(tf.gather(tf.reshape(x, [L]), tf.tensor1d(idx, 'int32')), [L, cols]);
}

/** Masked scores s_a [L, cols], one tensor per type, from word states h [L, H]. */
export function gpScores(h: tf.Tensor2D, head: GpHead, layout: PairLayout): tf.Tensor2D[] {
  const [L] = h.shape;
  if (L !== layout.L) throw new Error(`layout is for ${layout.L} words, got word states for ${L}`);
  return tf.tidy(() => {
    const d = head.headSize;
    const R = head.types;
    const rope = head.rope ? ropeTables(L, d) : null;
    const rotate = (x: tf.Tensor2D): tf.Tensor2D => (rope ? applyRope(x, rope) : x);
    const mask = maskBias(layout);
    // 1/sqrt(d) goes on q (L x d) rather than on each L x cols score tensor: same value, less work.
    const scale = 1 / Math.sqrt(d);
    if (head.variant === 'gp') {
      const qk = linearSplit(h, head.qk, 2 * R);
      return Array.from({ length: R }, (_, a) => tf.add(pairScores(tf.mul(rotate(qk[2 * a]!), scale), rotate(qk[2 * a + 1]!), layout), mask));
    }
    if (head.typeBias === null) throw new Error('EGP head without its type-bias layer');
    const u = linear(h, head.qk);
    const even = tf.tensor1d(
      Int32Array.from({ length: d }, (_, n) => 2 * n),
      'int32',
    );
    const odd = tf.tensor1d(
      Int32Array.from({ length: d }, (_, n) => 2 * n + 1),
      'int32',
    );
    const q: tf.Tensor2D = tf.mul(rotate(tf.gather(u, even, 1) as tf.Tensor2D), scale);
    const k = rotate(tf.gather(u, odd, 1) as tf.Tensor2D);
    // The mask is added once to the shared scores; the type terms are finite, so masked cells stay near MASK.
    const shared = tf.add(pairScores(q, k, layout), mask);
    // One [L, 1] column per channel, from sliced weights (layers.ts linearSplit).
    const terms = linearSplit(u, head.typeBias, 2 * R).map((c) => tf.div(c, 2) as tf.Tensor2D);
    return Array.from({ length: R }, (_, a) => {
      const start = terms[2 * a + 1]!;
      const end = layout.kind === 'full' ? tf.reshape(terms[2 * a]!, [1, L]) : endTermBand(terms[2 * a]!, layout);
      return tf.add(tf.add(shared, start), end) as tf.Tensor2D;
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Loss

/** log(1 + sum exp(x)) over all entries of x, as softplus(logSumExp(x)). */
function logOnePlusSumExp(x: tf.Tensor): tf.Scalar {
  return tf.softplus(tf.logSumExp(x)) as tf.Scalar;
}

/** ZLPR loss of one segment: mean over types of L_a (see the header). */
export function gpLoss(scores: tf.Tensor2D[], layout: PairLayout, labels: GpLabels): tf.Scalar {
  if (scores.length !== labels.positives.length) throw new Error(`${scores.length} score tensors for ${labels.positives.length} types`);
  return tf.tidy(() => {
    const n = layout.L * layout.cols;
    const valid = validCells(layout);
    const fill = tf.fill([n], MASK);
    const perType = scores.map((s, a) => {
      const flat = tf.reshape(s, [n]);
      const pos = labels.positives[a]!;
      const negMask = valid.slice();
      for (const cell of pos) negMask[cell] = 0;
      const negative = logOnePlusSumExp(tf.where(tf.tensor1d(negMask, 'bool'), flat, fill));
      if (pos.length === 0) return negative;
      return tf.add(logOnePlusSumExp(tf.neg(tf.gather(flat, tf.tensor1d(pos, 'int32')))), negative);
    });
    return tf.div(tf.addN(perType), perType.length) as tf.Scalar;
  });
}

// ---------------------------------------------------------------------------------------------
// Decode

/** The score rule of a probability threshold t: keep s > ln(t / (1 - t)), i.e. sigmoid(s) > t (t = 0.5: s > 0). */
export function logitThreshold(t: number): number {
  if (t <= 0) return Number.NEGATIVE_INFINITY;
  if (t >= 1) return Number.POSITIVE_INFINITY;
  return Math.log(t / (1 - t));
}

/** Entities from the per-type scores (read back, flat [L * cols] each); sorted by start, end, type order. */
export function decodeGp(scores: readonly Float32Array[], layout: PairLayout, types: readonly string[], threshold: number): ScoredEntity[] {
  const cut = logitThreshold(threshold);
  const found: { e: ScoredEntity; a: number }[] = [];
  scores.forEach((s, a) => {
    for (let i = 0; i < layout.valid; i++) {
      for (let c = 0; c < layout.cols; c++) {
        const v = s[i * layout.cols + c]!;
        if (!(v > cut) || !cellValid(layout, i, c)) continue;
        found.push({ e: { start: i, end: cellEnd(layout, i, c) + 1, type: types[a]!, score: 1 / (1 + Math.exp(-v)) }, a });
      }
    }
  });
  found.sort((x, y) => x.e.start - y.e.start || x.e.end - y.e.end || x.a - y.a);
  return found.map((f) => f.e);
}

// ---------------------------------------------------------------------------------------------
// Model

export class GlobalPointerModel extends SegmentSpanModel {
  readonly method = 'global-pointer';
  /** ZLPR's zero is part of its loss, not a probability cut to tune. */
  readonly tunesThreshold = false;
  readonly cfg: GlobalPointerConfig;
  readonly head: GpHead;
  /** Probability threshold of decoding (config eval.threshold); 0.5 is the reference's s > 0. */
  readonly threshold: number;
  /**
   * Gold entities of training segments left out of the labels (longer than maxSpanWords), summed
   * over loss() calls: a segment seen in 30 epochs counts 30 times. The trainer may reset it to 0.
   */
  droppedGold = 0;

  constructor(config: Config, ctx: ModelContext, params: ParamStore) {
    requireTypes('global-pointer', ctx);
    super(ctx, params, createEncoder(config, ctx, params));
    this.cfg = { ...config.globalPointer };
    this.threshold = initialThreshold(config.eval.threshold);
    this.head = createGpHead(params, config.encoder.hidden, this.types.length, this.cfg);
  }

  protected segmentLoss(seg: Segment, h: tf.Tensor2D): tf.Scalar {
    const layout = pairLayout(seg.words, this.cfg.maxSpanWords);
    const labels = gpLabels(layout, seg.entities, this.typeIndex, this.where(seg));
    this.droppedGold += labels.dropped;
    return gpLoss(gpScores(h, this.head, layout), layout, labels);
  }

  protected segmentScores(seg: Segment, h: tf.Tensor2D): tf.Tensor[] {
    return gpScores(h, this.head, pairLayout(seg.words, this.cfg.maxSpanWords));
  }

  protected decodeSegment(seg: Segment, scores: Float32Array[], threshold: number): ScoredEntity[] {
    return decodeGp(scores, pairLayout(seg.words, this.cfg.maxSpanWords), this.types, threshold);
  }

  protected goldScore(seg: Segment, scores: Float32Array[], e: Entity): number | null {
    const n = cellIndex(pairLayout(seg.words, this.cfg.maxSpanWords), e.start, e.end - 1);
    if (n < 0) return null;
    return 1 / (1 + Math.exp(-scores[this.typeIndex.get(e.type)!]![n]!));
  }
}

export function createGlobalPointerModel(config: Config, ctx: ModelContext, params: ParamStore = new ParamStore(config.train.seed)): GlobalPointerModel {
  return new GlobalPointerModel(config, ctx, params);
}
