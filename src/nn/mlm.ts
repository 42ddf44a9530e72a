/**
 * Masked-language-model head for pretraining the encoder (BERT-style, tied output embedding).
 *
 * Symbols: states S [T, H] from the encoder, E [V, H] the encoder's token embedding, M the chosen
 * positions (targets >= 0, from data/wwm.ts). For the m = |M| chosen rows only:
 *   Z = LN(GELU(S_M W_d + b_d)),  logits = Z E^T + b_out  [m, V],
 *   loss = mean over M of cross-entropy(logits, target).
 * Only chosen rows go through the head, so the [m, V] logits are about 15% of a full [T, V].
 *
 * Parameter names under `prefix` (default 'mlm'): dense.W/b, ln.gamma/beta, out_bias [V].
 */
import * as tf from '@tensorflow/tfjs-core';
import { createLayerNorm, createLinear, gelu, layerNorm, linear, type LinearWeights, type NormWeights } from './layers.js';
import type { ParamStore } from './params.js';

interface MlmWeights {
  dense: LinearWeights;
  ln: NormWeights;
  outBias: tf.Variable;
}

function weights(params: ParamStore, prefix: string, hidden: number, vocabSize: number): MlmWeights {
  return {
    dense: createLinear(params, `${prefix}.dense`, hidden, hidden),
    ln: createLayerNorm(params, `${prefix}.ln`, hidden),
    outBias: params.param(`${prefix}.out_bias`, [vocabSize], { kind: 'zeros' }),
  };
}

/** Creates the head's parameters; call before collecting trainable variables for the optimizer. */
export function createMlmHead(params: ParamStore, hidden: number, vocabSize: number, prefix = 'mlm'): void {
  weights(params, prefix, hidden, vocabSize);
}

/**
 * Mean cross-entropy over the chosen positions. With no position chosen it returns 0, still tied to
 * `states` so that gradient code sees a connected graph.
 */
export function mlmLoss(states: tf.Tensor2D, targets: Int32Array, params: ParamStore, prefix = 'mlm', embeddingName = 'encoder.tok_embed'): tf.Scalar {
  const [T, H] = states.shape;
  if (targets.length !== T) throw new Error(`mlmLoss: ${targets.length} targets for ${T} token states`);
  const E = params.get(embeddingName) as tf.Variable<tf.Rank.R2>;
  const V = E.shape[0];
  if (!params.has(`${prefix}.dense.W`)) throw new Error(`mlmLoss: no MLM head under '${prefix}'; call createMlmHead first`);
  const w = weights(params, prefix, H, V);
  const rows: number[] = [];
  const labels: number[] = [];
  targets.forEach((t, i) => {
    if (t < 0) return;
    if (t >= V) throw new Error(`mlmLoss: target id ${t} at position ${i} is outside the vocabulary of ${V}`);
    rows.push(i);
    labels.push(t);
  });
  return tf.tidy(() => {
    if (rows.length === 0) return tf.mul(tf.sum(states), 0) as tf.Scalar;
    const chosen = tf.gather(states, tf.tensor1d(rows, 'int32'));
    const z = layerNorm(gelu(linear(chosen, w.dense)), w.ln);
    const logits = tf.add(tf.matMul(z, E, false, true), w.outBias);
    const oneHot = tf.oneHot(tf.tensor1d(labels, 'int32'), V);
    return tf.div(tf.neg(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)))), rows.length) as tf.Scalar;
  });
}
