/**
 * train.recompute and the low-memory attention switches change memory, not what is computed: on the
 * real models (SeNER, CNN-NER, UTC-IE) and their real losses, the gradients of every trainable
 * parameter with recomputation equal those without, dropout included (the recomputation replays the
 * same masks), and a step leaves no tensor behind.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import type { Config } from '../../src/config/schema.js';
import { createModel } from '../../src/models/index.js';
import { createRng } from '../../src/util/rng.js';
import { trainingBackendsUnderTest } from '../backend/helpers.js';
import { syntheticSegments, tinyConfig } from '../models/helpers.js';

const data = syntheticSegments({ docs: 2, words: 24, entitiesPerDoc: 4, types: ['A', 'B'], maxLen: 40, seed: 3 });

/** Gradients of the loss of one batch, by parameter name, from a fresh model of `config`. */
function gradients(config: Config, rngSeed = 11): Map<string, Float32Array> {
  const model = createModel(config, { types: data.types, vocabSize: data.vocabSize });
  try {
    const vars = model.params.trainable();
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => model.loss({ segments: data.segments }, { rng: createRng(rngSeed) }), vars);
    const out = new Map(vars.map((v) => [model.params.nameOf(v), grads[v.name]!.dataSync().slice() as Float32Array]));
    tf.dispose([value, ...Object.values(grads)]);
    if (tf.memory().numTensors !== before) throw new Error(`leaked ${tf.memory().numTensors - before} tensors`);
    return out;
  } finally {
    model.params.dispose();
  }
}

function maxRelDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): { worst: number; name: string } {
  let worst = 0;
  let name = '';
  for (const [k, ga] of a) {
    const gb = b.get(k);
    if (gb === undefined) throw new Error(`no gradient for ${k} in the second set (${[...b.keys()].length} vs ${a.size})`);
    let scale = 1e-6;
    for (const v of ga) scale = Math.max(scale, Math.abs(v));
    for (let i = 0; i < ga.length; i++) {
      const d = Math.abs(ga[i]! - gb[i]!) / scale;
      if (d > worst) [worst, name] = [d, k];
    }
  }
  return { worst, name };
}

const encoder = { layers: 2, hidden: 16, heads: 2, ffn: 32, dropout: 0.1 };
const cases: { name: string; config: (over: Record<string, unknown>) => Config }[] = [
  {
    name: 'sener',
    config: (over) =>
      tinyConfig({
        method: 'sener',
        encoder: { ...encoder, attention: 'arrow', window: 4, logN: 'padded' },
        sener: { window: 4, depth: 2, biaffineSize: 8, cnnDim: 8, lora: null, wwm: 0.15, attnDropout: 0.2, mlpDropout: 0.2, ...over },
      }),
  },
  {
    // LoRA: the encoder's base weights are frozen, so recomputation takes gradients for the LoRA pairs only.
    name: 'sener-lora',
    config: (over) =>
      tinyConfig({
        method: 'sener',
        encoder: { ...encoder, attention: 'arrow', window: 4, logN: 'padded' },
        sener: { window: 4, depth: 1, biaffineSize: 8, cnnDim: 8, lora: { rank: 2, alpha: 4 }, wwm: 0, attnDropout: 0.2, mlpDropout: 0.2, ...over },
      }),
  },
  {
    name: 'cnn-ner',
    config: () => tinyConfig({ method: 'cnn-ner', encoder, cnnNer: { biaffineSize: 8, cnnDim: 8, depth: 2, dropout: 0.2, logitDropout: 0.2 } }),
  },
  {
    name: 'utc-ie',
    config: (over) => tinyConfig({ method: 'utc-ie', encoder, utcIe: { biaffineSize: 8, cnnDim: 8, depth: 2, dropout: 0.2, attnDropout: 0.2, ...over } }),
  },
];

for (const backend of trainingBackendsUnderTest()) {
  for (const c of cases) {
    const lowMemory = c.name === 'utc-ie' || c.name === 'sener' ? [false, true] : [false];
    for (const low of lowMemory) {
      test.serial(`${backend}: ${c.name}${low ? ' (lowMemory)' : ''}: gradients with train.recompute all equal those without`, async (t) => {
        await initBackend(backend, { quiet: true });
        const over = low ? { lowMemory: true } : {};
        const plain = gradients(withRecompute(c.config(over), 'none'));
        for (const mode of ['encoder', 'head', 'all'] as const) {
          const { worst, name } = maxRelDiff(plain, gradients(withRecompute(c.config(over), mode)));
          t.true(worst < 1e-4, `recompute ${mode}: max relative difference ${worst.toExponential(2)} in ${name}`);
        }
        // And the comparison can fail: another dropout draw gives other gradients.
        const reseeded = gradients(withRecompute(c.config(over), 'all'), 12);
        t.true(maxRelDiff(plain, reseeded).worst > 1e-3);
      });
    }
  }
}

function withRecompute(config: Config, recompute: Config['train']['recompute']): Config {
  return { ...config, train: { ...config.train, recompute } };
}
