/**
 * The memory claim the comparison rests on: the full-grid baselines (CNN-NER's L x L x c grid,
 * UTC-IE's L x L x L axis attention) grow at least quadratically in the segment length L, while
 * SeNER's band (L x (2w + 1) cells) grows linearly. Measured as the tf.profile peak of one training
 * step (forward, backward) at L and 2L words.
 *
 * Every model gets the same encoder, one with arrow attention so that the encoder itself grows
 * linearly and the heads decide the growth (the full-grid methods' configs use full attention; that
 * would only add a quadratic term to all three), and the same small head (d = c = 16, depth 2).
 * SeNER's window is 8 words, so 2w + 1 = 17 stays well below L.
 * Wasm: tf.profile counts the same bytes on every backend, and the cpu backend's 3D slices make
 * the grid convolutions about 20x slower there.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { createCnnNerModel } from '../../src/models/cnn-ner.js';
import { createSenerModel } from '../../src/models/sener.js';
import type { ModelContext, SpanModel } from '../../src/models/span-model.js';
import { createUtcIeModel } from '../../src/models/utc-ie.js';
import { createRng } from '../../src/util/rng.js';
import { setupBackend, syntheticSegments, tinyConfig } from './helpers.js';

const L = 64;
const encoder: ConfigInput['encoder'] = { attention: 'arrow', window: 16, logN: 'padded' };
const head = { biaffineSize: 16, cnnDim: 16, depth: 2 };

const methods: Record<string, (ctx: ModelContext) => SpanModel> = {
  'cnn-ner': (ctx) => createCnnNerModel(tinyConfig({ method: 'cnn-ner', encoder, cnnNer: head }), ctx),
  'utc-ie': (ctx) => createUtcIeModel(tinyConfig({ method: 'utc-ie', encoder, utcIe: head }), ctx),
  sener: (ctx) => createSenerModel(tinyConfig({ method: 'sener', encoder, sener: { ...head, window: 8, lora: null, wwm: 0 } }), ctx),
};

interface StepCost {
  peakBytes: number;
  ms: number;
}

/** Peak bytes and time of one training step on a one-segment document of `words` words (after a warm-up step). */
async function trainStep(method: string, words: number): Promise<StepCost> {
  const data = syntheticSegments({ docs: 1, words, entitiesPerDoc: Math.round(words / 16), seed: 3 });
  if (data.segments.length !== 1 || data.segments[0]!.words !== words) throw new Error('expected one segment holding every word');
  const model = methods[method]!({ types: data.types, vocabSize: data.vocabSize });
  const rng = createRng(1);
  const step = (): void => {
    const { value, grads } = tf.variableGrads(() => model.loss({ segments: data.segments }, { rng }), model.params.trainable());
    tf.dispose([value, ...Object.values(grads)]);
  };
  try {
    step();
    const started = performance.now();
    const info = await tf.profile(step);
    return { peakBytes: info.peakBytes, ms: performance.now() - started };
  } finally {
    model.params.dispose();
  }
}

async function growth(t: { log: (...xs: unknown[]) => void }, method: string): Promise<number> {
  const a = await trainStep(method, L);
  const b = await trainStep(method, 2 * L);
  const ratio = b.peakBytes / a.peakBytes;
  const mib = (x: number): string => (x / 2 ** 20).toFixed(1);
  t.log(
    `${method}: peak ${mib(a.peakBytes)} MiB at ${L} words, ${mib(b.peakBytes)} MiB at ${2 * L} (x${ratio.toFixed(2)}); ${a.ms.toFixed(0)} / ${b.ms.toFixed(0)} ms per step`,
  );
  return ratio;
}

test.before(async () => {
  await initBackend('wasm', { quiet: true });
});

test.after.always(async () => {
  await setupBackend();
});

test.serial('CNN-NER: doubling L multiplies the training-step peak by at least 3.5 (quadratic grid)', async (t) => {
  t.true((await growth(t, 'cnn-ner')) >= 3.5);
});

test.serial('UTC-IE: doubling L multiplies the training-step peak by at least 3.5 (L^2 grid, L^3 attention)', async (t) => {
  t.true((await growth(t, 'utc-ie')) >= 3.5);
});

test.serial('SeNER: doubling L multiplies the training-step peak by at most 2.3 (linear band)', async (t) => {
  t.true((await growth(t, 'sener')) <= 2.3);
});
