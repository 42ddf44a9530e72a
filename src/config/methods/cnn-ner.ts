/** Options of the cnn-ner method (see src/models/cnn-ner.ts); every option typed, defaulted and described. */
import { z } from 'zod';
import { posInt, section } from '../sections.js';

/*
 * Reference values: the CNN-NER adaptation that sits beside SeNER's code (THUDM/scholar-profiling
 * `bio_models/CNN_base/train_CNN_ds.py`, DeBERTa-v3-large: cnn_dim 120, biaffine 200, depth 3,
 * logit_drop 0.1, size_embed_dim 25; research/sener.md 6) and its model code, a copy of
 * yhcc/CNN_Nested_NER `model/model.py` (MLP dropout 0.4, 30 span-size buckets).
 */
export const CnnNerSection = section({
  biaffineSize: posInt().default(200).describe('Width d of the start/end MLPs feeding the biaffine layer (reference: 200).'),
  cnnDim: posInt().default(120).describe('Channels c of the L x L biaffine grid and of the 3x3 convolutions (reference: 120).'),
  depth: z.number().int().min(0).default(3).describe('Masked 3x3 convolution layers over the grid; 0 = biaffine only (reference: 3).'),
  dropout: z
    .number()
    .min(0)
    .lt(1)
    .default(0.4)
    .describe('Dropout before the start/end MLPs, and on their outputs and the span-size embedding in the linear biaffine term (reference: 0.4).'),
  logitDropout: z.number().min(0).lt(1).default(0.1).describe('Dropout on the biaffine grid entering the convolutions (reference: 0.1).'),
  sizeEmbedDim: z
    .number()
    .int()
    .min(0)
    .default(25)
    .describe(
      'Width of the span-size embedding: the size j - i of cell (i, j), clipped to [-15, 14] (30 buckets), is embedded, ' +
        "dropped out with `dropout` and concatenated to [h'_i; t'_j] before the linear biaffine term W; 0 = no size embedding " +
        '(reference size_embed_dim: 25).',
    ),
  symmetric: z
    .boolean()
    .default(true)
    .describe(
      'Label each gold span at (start, end) and at (end, start), train on every cell of the square grid, and average the two ' +
        'probabilities when decoding (reference: true). false: only the upper triangle (start <= end) is trained and read.',
    ),
});
