/**
 * Shared helpers for model tests: tiny configs, synthetic segments with a trivial word-level
 * tokenizer, a plain Adam loop, and scoring of a model's predictions.
 *
 *   tinyConfig({ method, ... })        a resolved Config with a 1-layer, hidden-32 encoder, dropout 0
 *   syntheticSegments({ ... })         seeded documents (src/data/synthetic.ts), tokenized, segmented
 *   wordTokenizer(docs, { split })     word -> id map; `split` cuts long words into two sub-words
 *   predictDocuments(model, segments)  predictions shifted to document offsets, per document id
 *   fitUntilPerfect(model, data, opts) Adam until strict F1 = 1.0 on the training documents
 *   fitTwoRates(model, data, opts)     the same for grid models, with encoder and head learning rates
 *   backendsUnderTest()                cpu, wasm and native (test/backend/helpers.ts) for tests that must run on each
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConfigSchema, type Config, type ConfigInput } from '../../src/config/schema.js';
import { segmentDocument, type Segment } from '../../src/data/segmenter.js';
import { generateDocuments, type EntityLengthDist } from '../../src/data/synthetic.js';
import { CLS_ID, SEP_ID, SPECIAL_TOKENS, type TokenizedWords } from '../../src/data/tokenizer.js';
import type { Document, Entity } from '../../src/data/types.js';
import { scoreEntities } from '../../src/eval/metrics.js';
import type { GridSpanModel } from '../../src/models/grid-head.js';
import type { SpanModel } from '../../src/models/span-model.js';
import { createRng } from '../../src/util/rng.js';

export { setupBackend } from '../nn/helpers.js';
export { backendsUnderTest, trainingBackendsUnderTest } from '../backend/helpers.js';

/**
 * A resolved config for fast tests: encoder 1 layer, hidden 32, 2 heads, FFN 64, full attention,
 * dropout 0; `input` is merged over it (sections merge one level deep).
 */
export function tinyConfig(input: ConfigInput = {}): Config {
  const base: ConfigInput = {
    encoder: { layers: 1, hidden: 32, heads: 2, ffn: 64, dropout: 0, attention: 'full', logN: 'off' },
    train: { seed: 7 },
  };
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(input)) {
    const prior = merged[key];
    merged[key] = isPlainObject(prior) && isPlainObject(value) ? { ...prior, ...value } : value;
  }
  return ConfigSchema.parse(merged);
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

export interface WordTokenizer {
  vocabSize: number;
  tokenize(words: readonly string[]): TokenizedWords;
}

/**
 * A word-level tokenizer over the words of `docs` (ids after the special tokens). With `split`,
 * words longer than 4 characters become two sub-words (first half, rest), so word pooling matters.
 */
export function wordTokenizer(docs: readonly Document[], opts: { split?: boolean } = {}): WordTokenizer {
  const ids = new Map<string, number>();
  const id = (piece: string): number => {
    let v = ids.get(piece);
    if (v === undefined) {
      v = SPECIAL_TOKENS.length + ids.size;
      ids.set(piece, v);
    }
    return v;
  };
  const pieces = (w: string): string[] => (opts.split && w.length > 4 ? [w.slice(0, w.length >> 1), `##${w.slice(w.length >> 1)}`] : [w]);
  for (const d of docs) for (const w of d.words) pieces(w).forEach(id);
  return {
    vocabSize: SPECIAL_TOKENS.length + ids.size,
    tokenize(words) {
      const out: number[] = [];
      const wordIndex: number[] = [];
      words.forEach((w, i) => {
        for (const p of pieces(w)) {
          out.push(ids.get(p) ?? 1);
          wordIndex.push(i);
        }
      });
      return { ids: Int32Array.from(out), wordIndex: Int32Array.from(wordIndex) };
    },
  };
}

export interface SyntheticData {
  docs: Document[];
  segments: Segment[];
  types: string[];
  vocabSize: number;
}

/** Seeded synthetic documents, tokenized with wordTokenizer and cut into segments of `maxLen` tokens. */
export function syntheticSegments(
  opts: {
    docs?: number;
    words?: number;
    entitiesPerDoc?: number;
    entityLength?: EntityLengthDist;
    types?: string[];
    nested?: number;
    maxLen?: number;
    split?: boolean;
    seed?: number;
  } = {},
): SyntheticData {
  const types = opts.types ?? ['PER', 'ORG'];
  const docs = generateDocuments({
    docs: opts.docs ?? 2,
    words: opts.words ?? 30,
    entitiesPerDoc: opts.entitiesPerDoc ?? 4,
    entityLength: opts.entityLength ?? { dist: 'uniform', min: 1, max: 4 },
    types,
    nested: opts.nested ?? 0,
    vocabulary: 40,
    seed: opts.seed ?? 11,
  });
  const tok = wordTokenizer(docs, { split: opts.split ?? false });
  const segments = docs.flatMap((d) => segmentDocument(d, tok.tokenize(d.words), { maxLen: opts.maxLen ?? 512, cls: CLS_ID, sep: SEP_ID }));
  return { docs, segments, types, vocabSize: tok.vocabSize };
}

/** A model's predictions moved to document word offsets, grouped by document id. */
export function predictDocuments(model: SpanModel, segments: readonly Segment[]): Map<string, Entity[]> {
  const out = new Map<string, Entity[]>();
  const predicted = model.predict({ segments: [...segments] });
  segments.forEach((seg, n) => {
    const list = out.get(seg.docId) ?? [];
    for (const e of predicted[n]!) list.push({ start: e.start + seg.wordOffset, end: e.end + seg.wordOffset, type: e.type });
    out.set(seg.docId, list);
  });
  return out;
}

export interface FitResult {
  /** Optimizer steps taken. */
  steps: number;
  f1: number;
  msPerStep: number;
  firstLoss: number;
  lastLoss: number;
}

/**
 * Full-batch Adam on every parameter of the model, checking strict F1 on the training documents
 * every `checkEvery` steps; stops at F1 = 1.0 or after `maxSteps`.
 */
export function fitUntilPerfect(
  model: SpanModel,
  data: SyntheticData,
  opts: { lr?: number; maxSteps?: number; checkEvery?: number; seed?: number } = {},
): FitResult {
  const optimizer = tf.train.adam(opts.lr ?? 1e-2);
  const vars = model.params.trainable();
  const rng = createRng(opts.seed ?? 1);
  const maxSteps = opts.maxSteps ?? 300;
  const checkEvery = opts.checkEvery ?? 10;
  let f1 = 0;
  let steps = 0;
  let firstLoss = Number.NaN;
  let lastLoss = Number.NaN;
  let trainMs = 0;
  try {
    while (steps < maxSteps) {
      const started = performance.now();
      const cost = optimizer.minimize(() => model.loss({ segments: data.segments }, { rng }), true, vars);
      lastLoss = cost!.dataSync()[0]!;
      cost!.dispose();
      trainMs += performance.now() - started;
      if (steps === 0) firstLoss = lastLoss;
      steps++;
      if (steps % checkEvery === 0 || steps === maxSteps) {
        f1 = scoreEntities(data.docs, predictDocuments(model, data.segments)).overall.f1;
        if (f1 === 1) break;
      }
    }
  } finally {
    optimizer.dispose();
  }
  return { steps, f1, msPerStep: trainMs / Math.max(1, steps), firstLoss, lastLoss };
}

/**
 * Adam with the framework's two learning rates (encoder slower than head, as train.encoderLr and
 * train.lr; one rate for both stalls: the from-scratch embeddings move by lr per step while their
 * own scale is 0.02), full batch, until strict F1 = 1.0 on the training documents.
 * The output bias starts at the label prior (p = 0.01): with the reference's zero bias every one of
 * the ~2 L^2 R negative cells starts at p = 0.5, and Adam's second moments then remember those first
 * huge gradients for hundreds of steps. Test scaffolding only; the model keeps the reference init.
 */
export function fitTwoRates(
  model: GridSpanModel,
  data: SyntheticData,
  opts: { encoderLr: number; headLr: number; maxSteps: number },
): { steps: number; f1: number; msPerStep: number } {
  const bias = model.params.get('head.out.b');
  tf.tidy(() => bias.assign(tf.fill(bias.shape, Math.log(0.01 / 0.99))));
  const groups = { encoder: [] as tf.Variable[], head: [] as tf.Variable[] };
  for (const n of model.params.names()) groups[model.paramGroup(n)].push(model.params.get(n));
  const optimizers = { encoder: tf.train.adam(opts.encoderLr), head: tf.train.adam(opts.headLr) };
  const rng = createRng(1);
  let steps = 0;
  let f1 = 0;
  const started = performance.now();
  while (steps < opts.maxSteps && f1 < 1) {
    const { value, grads } = tf.variableGrads(() => model.loss({ segments: data.segments }, { rng }), [...groups.encoder, ...groups.head]);
    for (const g of ['encoder', 'head'] as const) optimizers[g].applyGradients(groups[g].map((v) => ({ name: v.name, tensor: grads[v.name]! })));
    tf.dispose([value, ...Object.values(grads)]);
    steps++;
    if (steps % 5 === 0) f1 = scoreEntities(data.docs, predictDocuments(model, data.segments)).overall.f1;
  }
  const msPerStep = (performance.now() - started) / steps;
  optimizers.encoder.dispose();
  optimizers.head.dispose();
  return { steps, f1, msPerStep };
}
