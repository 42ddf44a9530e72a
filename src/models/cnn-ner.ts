/**
 * CNN-NER (Yan et al. 2023a, "An Embarrassingly Easy but Strong Baseline for Nested NER";
 * research/sener.md 6): a biaffine score for every ordered word pair, a full L x L grid of c
 * channels, and masked 3x3 convolutions over the grid so that neighbouring spans inform each other.
 * SeNER's BiSPA head is this model cut down to a band (sener.md 2.1).
 *
 * Symbols: L words of a segment, x_i [H] the state of word i (encode.ts), d = biaffineSize,
 * c = cnnDim, R types, cell (i, j) = the ordered pair (start word i, end word j), stored row-major
 * as row i * L + j of a [L L, c] tensor (or [L, L, c] where a grid op needs it).
 *   h_i  = GELU(W_s Dropout(x_i) + b_s),  t_j = GELU(W_e Dropout(x_j) + b_e)          [L, d]
 *   h'_i = [h_i; 1],  t'_j = [t_j; 1]                                                   [L, d + 1]
 *   S_ij = h'_i^T U t'_j + W [Dropout(h'_i); Dropout(t'_j)]          U [c, d+1, d+1], W [c, 2(d+1)]
 *        (the appended 1s give the bias terms, as in SeNER's CNNNer)
 *   G    = CNN(Dropout_logit(S)), per layer l = 1..depth (the reference MaskCNN):
 *            r_l = LN_l(Conv3x3_l(a_{l-1}) + r_{l-1}),  a_l = GELU(r_l),  a_0 = r_0 = input,
 *          G = r_depth (LayerNorm over the c channels of each cell)
 *   z_ij = W_o (S_ij + G_ij) + b_o                                                      [L L, R]
 * Labels (`symmetric`, the reference): a gold span (s, e) of type r sets y(s, e, r) = y(e, s, r) = 1.
 * Loss: binary cross-entropy with logits on every cell and type of the segment's grid (upper triangle
 * i <= j only when not symmetric), SUMMED over cells and types, then averaged over the segments of
 * the batch: the reference code's reduction (model.py `.sum(dim=-1).mean()`). A per-cell mean would
 * shrink the few positive cells' gradient by 1 / L^2, and Adam's per-parameter scaling makes the
 * summed loss's size harmless.
 * Decode (the reference NERMetric): p = sigmoid(z); with `symmetric` p(i, j) is averaged with
 * p(j, i); every i <= j whose best type reaches eval.threshold is a candidate; then
 * src/models/decode.ts resolveSpans: by score, nested kept, crossing dropped, one type per span.
 *
 * Differences from the reference CNN-NER: the start/end MLPs use GELU (as SeNER's copy), not
 * LeakyReLU; the bilinear term is one [c, d+1, d+1] tensor on the 1-extended states (SeNER's copy),
 * not the 5-head biaffine of the DeBERTa adaptation; the reference's extra final convolution, whose
 * output it discards, is not built.
 *
 * Every grid op is a 2D matMul, a reshape, a transpose or a broadcast add (no einsum: it has no
 * gradient in tfjs). The bilinear term is one product with U laid out as [d+1, c (d+1)] and one with
 * t'^T, so the only L x L tensors are the [L, L, c] grid itself and its copies.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Config } from '../config/schema.js';
import type { Segment } from '../data/segmenter.js';
import type { Entity, ScoredEntity } from '../data/types.js';
import { LongnerError } from '../errors.js';
import type { Encoder } from '../nn/encoder.js';
import { maskedConv3x3 } from '../nn/grid.js';
import { createLayerNorm, createLinear, initBiasToPrior, dropout, gelu, layerNorm, linear, type LinearWeights, type NormWeights } from '../nn/layers.js';
import { ParamStore } from '../nn/params.js';
import type { Rng } from '../util/rng.js';
import { checkpoint } from '../nn/checkpoint.js';
import { createEncoder, encodeWords, isEncoderParam, recomputes } from './encode.js';
import type { Batch, LossOptions, ModelContext, SpanModel } from './span-model.js';
import { gridCandidates, resolveSpans } from './decode.js';

// ---------------------------------------------------------------------------------------------
// Config

export interface CnnNerConfig {
  biaffineSize: number;
  cnnDim: number;
  depth: number;
  dropout: number;
  logitDropout: number;
  symmetric: boolean;
  /** recompute each convolution layer in the backward pass (train.recompute head or all) */
  recompute: boolean;
}

/** What a forward pass needs besides the weights. */
export interface ForwardOptions {
  training: boolean;
  rng?: Rng;
}

// ---------------------------------------------------------------------------------------------
// Parameters: start/end MLPs and the biaffine layer (shared with UTC-IE), the CNN, the output layer

export interface BiaffineWeights {
  start: LinearWeights;
  end: LinearWeights;
  /** U laid out as [d+1, c (d+1)]: U2[a, o (d+1) + b] = U[o, a, b]. */
  U: tf.Tensor2D;
  /** W^T, [2 (d+1), c]: rows 0..d act on h', rows d+1..2d+1 on t'. */
  W: tf.Tensor2D;
  /** UTC-IE's use_ln: LayerNorm of the bilinear and of the linear term before they are added. */
  norms: { bilinear: NormWeights; linear: NormWeights } | null;
}

export function createBiaffine(params: ParamStore, prefix: string, hidden: number, d: number, c: number, opts: { norms?: boolean } = {}): BiaffineWeights {
  const d1 = d + 1;
  // The reference initialises U [c, d+1, d+1] with xavier_normal (fan-in (d+1)^2, fan-out c (d+1))
  // and W [c, 2(d+1)] likewise; uniform with the same variance keeps that scale in our layouts.
  const uLimit = Math.sqrt(6 / (d1 * d1 + c * d1));
  return {
    start: createLinear(params, `${prefix}.start`, hidden, d),
    end: createLinear(params, `${prefix}.end`, hidden, d),
    U: params.param(`${prefix}.biaffine.U`, [d1, c * d1], { kind: 'uniform', limit: uLimit }) as tf.Variable<tf.Rank.R2>,
    W: params.param(`${prefix}.biaffine.W`, [2 * d1, c], { kind: 'xavier' }) as tf.Variable<tf.Rank.R2>,
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
    if (w.norms) {
      bilinear = layerNorm(bilinear, w.norms.bilinear);
      lin = layerNorm(lin, w.norms.linear);
    }
    return tf.add(bilinear, lin);
  });
}

interface CnnLayer {
  /** [9, c, c], the 3x3 kernel as grid.ts's maskedConv3x3 takes it; no bias, as the reference. */
  taps: tf.Tensor3D;
  norm: NormWeights;
}

/** Torch's Conv2d default init, uniform within 1 / sqrt(fan-in) with fan-in 9 c. */
export function createConvTaps(params: ParamStore, name: string, c: number): tf.Tensor3D {
  return params.param(name, [9, c, c], { kind: 'uniform', limit: 1 / Math.sqrt(9 * c) }) as tf.Variable<tf.Rank.R3>;
}

export interface CnnNerHead {
  biaffine: BiaffineWeights;
  cnn: CnnLayer[];
  out: LinearWeights;
  cfg: CnnNerConfig;
}

export function createCnnNerHead(params: ParamStore, hidden: number, types: number, cfg: CnnNerConfig, prefix = 'head'): CnnNerHead {
  const c = cfg.cnnDim;
  return {
    biaffine: createBiaffine(params, prefix, hidden, cfg.biaffineSize, c),
    cnn: Array.from({ length: cfg.depth }, (_, l) => ({
      taps: createConvTaps(params, `${prefix}.cnn.l${l}.taps`, c),
      norm: createLayerNorm(params, `${prefix}.cnn.l${l}.ln`, c),
    })),
    out: createLinear(params, `${prefix}.out`, c, types),
    cfg,
  };
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

/**
 * The reference MaskCNN on a [L L, c] grid: residual, channel LayerNorm, GELU between layers
 * (r_0 = the grid; r_l = LN(conv_l(a_l) + r_{l-1}) with a_1 = r_0 and a_l = GELU(r_{l-1}) after).
 */
function cnn(grid: tf.Tensor2D, layers: CnnLayer[], L: number, recompute: boolean, rng?: Rng): tf.Tensor2D {
  return tf.tidy(() => {
    const c = grid.shape[1];
    const mask = fullGridMask(L);
    const step = (residual: tf.Tensor2D, w: { layer: CnnLayer; mask: tf.Tensor3D; first: boolean }): tf.Tensor2D => {
      const act = w.first ? residual : gelu(residual);
      const conv = tf.reshape(maskedConv3x3(tf.reshape(act, [L, L, c]), w.layer.taps, w.mask), [L * L, c]) as tf.Tensor2D;
      return layerNorm(tf.add(conv, residual), w.layer.norm);
    };
    let residual = grid;
    layers.forEach((layer, l) => {
      const w = { layer, mask, first: l === 0 };
      residual = recompute ? checkpoint(step, residual, w, rng) : step(residual, w);
    });
    return residual;
  });
}

/** Logits z [L L, R] of word states x [L, H]. */
export function cnnNerLogits(x: tf.Tensor2D, head: CnnNerHead, opts: ForwardOptions): tf.Tensor2D {
  return tf.tidy(() => {
    const L = x.shape[0];
    const S = biaffineGrid(x, head.biaffine, head.cfg.dropout, opts);
    if (head.cnn.length === 0) return linear(S, head.out);
    const G = cnn(dropout(S, head.cfg.logitDropout, opts.training, opts.rng), head.cnn, L, head.cfg.recompute && opts.training, opts.rng);
    return linear(tf.add(S, G), head.out);
  });
}

// ---------------------------------------------------------------------------------------------
// Loss (shared with UTC-IE)

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
 * Summed BCE with logits of z [L L, R] against 0/1 labels whose ones are at `positives`, written
 * without a dense label tensor: BCE(z, y) = softplus(z) - y z, so the sum is
 * sum softplus(z) over the trained cells minus the sum of z at the positives.
 */
export function gridLoss(logits: tf.Tensor2D, L: number, positives: Int32Array, symmetric: boolean): tf.Scalar {
  return tf.tidy(() => {
    let all = tf.softplus(logits);
    if (!symmetric) all = tf.mul(all, upperTriangle(L));
    const total = tf.sum(all);
    if (positives.length === 0) return total as tf.Scalar;
    const pos = tf.gather(tf.reshape(logits, [-1]), tf.tensor1d(positives, 'int32'));
    return tf.sub(total, tf.sum(pos)) as tf.Scalar;
  });
}

// ---------------------------------------------------------------------------------------------
// Decode (shared with UTC-IE)

/** Spans of one segment from its logits [L L, R], sorted by (start, end). */
export function decodeGrid(logits: tf.Tensor2D, L: number, types: readonly string[], opts: { threshold: number; symmetric: boolean }): ScoredEntity[] {
  const probs = tf.tidy(() => tf.sigmoid(logits));
  let values: Float32Array;
  try {
    values = probs.dataSync() as Float32Array;
  } finally {
    probs.dispose();
  }
  const kept = resolveSpans(gridCandidates(values, L, types, opts), { allowNested: true });
  return kept.sort((a, b) => a.start - b.start || a.end - b.end);
}

// ---------------------------------------------------------------------------------------------
// Model (the SpanModel around a grid head; UTC-IE plugs in its own head)

export type GridLogits = (x: tf.Tensor2D, opts: ForwardOptions) => tf.Tensor2D;

export class GridSpanModel implements SpanModel {
  readonly types: readonly string[];
  private readonly typeIndex: Map<string, number>;

  constructor(
    readonly method: string,
    ctx: ModelContext,
    readonly params: ParamStore,
    readonly encoder: Encoder,
    /** The head: word states [L, H] -> logits [L L, R]. */
    readonly logits: GridLogits,
    private readonly decode: { threshold: number; symmetric: boolean },
  ) {
    requireTypes(method, ctx);
    this.types = [...ctx.types];
    this.typeIndex = new Map(this.types.map((t, i) => [t, i]));
  }

  loss(batch: Batch, opts: LossOptions): tf.Scalar {
    if (batch.segments.length === 0) throw new Error('loss of an empty batch');
    return tf.tidy(() => {
      const losses = batch.segments.map((seg) => {
        const L = seg.words;
        if (L === 0) return tf.scalar(0);
        const positives = positiveIndices(L, seg.entities, this.typeIndex, this.decode.symmetric, `${seg.docId} segment ${seg.index}`);
        const x = encodeWords(this.encoder, seg, { training: true, rng: opts.rng });
        return gridLoss(this.logits(x, { training: true, rng: opts.rng }), L, positives, this.decode.symmetric);
      });
      return tf.div(tf.addN(losses), losses.length) as tf.Scalar;
    });
  }

  predict(batch: Batch): ScoredEntity[][] {
    return batch.segments.map((seg) => this.predictSegment(seg));
  }

  private predictSegment(seg: Segment): ScoredEntity[] {
    if (seg.words === 0) return [];
    const z = tf.tidy(() => this.logits(encodeWords(this.encoder, seg, { training: false }), { training: false }));
    try {
      return decodeGrid(z, seg.words, this.types, this.decode);
    } finally {
      z.dispose();
    }
  }

  paramGroup(name: string): 'encoder' | 'head' {
    return isEncoderParam(name) ? 'encoder' : 'head';
  }
}

export interface CnnNerModel extends GridSpanModel {
  readonly head: CnnNerHead;
}

/** The model needs a type to score; checked before any parameter is sized by the type count. */
export function requireTypes(method: string, ctx: ModelContext): void {
  if (ctx.types.length === 0) throw new LongnerError(`${method} needs at least one entity type`);
}

export function createCnnNerModel(config: Config, ctx: ModelContext, params: ParamStore = new ParamStore(config.train.seed)): CnnNerModel {
  requireTypes('cnn-ner', ctx);
  const cfg: CnnNerConfig = { ...config.cnnNer, recompute: recomputes(config, 'head') };
  const encoder = createEncoder(config, ctx, params);
  const head = createCnnNerHead(params, config.encoder.hidden, ctx.types.length, cfg);
  initBiasToPrior(head.out, config.train.outputBiasPrior);
  const model = new GridSpanModel('cnn-ner', ctx, params, encoder, (x, opts) => cnnNerLogits(x, head, opts), {
    threshold: config.eval.threshold,
    symmetric: cfg.symmetric,
  });
  return Object.assign(model, { head });
}
