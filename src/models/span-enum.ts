/**
 * Exhaustive span enumeration: the classic span-based NER baseline. Every span of up to K words is
 * represented by its boundary words and its width and classified into one of R types or none.
 *
 * Symbols: L words of a segment, h_i [H] the state of word i (encode.ts: encoder, then sub-words
 * max-pooled to words), K = maxSpanWords (K = L for 'all'), N ~ L K the number of spans,
 * phi [WIDTH_BUCKETS, E] the width embedding, M = mlpHidden, R types; class R is "none".
 *   spans     (i, j) with 0 <= i <= j < L and j - i + 1 <= K, ordered by i, then by j
 *   g_ij    = [h_i; h_j; phi(bucket(j - i + 1))]                          [N, 2H + E]
 *   z_ij    = W_2 Dropout(GELU(W_1 g_ij + b_1)) + b_2                     [N, R + 1]
 *   p_ij    = softmax(z_ij)
 * g is materialised on purpose: the [N, 2H + E] span tensor is what makes this baseline memory
 * hungry, and that cost is what the comparison measures (W_1 g could be split into three smaller
 * products, which a memory-lean variant would do).
 * Loss: cross-entropy -log p_ij[y_ij], y_ij the gold type of span (i, j) or none, averaged over the
 * N spans of a segment, then over the segments of the batch.
 * Decode: argmax_c p_ij[c]; spans whose argmax is not none are entities with score p_ij[c].
 * Nested and overlapping predictions are kept as predicted; one type per span.
 * Labels: a gold entity longer than K words cannot be represented, so it is left out of the labels
 * (it still counts as a miss at evaluation); a span with two gold types keeps the one that comes
 * first in the model's type order. Both count in `droppedGold`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Config } from '../config/schema.js';
import type { Segment } from '../data/segmenter.js';
import type { Entity, ScoredEntity } from '../data/types.js';
import { LongnerError } from '../errors.js';
import { createLinear, dropout, gelu, linear, type LinearWeights } from '../nn/layers.js';
import { ParamStore } from '../nn/params.js';
import type { Rng } from '../util/rng.js';
import { createEncoder } from './encode.js';
import { HEAD_PREFIX, requireTypes, SegmentSpanModel } from './segment-model.js';
import type { ModelContext } from './span-model.js';

// ---------------------------------------------------------------------------------------------
// Config

export interface SpanEnumConfig {
  maxSpanWords: number | 'all';
  widthEmbedding: number;
  mlpHidden: number;
  dropout: number;
  noneWeight: number;
}

// ---------------------------------------------------------------------------------------------
// Spans and width buckets

/**
 * Widths 1..16 get their own embedding row; longer widths share rows by powers of two (17-32, 33-64,
 * ...), so the table has a fixed size whatever K is (and 'all' needs no cap); widths beyond
 * 16 * 2^12 share the last row.
 */
export const EXACT_WIDTHS = 16;
export const WIDTH_BUCKETS = EXACT_WIDTHS + 12;

export function widthBucket(width: number): number {
  if (!Number.isInteger(width) || width < 1) throw new RangeError(`span width must be a positive integer, got ${width}`);
  if (width <= EXACT_WIDTHS) return width - 1;
  let bucket = EXACT_WIDTHS;
  for (let hi = 2 * EXACT_WIDTHS; width > hi && bucket < WIDTH_BUCKETS - 1; hi *= 2) bucket++;
  return bucket;
}

/** The enumerated spans of a segment of L words: parallel arrays, span n = [starts[n], ends[n]] (inclusive). */
export interface SpanPlan {
  L: number;
  /** Longest enumerated span, min(K, L). */
  K: number;
  starts: Int32Array;
  ends: Int32Array;
  buckets: Int32Array;
  /** offsets[i] = index of span (i, i); span (i, j) is offsets[i] + (j - i). */
  offsets: Int32Array;
}

export function spanPlan(L: number, maxSpanWords: number | 'all'): SpanPlan {
  const K = maxSpanWords === 'all' ? L : Math.min(maxSpanWords, L);
  const offsets = new Int32Array(L);
  let n = 0;
  for (let i = 0; i < L; i++) {
    offsets[i] = n;
    n += Math.min(K, L - i);
  }
  const starts = new Int32Array(n);
  const ends = new Int32Array(n);
  const buckets = new Int32Array(n);
  for (let i = 0; i < L; i++) {
    for (let w = 1; w <= Math.min(K, L - i); w++) {
      const s = offsets[i]! + w - 1;
      starts[s] = i;
      ends[s] = i + w - 1;
      buckets[s] = widthBucket(w);
    }
  }
  return { L, K, starts, ends, buckets, offsets };
}

/** Class per span (R = none) and the gold entities that could not be labelled. */
export interface SpanLabels {
  classes: Int32Array;
  dropped: number;
}

export function spanLabels(plan: SpanPlan, entities: readonly Entity[], typeIndex: ReadonlyMap<string, number>, where = 'segment'): SpanLabels {
  const R = typeIndex.size;
  const classes = new Int32Array(plan.starts.length).fill(R);
  let dropped = 0;
  for (const e of entities) {
    const t = typeIndex.get(e.type);
    if (t === undefined) throw new LongnerError(`${where}: entity type "${e.type}" is not one of the model's types (${[...typeIndex.keys()].join(', ')})`);
    if (e.start < 0 || e.end > plan.L || e.end <= e.start) throw new Error(`${where}: entity [${e.start}, ${e.end}) is outside the segment's ${plan.L} words`);
    if (e.end - e.start > plan.K) {
      dropped++;
      continue;
    }
    const s = plan.offsets[e.start]! + (e.end - 1 - e.start);
    const current = classes[s]!;
    if (current === R) classes[s] = t;
    else if (current !== t) {
      // One type per span: keep the type that comes first in the model's type order.
      classes[s] = Math.min(current, t);
      dropped++;
    }
  }
  return { classes, dropped };
}

// ---------------------------------------------------------------------------------------------
// Parameters

export interface SpanEnumHead {
  /** phi [WIDTH_BUCKETS, E] */
  width: tf.Tensor2D;
  /** W_1 [2H + E, M], b_1 */
  mlp1: LinearWeights;
  /** W_2 [M, R + 1], b_2; column R is none */
  mlp2: LinearWeights;
}

export function createSpanEnumHead(params: ParamStore, hidden: number, types: number, cfg: SpanEnumConfig): SpanEnumHead {
  return {
    width: params.param(`${HEAD_PREFIX}.width_embed`, [WIDTH_BUCKETS, cfg.widthEmbedding], { kind: 'normal', std: 0.02 }) as tf.Variable<tf.Rank.R2>,
    mlp1: createLinear(params, `${HEAD_PREFIX}.mlp1`, 2 * hidden + cfg.widthEmbedding, cfg.mlpHidden),
    mlp2: createLinear(params, `${HEAD_PREFIX}.mlp2`, cfg.mlpHidden, types + 1),
  };
}

// ---------------------------------------------------------------------------------------------
// Forward

/** Logits z [N, R + 1] of every span in `plan` from word states h [L, H]. */
export function spanEnumLogits(h: tf.Tensor2D, head: SpanEnumHead, plan: SpanPlan, opts: { dropout: number; training: boolean; rng?: Rng }): tf.Tensor2D {
  if (h.shape[0] !== plan.L) throw new Error(`span plan is for ${plan.L} words, got word states for ${h.shape[0]}`);
  return tf.tidy(() => {
    const g = tf.concat(
      [
        tf.gather(h, tf.tensor1d(plan.starts, 'int32')),
        tf.gather(h, tf.tensor1d(plan.ends, 'int32')),
        tf.gather(head.width, tf.tensor1d(plan.buckets, 'int32')),
      ],
      1,
    ) as tf.Tensor2D;
    const hidden = dropout(gelu(linear(g, head.mlp1)), opts.dropout, opts.training, opts.rng);
    return linear(hidden, head.mlp2);
  });
}

// ---------------------------------------------------------------------------------------------
// Loss

/** -log softmax(z_n)[class_n] per span: [N]. */
export function spanEnumNll(logits: tf.Tensor2D, classes: Int32Array): tf.Tensor1D {
  const [N, C] = logits.shape;
  if (classes.length !== N) throw new Error(`${classes.length} labels for ${N} spans`);
  return tf.tidy(() => {
    const target = tf.cast(tf.oneHot(tf.tensor1d(classes, 'int32'), C), 'float32');
    return tf.neg(tf.sum(tf.mul(target, tf.logSoftmax(logits)), 1)) as tf.Tensor1D;
  });
}

/**
 * The segment's loss: the mean of spanEnumNll over its spans, each `none` span weighted by
 * `noneWeight` (1 = the plain mean; a weighted mean sum(w nll) / sum(w) otherwise); a segment
 * without spans gives 0.
 */
export function spanEnumLoss(logits: tf.Tensor2D, classes: Int32Array, noneWeight = 1): tf.Scalar {
  return tf.tidy(() => {
    if (logits.shape[0] === 0) return tf.mul(tf.sum(logits), 0) as tf.Scalar;
    const nll = spanEnumNll(logits, classes);
    if (noneWeight === 1) return tf.mean(nll);
    const none = logits.shape[1] - 1;
    const w = Float32Array.from(classes, (c) => (c === none ? noneWeight : 1));
    const total = w.reduce((a, b) => a + b, 0);
    return tf.div(tf.sum(tf.mul(nll, tf.tensor1d(w))), total) as tf.Scalar;
  });
}

// ---------------------------------------------------------------------------------------------
// Decode

/** Entities from span probabilities p [N, R + 1] (read back): argmax, none dropped, nested kept. */
export function decodeSpanEnum(probs: Float32Array, plan: SpanPlan, types: readonly string[]): ScoredEntity[] {
  const C = types.length + 1;
  const out: ScoredEntity[] = [];
  for (let n = 0; n < plan.starts.length; n++) {
    let best = 0;
    for (let c = 1; c < C; c++) if (probs[n * C + c]! > probs[n * C + best]!) best = c;
    if (best === types.length) continue;
    out.push({ start: plan.starts[n]!, end: plan.ends[n]! + 1, type: types[best]!, score: probs[n * C + best]! });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Model

export class SpanEnumModel extends SegmentSpanModel {
  readonly method = 'span-enum';
  readonly tunesThreshold = false;
  /** Decoding is an argmax over the types and `none`. */
  readonly threshold = null;
  readonly cfg: SpanEnumConfig;
  readonly head: SpanEnumHead;
  /**
   * Gold entities of training segments left out of the labels (longer than maxSpanWords, or a second
   * type on one span), summed over loss() calls: a segment seen in 30 epochs counts 30 times. The
   * trainer may read it and set it back to 0.
   */
  droppedGold = 0;

  constructor(config: Config, ctx: ModelContext, params: ParamStore) {
    requireTypes('span-enum', ctx);
    super(ctx, params, createEncoder(config, ctx, params));
    this.cfg = { ...config.spanEnum };
    this.head = createSpanEnumHead(params, config.encoder.hidden, this.types.length, this.cfg);
  }

  protected segmentLoss(seg: Segment, h: tf.Tensor2D, rng: Rng): tf.Scalar {
    const plan = spanPlan(seg.words, this.cfg.maxSpanWords);
    const { classes, dropped } = spanLabels(plan, seg.entities, this.typeIndex, this.where(seg));
    this.droppedGold += dropped;
    const logits = spanEnumLogits(h, this.head, plan, { dropout: this.cfg.dropout, training: true, rng });
    return spanEnumLoss(logits, classes, this.cfg.noneWeight);
  }

  protected segmentScores(seg: Segment, h: tf.Tensor2D): tf.Tensor {
    return tf.softmax(spanEnumLogits(h, this.head, spanPlan(seg.words, this.cfg.maxSpanWords), { dropout: 0, training: false }));
  }

  /** Argmax over the types and `none`: no threshold to apply. */
  protected decodeSegment(seg: Segment, [probs]: Float32Array[]): ScoredEntity[] {
    return decodeSpanEnum(probs!, spanPlan(seg.words, this.cfg.maxSpanWords), this.types);
  }

  protected goldScore(seg: Segment, [probs]: Float32Array[], e: Entity): number | null {
    const plan = spanPlan(seg.words, this.cfg.maxSpanWords);
    const width = e.end - e.start;
    if (width > plan.K) return null;
    return probs![(plan.offsets[e.start]! + width - 1) * (this.types.length + 1) + this.typeIndex.get(e.type)!]!;
  }
}

export function createSpanEnumModel(config: Config, ctx: ModelContext, params: ParamStore = new ParamStore(config.train.seed)): SpanEnumModel {
  return new SpanEnumModel(config, ctx, params);
}
