/**
 * Whole-word masking (Cui et al. 2021), as SeNER's reference code applies it (sener.md section 3):
 * words are shuffled and taken whole (all their sub-word tokens) until round(rate x tokens) tokens
 * are chosen (at least 1); a word that would overshoot the budget is skipped. Each chosen token
 * becomes [MASK] with probability 0.8, a random id with 0.1, and stays itself with 0.1. Special
 * tokens (tokenWord -1, or an id in specialIds) are never chosen.
 *
 * The budget counts every token of the sequence, specials included, like the reference code and
 * HF's DataCollatorForWholeWordMask. Random replacements are drawn from the vocabulary without the
 * special ids, so a stray [CLS] or [SEP] never appears mid-sequence.
 */
import { LongnerError } from '../errors.js';
import { shuffled, type Rng } from '../util/rng.js';

export interface WwmOptions {
  /** share of tokens to choose, 0.15 in the paper */
  rate: number;
  maskId: number;
  vocabSize: number;
  specialIds: number[];
  rng: Rng;
}

export interface WwmResult {
  /** the corrupted input ids */
  input: Int32Array;
  /** the original id at chosen positions, -1 elsewhere */
  targets: Int32Array;
}

export function wholeWordMask(tokenIds: Int32Array, tokenWord: Int32Array, opts: WwmOptions): WwmResult {
  const { rate, maskId, vocabSize, rng } = opts;
  if (tokenWord.length !== tokenIds.length) {
    throw new LongnerError(`whole-word masking: ${tokenIds.length} token ids but ${tokenWord.length} word indices`);
  }
  if (!(rate >= 0 && rate <= 1)) throw new LongnerError(`whole-word masking: rate must be in [0, 1], got ${rate}`);
  const special = new Set(opts.specialIds);
  if (vocabSize <= special.size) throw new LongnerError('whole-word masking: the vocabulary holds only special tokens');

  const tokensOf = new Map<number, number[]>();
  for (let t = 0; t < tokenIds.length; t++) {
    const w = tokenWord[t]!;
    if (w < 0 || special.has(tokenIds[t]!)) continue;
    const list = tokensOf.get(w);
    if (list) list.push(t);
    else tokensOf.set(w, [t]);
  }

  const input = Int32Array.from(tokenIds);
  const targets = new Int32Array(tokenIds.length).fill(-1);
  // rate 0 switches masking off (the at-least-one rule is for short sequences, not for this).
  if (rate === 0) return { input, targets };
  const budget = Math.max(1, Math.round(rate * tokenIds.length));
  let chosen = 0;
  for (const w of shuffled([...tokensOf.keys()], rng)) {
    if (chosen >= budget) break;
    const tokens = tokensOf.get(w)!;
    if (chosen + tokens.length > budget) continue;
    chosen += tokens.length;
    for (const t of tokens) {
      targets[t] = tokenIds[t]!;
      const r = rng.next();
      if (r < 0.8) input[t] = maskId;
      else if (r < 0.9) input[t] = randomNonSpecial(vocabSize, special, rng);
    }
  }
  return { input, targets };
}

function randomNonSpecial(vocabSize: number, special: Set<number>, rng: Rng): number {
  for (;;) {
    const id = rng.int(0, vocabSize);
    if (!special.has(id)) return id;
  }
}
