/**
 * The front end every span model shares: the transformer encoder over a segment's sub-word tokens,
 * then word pooling (sener.md 1.5): each word's state is the max over its sub-word states, and
 * [CLS] / [SEP] (tokenWord -1) are dropped. All span machinery downstream works on words.
 *
 * Symbols: T tokens of the segment ([CLS] ... [SEP]), W = segment.words, H = encoder.hidden.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Config } from '../config/schema.js';
import type { Segment } from '../data/segmenter.js';
import { Encoder, type EncoderConfig } from '../nn/encoder.js';
import { dropout } from '../nn/layers.js';
import type { ParamStore } from '../nn/params.js';
import { maxPoolWords } from '../nn/pooling.js';
import type { Rng } from '../util/rng.js';
import type { ModelContext } from './span-model.js';

/** Parameter-name prefix of the encoder; a model's paramGroup maps names under it to 'encoder'. */
export const ENCODER_PREFIX = 'encoder';

/** True for parameter names that belong to the encoder built by createEncoder. */
export function isEncoderParam(name: string): boolean {
  return name.startsWith(`${ENCODER_PREFIX}.`);
}

/**
 * The encoder described by `config.encoder` with the run's vocabulary size. `overrides` lets a
 * method change what the shared config section does not hold (e.g. SeNER's LoRA on Q and V).
 */
/** Whether train.recompute asks for recomputation of the encoder layers or of the span head's blocks. */
export function recomputes(config: Config, part: 'encoder' | 'head'): boolean {
  const r = config.train.recompute;
  return r === 'all' || r === part;
}

export function createEncoder(config: Config, ctx: ModelContext, params: ParamStore, overrides: Partial<EncoderConfig> = {}): Encoder {
  const e = config.encoder;
  const cfg: EncoderConfig = {
    vocabSize: ctx.vocabSize,
    layers: e.layers,
    hidden: e.hidden,
    heads: e.heads,
    ffn: e.ffn,
    dropout: e.dropout,
    attention: e.attention,
    window: e.window,
    logN: e.logN,
    lora: null,
    recompute: recomputes(config, 'encoder'),
    ...overrides,
  };
  return new Encoder(cfg, params, ENCODER_PREFIX);
}

/**
 * Word states [segment.words, H] of one segment; dropout (in the encoder) only when training.
 * `outputDropout` drops out the encoder's sub-word states before pooling (UTC-IE's reference does).
 */
export function encodeWords(encoder: Encoder, segment: Segment, opts: { training: boolean; rng?: Rng; outputDropout?: number }): tf.Tensor2D {
  return tf.tidy(() => {
    const states = dropout(encoder.forward(segment.tokenIds, opts), opts.outputDropout ?? 0, opts.training, opts.rng);
    return maxPoolWords(states, segment.tokenWord, segment.words);
  });
}
