/**
 * A tiny SpanModel for trainer and evaluation tests: token embeddings, max-pooled to words, a
 * LayerNorm, dropout, and a linear scorer per word and type. It predicts single-word spans only
 * (logit > 0), trains with sigmoid cross-entropy, and has switches that break it on purpose.
 *
 * Also builds small documents and their segments: word `w<k>` is token id k + 2 (0 and 1 are
 * [CLS] and [SEP]), one token per word; a word is an entity of type A when k % 3 === 0.
 */
import * as tf from '@tensorflow/tfjs-core';
import { segmentDocument, type Segment } from '../../src/data/segmenter.js';
import type { Document, Entity, ScoredEntity } from '../../src/data/types.js';
import type { Batch, LossOptions, SpanModel } from '../../src/models/span-model.js';
import { createLayerNorm, createLinear, dropout, embedding, layerNorm, linear, type LinearWeights, type NormWeights } from '../../src/nn/layers.js';
import { ParamStore } from '../../src/nn/params.js';
import { maxPoolWords } from '../../src/nn/pooling.js';
import { createRng, type Rng } from '../../src/util/rng.js';

export const VOCAB = 14;
export const TYPES = ['A', 'B'] as const;

export interface ToyOptions {
  seed?: number;
  dim?: number;
  dropout?: number;
  /** The loss of this 1-based loss call is NaN. */
  nanAtCall?: number;
  /** From this 1-based loss call the loss stays finite but its gradient is NaN. */
  badGradAtCall?: number;
}

export class ToyModel implements SpanModel {
  readonly method = 'toy';
  readonly types: readonly string[] = TYPES;
  readonly params: ParamStore;
  lossCalls = 0;
  private readonly embed: tf.Variable;
  private readonly norm: NormWeights;
  private readonly head: LinearWeights;

  constructor(private readonly opts: ToyOptions = {}) {
    const dim = opts.dim ?? 6;
    this.params = new ParamStore(opts.seed ?? 7);
    this.embed = this.params.param('toy.embed', [VOCAB, dim], { kind: 'normal', std: 0.5 });
    this.norm = createLayerNorm(this.params, 'toy.ln', dim);
    this.head = createLinear(this.params, 'toy.head', dim, TYPES.length);
  }

  private logits(seg: Segment, training: boolean, rng?: Rng): tf.Tensor2D {
    return tf.tidy(() => {
      const x = embedding(this.embed as tf.Tensor as tf.Tensor2D, seg.tokenIds);
      const h = layerNorm(maxPoolWords(x, seg.tokenWord, seg.words), this.norm);
      return linear(dropout(h, this.opts.dropout ?? 0.2, training, rng), this.head);
    });
  }

  loss(batch: Batch, { rng }: LossOptions): tf.Scalar {
    this.lossCalls++;
    const call = this.lossCalls;
    return tf.tidy(() => {
      const parts = batch.segments.map((seg) => {
        const labels = new Float32Array(seg.words * TYPES.length);
        for (const e of seg.entities) {
          if (e.end - e.start === 1) labels[e.start * TYPES.length + TYPES.indexOf(e.type as (typeof TYPES)[number])] = 1;
        }
        const z = this.logits(seg, true, rng);
        return tf.losses.sigmoidCrossEntropy(tf.tensor2d(labels, z.shape), z) as tf.Scalar;
      });
      let loss = tf.div(tf.addN(parts), parts.length) as tf.Scalar;
      if (this.opts.nanAtCall === call) loss = tf.mul(loss, NaN);
      if (this.opts.badGradAtCall !== undefined && call >= this.opts.badGradAtCall) {
        // sqrt at 0: the value adds 0, the gradient is 0 * inf = NaN.
        loss = tf.add(loss, tf.sqrt(tf.sum(tf.square(tf.mul(this.embed, 0)))));
      }
      return loss;
    });
  }

  predict(batch: Batch): ScoredEntity[][] {
    return batch.segments.map((seg) => {
      const values = tf.tidy(() => this.logits(seg, false)).arraySync();
      const out: ScoredEntity[] = [];
      values.forEach((row, w) => {
        row.forEach((z, c) => {
          if (z > 0) out.push({ start: w, end: w + 1, type: TYPES[c]!, score: 1 / (1 + Math.exp(-z)) });
        });
      });
      return out;
    });
  }

  paramGroup(name: string): 'encoder' | 'head' {
    return name.startsWith('toy.embed') ? 'encoder' : 'head';
  }

  /** Every parameter's values, by name, copied out. */
  snapshot(): Map<string, Float32Array> {
    return new Map(this.params.names().map((n) => [n, Float32Array.from(this.params.get(n).dataSync() as Float32Array)]));
  }

  dispose(): void {
    this.params.dispose();
  }
}

/** True when both snapshots hold the same names and bit-identical values. */
export function sameBits(a: Map<string, Float32Array>, b: Map<string, Float32Array>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, x] of a) {
    const y = b.get(name);
    if (y === undefined || y.length !== x.length) return false;
    const xb = new Uint32Array(x.buffer, x.byteOffset, x.length);
    const yb = new Uint32Array(y.buffer, y.byteOffset, y.length);
    for (let i = 0; i < xb.length; i++) if (xb[i] !== yb[i]) return false;
  }
  return true;
}

/** `n` documents of 5..12 words; word `w<k>` with k % 3 === 0 is an A entity. */
export function makeDocs(n: number, seed = 1, prefix = 'd'): Document[] {
  const rng = createRng(seed);
  return Array.from({ length: n }, (_, d) => {
    const len = rng.int(5, 13);
    const ids = Array.from({ length: len }, () => rng.int(0, VOCAB - 2));
    const entities: Entity[] = [];
    ids.forEach((k, i) => {
      if (k % 3 === 0) entities.push({ start: i, end: i + 1, type: 'A' });
    });
    return { id: `${prefix}${d}`, words: ids.map((k) => `w${k}`), entities };
  });
}

/** Segments of `doc` with one token per word (id k + 2 for `w<k>`), at most maxLen tokens each. */
export function segmentToy(doc: Document, maxLen = 64): Segment[] {
  const ids = Int32Array.from(doc.words, (w) => Number(w.slice(1)) + 2);
  const wordIndex = Int32Array.from(doc.words, (_, i) => i);
  return segmentDocument(doc, { ids, wordIndex }, { maxLen, cls: 0, sep: 1 });
}
