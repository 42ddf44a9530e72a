/** Options of the utc-ie method (see src/models/utc-ie.ts); every option typed, defaulted and described. */
import { z } from 'zod';
import { posInt, section } from '../sections.js';

/*
 * Reference values: yhcc/utcie `train_ner.py` defaults (cross_dim 32, cross_depth 3, biaffine 200,
 * attn_dropout 0.15, use_ln 1, use_s2 1, use_tri_bias true, use_size_embed off, symmetric decoding),
 * `model/unify_model.py` (drop_p 0.4 on the encoder output, before the MLPs and in the linear term) and
 * `model/cross_transformer.py` (the untransposed column branch; with use_ln > 0 its `scale` flag
 * divides the RoPE tables by sqrt(cross_dim) and initialises the triangle embedding with gain 0.1).
 */
export const UtcIeSection = section({
  biaffineSize: posInt().default(200).describe('Width d of the start/end MLPs feeding the biaffine layer (reference: 200).'),
  cnnDim: posInt()
    .multipleOf(2)
    .default(32)
    .describe('Channels c of the L x L grid, also the (single-head) attention width; even, for RoPE (reference cross_dim: 32).'),
  depth: z
    .number()
    .int()
    .min(0)
    .default(3)
    .describe('Plus-shaped attention blocks (row and column attention, fusion, two masked 3x3 convolutions); 0 = biaffine only (reference: 3).'),
  dropout: z
    .number()
    .min(0)
    .lt(1)
    .default(0.4)
    .describe('Dropout before the start/end MLPs and on their outputs in the linear biaffine term (reference: 0.4).'),
  encoderOutputDropout: z
    .number()
    .min(0)
    .lt(1)
    .default(0.4)
    .describe(
      "Dropout on the encoder's sub-word states before word pooling, on top of `dropout` before the MLPs; 0 = none " +
        '(reference unify_model.py `self.dropout(last_hidden_states)`: drop_p 0.4).',
    ),
  attnDropout: z
    .number()
    .min(0)
    .lt(1)
    .default(0.15)
    .describe('Dropout on the attention probabilities, the fused attention output and the convolution output of each block (reference: 0.15).'),
  lowMemory: z
    .boolean()
    .default(false)
    .describe(
      'Row and column attention as the fused native kernel of sener.lowMemory (none of the L x L x L attention tensors kept; ' +
        'probabilities recomputed in the backward pass, dropout from a counter): the "every method at its most efficient" ' +
        'comparison. false = the reference composition (reference: false).',
    ),
  sizeEmbedDim: z
    .number()
    .int()
    .min(0)
    .default(0)
    .describe(
      "Width of a span-size embedding in the linear biaffine term, as CNN-NER's but with 50 buckets (the size j - i of cell " +
        '(i, j) clipped to [-25, 24]), dropped out like the MLP outputs; 0 = none (reference: off; its `use_size_embed 1` ' +
        'switch embeds sizes in 100 dimensions).',
    ),
  biaffineNorm: z
    .boolean()
    .default(true)
    .describe('LayerNorm the bilinear and the linear biaffine terms separately before adding them (reference use_ln=1: true).'),
  triangleEmbedding: z
    .boolean()
    .default(true)
    .describe('Add a learned embedding that tells upper-triangle cells (start <= end) from lower ones at each block (reference use_tri_bias: true).'),
  triangleInitGain: z
    .number()
    .positive()
    .default(0.1)
    .describe(
      'Gain of the xavier-normal initialisation of the triangle embedding, so it starts as a small bias on the LayerNormed grid ' +
        '(reference: 0.1 under use_ln > 0, the `scale` flag of cross_transformer.py; 1 without).',
    ),
  scaleRope: z
    .boolean()
    .default(true)
    .describe(
      "Divide RoPE's sin/cos tables by sqrt(cnnDim) in the row and column attention, which shrinks the rotated queries and keys " +
        'and so divides the attention logits by cnnDim on top of the usual sqrt(cnnDim) ' +
        '(reference: true under use_ln > 0, the `scale` flag of cross_transformer.py; false = plain RoPE, as SeNER).',
    ),
  columnTransposeBack: z
    .boolean()
    .default(false)
    .describe(
      'Transpose the column-attention output back before fusing, so cell (i, j) fuses the context of its own row and column ' +
        "(the paper's plus shape). false reproduces the reference code, which fuses it untransposed: cell (i, j) then gets row i " +
        "and the column of its mirror cell (j, i), i.e. column i; SeNER's unrollVertical is the same choice (reference: false).",
    ),
  symmetric: z
    .boolean()
    .default(true)
    .describe(
      'Label each gold span at (start, end) and at (end, start), train on every cell of the square grid, and average the two ' +
        'probabilities when decoding (reference: true). false: only the upper triangle (start <= end) is trained and read.',
    ),
});
