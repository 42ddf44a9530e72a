import type * as tf from '@tensorflow/tfjs-core';
import type { Segment } from '../data/segmenter.js';
import type { ScoredEntity } from '../data/types.js';
import type { ParamStore } from '../nn/params.js';
import type { Rng } from '../util/rng.js';

/**
 * The one interface the trainer, evaluator, profiler and reports know.
 * A batch is a list of segments; models run one segment per forward pass (every tensor stays 2D,
 * which is what the wasm backend runs fast) and sum or average the per-segment losses.
 */
export interface Batch {
  segments: Segment[];
}

export interface LossOptions {
  /** Seeded randomness for dropout and augmentation; derived from (seed, epoch, step) by the trainer. */
  rng: Rng;
}

export interface SpanModel {
  /** The method name as in configs (`span-enum`, `global-pointer`, `sener`, ...). */
  readonly method: string;
  /** Entity types, in label-index order. */
  readonly types: readonly string[];
  /** Every parameter of encoder and head, named; trainable flags say what the optimizer updates. */
  readonly params: ParamStore;
  /** Training loss of a batch (called inside tf.variableGrads, so it must be differentiable). */
  loss(batch: Batch, opts: LossOptions): tf.Scalar;
  /** Decoded spans per segment, word offsets relative to the segment, one type per span unless the method allows more. */
  predict(batch: Batch, opts?: PredictOptions): ScoredEntity[][];
  /**
   * True for the BCE heads, whose decoding keeps cells by a probability threshold that
   * `eval.threshold: tuned` may tune; false (or absent) for decoders with a fixed rule.
   */
  readonly tunesThreshold?: boolean;
  /** The threshold predict() decodes at when not told one (null or absent: the method decodes without one). */
  readonly threshold?: number | null;
  /**
   * One forward pass per segment, decoded at each of `thresholds`, with the probability the model
   * gives each of the segment's gold entities (diagnostics). Absent: evaluation uses predict().
   */
  inspect?(batch: Batch, thresholds: readonly number[]): Inspection[];
  /** Optimizer parameter groups: the encoder and the span head take different learning rates. */
  paramGroup(name: string): 'encoder' | 'head';
}

export interface PredictOptions {
  /** Decoding threshold; default the model's own (eval.threshold, or 0.5 when it is 'tuned'). */
  threshold?: number;
}

/** What inspect() gives for one segment. */
export interface Inspection {
  /** Decoded spans at each threshold asked for, in that order. */
  spans: ScoredEntity[][];
  /**
   * Per gold entity of the segment's labels (seg.entities, in order): the probability of its cell
   * and type, or null when the method cannot predict it (beyond its span limit).
   */
  goldScores: (number | null)[];
}

/** What a model factory needs besides the resolved config. */
export interface ModelContext {
  /** Entity types in label-index order (the dataset registry's order). */
  types: readonly string[];
  /** Vocabulary size of the run's tokenizer. */
  vocabSize: number;
}
