/**
 * The BCE-with-logits loss of the grid span heads (SeNER, CNN-NER, UTC-IE), written for labels that
 * are almost all 0: the ones are given as flat indices (`positives`), never as a dense tensor.
 *
 * Per cell with logit z and p = sigmoid(z), label y:
 *   y = 0:  n(z) = p^gamma softplus(z)                    (-log(1 - p), focal-weighted)
 *   y = 1:  q(z) = posWeight (1 - p)^gamma softplus(-z)   (-log p, weighted)
 * Loss = sum over trained cells of n(z) + sum over positives of (q(z) - n(z)), divided by the number
 * of trained cells when reduction is 'mean'. The reference (gamma 0, posWeight 1, 'sum') is
 * sum softplus(z) - sum_{positives} z, the identity BCE(z, y) = softplus(z) - y z, computed that way.
 *
 * Why the switches (train.bce): at about one positive per 20,000-50,000 cells the reference sum is
 * dominated by negatives; a positive weight (Keras/PyTorch pos_weight) or a focal gamma (Lin et al.
 * 2017) rebalances it, and 'mean' makes the loss scale independent of the segment's cell count.
 */
import * as tf from '@tensorflow/tfjs-core';

export interface BceOptions {
  reduction: 'sum' | 'mean';
  posWeight: number;
  focalGamma: number;
}

/** The reference: summed over cells, unweighted, no focal term. */
export const REFERENCE_BCE: Readonly<BceOptions> = { reduction: 'sum', posWeight: 1, focalGamma: 0 };

/**
 * BCE of `logits` (any shape; flat row-major indices) against labels that are 1 at `positives` and 0
 * elsewhere. `trained` (broadcastable to the logits, 0/1) marks the cells that count, null = all;
 * `cells` is their number (the denominator of 'mean'). Positives must be trained cells.
 */
export function sparseBce(logits: tf.Tensor, positives: Int32Array, trained: tf.Tensor | null, cells: number, opts: BceOptions): tf.Scalar {
  return tf.tidy(() => {
    const { posWeight, focalGamma: gamma } = opts;
    const negative = (z: tf.Tensor): tf.Tensor => (gamma === 0 ? tf.softplus(z) : tf.mul(tf.pow(tf.sigmoid(z), gamma), tf.softplus(z)));
    let all = negative(logits);
    if (trained !== null) all = tf.mul(all, trained);
    let total: tf.Tensor = tf.sum(all);
    if (positives.length > 0) {
      const z = tf.gather(tf.reshape(logits, [-1]), tf.tensor1d(positives, 'int32'));
      let correction: tf.Tensor;
      if (gamma === 0 && posWeight === 1) {
        correction = tf.neg(z);
      } else {
        const positive = gamma === 0 ? tf.softplus(tf.neg(z)) : tf.mul(tf.pow(tf.sigmoid(tf.neg(z)), gamma), tf.softplus(tf.neg(z)));
        correction = tf.sub(tf.mul(positive, posWeight), negative(z));
      }
      total = tf.add(total, tf.sum(correction));
    }
    if (opts.reduction === 'mean') total = tf.div(total, Math.max(1, cells));
    return total as tf.Scalar;
  });
}
