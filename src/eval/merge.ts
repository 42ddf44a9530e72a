/**
 * Stitches per-segment predictions back into one document's predictions.
 *
 * The rule is the SeNER reference code's (models/metrics.py, research/sener.md 1.4):
 * - Spans are shifted by their segment's word offset.
 * - Segments are processed in the order given. A span that overlaps (shares at least one word
 *   with) a span of the SAME type collected from an EARLIER segment is replaced by the union of
 *   the two, and the earlier span is removed; if it overlaps several earlier spans, one union is
 *   made with each of them (pairwise, as the reference does), which keeps nested earlier spans apart.
 * - Spans of the same segment are never united with each other: the decoder already chose them,
 *   and same-type nested spans inside one segment are legitimate.
 * - Different types never merge. Exact duplicates (start, end, type) collapse.
 * - A union or a collapsed duplicate keeps the highest score of the spans it came from.
 * Output is sorted by (start, end, type).
 */
import type { ScoredEntity } from '../data/types.js';

export interface SegmentSpans {
  wordOffset: number;
  spans: ScoredEntity[];
}

export function mergeSegmentPredictions(parts: readonly SegmentSpans[]): ScoredEntity[] {
  // Collected spans from earlier segments, grouped by type so the overlap scan skips other types.
  const collected = new Map<string, Map<string, ScoredEntity>>();

  for (const part of parts) {
    const added = new Map<string, ScoredEntity>();
    const removed: { type: string; key: string }[] = [];
    for (const span of part.spans) {
      const start = span.start + part.wordOffset;
      const end = span.end + part.wordOffset;
      let united = false;
      const sameType = collected.get(span.type);
      if (sameType) {
        for (const [key, prev] of sameType) {
          if (prev.start < end && start < prev.end) {
            united = true;
            removed.push({ type: span.type, key });
            keepMax(added, {
              start: Math.min(prev.start, start),
              end: Math.max(prev.end, end),
              type: span.type,
              score: Math.max(prev.score, span.score),
            });
          }
        }
      }
      if (!united) keepMax(added, { start, end, type: span.type, score: span.score });
    }
    for (const { type, key } of removed) collected.get(type)?.delete(key);
    for (const span of added.values()) {
      let sameType = collected.get(span.type);
      if (!sameType) {
        sameType = new Map();
        collected.set(span.type, sameType);
      }
      keepMax(sameType, span);
    }
  }

  const out: ScoredEntity[] = [];
  for (const byType of collected.values()) out.push(...byType.values());
  return out.sort((a, b) => a.start - b.start || a.end - b.end || (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
}

function spanKey(s: ScoredEntity): string {
  return JSON.stringify([s.start, s.end, s.type]);
}

function keepMax(into: Map<string, ScoredEntity>, span: ScoredEntity): void {
  const key = spanKey(span);
  const prev = into.get(key);
  if (!prev || span.score > prev.score) into.set(key, span);
}
