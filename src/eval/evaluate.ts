/**
 * Document-level evaluation of a SpanModel: predict every segment, stitch each document's segments
 * back together (merge.ts, the reference rule), score against the full documents' gold entities.
 *
 * Gold is always the documents' own entity lists, never the segments' labels: an entity cut by a
 * segment boundary, or longer than a method's span limit, stays in gold and counts as a false
 * negative when it is not predicted.
 *
 * Segments are batched in document order (each document's segments by index), `batchSize` at a
 * time; a batch may hold segments of several documents, as the reference's evaluation loader does.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Segment } from '../data/segmenter.js';
import type { Document, ScoredEntity } from '../data/types.js';
import type { Batch, Inspection, SpanModel } from '../models/span-model.js';
import { oracleCeiling, summarizeScores, type Diagnostics, type ThresholdScore } from './diagnostics.js';
import { backendMemory } from '../backend/index.js';
import { mergeSegmentPredictions, type SegmentSpans } from './merge.js';
import { scoreEntities, type Metrics } from './metrics.js';
import { measureStep, timeStep } from '../backend/step.js';

export interface Evaluation {
  /** Scores at the evaluation's threshold. */
  metrics: Metrics;
  /** Merged predictions per document id, document word offsets, at the evaluation's threshold. */
  predictions: Map<string, ScoredEntity[]>;
  /** The threshold decoded at (the model's own unless EvaluateOptions.threshold); null for a method without one. */
  threshold: number | null;
  /** Overall scores at each EvaluateOptions.sweep threshold, from the same forward passes; empty without a sweep. */
  sweep: ThresholdScore[];
  diagnostics: Diagnostics;
  /** Wall time of prediction and merging, divided by the number of documents; null without documents. */
  msPerDocument: number | null;
  /** Peak live tensor bytes while predicting the batch with the longest segment (probe.ts); null when not profiled. */
  peakBytesInference: number | null;
  /** Wasm heap size after the evaluation (its high-water mark); null off wasm. */
  wasmHeapBytes: number | null;
  /** Resident set after the evaluation. */
  rssBytes: number;
}

export interface EvaluateOptions {
  /** Profile one batch (the one holding the longest segment) for peak memory; default true. */
  profile?: boolean;
  /** Decoding threshold; default the model's own. */
  threshold?: number;
  /**
   * Also score these thresholds (a model that tunes its threshold, with inspect()): decoding again
   * from the same forward passes, so a sweep costs decoding time only. Ignored for other models.
   */
  sweep?: readonly number[];
}

/** Groups segments by document, each document's segments sorted by their index. */
export function groupSegments(segments: readonly Segment[]): Map<string, Segment[]> {
  const out = new Map<string, Segment[]>();
  for (const s of segments) {
    let list = out.get(s.docId);
    if (!list) {
      list = [];
      out.set(s.docId, list);
    }
    list.push(s);
  }
  for (const list of out.values()) list.sort((a, b) => a.index - b.index);
  return out;
}

interface Plan {
  batches: Batch[];
  /** Per document, in order: its segments (the same objects as in the batches). */
  docSegments: { id: string; segments: Segment[] }[];
}

function plan(docs: readonly Document[], segmentsByDoc: ReadonlyMap<string, readonly Segment[]>, batchSize: number): Plan {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`evaluation batch size must be a positive integer, got ${batchSize}`);
  const docSegments: Plan['docSegments'] = [];
  const all: Segment[] = [];
  const seen = new Set<string>();
  for (const doc of docs) {
    if (seen.has(doc.id)) throw new Error(`document id "${doc.id}" appears twice in the evaluation set`);
    seen.add(doc.id);
    const segments = segmentsByDoc.get(doc.id);
    // The segmenter gives every document at least one segment, so none means the caller paired the wrong lists.
    if (segments === undefined || segments.length === 0) throw new Error(`document "${doc.id}" has no segments to predict`);
    const ordered = [...segments].sort((a, b) => a.index - b.index);
    docSegments.push({ id: doc.id, segments: ordered });
    all.push(...ordered);
  }
  const batches: Batch[] = [];
  for (let i = 0; i < all.length; i += batchSize) batches.push({ segments: all.slice(i, i + batchSize) });
  return { batches, docSegments };
}

/**
 * One batch's spans at each of `thresholds` (index 0 is the evaluation's) and, when the model can
 * inspect, its gold scores; in a tidy scope, so a tensor the model forgets to dispose cannot pile up.
 */
function predictBatch(model: SpanModel, batch: Batch, thresholds: readonly number[], inspect = true): Inspection[] {
  let out: Inspection[] = [];
  tf.tidy(() => {
    out =
      model.inspect === undefined || !inspect
        ? model.predict(batch, { threshold: thresholds[0] }).map((spans) => ({ spans: [spans], goldScores: [] }))
        : model.inspect(batch, thresholds);
  });
  if (out.length !== batch.segments.length) {
    throw new Error(`${model.method}.predict returned ${out.length} span lists for ${batch.segments.length} segments`);
  }
  return out;
}

function mergeAll(p: Plan, spansOf: Map<Segment, ScoredEntity[]>): Map<string, ScoredEntity[]> {
  const predictions = new Map<string, ScoredEntity[]>();
  for (const { id, segments } of p.docSegments) {
    const parts: SegmentSpans[] = segments.map((s) => ({ wordOffset: s.wordOffset, spans: spansOf.get(s) ?? [] }));
    predictions.set(id, mergeSegmentPredictions(parts));
  }
  return predictions;
}

function collect(found: Map<Segment, Inspection>, batch: Batch, out: Inspection[]): void {
  batch.segments.forEach((s, i) => {
    found.set(s, out[i]!);
  });
}

/** The spans of every segment at threshold index t. */
function spansAt(found: Map<Segment, Inspection>, t: number): Map<Segment, ScoredEntity[]> {
  return new Map([...found].map(([seg, ins]) => [seg, ins.spans[t] ?? []]));
}

function count(predictions: Map<string, ScoredEntity[]>): number {
  let n = 0;
  for (const spans of predictions.values()) n += spans.length;
  return n;
}

/** Predicted entities per document (document word offsets), segments merged with the reference rule. */
export function predictDocuments(
  model: SpanModel,
  docs: readonly Document[],
  segmentsByDoc: ReadonlyMap<string, readonly Segment[]>,
  batchSize: number,
  threshold?: number,
): Map<string, ScoredEntity[]> {
  const p = plan(docs, segmentsByDoc, batchSize);
  const spansOf = new Map<Segment, ScoredEntity[]>();
  for (const batch of p.batches) {
    const out = predictBatch(model, batch, [threshold ?? model.threshold ?? 0.5], false);
    batch.segments.forEach((s, i) => {
      spansOf.set(s, out[i]!.spans[0]!);
    });
  }
  return mergeAll(p, spansOf);
}

/**
 * predictDocuments plus strict micro scores against the documents' gold entities, latency per
 * document and the peak inference memory of the largest batch.
 */
export async function evaluateDocuments(
  model: SpanModel,
  docs: readonly Document[],
  segmentsByDoc: ReadonlyMap<string, readonly Segment[]>,
  batchSize: number,
  opts: EvaluateOptions = {},
): Promise<Evaluation> {
  const p = plan(docs, segmentsByDoc, batchSize);
  const threshold = opts.threshold ?? model.threshold ?? null;
  const sweep = model.tunesThreshold === true && model.inspect !== undefined ? [...new Set(opts.sweep ?? [])] : [];
  const thresholds = [threshold ?? 0.5, ...sweep];
  const found = new Map<Segment, Inspection>();
  // Memory grows with segment length, so the batch holding the longest segment is the one to profile.
  let probeIndex = -1;
  let longest = -1;
  p.batches.forEach((b, i) => {
    const len = Math.max(...b.segments.map((s) => s.tokenIds.length));
    if (len > longest) [longest, probeIndex] = [len, i];
  });
  let ms = 0;
  let peakBytesInference: number | null = null;
  for (const [i, batch] of p.batches.entries()) {
    if (i === probeIndex && opts.profile !== false) {
      const m = await measureStep(() => predictBatch(model, batch, thresholds));
      collect(found, batch, m.value);
      ms += m.ms;
      peakBytesInference = m.peakBytes;
    } else {
      const m = timeStep(() => predictBatch(model, batch, thresholds));
      collect(found, batch, m.value);
      ms += m.ms;
    }
  }
  const merged = timeStep(() => mergeAll(p, spansAt(found, 0)));
  ms += merged.ms;
  const predictions = merged.value;
  const goldScores: number[] = [];
  for (const ins of found.values()) for (const g of ins.goldScores) if (g !== null) goldScores.push(g);
  const inspected = model.inspect !== undefined;
  return {
    metrics: scoreEntities(docs, predictions),
    predictions,
    threshold,
    sweep: sweep.map((t, i) => {
      const at = mergeAll(p, spansAt(found, i + 1));
      return { threshold: t, overall: scoreEntities(docs, at).overall, predicted: count(at) };
    }),
    diagnostics: {
      predicted: count(predictions),
      goldScores: inspected ? summarizeScores(goldScores, threshold ?? 0.5) : null,
      oracle: oracleCeiling(docs, found.keys(), inspected ? (seg, i) => found.get(seg)?.goldScores[i] != null : null),
    },
    msPerDocument: docs.length === 0 ? null : ms / docs.length,
    peakBytesInference,
    // The wasm heap never shrinks, so its size now is the peak so far.
    wasmHeapBytes: backendMemory().wasmHeapBytes ?? null,
    rssBytes: process.memoryUsage().rss,
  };
}
