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
 *   S_ij = h'_i^T U t'_j + W [Dropout(h'_i); Dropout(t'_j); Dropout(E_size[b(j - i)])]
 *                                                      U [c, d+1, d+1], W [c, 2(d+1) + e]
 *        (the appended 1s give the bias terms, as in SeNER's CNNNer). E_size [30, e] is the span-size
 *        embedding (e = sizeEmbedDim, the reference's size_embed_dim 25; absent when 0), b(s) =
 *        clip(s, -15, 14) + 15 its bucket (grid-head.ts spanSizeIds), dropped out cell by cell.
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
 * t'^T, so the only L x L tensors are the [L, L, c] grid itself, its copies and the [L L, e] size lookup.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Config } from '../config/schema.js';
import { checkpoint } from '../nn/checkpoint.js';
import { maskedConv3x3 } from '../nn/grid.js';
import { createLayerNorm, createLinear, dropout, gelu, layerNorm, linear, type LinearWeights, type NormWeights } from '../nn/layers.js';
import { ParamStore } from '../nn/params.js';
import type { Rng } from '../util/rng.js';
import { recomputes } from './encode.js';
import {
  biaffineGrid,
  createBiaffine,
  createConvTaps,
  fullGridMask,
  createGridModel,
  type GridModel,
  type BiaffineWeights,
  type ForwardOptions,
} from './grid-head.js';
import { HEAD_PREFIX } from './segment-model.js';
import type { ModelContext } from './span-model.js';

// ---------------------------------------------------------------------------------------------
// Config

export interface CnnNerConfig {
  biaffineSize: number;
  cnnDim: number;
  depth: number;
  dropout: number;
  logitDropout: number;
  /** width e of the span-size embedding; 0 = none */
  sizeEmbedDim: number;
  symmetric: boolean;
  /** recompute each convolution layer in the backward pass (train.recompute head or all) */
  recompute: boolean;
}

// ---------------------------------------------------------------------------------------------
// Parameters: start/end MLPs and the biaffine layer (shared with UTC-IE), the CNN, the output layer

interface CnnLayer {
  /** [9, c, c], the 3x3 kernel as grid.ts's maskedConv3x3 takes it; no bias, as the reference. */
  taps: tf.Tensor3D;
  norm: NormWeights;
}

export interface CnnNerHead {
  biaffine: BiaffineWeights;
  cnn: CnnLayer[];
  out: LinearWeights;
  cfg: CnnNerConfig;
}

export function createCnnNerHead(params: ParamStore, hidden: number, types: number, cfg: CnnNerConfig, prefix = HEAD_PREFIX): CnnNerHead {
  const c = cfg.cnnDim;
  return {
    biaffine: createBiaffine(params, prefix, hidden, cfg.biaffineSize, c, { sizeEmbedDim: cfg.sizeEmbedDim }),
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

export type CnnNerModel = GridModel<CnnNerHead>;

export function createCnnNerModel(config: Config, ctx: ModelContext, params: ParamStore = new ParamStore(config.train.seed)): CnnNerModel {
  const cfg: CnnNerConfig = { ...config.cnnNer, recompute: recomputes(config, 'head') };
  const head = () => createCnnNerHead(params, config.encoder.hidden, ctx.types.length, cfg);
  return createGridModel('cnn-ner', { config, ctx, params }, head, cnnNerLogits, { symmetric: cfg.symmetric });
}
