/**
 * The base of every span model here: one segment per forward pass. The loss of a batch is the mean
 * of its segments' losses; prediction decodes each segment on its own; the encoder's parameters
 * (named `encoder.*`) and the head's (`head.*`) form the two optimizer groups. A method supplies its
 * head in three steps:
 *   segmentLoss(seg, x, rng)    the training loss of one segment from its word states x [L, H]
 *   segmentScores(seg, x)       the tensors its decoding reads (inference; run inside a tidy)
 *   decodeSegment(seg, values, threshold)  spans from those tensors' values, word offsets within the segment
 *   goldScore(seg, values, e)   the probability its scores give gold entity e (diagnostics), null beyond its span limit
 * and, if it corrupts its training input, trainingInput(seg, rng) (SeNER's whole-word masking).
 * docs/adding-a-method.md walks through one.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Segment } from '../data/segmenter.js';
import type { Entity, ScoredEntity } from '../data/types.js';
import { LongnerError } from '../errors.js';
import type { Encoder } from '../nn/encoder.js';
import type { ParamStore } from '../nn/params.js';
import type { Rng } from '../util/rng.js';
import { encodeWords, isEncoderParam } from './encode.js';
import type { Batch, Inspection, LossOptions, ModelContext, PredictOptions, SpanModel } from './span-model.js';

/** The prefix of every span head's parameters (the encoder's is encode.ts ENCODER_PREFIX). */
export const HEAD_PREFIX = 'head';

/** A span model needs a type to score; checked before any parameter is sized by the type count. */
export function requireTypes(method: string, ctx: ModelContext): void {
  if (ctx.types.length === 0) throw new LongnerError(`${method} needs at least one entity type`);
}

/** The threshold a model decodes at before any tuning: eval.threshold, or the reference 0.5 when it is 'tuned'. */
export function initialThreshold(threshold: number | 'tuned'): number {
  return threshold === 'tuned' ? 0.5 : threshold;
}

export abstract class SegmentSpanModel implements SpanModel {
  abstract readonly method: string;
  /** Whether decodeSegment's threshold is a BCE probability cut (see SpanModel.tunesThreshold). */
  abstract readonly tunesThreshold: boolean;
  /** The threshold predict() uses when not told one; null for a method that decodes without one. */
  abstract readonly threshold: number | null;
  readonly types: readonly string[];
  /** Type name -> label index. */
  protected readonly typeIndex: ReadonlyMap<string, number>;
  /** Dropout on the encoder's sub-word states before word pooling, in training (encode.ts encodeWords); 0 = none. */
  protected encoderOutputDropout = 0;

  constructor(
    ctx: ModelContext,
    readonly params: ParamStore,
    readonly encoder: Encoder,
  ) {
    this.types = [...ctx.types];
    this.typeIndex = new Map(this.types.map((t, i) => [t, i]));
  }

  /** The training loss of one segment with at least one word, from its word states x [L, H]. */
  protected abstract segmentLoss(seg: Segment, x: tf.Tensor2D, rng: Rng): tf.Scalar;

  /** The tensors decoding reads for one segment with at least one word (called inside a tidy). */
  protected abstract segmentScores(seg: Segment, x: tf.Tensor2D): tf.Tensor | tf.Tensor[];

  /** Spans of one segment from the values of segmentScores' tensors, in their order. */
  protected abstract decodeSegment(seg: Segment, values: Float32Array[], threshold: number): ScoredEntity[];

  /** The probability segmentScores' values give gold entity e of seg (its cell, its type); null when beyond the method's span limit. */
  protected abstract goldScore(seg: Segment, values: Float32Array[], e: Entity): number | null;

  /** The input of a training segment: unchanged unless the method corrupts it (labels stay). */
  protected trainingInput(seg: Segment, _rng: Rng): Segment {
    return seg;
  }

  /** `where` of an error about a segment: its document and index. */
  protected where(seg: Segment): string {
    return `${seg.docId} segment ${seg.index}`;
  }

  loss(batch: Batch, opts: LossOptions): tf.Scalar {
    if (batch.segments.length === 0) throw new Error('loss of an empty batch');
    return tf.tidy(() => {
      const losses = batch.segments.map((seg) => {
        const x = encodeWords(this.encoder, this.trainingInput(seg, opts.rng), { training: true, rng: opts.rng, outputDropout: this.encoderOutputDropout });
        // A segment without words has no spans: zero, still connected to the graph (a batch of only
        // such segments must still have a gradient).
        if (seg.words === 0) return tf.mul(tf.sum(x), 0) as tf.Scalar;
        return this.segmentLoss(seg, x, opts.rng);
      });
      return tf.div(tf.addN(losses), losses.length) as tf.Scalar;
    });
  }

  predict(batch: Batch, opts: PredictOptions = {}): ScoredEntity[][] {
    const threshold = opts.threshold ?? this.threshold ?? 0.5;
    return batch.segments.map((seg) => this.withScores(seg, (values) => this.decodeSegment(seg, values, threshold), []));
  }

  inspect(batch: Batch, thresholds: readonly number[]): Inspection[] {
    return batch.segments.map((seg) =>
      this.withScores(
        seg,
        (values) => ({
          spans: thresholds.map((t) => this.decodeSegment(seg, values, t)),
          goldScores: seg.entities.map((e) => this.goldScore(seg, values, e)),
        }),
        { spans: thresholds.map(() => []), goldScores: [] },
      ),
    );
  }

  /** f of the values of one segment's scores (one forward pass); `empty` for a segment without words. */
  private withScores<T>(seg: Segment, f: (values: Float32Array[]) => T, empty: T): T {
    if (seg.words === 0) return empty;
    const scores = tf.tidy(() => this.segmentScores(seg, encodeWords(this.encoder, seg, { training: false })));
    const list = Array.isArray(scores) ? scores : [scores];
    try {
      return f(list.map((t) => t.dataSync() as Float32Array));
    } finally {
      tf.dispose(list);
    }
  }

  paramGroup(name: string): 'encoder' | 'head' {
    return isEncoderParam(name) ? 'encoder' : 'head';
  }
}
