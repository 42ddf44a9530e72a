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
  predict(batch: Batch): ScoredEntity[][];
  /** Optimizer parameter groups: the encoder and the span head take different learning rates. */
  paramGroup(name: string): 'encoder' | 'head';
}

/** What a model factory needs besides the resolved config. */
export interface ModelContext {
  /** Entity types in label-index order (the dataset registry's order). */
  types: readonly string[];
  /** Vocabulary size of the run's tokenizer. */
  vocabSize: number;
}
