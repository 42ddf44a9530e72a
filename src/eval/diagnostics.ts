/**
 * What an evaluation says besides P/R/F1, so that "predicted nothing" and "predicted wrong" can be
 * told apart: how many spans were predicted, where the model puts its gold cells, and how much of the
 * gold a method can reach at all (the oracle ceiling).
 *
 * The oracle ceiling counts the gold entities (unique (document, start, end, type), as the metric
 * does) that some segment holds whole and whose span the method can represent (SeNER's band, the
 * span limit of span enumeration and Global Pointer). A perfect model of that method reaches recall
 * = reachable / gold at precision 1, so F1 2R / (1 + R) bounds any of its runs.
 */
import { z } from 'zod';
import type { Segment } from '../data/segmenter.js';
import type { Document } from '../data/types.js';
import { PrfSchema } from './metrics.js';

export const ScoreSummarySchema = z.strictObject({
  /** Gold entities scored: one per segment that holds the entity whole, within the span limit. */
  count: z.number().int().min(0),
  mean: z.number(),
  p10: z.number(),
  p25: z.number(),
  p50: z.number(),
  p75: z.number(),
  p90: z.number(),
  max: z.number(),
  /** Share of them at or above the evaluation's threshold. */
  atThreshold: z.number().min(0).max(1),
});
export type ScoreSummary = z.infer<typeof ScoreSummarySchema>;

export const OracleSchema = z.strictObject({
  /** Unique gold entities of the evaluated documents. */
  gold: z.number().int().min(0),
  /** Of those, the ones the method can predict. */
  reachable: z.number().int().min(0),
  /** Cut by a segment boundary (no segment holds them whole). */
  cutBySegments: z.number().int().min(0),
  /** Held whole by a segment but longer than the method's span limit; null when the model does not say. */
  beyondSpanLimit: z.number().int().min(0).nullable(),
  /** reachable / gold (0 without gold). */
  recall: z.number().min(0).max(1),
  /** 2R / (1 + R): the F1 of predicting exactly the reachable gold. */
  f1: z.number().min(0).max(1),
});
export type Oracle = z.infer<typeof OracleSchema>;

export const ThresholdScoreSchema = z.strictObject({
  threshold: z.number(),
  overall: PrfSchema,
  /** Spans predicted (after merging segments). */
  predicted: z.number().int().min(0),
});
export type ThresholdScore = z.infer<typeof ThresholdScoreSchema>;

export const DiagnosticsSchema = z.strictObject({
  /** Spans predicted at the evaluation's threshold (after merging segments). */
  predicted: z.number().int().min(0),
  /** Probabilities the model gives the reachable gold; null when the model cannot say (no inspect()). */
  goldScores: ScoreSummarySchema.nullable(),
  oracle: OracleSchema,
});
export type Diagnostics = z.infer<typeof DiagnosticsSchema>;

/** Linear-interpolation quantile of sorted values (q in [0, 1]). */
function quantile(sorted: readonly number[], q: number): number {
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

/** Summary of gold-entity probabilities; null when there are none. */
export function summarizeScores(scores: readonly number[], threshold: number): ScoreSummary | null {
  if (scores.length === 0) return null;
  const sorted = [...scores].sort((a, b) => a - b);
  return {
    count: sorted.length,
    mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
    p10: quantile(sorted, 0.1),
    p25: quantile(sorted, 0.25),
    p50: quantile(sorted, 0.5),
    p75: quantile(sorted, 0.75),
    p90: quantile(sorted, 0.9),
    max: sorted[sorted.length - 1]!,
    atThreshold: sorted.filter((s) => s >= threshold).length / sorted.length,
  };
}

function key(docId: string, start: number, end: number, type: string): string {
  return JSON.stringify([docId, start, end, type]);
}

/**
 * The oracle ceiling of `docs` cut into `segments`. `reachable(seg, i)` says whether the method can
 * predict entity i of seg.entities; null = the model does not say (every entity held whole counts).
 */
export function oracleCeiling(docs: readonly Document[], segments: Iterable<Segment>, reachable: ((seg: Segment, i: number) => boolean) | null): Oracle {
  const gold = new Set<string>();
  for (const d of docs) for (const e of d.entities) gold.add(key(d.id, e.start, e.end, e.type));
  const held = new Set<string>();
  const canPredict = new Set<string>();
  for (const seg of segments) {
    seg.entities.forEach((e, i) => {
      const k = key(seg.docId, e.start + seg.wordOffset, e.end + seg.wordOffset, e.type);
      held.add(k);
      if (reachable === null || reachable(seg, i)) canPredict.add(k);
    });
  }
  let inSegments = 0;
  let reach = 0;
  for (const k of gold) {
    if (held.has(k)) inSegments++;
    if (canPredict.has(k)) reach++;
  }
  const recall = gold.size === 0 ? 0 : reach / gold.size;
  return {
    gold: gold.size,
    reachable: reach,
    cutBySegments: gold.size - inSegments,
    beyondSpanLimit: reachable === null ? null : inSegments - reach,
    recall,
    f1: recall === 0 ? 0 : (2 * recall) / (1 + recall),
  };
}

/** The best threshold of a sweep by F1; ties go to the one nearest `prefer` (the reference 0.5), then the lower. */
export function bestThreshold(sweep: readonly ThresholdScore[], prefer = 0.5): ThresholdScore | null {
  let best: ThresholdScore | null = null;
  for (const s of sweep) {
    if (best === null || s.overall.f1 > best.overall.f1) {
      best = s;
      continue;
    }
    if (s.overall.f1 < best.overall.f1) continue;
    // Distances compared with a tolerance: 0.7 - 0.5 and 0.5 - 0.3 differ in the last bit.
    const d = Math.abs(s.threshold - prefer) - Math.abs(best.threshold - prefer);
    if (d < -1e-9 || (Math.abs(d) <= 1e-9 && s.threshold < best.threshold)) best = s;
  }
  return best;
}
