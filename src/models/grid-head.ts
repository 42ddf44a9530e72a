/**
 * The grid framework of CNN-NER and UTC-IE: the biaffine L x L grid of word pairs (research/sener.md
 * 6; the symbols of cnn-ner.ts's header), its labels and summed BCE loss, its decoding, and the
 * SegmentSpanModel around a grid head. Each method file adds its own refinement of the grid: CNN-NER
 * masked convolutions (cnn-ner.ts), UTC-IE plus-shaped attention blocks (utc-ie.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Segment } from '../data/segmenter.js';
import type { Entity, ScoredEntity } from '../data/types.js';
import { LongnerError } from '../errors.js';
import type { Config, Method } from '../config/schema.js';
import type { Encoder } from '../nn/encoder.js';
import {
  createLayerNorm,
  createLinear,
  dropout,
  embedding,
  gelu,
  initBiasToPrior,
  layerNorm,
  linear,
  type LinearWeights,
  type NormWeights,
} from '../nn/layers.js';
import type { ParamStore } from '../nn/params.js';
import { REFERENCE_BCE, sparseBce, type BceOptions } from '../nn/bce.js';
import type { Rng } from '../util/rng.js';
import { gridCandidates, resolveSpans } from './decode.js';
import { createEncoder } from './encode.js';
import { initialThreshold, requireTypes, SegmentSpanModel } from './segment-model.js';
import type { ModelContext } from './span-model.js';

/** What a forward pass needs besides the weights. */
export interface ForwardOptions {
  training: boolean;
  rng?: Rng;
}

// ---------------------------------------------------------------------------------------------
// Parameters: the start/end MLPs and the biaffine layer; 3x3 convolution taps

export interface BiaffineWeights {
  start: LinearWeights;
  end: LinearWeights;
  /** U laid out as [d+1, c (d+1)]: U2[a, o (d+1) + b] = U[o, a, b]. */
  U: tf.Tensor2D;
  /** W^T, [2 (d+1) + e, c]: rows 0..d act on h', rows d+1..2d+1 on t', the last e on the span-size embedding. */
  W: tf.Tensor2D;
  /** The span-size embedding table [buckets, e] (CNN-NER's, or UTC-IE's use_size_embed 1); null without one (e = 0). */
  size: tf.Tensor2D | null;
  /** UTC-IE's use_ln: LayerNorm of the bilinear and of the linear term before they are added. */
  norms: { bilinear: NormWeights; linear: NormWeights } | null;
}

/**
 * Buckets of CNN-NER's span-size embedding (the reference's n_pos = 30): sizes j - i of -15 or less
 * share bucket 0 and sizes of 14 or more bucket 29, so every span of 15 words or more looks the same.
 * UTC-IE's optional one uses 50 (unify_model.py, use_size_embed 1).
 */
export const SPAN_SIZE_BUCKETS = 30;

/** The bucket of every cell (i, j) of an L x L grid, row-major: clip(j - i, -n/2, n/2 - 1) + n/2 for n buckets. */
export function spanSizeIds(L: number, buckets = SPAN_SIZE_BUCKETS): Int32Array {
  if (buckets < 2 || buckets % 2 !== 0) throw new Error(`span-size buckets must be even and at least 2, got ${buckets}`);
  const half = buckets / 2;
  const ids = new Int32Array(L * L);
  for (let i = 0; i < L; i++) for (let j = 0; j < L; j++) ids[i * L + j] = Math.min(Math.max(j - i, -half), half - 1) + half;
  return ids;
}

export function createBiaffine(
  params: ParamStore,
  prefix: string,
  hidden: number,
  d: number,
  c: number,
  opts: { norms?: boolean; sizeEmbedDim?: number; sizeBuckets?: number } = {},
): BiaffineWeights {
  const d1 = d + 1;
  const e = opts.sizeEmbedDim ?? 0;
  const buckets = opts.sizeBuckets ?? SPAN_SIZE_BUCKETS;
  // The reference initialises U [c, d+1, d+1] with xavier_normal (fan-in (d+1)^2, fan-out c (d+1))
  // and W [c, 2(d+1) + e] likewise; uniform with the same variance keeps that scale in our layouts.
  const uLimit = Math.sqrt(6 / (d1 * d1 + c * d1));
  return {
    start: createLinear(params, `${prefix}.start`, hidden, d),
    end: createLinear(params, `${prefix}.end`, hidden, d),
    U: params.param(`${prefix}.biaffine.U`, [d1, c * d1], { kind: 'uniform', limit: uLimit }) as tf.Variable<tf.Rank.R2>,
    W: params.param(`${prefix}.biaffine.W`, [2 * d1 + e, c], { kind: 'xavier' }) as tf.Variable<tf.Rank.R2>,
    // torch.nn.Embedding's default initialisation, N(0, 1), which the reference keeps.
    size: e > 0 ? (params.param(`${prefix}.biaffine.size_embed`, [buckets, e], { kind: 'normal', std: 1 }) as tf.Variable<tf.Rank.R2>) : null,
    norms: opts.norms
      ? { bilinear: createLayerNorm(params, `${prefix}.biaffine.ln_bilinear`, c), linear: createLayerNorm(params, `${prefix}.biaffine.ln_linear`, c) }
      : null,
  };
}

/** [x; 1]: the appended constant that turns the bilinear and linear products into affine ones. */
function withOne(x: tf.Tensor2D): tf.Tensor2D {
  return tf.concat([x, tf.ones([x.shape[0], 1])], 1);
}

/** S, the biaffine grid [L L, c] of word states x [L, H]. */
export function biaffineGrid(x: tf.Tensor2D, w: BiaffineWeights, mlpDropout: number, opts: ForwardOptions): tf.Tensor2D {
  return tf.tidy(() => {
    const L = x.shape[0];
    const [d1, cd1] = w.U.shape;
    const c = cd1 / d1;
    const drop = <T extends tf.Tensor>(t: T): T => dropout(t, mlpDropout, opts.training, opts.rng);
    const h = withOne(gelu(linear(drop(x), w.start)));
    const t = withOne(gelu(linear(drop(x), w.end)));
    // Bilinear: (h' U2) is [L, c (d+1)] = [i, o, b]; as [L c, d+1] times t'^T it gives [i, o, j].
    const hU = tf.reshape(tf.matMul(h, w.U), [L * c, d1]);
    const ioj = tf.reshape(tf.matMul(hU, t, false, true), [L, c, L]);
    let bilinear = tf.reshape(tf.transpose(ioj, [0, 2, 1]), [L * L, c]) as tf.Tensor2D;
    // Linear: W [h'_i; t'_j] = h'_i W_h + t'_j W_t, a broadcast sum of two [L, c] products.
    const hw = tf.matMul(drop(h), tf.slice(w.W, [0, 0], [d1, c]));
    const tw = tf.matMul(drop(t), tf.slice(w.W, [d1, 0], [d1, c]));
    let lin = tf.reshape(tf.add(tf.reshape(hw, [L, 1, c]), tf.reshape(tw, [1, L, c])), [L * L, c]) as tf.Tensor2D;
    if (w.size) {
      // The size term is per cell, not a broadcast sum: the reference drops out each cell's copy of
      // the embedding on its own, so the [L L, e] lookup is materialised before the product.
      const [buckets, e] = w.size.shape;
      const sized = drop(embedding(w.size, spanSizeIds(L, buckets)));
      lin = tf.add(lin, tf.matMul(sized, tf.slice(w.W, [2 * d1, 0], [e, c])));
    }
    if (w.norms) {
      bilinear = layerNorm(bilinear, w.norms.bilinear);
      lin = layerNorm(lin, w.norms.linear);
    }
    return tf.add(bilinear, lin);
  });
}

/** Torch's Conv2d default init, uniform within 1 / sqrt(fan-in) with fan-in 9 c. */
export function createConvTaps(params: ParamStore, name: string, c: number): tf.Tensor3D {
  return params.param(name, [9, c, c], { kind: 'uniform', limit: 1 / Math.sqrt(9 * c) }) as tf.Variable<tf.Rank.R3>;
}

// ---------------------------------------------------------------------------------------------
// Forward

/**
 * The [L, L, 1] validity mask of a grid. One segment per forward pass means no padding, so every
 * cell is valid; the masked convolutions still take it, and it zero-pads the borders.
 */
export function fullGridMask(L: number): tf.Tensor3D {
  return tf.ones([L, L, 1]);
}

// ---------------------------------------------------------------------------------------------
// Loss

/**
 * Flat indices into the [L L R] logits of the positive labels: (s, e, r) and, when symmetric,
 * (e, s, r), for each gold entity; duplicates (the same span and type twice, or a one-word span's
 * mirror) appear once.
 */
export function positiveIndices(L: number, entities: readonly Entity[], typeIndex: ReadonlyMap<string, number>, symmetric: boolean, where: string): Int32Array {
  const R = typeIndex.size;
  const out = new Set<number>();
  for (const e of entities) {
    const r = typeIndex.get(e.type);
    if (r === undefined) throw new LongnerError(`${where}: gold type "${e.type}" is not one of the model's types (${[...typeIndex.keys()].join(', ')})`);
    const s = e.start;
    const last = e.end - 1;
    if (s < 0 || last < s || last >= L) throw new Error(`${where}: entity [${e.start}, ${e.end}) is outside the segment's ${L} words`);
    out.add((s * L + last) * R + r);
    if (symmetric) out.add((last * L + s) * R + r);
  }
  return Int32Array.from([...out].sort((a, b) => a - b));
}

/** [L L, 1] with 1 on cells i <= j: the trained and decoded cells when labels are not symmetric. */
function upperTriangle(L: number): tf.Tensor2D {
  const m = new Float32Array(L * L);
  for (let i = 0; i < L; i++) for (let j = i; j < L; j++) m[i * L + j] = 1;
  return tf.tensor2d(m, [L * L, 1]);
}

/**
 * BCE with logits of z [L L, R] against 0/1 labels whose ones are at `positives`, written without a
 * dense label tensor (nn/bce.ts): the reference sum is sum softplus(z) over the trained cells minus
 * the sum of z at the positives.
 */
export function gridLoss(logits: tf.Tensor2D, L: number, positives: Int32Array, symmetric: boolean, bce: BceOptions = REFERENCE_BCE): tf.Scalar {
  return tf.tidy(() => {
    const R = logits.shape[1];
    const cells = (symmetric ? L * L : (L * (L + 1)) / 2) * R;
    return sparseBce(logits, positives, symmetric ? null : upperTriangle(L), cells, bce);
  });
}

// ---------------------------------------------------------------------------------------------
// Decode

/** Spans of one segment from its probabilities sigmoid(z) [L L, R] (row-major), sorted by (start, end). */
export function decodeGrid(values: Float32Array, L: number, types: readonly string[], opts: { threshold: number; symmetric: boolean }): ScoredEntity[] {
  const kept = resolveSpans(gridCandidates(values, L, types, opts), { allowNested: true });
  return kept.sort((a, b) => a.start - b.start || a.end - b.end);
}

// ---------------------------------------------------------------------------------------------
// Model: a SegmentSpanModel around a grid head (CNN-NER's and UTC-IE's)

/** A grid head: word states [L, H] -> logits [L L, R]. */
export type GridLogits = (x: tf.Tensor2D, opts: ForwardOptions) => tf.Tensor2D;

export class GridSpanModel extends SegmentSpanModel {
  readonly tunesThreshold = true;

  constructor(
    readonly method: string,
    ctx: ModelContext,
    params: ParamStore,
    encoder: Encoder,
    readonly logits: GridLogits,
    private readonly decode: { threshold: number; symmetric: boolean; bce: BceOptions },
    opts: { encoderOutputDropout?: number } = {},
  ) {
    requireTypes(method, ctx);
    super(ctx, params, encoder);
    this.encoderOutputDropout = opts.encoderOutputDropout ?? 0;
  }

  get threshold(): number {
    return this.decode.threshold;
  }

  protected segmentLoss(seg: Segment, x: tf.Tensor2D, rng: Rng): tf.Scalar {
    const positives = positiveIndices(seg.words, seg.entities, this.typeIndex, this.decode.symmetric, this.where(seg));
    return gridLoss(this.logits(x, { training: true, rng }), seg.words, positives, this.decode.symmetric, this.decode.bce);
  }

  protected segmentScores(_seg: Segment, x: tf.Tensor2D): tf.Tensor {
    return tf.sigmoid(this.logits(x, { training: false }));
  }

  protected decodeSegment(seg: Segment, [probs]: Float32Array[], threshold: number): ScoredEntity[] {
    return decodeGrid(probs!, seg.words, this.types, { symmetric: this.decode.symmetric, threshold });
  }

  /** As decoding reads it: the cell (start, last), averaged with its mirror when the labels are symmetric. */
  protected goldScore(seg: Segment, [probs]: Float32Array[], e: Entity): number | null {
    const L = seg.words;
    const R = this.types.length;
    const r = this.typeIndex.get(e.type)!;
    const at = probs![(e.start * L + e.end - 1) * R + r]!;
    return this.decode.symmetric ? (at + probs![((e.end - 1) * L + e.start) * R + r]!) / 2 : at;
  }
}

/** A grid method's model with its head. */
export type GridModel<H> = GridSpanModel & { readonly head: H };

/**
 * A grid method's model: the encoder, the head `makeHead` builds (its output bias set to the
 * train.outputBiasPrior), and the head's logits; the head is exposed as `model.head`.
 * `encoderOutputDropout` drops out the encoder's sub-word states in training (UTC-IE's reference).
 */
export function createGridModel<H extends { out: LinearWeights }>(
  method: Method,
  { config, ctx, params }: { config: Config; ctx: ModelContext; params: ParamStore },
  makeHead: () => H,
  logits: (x: tf.Tensor2D, head: H, opts: ForwardOptions) => tf.Tensor2D,
  opts: { symmetric: boolean; encoderOutputDropout?: number },
): GridModel<H> {
  requireTypes(method, ctx);
  const encoder = createEncoder(config, ctx, params);
  const head = makeHead();
  initBiasToPrior(head.out, config.train.outputBiasPrior);
  const model = new GridSpanModel(
    method,
    ctx,
    params,
    encoder,
    (x, fwd) => logits(x, head, fwd),
    { threshold: initialThreshold(config.eval.threshold), symmetric: opts.symmetric, bce: config.train.bce },
    { encoderOutputDropout: opts.encoderOutputDropout },
  );
  return Object.assign(model, { head });
}
