/** Options of the global-pointer method (see src/models/global-pointer.ts); every option typed, defaulted and described. */
import { z } from 'zod';
import { posInt, section } from '../sections.js';

export const GlobalPointerSection = section({
  variant: z
    .enum(['gp', 'egp'])
    .default('gp')
    .describe("'gp': Global Pointer, per-type q/k heads (Su et al.); 'egp': Efficient Global Pointer, shared q/k plus per-type start/end terms."),
  headSize: posInt()
    .default(64)
    .refine((d) => d % 2 === 0, 'an even number (RoPE rotates pairs of dimensions)')
    .describe('Size d of each query and key vector (reference: 64); scores are divided by sqrt(d).'),
  rope: z.boolean().default(true).describe("Rotary position embedding on q and k (reference: on; without it GP lost 33-42 F1 on People's Daily)."),
  maxSpanWords: posInt()
    .nullable()
    .default(null)
    .describe(
      'null: score all L x L word pairs (the paper, O(types x L^2) memory). A number K: score only spans of at most K words, ' +
        'in an [L, K] band per type (O(types x L x K)); longer gold entities are left out of the labels and count as misses.',
    ),
});
