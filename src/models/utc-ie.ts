/**
 * UTC-IE (Yan et al. 2023b; research/sener.md 6): CNN-NER's biaffine L x L grid, refined by blocks of
 * axis-aware, plus-shaped attention (each cell attends along its row and along its column) followed
 * by masked 3x3 convolutions. SeNER's BiSPA block (sener.md 2.3) is this block (the reference
 * `CrossTransformer`) moved onto a band; here it runs on the full square grid, so each attention
 * branch holds L x L x L scores: O(L^3) memory, the cost SeNER avoids.
 *
 * Symbols as in cnn-ner.ts (L words, d = biaffineSize, c = cnnDim, R types, cell (i, j) = start i,
 * end j). The word states x come from the encoder's sub-word states with an extra dropout
 * (`encoderOutputDropout`, the reference's drop_p on last_hidden_states) before word pooling.
 * S [L, L, c] is the biaffine grid of cnn-ner.ts, with the bilinear and linear terms each LayerNorm-ed
 * first when `biaffineNorm` (the reference use_ln = 1). By default it has no span-size embedding (the
 * reference's use_size_embed is off); `sizeEmbedDim` > 0 adds one as the reference's use_size_embed 1
 * does: 50 buckets, concatenated into the linear term before its LayerNorm. X^0 = S, then per block:
 *   X   = X + E_tri[i <= j]                      E_tri [2, c], when `triangleEmbedding`; xavier-normal
 *                                                with gain `triangleInitGain` (reference 0.1 under use_ln)
 *   A_h = RowAttn_h(X)                           cell (i, j) attends over row i, RoPE on j
 *   A_v = RowAttn_v(X^T)                         row j of X^T is column j of X: A_v(j, i) is cell (i, j)
 *                                                attending over column j, RoPE on i
 *   F   = LN_1(X + Dropout(W_f [A_h(i, j); V(i, j)] + b_f))             W_f [2c, c]
 *         V(i, j) = A_v(j, i) with `columnTransposeBack` (the plus shape), else A_v(i, j) (reference)
 *   X   = LN_2(F + Dropout(Conv3x3_2(GELU(Conv3x3_1(F)))))
 * with one head of width c, scale sqrt(c), attention dropout `attnDropout` (grid.ts rowAttention).
 * RoPE's sin/cos tables are divided by sqrt(c) when `scaleRope` (the reference's `scale` flag, on
 * under use_ln): queries and keys shrink by sqrt(c) each, the logits by c on top of 1 / sqrt(c).
 *   z_ij = W_o (S_ij + X^depth_ij) + b_o                                                 [L L, R]
 * Labels, loss (summed BCE over the grid, averaged over segments) and decoding (symmetric average,
 * threshold, nested kept, crossing dropped) are CNN-NER's, shared from cnn-ner.ts.
 *
 * Choices against the reference code: GELU between the two convolutions (the reference NER script
 * defaults to LeakyReLU; SeNER's copy uses GELU); no clamping of the grid to +-1000 (it only guards
 * fp16 overflow). Like the reference (and SeNER's default), A_v is fused in transposed order unless
 * `columnTransposeBack` is set: cell (i, j) then gets the column attention of its mirror (j, i), i.e.
 * row i and column i, so with symmetric labels a span still sees the rows and columns of both its words.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Config } from '../config/schema.js';
import { maskedConv3x3, rowAttention, triangleOneHot } from '../nn/grid.js';
import { createLayerNorm, createLinear, dropout, gelu, layerNorm, linear, type LinearWeights, type NormWeights } from '../nn/layers.js';
import { ParamStore } from '../nn/params.js';
import { ropeTables } from '../nn/rope.js';
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
import { checkpoint } from '../nn/checkpoint.js';
import { recomputes } from './encode.js';
import { HEAD_PREFIX } from './segment-model.js';
import type { ModelContext } from './span-model.js';

// ---------------------------------------------------------------------------------------------
// Config

export interface UtcIeConfig {
  biaffineSize: number;
  cnnDim: number;
  depth: number;
  dropout: number;
  encoderOutputDropout: number;
  attnDropout: number;
  sizeEmbedDim: number;
  biaffineNorm: boolean;
  triangleEmbedding: boolean;
  triangleInitGain: number;
  scaleRope: boolean;
  columnTransposeBack: boolean;
  symmetric: boolean;
  /** row and column attention as the fused low-memory kernel (grid.ts rowAttention lowMemory) */
  lowMemory: boolean;
  /** recompute each cross block in the backward pass (train.recompute head or all) */
  recompute: boolean;
}

// ---------------------------------------------------------------------------------------------
// Parameters

/** n_pos of the reference's use_size_embed 1: sizes clipped to [-25, 24]. */
export const UTC_IE_SIZE_BUCKETS = 50;

export interface CrossBlock {
  /** [2, c]: row 0 for lower-triangle cells (i > j), row 1 for the diagonal and above. */
  tri: tf.Tensor2D | null;
  rowQkv: LinearWeights;
  colQkv: LinearWeights;
  fuse: LinearWeights;
  ln1: NormWeights;
  conv1: tf.Tensor3D;
  conv2: tf.Tensor3D;
  ln2: NormWeights;
}

export interface UtcIeHead {
  biaffine: BiaffineWeights;
  blocks: CrossBlock[];
  out: LinearWeights;
  cfg: UtcIeConfig;
}

export function createUtcIeHead(params: ParamStore, hidden: number, types: number, cfg: UtcIeConfig, prefix = HEAD_PREFIX): UtcIeHead {
  const c = cfg.cnnDim;
  if (c % 2 !== 0) throw new Error(`utc-ie: cnnDim must be even for RoPE, got ${c}`);
  // torch's xavier_normal_ on the [2, c] embedding weight: fan-in c, fan-out 2.
  const triStd = cfg.triangleInitGain * Math.sqrt(2 / (c + 2));
  return {
    biaffine: createBiaffine(params, prefix, hidden, cfg.biaffineSize, c, {
      norms: cfg.biaffineNorm,
      sizeEmbedDim: cfg.sizeEmbedDim,
      sizeBuckets: UTC_IE_SIZE_BUCKETS,
    }),
    blocks: Array.from({ length: cfg.depth }, (_, b) => {
      const n = `${prefix}.block${b}`;
      return {
        tri: cfg.triangleEmbedding ? (params.param(`${n}.tri`, [2, c], { kind: 'normal', std: triStd }) as tf.Variable<tf.Rank.R2>) : null,
        rowQkv: createLinear(params, `${n}.row_qkv`, c, 3 * c),
        colQkv: createLinear(params, `${n}.col_qkv`, c, 3 * c),
        fuse: createLinear(params, `${n}.fuse`, 2 * c, c),
        ln1: createLayerNorm(params, `${n}.ln1`, c),
        conv1: createConvTaps(params, `${n}.conv1`, c),
        conv2: createConvTaps(params, `${n}.conv2`, c),
        ln2: createLayerNorm(params, `${n}.ln2`, c),
      };
    }),
    out: createLinear(params, `${prefix}.out`, c, types),
    cfg,
  };
}

// ---------------------------------------------------------------------------------------------
// Forward

export interface BlockConstants {
  rope: ReturnType<typeof ropeTables>;
  /** [L, L] all ones: one segment per pass, no padded cells. */
  valid: tf.Tensor2D;
  mask: tf.Tensor3D;
  tri: tf.Tensor2D;
}

/** The constant tensors every block of a pass shares (create inside a tidy, or dispose them). */
export function blockConstants(L: number, c: number, opts: { scaleRope: boolean }): BlockConstants {
  const rope = ropeTables(L, c, opts.scaleRope ? 1 / Math.sqrt(c) : 1);
  return { rope, valid: tf.ones([L, L]), mask: fullGridMask(L), tri: triangleOneHot(L) };
}

/** One plus-shaped attention block on X [L L, c]. */
export function crossBlock(X: tf.Tensor2D, blk: CrossBlock, L: number, cfg: UtcIeConfig, opts: ForwardOptions, constants: BlockConstants): tf.Tensor2D {
  return tf.tidy(() => {
    const c = X.shape[1];
    const drop = <T extends tf.Tensor>(t: T): T => dropout(t, cfg.attnDropout, opts.training, opts.rng);
    let x = X;
    if (blk.tri) x = tf.add(x, tf.matMul(constants.tri, blk.tri));
    const grid = tf.reshape(x, [L, L, c]) as tf.Tensor3D;
    const attn = {
      rope: constants.rope,
      validMask: constants.valid,
      dropout: cfg.attnDropout,
      training: opts.training,
      rng: opts.rng,
      lowMemory: cfg.lowMemory,
    };
    const rows = tf.reshape(rowAttention(grid, { qkv: blk.rowQkv }, attn), [L * L, c]);
    // Column attention is row attention on the transposed grid; its output is in transposed order.
    let cols = rowAttention(tf.transpose(grid, [1, 0, 2]), { qkv: blk.colQkv }, attn);
    if (cfg.columnTransposeBack) cols = tf.transpose(cols, [1, 0, 2]);
    const fused = linear(tf.concat([rows, tf.reshape(cols, [L * L, c])], 1) as tf.Tensor2D, blk.fuse);
    const F = layerNorm(tf.add(x, drop(fused)), blk.ln1);
    const c1 = gelu(maskedConv3x3(tf.reshape(F, [L, L, c]), blk.conv1, constants.mask));
    const c2 = tf.reshape(maskedConv3x3(c1, blk.conv2, constants.mask), [L * L, c]) as tf.Tensor2D;
    return layerNorm(tf.add(F, drop(c2)), blk.ln2);
  });
}

/** Logits z [L L, R] of word states x [L, H]. */
export function utcIeLogits(x: tf.Tensor2D, head: UtcIeHead, opts: ForwardOptions): tf.Tensor2D {
  return tf.tidy(() => {
    const L = x.shape[0];
    const { cfg } = head;
    const S = biaffineGrid(x, head.biaffine, cfg.dropout, opts);
    if (head.blocks.length === 0) return linear(S, head.out);
    // Built once per pass and shared by the blocks; the tidy disposes them.
    const constants = blockConstants(L, cfg.cnnDim, cfg);
    let X = S;
    const block = (x: tf.Tensor2D, w: { blk: CrossBlock; constants: BlockConstants }): tf.Tensor2D => crossBlock(x, w.blk, L, cfg, opts, w.constants);
    const recompute = cfg.recompute && opts.training;
    for (const blk of head.blocks) X = recompute ? checkpoint(block, X, { blk, constants }, opts.rng) : block(X, { blk, constants });
    return linear(tf.add(S, X), head.out);
  });
}

// ---------------------------------------------------------------------------------------------
// Model (loss and decode: grid-head.ts GridSpanModel)

export type UtcIeModel = GridModel<UtcIeHead>;

export function createUtcIeModel(config: Config, ctx: ModelContext, params: ParamStore = new ParamStore(config.train.seed)): UtcIeModel {
  const cfg: UtcIeConfig = { ...config.utcIe, recompute: recomputes(config, 'head') };
  const head = () => createUtcIeHead(params, config.encoder.hidden, ctx.types.length, cfg);
  return createGridModel('utc-ie', { config, ctx, params }, head, utcIeLogits, { symmetric: cfg.symmetric, encoderOutputDropout: cfg.encoderOutputDropout });
}
