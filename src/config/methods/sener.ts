/** Options of the sener method (see src/models/sener.ts); every option typed, defaulted and described. */
import { z } from 'zod';
import { posInt, section } from '../sections.js';

/*
 * Reference values: THUDM/scholar-profiling `sener/` (research/sener.md 2, 3 and 7): train.sh
 * (cnn_dim 32, biaffine_size 100, chunks_size 128, cnn_depth 2), models/model.py (MLP dropout 0.4),
 * models/cnn.py (attn_dropout 0.2, use_tri_bias), train.py (LoRA r 8, alpha 16 on query_proj and
 * value_proj, bias "lora_only"), utils/data_loader.py (whole-word masking 0.15), models/metrics.py
 * (decoding). The attention pattern, arrow window and LogN of the encoder are `encoder.attention`,
 * `encoder.window` and `encoder.logN`; segment overlap is `segment.overlap`.
 */
const LoraSection = section({
  rank: posInt().default(8).describe('LoRA rank r (reference: 8).'),
  alpha: z.number().positive().default(16).describe('LoRA alpha; the update is scaled by alpha / r (reference: 16).'),
});

export const SenerSection = section({
  window: posInt()
    .nullable()
    .default(null)
    .describe(
      'One-sided BiSPA window w in WORDS: the band keeps the pairs at most w words apart, as L x (2w + 1) cells, so spans longer ' +
        'than w + 1 words cannot be represented (they are dropped from the labels and counted); raise it to lift that cap. ' +
        'null = the value of encoder.window, which is the arrow-attention window in sub-word TOKENS (reference: both 128).',
    ),
  biaffineSize: posInt().default(100).describe('Width d of the start/end MLPs feeding the biaffine layer (reference biaffine_size: 100).'),
  cnnDim: posInt()
    .multipleOf(2)
    .default(32)
    .describe('Channels c of the band, also the single-head BiSPA attention width; even, for RoPE (reference cnn_dim: 32).'),
  depth: z
    .number()
    .int()
    .min(0)
    .default(2)
    .describe('BiSPA blocks (horizontal and vertical attention, fusion, two masked 3x3 convolutions) (reference cnn_depth: 2).'),
  mlpDropout: z.number().min(0).lt(1).default(0.4).describe('Dropout before the start/end MLPs and on [h; 1] in the linear biaffine term (reference: 0.4).'),
  attnDropout: z
    .number()
    .min(0)
    .lt(1)
    .default(0.2)
    .describe('Dropout of each BiSPA block: attention probabilities, fused attention output, convolution output (reference attn_dropout: 0.2).'),
  bispa: z
    .union([z.boolean(), z.literal('full')])
    .default(true)
    .describe(
      "true runs the BiSPA blocks on the band. 'full' is the paper's \"w/o BiSPA\" (Table 3): no band, the biaffine tensor " +
        'and the same blocks on the whole L x L grid of pairs (plus-shaped attention as in UTC-IE, O(L^3) memory), every span ' +
        'representable. false keeps the band and sends it straight to the output layer, without the blocks (reference: true).',
    ),
  unrollVertical: z
    .boolean()
    .default(false)
    .describe(
      'Roll the vertical-attention output back before fusing it, so cell (i, k) fuses the row and the column context of its own pair. ' +
        "false reproduces the reference code: the vertical output stays in the roll+flip frame, so cell (i, k) fuses its pair's row " +
        'context with the column context of the transposed pair (sener.md 2.3) (reference: false).',
    ),
  lowMemory: z
    .boolean()
    .default(false)
    .describe(
      "BiSPA's row and column attention as one fused native kernel each way, keeping none of the L x (2w + 1) x (2w + 1) scores, " +
        'probabilities or dropout masks: the backward pass recomputes the probabilities, and the dropout mask is drawn from a ' +
        'counter (same rate, different draws than the stored mask). Off the native engine the same counter mask goes through the ' +
        'stock-op composition. false = the reference composition (reference: false).',
    ),
  lora: LoraSection.nullable()
    .default({ rank: 8, alpha: 16 })
    .describe(
      'LoRA on the Q and V projections of every encoder layer: the other encoder weights are frozen and only the LoRA pairs and ' +
        'the Q/V biases train (PEFT bias="lora_only"); null = full fine-tuning of the encoder (the "w/o LoRA" ablation) ' +
        '(reference: r 8, alpha 16, dropout 0).',
    ),
  wwm: z
    .number()
    .min(0)
    .max(1)
    .default(0.15)
    .describe(
      'Whole-word-masking share of the input tokens corrupted in training (input augmentation only, labels unchanged); 0 = off (the "w/o WWM" ablation) (reference: 0.15).',
    ),
  decodeAverage: z
    .enum(['probability', 'logit'])
    .default('probability')
    .describe(
      "How a span's two cells are combined before the threshold: 'probability' averages sigmoid(z) of (i -> j) and (j -> i); " +
        "'logit' averages the logits and then applies the sigmoid, the paper's 'P > 0' reading (reference code: probability).",
    ),
  multiType: z
    .boolean()
    .default(false)
    .describe(
      'Emit every type whose averaged probability reaches eval.threshold for a kept span, instead of only the best one; matters for ' +
        'Profiling-07, where some spans carry two gold types (reference: false, one type per span).',
    ),
  referenceSortBug: z
    .boolean()
    .default(false)
    .describe(
      "Reproduce the reference decoder's sort key, which reads a span's confidence from the column of its offset without adding w " +
        "(i.e. from another cell of the same row); it only changes which of two crossing spans survives. false = sort by the span's own " +
        'score (reference code: true, a bug).',
    ),
});
