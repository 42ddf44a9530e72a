/**
 * SeNER (Chen, Zhang & Tang, "Small Language Model Makes an Effective Long Text Extractor",
 * AAAI 2025; research/sener.md): span NER on long texts with a banded span tensor.
 *
 * Symbols: a segment of T sub-word tokens and L words; x_i [H] the state of word i; w the one-sided
 * BiSPA window in words (`sener.window`, default = encoder.window); K = 2w + 1 band columns;
 * d = biaffineSize, c = cnnDim, R types. Band cell (i, k) holds the ordered pair (head i,
 * tail j = i + k - w) (src/nn/band.ts); roll+flip re-packs it so that row i lists the pairs whose
 * tail is i.
 *   Encoder   arrow attention (window of encoder.window tokens plus a global [CLS]) with LogN on the
 *             [CLS] row (encoder.attention, encoder.logN); LoRA on Q and V when `sener.lora` is set
 *             (the other encoder weights frozen); max-pooled to words (encode.ts).   x [L, H]
 *   MLPs      h^s_i = GELU(W_s Dropout(x_i) + b_s),  h^e_i = GELU(W_e Dropout(x_i) + b_e)   [L, d]
 *   D         D(i, k) = h^s_i'^T U h^e_j' + W [Dropout(h^s_i'); Dropout(h^e_j')],  h' = [h; 1]
 *             U [c, d+1, d+1], W [c, 2(d+1)]: the banded biaffine S_h of eq. 3.         [L, K, c]
 *   BiSPA     X^0 = D, then `depth` blocks (eq. 4-7, the reference CrossTransformer):
 *               X   = clamp(X, +-1000) + E_pos[k >= w]               E_pos [2, c], upper/lower
 *               A_h = RowAttn_h(X)                 row i: the pairs with head i, RoPE on k
 *               A_v = RowAttn_v(rollFlip(X))       row i: the pairs with tail i (S_v of Fig. 5)
 *                     (not rolled back, as the reference code; `unrollVertical` rolls it back)
 *               F   = LN_1(X + Dropout(W_f [A_h; A_v] + b_f))                    W_f [2c, c]
 *               X   = LN_2(F + Dropout(Conv3x3_2(GELU(Conv3x3_1(F)))))   masked, on the (i, k) grid
 *             `bispa: false` skips the blocks (the band straight to the output layer).
 *             `bispa: 'full'` drops the band instead (the paper's "w/o BiSPA", sener.md 5.3): D and
 *             the same blocks on the whole L x L grid of pairs, as UTC-IE's plus-shaped attention
 *             (E_pos by triangle, the vertical branch on X^T, square 3x3 convolutions); the
 *             logits are then gathered into the band of w = L - 1, which holds every pair, for
 *             the loss and the decoder below.
 *   Output    z = W_o (X^depth + D) + b_o                                                 [L, K, R]
 *   Loss      BCE with logits summed over every valid cell (tail inside the segment) and type,
 *             averaged over the segments of the batch (the reference reduction). A gold span
 *             [s .. e] is labelled at (s, w + (e - s)) and at (e, w - (e - s)).
 *   Decode    p = sigmoid(z), p_sym = (p + rollFlip(p)) / 2 (or the sigmoid of the averaged logits,
 *             `decodeAverage: 'logit'`); candidates = forward cells (k >= w) whose best type
 *             reaches eval.threshold; greedy by score: exact duplicates skipped, nested kept,
 *             crossing dropped (src/models/decode.ts); type = the argmax (one per span).
 *   Training  whole-word masking of `wwm` of the input tokens (input corruption only).
 *
 * Spans longer than w + 1 words cannot be represented in the band: they are left out of the labels
 * (counted in `SenerModel.spanStats.dropped`, which a run record can report) and are never predicted.
 * A segment shorter than the window uses w = L - 1 (effectiveWindow): same results, smaller band.
 * Memory of a training step is O(L w (w + c)): the [L, K, K] attention probabilities dominate at
 * the reference w = 128 (grid.ts keeps only two of them per attention for the backward pass).
 * With `bispa: 'full'` they are [L, L, L]: O(L^3), the paper's "plus-shaped attention on the full
 * matrix" against BiSPA's O(L w'^2).
 *
 * Choices where the reference is silent or unusable here: GELU is the tanh approximation
 * (layers.ts); invalid cells are zero after the biaffine and after each convolution instead of
 * wrapped-around values (nothing reads them either way); the reference's clamps of Q/K/V and the
 * attention logits to +-10000 are left out (they only guard fp16 overflow); the reference decoder
 * treats spans that share exactly one boundary word as not overlapping (it compares inclusive ends
 * as if exclusive), here they cross; non-finite logits are not zeroed (the reference does, for fp16);
 * whole-word masking picks words per segment (the reference picks them over the whole document,
 * so its masks line up only with a document's first segment).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Config } from '../config/schema.js';
import type { Segment } from '../data/segmenter.js';
import { MASK_ID, SPECIAL_TOKENS } from '../data/tokenizer.js';
import type { Entity, ScoredEntity } from '../data/types.js';
import { wholeWordMask } from '../data/wwm.js';
import { LongnerError } from '../errors.js';
import { bandedBiaffine, bandLabels, bandValidMask, bandValidity, gridBiaffine, gridToBand, rollFlip } from '../nn/band.js';
import type { Encoder } from '../nn/encoder.js';
import { maskedConv3x3, rowAttention, triangleOneHot } from '../nn/grid.js';
import { createLayerNorm, createLinear, initBiasToPrior, dropout, gelu, layerNorm, linear, type LinearWeights, type NormWeights } from '../nn/layers.js';
import { ParamStore } from '../nn/params.js';
import { REFERENCE_BCE, sparseBce, type BceOptions } from '../nn/bce.js';
import { ropeTables, type RopeTables } from '../nn/rope.js';
import type { Rng } from '../util/rng.js';
import { checkpoint } from '../nn/checkpoint.js';
import { createEncoder, isEncoderParam, recomputes } from './encode.js';
import { HEAD_PREFIX, initialThreshold, requireTypes, SegmentSpanModel } from './segment-model.js';
import type { ModelContext } from './span-model.js';
import { resolveSpans } from './decode.js';

// ---------------------------------------------------------------------------------------------
// Config

export interface SenerConfig {
  /** one-sided BiSPA window in words */
  window: number;
  biaffineSize: number;
  cnnDim: number;
  depth: number;
  mlpDropout: number;
  attnDropout: number;
  /** true: BiSPA on the band; false: no blocks; 'full': the blocks on the whole L x L grid */
  bispa: boolean | 'full';
  unrollVertical: boolean;
  /** BiSPA attention as the fused low-memory kernel (grid.ts rowAttention lowMemory) */
  lowMemory: boolean;
  /** recompute each BiSPA block in the backward pass (train.recompute head or all) */
  recompute: boolean;
  decodeAverage: 'probability' | 'logit';
  multiType: boolean;
  referenceSortBug: boolean;
  threshold: number;
  bce: BceOptions;
}

/** The head's settings from a resolved config (sener.window null = encoder.window). */
export function senerConfig(config: Config): SenerConfig {
  const s = config.sener;
  return {
    window: s.window ?? config.encoder.window,
    biaffineSize: s.biaffineSize,
    cnnDim: s.cnnDim,
    depth: s.depth,
    mlpDropout: s.mlpDropout,
    attnDropout: s.attnDropout,
    bispa: s.bispa,
    unrollVertical: s.unrollVertical,
    lowMemory: s.lowMemory,
    recompute: recomputes(config, 'head'),
    decodeAverage: s.decodeAverage,
    multiType: s.multiType,
    referenceSortBug: s.referenceSortBug,
    threshold: initialThreshold(config.eval.threshold),
    bce: config.train.bce,
  };
}

export interface ForwardOptions {
  training: boolean;
  rng?: Rng;
}

// ---------------------------------------------------------------------------------------------
// Parameters: start/end MLPs, biaffine U and W, BiSPA blocks, output layer

export interface BispaBlock {
  /** [2, c]: row 0 for the backward half (k < w), row 1 for the diagonal and the forward half. */
  pos: tf.Tensor2D;
  hQkv: LinearWeights;
  vQkv: LinearWeights;
  /** W_f [2c, c]: rows 0..c-1 act on the horizontal output, c..2c-1 on the vertical one. */
  fuse: LinearWeights;
  ln1: NormWeights;
  conv1: tf.Tensor3D;
  conv2: tf.Tensor3D;
  ln2: NormWeights;
}

export interface SenerHead {
  start: LinearWeights;
  end: LinearWeights;
  /** [c, d+1, d+1] */
  U: tf.Tensor3D;
  /** [c, 2(d+1)] */
  W: tf.Tensor2D;
  blocks: BispaBlock[];
  out: LinearWeights;
  cfg: SenerConfig;
}

export function createSenerHead(params: ParamStore, hidden: number, types: number, cfg: SenerConfig, prefix = HEAD_PREFIX): SenerHead {
  const { biaffineSize: d, cnnDim: c } = cfg;
  if (c % 2 !== 0) throw new LongnerError(`sener.cnnDim must be even (RoPE pairs features), got ${c}`);
  const d1 = d + 1;
  // xavier on U [c, d+1, d+1] as torch computes it (fan-in (d+1)^2, fan-out c (d+1)), uniform with that variance.
  const uLimit = Math.sqrt(6 / (d1 * d1 + c * d1));
  // torch's Conv2d default: uniform within 1 / sqrt(fan-in), fan-in 9 c.
  const taps = (name: string): tf.Tensor3D => params.param(name, [9, c, c], { kind: 'uniform', limit: 1 / Math.sqrt(9 * c) }) as tf.Variable<tf.Rank.R3>;
  return {
    start: createLinear(params, `${prefix}.start`, hidden, d),
    end: createLinear(params, `${prefix}.end`, hidden, d),
    U: params.param(`${prefix}.biaffine.U`, [c, d1, d1], { kind: 'uniform', limit: uLimit }) as tf.Variable<tf.Rank.R3>,
    W: params.param(`${prefix}.biaffine.W`, [c, 2 * d1], { kind: 'xavier' }) as tf.Variable<tf.Rank.R2>,
    blocks:
      cfg.bispa !== false
        ? Array.from({ length: cfg.depth }, (_, b) => {
            const n = `${prefix}.bispa.b${b}`;
            return {
              pos: params.param(`${n}.pos`, [2, c], { kind: 'xavier' }) as tf.Variable<tf.Rank.R2>,
              hQkv: createLinear(params, `${n}.h_qkv`, c, 3 * c),
              vQkv: createLinear(params, `${n}.v_qkv`, c, 3 * c),
              fuse: createLinear(params, `${n}.fuse`, 2 * c, c),
              ln1: createLayerNorm(params, `${n}.ln1`, c),
              conv1: taps(`${n}.conv1`),
              conv2: taps(`${n}.conv2`),
              ln2: createLayerNorm(params, `${n}.ln2`, c),
            };
          })
        : [],
    out: createLinear(params, `${prefix}.out`, c, types),
    cfg,
  };
}

// ---------------------------------------------------------------------------------------------
// Forward

/**
 * The band width actually used for L words: min(w, L - 1). Columns past L - 1 are invalid in every
 * row, and nothing depends on absolute column positions (RoPE and the 3x3 convolutions see only
 * column differences, the upper/lower embedding only the side of the diagonal), so dropping them
 * changes no result and saves most of the band on segments shorter than the window.
 */
export function effectiveWindow(w: number, L: number): number {
  return Math.max(0, Math.min(w, L - 1));
}

/**
 * The span width the head works with for L words: the band's effective window, or L - 1 without a
 * band (`bispa: 'full'`), where every pair is representable.
 */
export function spanWindow(cfg: Pick<SenerConfig, 'window' | 'bispa'>, L: number): number {
  return cfg.bispa === 'full' ? Math.max(0, L - 1) : effectiveWindow(cfg.window, L);
}

/**
 * The constants of one layout the blocks run on, [L, K] cells (the band, or the full grid with
 * K = L), built once per forward pass and shared by every block.
 */
export interface BlockContext {
  L: number;
  K: number;
  /** [L, K], 1 = valid cell */
  valid: tf.Tensor2D;
  /** [L, K, 1] */
  valid3: tf.Tensor3D;
  /** RoPE over the K columns, c features */
  rope: RopeTables;
  /** [K, 2] (band: by column) or [L K, 2] (grid: by cell) one-hot of the upper/lower id */
  side: tf.Tensor2D;
  /** The vertical view, an involution: row i lists the pairs whose tail is i (rollFlip, or X^T). */
  mirror(x: tf.Tensor3D): tf.Tensor3D;
  dispose(): void;
}

/** The constants for L words, window w and c channels; inside a tidy they go with it, outside call dispose(). */
export function bandContext(L: number, w: number, c: number): BlockContext {
  const K = 2 * w + 1;
  const valid = bandValidMask(L, w);
  const valid3 = tf.reshape(valid, [L, K, 1]) as tf.Tensor3D;
  const rope = ropeTables(K, c);
  const sideValues = new Float32Array(K * 2);
  for (let k = 0; k < K; k++) sideValues[k * 2 + (k >= w ? 1 : 0)] = 1;
  const side = tf.tensor2d(sideValues, [K, 2]);
  return {
    L,
    K,
    valid,
    valid3,
    rope,
    side,
    mirror: rollFlip,
    dispose: () => {
      tf.dispose([valid, valid3, side]);
      rope.dispose();
    },
  };
}

/** The same for the full L x L grid: every cell valid, RoPE over the tail j, id 1 where j >= i. */
export function gridContext(L: number, c: number): BlockContext {
  const valid = tf.ones([L, L]) as tf.Tensor2D;
  const valid3 = tf.ones([L, L, 1]) as tf.Tensor3D;
  const rope = ropeTables(L, c);
  const side = triangleOneHot(L);
  return {
    L,
    K: L,
    valid,
    valid3,
    rope,
    side,
    mirror: (x) => tf.transpose(x, [1, 0, 2]),
    dispose: () => {
      tf.dispose([valid, valid3, side]);
      rope.dispose();
    },
  };
}

type BlockConfig = Pick<SenerConfig, 'attnDropout' | 'unrollVertical' | 'lowMemory'>;

/** The attention half of a BiSPA block: F = LN_1(X + Dropout(W_f [A_h; A_v] + b_f)), as [L K, c]. */
export function bispaAttention(X: tf.Tensor3D, b: BispaBlock, ctx: BlockContext, cfg: BlockConfig, opts: ForwardOptions): tf.Tensor2D {
  return tf.tidy(() => {
    const { L, K } = ctx;
    const c = X.shape[2];
    const attn = {
      rope: ctx.rope,
      validMask: ctx.valid,
      dropout: cfg.attnDropout,
      training: opts.training,
      lowMemory: cfg.lowMemory,
      ...(opts.rng ? { rng: opts.rng } : {}),
    };
    const x = tf.add(tf.clipByValue(X, -1000, 1000), tf.reshape(tf.matMul(ctx.side, b.pos), [-1, K, c])) as tf.Tensor3D;
    const h = rowAttention(x, { qkv: b.hQkv }, attn);
    let v = rowAttention(ctx.mirror(x), { qkv: b.vQkv }, attn);
    if (cfg.unrollVertical) v = ctx.mirror(v);
    // W_f [A_h; A_v] as two products with the halves of W_f: no [L K, 2c] concatenation.
    const flat = (t: tf.Tensor3D): tf.Tensor2D => tf.reshape(t, [L * K, c]);
    const Wf = b.fuse.W;
    let fused: tf.Tensor2D = tf.add(tf.matMul(flat(h), tf.slice(Wf, [0, 0], [c, c])), tf.matMul(flat(v), tf.slice(Wf, [c, 0], [c, c])));
    if (b.fuse.b) fused = tf.add(fused, b.fuse.b);
    return layerNorm(tf.add(flat(x), dropout(fused, cfg.attnDropout, opts.training, opts.rng)), b.ln1);
  });
}

/** The convolution half: X' = LN_2(F + Dropout(Conv3x3_2(GELU(Conv3x3_1(F))))), as [L, K, c]. */
export function bispaConv(F: tf.Tensor2D, b: BispaBlock, ctx: BlockContext, cfg: BlockConfig, opts: ForwardOptions): tf.Tensor3D {
  return tf.tidy(() => {
    const { L, K } = ctx;
    const c = F.shape[1];
    const conv = maskedConv3x3(gelu(maskedConv3x3(tf.reshape(F, [L, K, c]), b.conv1, ctx.valid3)), b.conv2, ctx.valid3);
    const out = layerNorm(tf.add(F, dropout(tf.reshape(conv, [L * K, c]), cfg.attnDropout, opts.training, opts.rng)), b.ln2);
    return tf.reshape(out, [L, K, c]) as tf.Tensor3D;
  });
}

/** One BiSPA block on X [L, K, c] (see the header). */
export function bispaBlock(X: tf.Tensor3D, b: BispaBlock, ctx: BlockContext, cfg: BlockConfig, opts: ForwardOptions): tf.Tensor3D {
  return tf.tidy(() => bispaConv(bispaAttention(X, b, ctx, cfg, opts), b, ctx, cfg, opts));
}

/**
 * D of word states x [L, H]: the banded biaffine tensor [L, 2 spanWindow + 1, c], or with
 * `bispa: 'full'` the grid [L, L, c].
 */
export function senerBiaffine(x: tf.Tensor2D, head: SenerHead, opts: ForwardOptions): tf.Tensor3D {
  return tf.tidy(() => {
    const p = head.cfg.mlpDropout;
    const drop = <T extends tf.Tensor>(t: T): T => dropout(t, p, opts.training, opts.rng);
    const hs = gelu(linear(drop(x), head.start));
    const he = gelu(linear(drop(x), head.end));
    const biaffineDropout = { dropout: { rate: p, training: opts.training, ...(opts.rng ? { rng: opts.rng } : {}) } };
    if (head.cfg.bispa === 'full') return gridBiaffine(hs, he, head.U, head.W, biaffineDropout);
    return bandedBiaffine(hs, he, head.U, head.W, spanWindow(head.cfg, x.shape[0]), biaffineDropout);
  });
}

/** Logits z [L K, R] of word states x [L, H], row-major over band cells (i, k), K = 2 spanWindow + 1. */
export function senerLogits(x: tf.Tensor2D, head: SenerHead, opts: ForwardOptions): tf.Tensor2D {
  return tf.tidy(() => {
    const L = x.shape[0];
    const c = head.cfg.cnnDim;
    const grid = head.cfg.bispa === 'full';
    const w = spanWindow(head.cfg, L);
    const D = senerBiaffine(x, head, opts);
    const K = D.shape[1];
    let X: tf.Tensor3D = D;
    if (head.blocks.length > 0) {
      const ctx = grid ? gridContext(L, c) : bandContext(L, w, c);
      if (head.cfg.recompute && opts.training) {
        // Each half of a block is recomputed on its own, so a backward pass holds half a block's intermediates.
        type W = { b: BispaBlock; ctx: BlockContext };
        const attention = (x: tf.Tensor3D, w: W): tf.Tensor2D => bispaAttention(x, w.b, w.ctx, head.cfg, opts);
        const conv = (f: tf.Tensor2D, w: W): tf.Tensor3D => bispaConv(f, w.b, w.ctx, head.cfg, opts);
        for (const b of head.blocks) X = checkpoint(conv, checkpoint(attention, X, { b, ctx }, opts.rng), { b, ctx }, opts.rng);
      } else {
        for (const b of head.blocks) X = bispaBlock(X, b, ctx, head.cfg, opts);
      }
      X = tf.add(X, D);
    }
    const z = linear(tf.reshape(X, [L * K, c]), head.out);
    if (!grid) return z;
    const R = z.shape[1];
    return tf.reshape(gridToBand(tf.reshape(z, [L, L, R]) as tf.Tensor3D, w), [L * (2 * w + 1), R]) as tf.Tensor2D;
  });
}

// ---------------------------------------------------------------------------------------------
// Loss

/**
 * BCE with logits of z [L K, R] against the band labels (0/1, ones only on valid cells), over valid
 * cells only; the reference sums BCE(z, y) = softplus(z) - y z (nn/bce.ts for the other switches).
 */
export function bandLoss(logits: tf.Tensor2D, labels: Float32Array, L: number, w: number, bce: BceOptions = REFERENCE_BCE): tf.Scalar {
  return tf.tidy(() => {
    const K = 2 * w + 1;
    const R = logits.shape[1];
    const validity = bandValidity(L, w);
    const positives: number[] = [];
    for (let i = 0; i < labels.length; i++) if (labels[i] === 1) positives.push(i);
    const cells = validity.reduce((a, b) => a + b, 0) * R;
    return sparseBce(logits, Int32Array.from(positives), tf.tensor2d(validity, [L * K, 1]), cells, bce);
  });
}

// ---------------------------------------------------------------------------------------------
// Decode

export interface BandDecodeOptions {
  threshold: number;
  multiType: boolean;
  referenceSortBug: boolean;
}

/**
 * Spans of one segment from the symmetrised probabilities `pSym` [L, K, R] (row-major), sorted by
 * (start, end). Candidates are forward cells (k >= w, j < L) whose best type reaches the threshold;
 * resolveSpans keeps them by score (duplicates skipped, nested kept, crossing dropped).
 */
export function decodeBand(pSym: ArrayLike<number>, L: number, w: number, types: readonly string[], opts: BandDecodeOptions): ScoredEntity[] {
  const K = 2 * w + 1;
  const R = types.length;
  if (pSym.length !== L * K * R) throw new Error(`decodeBand: ${pSym.length} probabilities for a ${L} x ${K} x ${R} band`);
  const best = (i: number, k: number): { r: number; p: number } => {
    let r = 0;
    let p = -Infinity;
    for (let t = 0; t < R; t++) {
      const v = pSym[(i * K + k) * R + t]!;
      if (v > p) {
        p = v;
        r = t;
      }
    }
    return { r, p };
  };
  const candidates: ScoredEntity[] = [];
  const realScore = new Map<string, number>();
  for (let i = 0; i < L; i++) {
    for (let k = w; k < K; k++) {
      const j = i + k - w;
      if (j >= L) break;
      const { r, p } = best(i, k);
      if (p < opts.threshold) continue;
      // The reference reads the sort key at column k - w (the offset without + w): pair (i, i + k - 2w).
      const key = opts.referenceSortBug ? (i + k - 2 * w >= 0 ? best(i, k - w).p : 0) : p;
      candidates.push({ start: i, end: j + 1, type: types[r]!, score: key });
      realScore.set(`${i}:${j + 1}`, p);
    }
  }
  const kept = resolveSpans(candidates, { allowNested: true }).map((e) => ({ ...e, score: realScore.get(`${e.start}:${e.end}`)! }));
  const out: ScoredEntity[] = [];
  for (const e of kept) {
    out.push(e);
    if (!opts.multiType) continue;
    const k = w + (e.end - 1 - e.start);
    for (let t = 0; t < R; t++) {
      const p = pSym[(e.start * K + k) * R + t]!;
      if (types[t] !== e.type && p >= opts.threshold) out.push({ start: e.start, end: e.end, type: types[t]!, score: p });
    }
  }
  return out.sort((a, b) => a.start - b.start || a.end - b.end || b.score - a.score);
}

/** p_sym [L, K, R] from logits [L K, R]: the two orientations of each pair averaged. */
export function symmetricProbabilities(logits: tf.Tensor2D, L: number, w: number, average: 'probability' | 'logit'): tf.Tensor3D {
  return tf.tidy(() => {
    const z = tf.reshape(logits, [L, 2 * w + 1, logits.shape[1]]) as tf.Tensor3D;
    if (average === 'logit') return tf.sigmoid(tf.div(tf.add(z, rollFlip(z)), 2)) as tf.Tensor3D;
    const p = tf.sigmoid(z) as tf.Tensor3D;
    return tf.div(tf.add(p, rollFlip(p)), 2) as tf.Tensor3D;
  });
}

// ---------------------------------------------------------------------------------------------
// Model

export interface SenerOptions {
  /** LoRA on the encoder's Q and V (null = full fine-tuning) */
  lora: { rank: number; alpha: number } | null;
  /** whole-word-masking rate in training (0 = off) */
  wwm: number;
}

/** Counts over every segment passed to loss(): gold spans seen, and those the band cannot hold. */
export interface SpanStats {
  gold: number;
  dropped: number;
}

const SPECIAL_IDS = SPECIAL_TOKENS.map((_, id) => id);

export class SenerModel extends SegmentSpanModel {
  readonly method = 'sener';
  readonly tunesThreshold = true;
  readonly spanStats: SpanStats = { gold: 0, dropped: 0 };

  constructor(
    ctx: ModelContext,
    params: ParamStore,
    encoder: Encoder,
    readonly head: SenerHead,
    readonly options: SenerOptions,
    private readonly vocabSize: number,
  ) {
    super(ctx, params, encoder);
  }

  get threshold(): number {
    return this.head.cfg.threshold;
  }

  /** Input tokens of a training segment: whole-word masked when `wwm` > 0 (labels untouched). */
  protected override trainingInput(seg: Segment, rng: Rng): Segment {
    if (this.options.wwm <= 0) return seg;
    const { input } = wholeWordMask(seg.tokenIds, seg.tokenWord, {
      rate: this.options.wwm,
      maskId: MASK_ID,
      vocabSize: this.vocabSize,
      specialIds: SPECIAL_IDS,
      rng,
    });
    return { ...seg, tokenIds: input };
  }

  protected segmentLoss(seg: Segment, x: tf.Tensor2D, rng: Rng): tf.Scalar {
    const L = seg.words;
    const w = spanWindow(this.head.cfg, L);
    const labels = bandLabels(seg.entities, L, w, this.types);
    this.spanStats.gold += seg.entities.length;
    this.spanStats.dropped += labels.dropped;
    return bandLoss(senerLogits(x, this.head, { training: true, rng }), labels.values, L, w, this.head.cfg.bce);
  }

  protected segmentScores(seg: Segment, x: tf.Tensor2D): tf.Tensor {
    const L = seg.words;
    const z = senerLogits(x, this.head, { training: false });
    return symmetricProbabilities(z, L, spanWindow(this.head.cfg, L), this.head.cfg.decodeAverage);
  }

  protected decodeSegment(seg: Segment, [p]: Float32Array[], threshold: number): ScoredEntity[] {
    return decodeBand(p!, seg.words, spanWindow(this.head.cfg, seg.words), this.types, { ...this.head.cfg, threshold });
  }

  protected goldScore(seg: Segment, [p]: Float32Array[], e: Entity): number | null {
    const w = spanWindow(this.head.cfg, seg.words);
    const span = e.end - 1 - e.start;
    if (span > w) return null;
    return p![(e.start * (2 * w + 1) + w + span) * this.types.length + this.typeIndex.get(e.type)!]!;
  }
}

/** With LoRA, only the LoRA pairs and the biases of the adapted Q and V train (PEFT bias="lora_only"). */
function trainsUnderLora(name: string): boolean {
  return /\.lora_[AB]$/.test(name) || /\.l\d+\.[qv]\.b$/.test(name);
}

export function createSenerModel(config: Config, ctx: ModelContext, params: ParamStore = new ParamStore(config.train.seed)): SenerModel {
  requireTypes('sener', ctx);
  const cfg = senerConfig(config);
  const { lora, wwm } = config.sener;
  const encoder = createEncoder(config, ctx, params, { lora: lora ? { rank: lora.rank, alpha: lora.alpha, targets: ['q', 'v'] } : null });
  if (lora) {
    for (const name of params.names(isEncoderParam)) params.get(name).trainable = trainsUnderLora(name);
  }
  const head = createSenerHead(params, config.encoder.hidden, ctx.types.length, cfg);
  initBiasToPrior(head.out, config.train.outputBiasPrior);
  return new SenerModel(ctx, params, encoder, head, { lora, wwm }, ctx.vocabSize);
}
