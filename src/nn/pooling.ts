/**
 * Word pooling (sener.md section 1.5): each word's state is the element-wise max over the states of
 * its sub-word tokens.
 *
 * Symbols: T tokens, H features, W words, k = the most tokens any word has. One gather builds
 * [W * k, H] (a shorter word repeats its first token), a reshape gives [W, k, H], a max over k gives
 * [W, H]. The repeats get a -1e9 bias before the max: tfjs sends a max's gradient to every entry
 * equal to the maximum, so an unbiased repeat would count its token's gradient twice.
 * A word without tokens gets a zero vector (and no gradient).
 */
import * as tf from '@tensorflow/tfjs-core';

const NEG = -1e9;

export function maxPoolWords(states: tf.Tensor2D, tokenWord: Int32Array, words: number): tf.Tensor2D {
  const [T, H] = states.shape;
  if (tokenWord.length !== T) throw new Error(`maxPoolWords: ${tokenWord.length} word indices for ${T} token states`);
  const tokensOf: number[][] = Array.from({ length: words }, () => []);
  for (let t = 0; t < T; t++) {
    const wi = tokenWord[t]!;
    if (wi < 0) continue;
    if (wi >= words) throw new Error(`maxPoolWords: token ${t} points at word ${wi}, but there are ${words} words`);
    tokensOf[wi]!.push(t);
  }
  const k = Math.max(1, ...tokensOf.map((ts) => ts.length));
  const index = new Int32Array(words * k);
  const bias = new Float32Array(words * k);
  let anyEmpty = false;
  for (let wi = 0; wi < words; wi++) {
    const ts = tokensOf[wi]!;
    if (ts.length === 0) anyEmpty = true;
    for (let r = 0; r < k; r++) {
      index[wi * k + r] = r < ts.length ? ts[r]! : (ts[0] ?? 0);
      if (r >= ts.length) bias[wi * k + r] = NEG;
    }
  }
  return tf.tidy(() => {
    let g: tf.Tensor2D = tf.gather(states, tf.tensor1d(index, 'int32'));
    if (k > 1 || anyEmpty) g = tf.add(g, tf.tensor2d(bias, [words * k, 1]));
    let pooled = tf.max(tf.reshape(g, [words, k, H]), 1) as tf.Tensor2D;
    if (anyEmpty) {
      const has = Uint8Array.from(tokensOf, (ts) => (ts.length > 0 ? 1 : 0));
      pooled = tf.where(tf.tensor2d(has, [words, 1], 'bool'), pooled, tf.zerosLike(pooled));
    }
    return pooled;
  });
}
