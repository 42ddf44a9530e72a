/**
 * Window attention keeps training memory linear in the sequence length: the tf.profile peak of an
 * encoder forward + backward at 2L is at most ~2.2x the peak at L, while full attention grows
 * clearly faster (towards 4x as its L x L score tensors come to dominate).
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { Encoder, type EncoderConfig } from '../../src/nn/encoder.js';
import { ParamStore } from '../../src/nn/params.js';
import { createRng } from '../../src/util/rng.js';
import { setupBackend } from './helpers.js';

test.before(async () => {
  await setupBackend();
});

const L = 256;
// Small hidden size and 4 heads, so that attention (not the L x hidden activations) decides growth.
const cfg: EncoderConfig = { vocabSize: 16, layers: 1, hidden: 32, heads: 4, ffn: 64, dropout: 0.1, attention: 'window', window: 32, logN: 'padded' };

async function peakBytes(attention: EncoderConfig['attention'], T: number): Promise<{ peak: number; ms: number }> {
  const store = new ParamStore(1);
  const enc = new Encoder({ ...cfg, attention }, store);
  const rng = createRng(T);
  const ids = Int32Array.from({ length: T }, () => rng.int(0, cfg.vocabSize));
  const started = Date.now();
  const info = await tf.profile(() => {
    const { value, grads } = tf.variableGrads(() => tf.mean(tf.square(enc.forward(ids, { training: true, rng }))) as tf.Scalar, store.trainable());
    value.dispose();
    tf.dispose(Object.values(grads));
  });
  const ms = Date.now() - started;
  store.dispose();
  return { peak: info.peakBytes, ms };
}

test.serial('window and arrow: doubling L at most ~2.2x the peak bytes; full grows clearly more', async (t) => {
  const ratio: Record<string, number> = {};
  for (const mode of ['window', 'arrow', 'full'] as const) {
    const a = await peakBytes(mode, L);
    const b = await peakBytes(mode, 2 * L);
    ratio[mode] = b.peak / a.peak;
    t.log(
      `${mode}: peak ${(a.peak / 2 ** 20).toFixed(2)} MiB at ${L}, ${(b.peak / 2 ** 20).toFixed(2)} MiB at ${2 * L} (x${ratio[mode]!.toFixed(2)}); ${a.ms} / ${b.ms} ms per forward+backward`,
    );
  }
  t.true(ratio.window! <= 2.2);
  t.true(ratio.arrow! <= 2.2);
  // Full attention tends to 4x once its L x L tensors dominate; measured 2.9x at these sizes.
  t.true(ratio.full! >= 2.5);
  t.true(ratio.full! >= ratio.window! + 0.5);
});
