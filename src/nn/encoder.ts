/**
 * Pre-LN transformer encoder: the framework's small language model.
 *
 * Symbols: T tokens, H = hidden, h heads of d_h = H / h, w the attention window, F the FFN width.
 * x_0 = E[ids] (token embedding only: RoPE on Q and K in every layer gives relative positions, so
 * the encoder runs at lengths it was not trained on), then per layer
 *   x = x + Dropout(W_o [attn_1(q_1, k_1, v_1); ...; attn_h(...)])   q_i = RoPE(LN_1(x) W_q,i) etc.
 *   x = x + Dropout(W_2 GELU(W_1 LN_2(x)))
 * and a final LN. Each head's q, k, v stay separate 2D [T, d_h] tensors (the fused projection weights
 * are sliced per head, layers.ts linearSplit). One sequence per call, no padding.
 *
 * Parameter names under `prefix` (default 'encoder'): tok_embed [V, H]; l{i}.ln1, l{i}.q, l{i}.k,
 * l{i}.v, l{i}.o, l{i}.ln2, l{i}.ffn1, l{i}.ffn2; ln_f. LoRA pairs appear as l{i}.q.lora_A / lora_B.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../util/rng.js';
import { checkpoint } from './checkpoint.js';
import { arrowAttention, bandPlan, fullAttention, logNFactor, windowAttention, type AttentionKind, type BandPlan, type LogNMode } from './attention.js';
import { createLayerNorm, createLinear, dropout, embedding, gelu, layerNorm, linear, linearSplit, type LinearWeights, type NormWeights } from './layers.js';
import type { ParamStore } from './params.js';
import { applyRope, ropeTables, type RopeTables } from './rope.js';

export interface EncoderConfig {
  vocabSize: number;
  layers: number;
  hidden: number;
  heads: number;
  ffn: number;
  dropout: number;
  attention: AttentionKind;
  /** one-sided window w in tokens (window and arrow) */
  window: number;
  /** LogN factor of the [CLS] row; arrow only (attention.ts logNFactor) */
  logN: LogNMode;
  lora?: { rank: number; alpha: number; targets: ('q' | 'v')[] } | null;
  /** Recompute each layer in the backward pass instead of keeping its intermediates (checkpoint.ts). */
  recompute?: boolean;
}

interface LayerWeights {
  ln1: NormWeights;
  q: LinearWeights;
  k: LinearWeights;
  v: LinearWeights;
  o: LinearWeights;
  ln2: NormWeights;
  ffn1: LinearWeights;
  ffn2: LinearWeights;
}

interface LayerInputs {
  l: LayerWeights;
  rope: RopeTables;
  band: BandPlan | null;
}

export class Encoder {
  readonly embed: tf.Variable<tf.Rank.R2>;
  private readonly layers: LayerWeights[];
  private readonly lnF: NormWeights;
  private readonly dh: number;

  /** Creates the parameters in `params` (or reuses them when they already exist, e.g. after a load). */
  constructor(
    readonly cfg: EncoderConfig,
    params: ParamStore,
    readonly prefix = 'encoder',
  ) {
    const { hidden: H, heads, ffn } = cfg;
    if (H % heads !== 0) throw new Error(`hidden ${H} is not divisible by ${heads} heads`);
    this.dh = H / heads;
    if (this.dh % 2 !== 0) throw new Error(`RoPE needs an even head size, got ${this.dh}`);
    this.embed = params.param(`${prefix}.tok_embed`, [cfg.vocabSize, H], { kind: 'normal', std: 0.02 }) as tf.Variable<tf.Rank.R2>;
    const loraFor = (t: 'q' | 'v') => (cfg.lora?.targets.includes(t) ? cfg.lora : null);
    this.layers = Array.from({ length: cfg.layers }, (_, i) => {
      const n = `${prefix}.l${i}`;
      return {
        ln1: createLayerNorm(params, `${n}.ln1`, H),
        q: createLinear(params, `${n}.q`, H, H, { lora: loraFor('q') }),
        k: createLinear(params, `${n}.k`, H, H),
        v: createLinear(params, `${n}.v`, H, H, { lora: loraFor('v') }),
        o: createLinear(params, `${n}.o`, H, H),
        ln2: createLayerNorm(params, `${n}.ln2`, H),
        ffn1: createLinear(params, `${n}.ffn1`, H, ffn),
        ffn2: createLinear(params, `${n}.ffn2`, ffn, H),
      };
    });
    this.lnF = createLayerNorm(params, `${prefix}.ln_f`, H);
  }

  /** Token states [T, hidden] for one real (unpadded) token sequence. */
  forward(tokenIds: Int32Array, opts: { training: boolean; rng?: Rng }): tf.Tensor2D {
    const T = tokenIds.length;
    if (T === 0) throw new Error('Encoder.forward needs at least one token');
    const { cfg } = this;
    const drop = <X extends tf.Tensor>(x: X): X => dropout(x, cfg.dropout, opts.training, opts.rng);
    return tf.tidy(() => {
      const rope = ropeTables(T, this.dh);
      const plan: BandPlan | null = cfg.attention === 'full' ? null : bandPlan(T, cfg.window, cfg.attention);
      const logN = cfg.attention === 'arrow' ? logNFactor(T, cfg.window, cfg.logN) : null;
      const attend = (q: tf.Tensor2D, k: tf.Tensor2D, v: tf.Tensor2D, band: BandPlan | null): tf.Tensor2D => {
        if (cfg.attention === 'full') return fullAttention(q, k, v);
        if (cfg.attention === 'window') return windowAttention(q, k, v, cfg.window, band!);
        return arrowAttention(q, k, v, cfg.window, logN, band!);
      };
      // The layer's tensors come in as one structure, so that checkpoint() can replay it on saved copies.
      const layer = (x: tf.Tensor2D, { l, rope: r, band }: LayerInputs): tf.Tensor2D => {
        const h = layerNorm(x, l.ln1);
        const qs = linearSplit(h, l.q, cfg.heads);
        const ks = linearSplit(h, l.k, cfg.heads);
        const vs = linearSplit(h, l.v, cfg.heads);
        const heads = qs.map((q, i) => attend(applyRope(q, r), applyRope(ks[i]!, r), vs[i]!, band));
        const merged = heads.length === 1 ? heads[0]! : (tf.concat(heads, 1) as tf.Tensor2D);
        const y: tf.Tensor2D = tf.add(x, drop(linear(merged, l.o)));
        const f = linear(gelu(linear(layerNorm(y, l.ln2), l.ffn1)), l.ffn2);
        return tf.add(y, drop(f));
      };
      let x: tf.Tensor2D = drop(embedding(this.embed, tokenIds));
      const recompute = cfg.recompute === true && opts.training;
      for (const l of this.layers) {
        const weights: LayerInputs = { l, rope, band: plan };
        x = recompute ? checkpoint(layer, x, weights, opts.rng) : layer(x, weights);
      }
      return layerNorm(x, this.lnF);
    });
  }
}
