/**
 * Span decoding shared by the grid-scoring methods (CNN-NER, UTC-IE, SeNER).
 *
 * resolveSpans is the greedy conflict rule of the CNN-NER reference code
 * (`metrics_utils.py::filter_clashed_by_priority`), which SeNER's decoder copies (research/sener.md 2.5):
 * candidates are visited by score, highest first, and one is kept unless
 * - its span (start, end) was already kept, with any type: one type per span, and since the
 *   visit is by score the kept type is the span's best (argmax) type;
 * - it crosses a kept span (the two overlap and neither contains the other); with
 *   `allowNested: false` any overlap at all rejects it.
 * Ties in score are broken by (start, end, type) ascending so the result never depends on the
 * order of the input. (The reference sorts (score, span) tuples in reverse, so its ties go to the
 * later span; ties between real-valued probabilities are rare enough that this does not matter.)
 *
 * gridCandidates turns the per-cell probabilities of a full L x L x R grid into candidates, as the
 * reference NERMetric does: optionally average cell (i, j) with its mirror (j, i), then for every
 * i <= j take the best type, and keep the span if that probability reaches the threshold.
 */
import type { ScoredEntity } from '../data/types.js';

export interface ResolveOptions {
  /** true: nested spans may both be kept, only crossing spans conflict (reference default for nested NER). */
  allowNested: boolean;
}

/** Word ranges are [start, end) throughout. */
function overlaps(a: ScoredEntity, b: ScoredEntity): boolean {
  return a.start < b.end && b.start < a.end;
}

function nested(a: ScoredEntity, b: ScoredEntity): boolean {
  return (a.start <= b.start && b.end <= a.end) || (b.start <= a.start && a.end <= b.end);
}

function byScoreThenPosition(a: ScoredEntity, b: ScoredEntity): number {
  return b.score - a.score || a.start - b.start || a.end - b.end || (a.type < b.type ? -1 : a.type > b.type ? 1 : 0);
}

/** The kept spans, in the order they were kept (highest score first). O(n log n + n k) for k kept. */
export function resolveSpans(candidates: readonly ScoredEntity[], opts: ResolveOptions): ScoredEntity[] {
  const kept: ScoredEntity[] = [];
  const seen = new Set<string>();
  for (const c of [...candidates].sort(byScoreThenPosition)) {
    const key = `${c.start}:${c.end}`;
    if (seen.has(key)) continue;
    const clash = kept.some((k) => overlaps(c, k) && (!opts.allowNested || !nested(c, k)));
    if (clash) continue;
    seen.add(key);
    kept.push({ ...c });
  }
  return kept;
}

export interface GridCandidateOptions {
  /** Probability a span needs (the reference's 0.5). */
  threshold: number;
  /** Average p(i, j) with p(j, i) first (reference CNN-NER and UTC-IE: the labels are symmetric). */
  symmetric: boolean;
}

/**
 * Candidates from `probs`, the sigmoid outputs of an L x L x R grid in row-major order
 * (cell (i, j) type r at (i * L + j) * R + r), where cell (i, j) is the span of words i..j.
 * One candidate per span at most: its best type.
 */
export function gridCandidates(probs: ArrayLike<number>, L: number, types: readonly string[], opts: GridCandidateOptions): ScoredEntity[] {
  const R = types.length;
  if (probs.length !== L * L * R) throw new Error(`gridCandidates: ${probs.length} probabilities for a ${L} x ${L} x ${R} grid`);
  const out: ScoredEntity[] = [];
  for (let i = 0; i < L; i++) {
    for (let j = i; j < L; j++) {
      const at = (i * L + j) * R;
      const mirror = (j * L + i) * R;
      let best = -1;
      let bestScore = -Infinity;
      for (let r = 0; r < R; r++) {
        const p = opts.symmetric ? (probs[at + r]! + probs[mirror + r]!) / 2 : probs[at + r]!;
        if (p > bestScore) {
          bestScore = p;
          best = r;
        }
      }
      if (best >= 0 && bestScore >= opts.threshold) out.push({ start: i, end: j + 1, type: types[best]!, score: bestScore });
    }
  }
  return out;
}
