/** Options of the span-enum method (see src/models/span-enum.ts); every option typed, defaulted and described. */
import { z } from 'zod';
import { posInt, section } from '../sections.js';

export const SpanEnumSection = section({
  maxSpanWords: z
    .union([posInt(), z.literal('all')], { error: "a positive integer or 'all'" })
    .default(16)
    .describe(
      "Longest span enumerated, in words; 'all' enumerates every pair i <= j (L(L+1)/2 spans, the full memory-hungry baseline). " +
        'Longer gold entities are left out of the training labels and count as misses at evaluation.',
    ),
  widthEmbedding: posInt().default(32).describe('Size of the span-width embedding appended to [h_start; h_end].'),
  mlpHidden: posInt().default(256).describe('Hidden size of the span classifier MLP (Linear -> GELU -> dropout -> Linear to types + none).'),
  dropout: z.number().min(0).lt(1).default(0.1).describe('Dropout after the MLP hidden layer.'),
  noneWeight: z
    .number()
    .positive()
    .max(1)
    .default(1)
    .describe(
      'Weight of each none (non-entity) span in the cross-entropy mean; 1 = the classic unweighted loss. With about 400 ' +
        'candidate spans per gold entity the unweighted loss settles on predicting none everywhere for a long time; ' +
        'a smaller weight (the method configs use 0.05) is the usual remedy for that imbalance.',
    ),
});
