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
import type { Batch, SpanModel } from '../models/span-model.js';
import { backendMemory } from '../backend/index.js';
import { mergeSegmentPredictions, type SegmentSpans } from './merge.js';
import { scoreEntities, type Metrics } from './metrics.js';
import { measureStep, timeStep } from '../backend/step.js';

export interface Evaluation {
  metrics: Metrics;
  /** Merged predictions per document id, document word offsets. */
  predictions: Map<string, ScoredEntity[]>;
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

/** model.predict in a tidy scope, so a tensor the model forgets to dispose cannot pile up over a long evaluation. */
function predictBatch(model: SpanModel, batch: Batch): ScoredEntity[][] {
  let out: ScoredEntity[][] = [];
  tf.tidy(() => {
    out = model.predict(batch);
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

function collect(spansOf: Map<Segment, ScoredEntity[]>, batch: Batch, out: ScoredEntity[][]): void {
  batch.segments.forEach((s, i) => {
    spansOf.set(s, out[i]!);
  });
}

/** Predicted entities per document (document word offsets), segments merged with the reference rule. */
export function predictDocuments(
  model: SpanModel,
  docs: readonly Document[],
  segmentsByDoc: ReadonlyMap<string, readonly Segment[]>,
  batchSize: number,
): Map<string, ScoredEntity[]> {
  const p = plan(docs, segmentsByDoc, batchSize);
  const spansOf = new Map<Segment, ScoredEntity[]>();
  for (const batch of p.batches) collect(spansOf, batch, predictBatch(model, batch));
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
  const spansOf = new Map<Segment, ScoredEntity[]>();
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
      const m = await measureStep(() => predictBatch(model, batch));
      collect(spansOf, batch, m.value);
      ms += m.ms;
      peakBytesInference = m.peakBytes;
    } else {
      const m = timeStep(() => predictBatch(model, batch));
      collect(spansOf, batch, m.value);
      ms += m.ms;
    }
  }
  const merged = timeStep(() => mergeAll(p, spansOf));
  ms += merged.ms;
  const predictions = merged.value;
  return {
    metrics: scoreEntities(docs, predictions),
    predictions,
    msPerDocument: docs.length === 0 ? null : ms / docs.length,
    peakBytesInference,
    // The wasm heap never shrinks, so its size now is the peak so far.
    wasmHeapBytes: backendMemory().wasmHeapBytes ?? null,
    rssBytes: process.memoryUsage().rss,
  };
}
