/**
 * No leaks on the native engine over training steps: after the first step (which creates the AdamW
 * moments) the number of live tensors, their bytes and the pool's live bytes
 * (src/backend/native/pool.ts) stay exactly where they are, step after step, and the pool's free
 * lists never hold more than its cap. The batches change length from step to step, as in training,
 * so the pool serves and recycles buffers of many sizes.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { loadNativeAddon } from '../../src/backend/native/addon.js';
import { NativeBackend } from '../../src/backend/native/backend.js';
import type { Config } from '../../src/config/schema.js';
import { createModel } from '../../src/models/index.js';
import { AdamW } from '../../src/train/adamw.js';
import { epochOrder, stepRng, trainStep } from '../../src/train/trainer.js';
import { backendsUnderTest } from '../backend/helpers.js';
import { syntheticSegments, tinyConfig } from '../models/helpers.js';
import { setupBackend } from './helpers.js';

const STEPS = 8;

interface Sample {
  numTensors: number;
  numBytes: number;
  liveBytes: number;
  freeBytes: number;
}

const cases: { name: string; config: () => Config }[] = [
  {
    name: 'SeNER (arrow attention, BiSPA, LoRA, whole-word masking, dropout)',
    config: () =>
      tinyConfig({
        method: 'sener',
        encoder: { layers: 1, hidden: 32, heads: 2, ffn: 64, attention: 'arrow', window: 4, logN: 'padded', dropout: 0.1 },
        sener: { window: 4, depth: 1, biaffineSize: 16, cnnDim: 16, lora: { rank: 4, alpha: 8 }, wwm: 0.15 },
        train: { seed: 3, batchSize: 2, lr: 1e-2, encoderLr: 5e-3, clip: 1 },
      }),
  },
  {
    name: 'CNN-NER (full fine-tuning, window attention)',
    config: () =>
      tinyConfig({
        method: 'cnn-ner',
        encoder: { layers: 1, hidden: 32, heads: 2, ffn: 64, attention: 'window', window: 4, dropout: 0.1 },
        cnnNer: { biaffineSize: 16, cnnDim: 16, depth: 2, dropout: 0.1, logitDropout: 0.1 },
        train: { seed: 6, batchSize: 2, lr: 1e-2, encoderLr: 2e-3, clip: 1 },
      }),
  },
];

const hasNative = backendsUnderTest().includes('native');

function skipReason(): string {
  const load = loadNativeAddon();
  return load.ok ? 'native engine available' : load.reason;
}

for (const c of cases) {
  for (const cap of ['default', 'small'] as const) {
    const title = `native: ${STEPS} training steps leak no tensor and no pool bytes, free lists within the cap (${cap} pool cap): ${c.name}`;
    if (!hasNative) {
      test.skip(`${title} [skipped outside CI: ${skipReason()}]`, () => undefined);
      continue;
    }
    test.serial(title, async (t) => {
      await initBackend('native', { quiet: true });
      const backend = tf.backend();
      if (!(backend instanceof NativeBackend)) throw new Error(`expected the native backend, got ${tf.getBackend()}`);
      const originalCap = backend.pool.cap;
      // A cap of 256 KiB, below one step's working set, makes the free lists fill up to it and stop.
      if (cap === 'small') backend.pool.setCap(256 * 2 ** 10);
      const config = c.config();
      const data = syntheticSegments({ docs: 4, words: 36, entitiesPerDoc: 4, maxLen: 24, split: true, seed: 21 });
      const model = createModel(config, { types: data.types, vocabSize: data.vocabSize });
      const optimizer = AdamW.forModel(model, { weightDecay: config.train.weightDecay });
      const sample = (): Sample => {
        const { numTensors, numBytes } = tf.memory();
        const { liveBytes, freeBytes } = backend.poolStats();
        return { numTensors, numBytes, liveBytes, freeBytes };
      };
      const samples: Sample[] = [];
      const lengths = new Set<number>();
      try {
        const order = [...epochOrder(data.segments, config.train.seed, 0), ...epochOrder(data.segments, config.train.seed, 1)];
        for (let step = 0; step < STEPS; step++) {
          const segments = order.slice(2 * step, 2 * step + 2);
          for (const s of segments) lengths.add(s.tokenIds.length);
          const rng = stepRng(config.train.seed, step);
          const out = trainStep(
            () => model.loss({ segments }, { rng }),
            optimizer,
            { head: config.train.lr, encoder: config.train.encoderLr },
            config.train.clip,
          );
          t.false(out.diverged, `step ${step + 1}: loss ${out.loss}`);
          samples.push(sample());
          t.true(samples[step]!.freeBytes <= backend.pool.cap, `step ${step + 1}: ${samples[step]!.freeBytes} free bytes, cap ${backend.pool.cap}`);
        }
        t.log(
          `segment lengths ${[...lengths].sort((a, b) => a - b).join(', ')}; after step 1: ${samples[0]!.numTensors} tensors, ${samples[0]!.liveBytes} live pool bytes, ${samples[0]!.freeBytes} free (cap ${backend.pool.cap})`,
        );
        t.log(`free pool bytes after each step: ${samples.map((s) => s.freeBytes).join(', ')}`);
        t.true(lengths.size > 1, 'batches of different lengths');
        const first = samples[0]!;
        for (let step = 1; step < STEPS; step++) {
          const s = samples[step]!;
          t.is(s.numTensors, first.numTensors, `tensors after step ${step + 1}`);
          t.is(s.numBytes, first.numBytes, `tensor bytes after step ${step + 1}`);
          t.is(s.liveBytes, first.liveBytes, `live pool bytes after step ${step + 1}`);
        }
        // The live pool bytes are those of the live tensors: parameters and moments (several tensors
        // may share a buffer, and int32/bool tensors count too, so at most numBytes, never more).
        t.true(first.liveBytes <= first.numBytes, `${first.liveBytes} live pool bytes, ${first.numBytes} tensor bytes`);
        t.true(first.liveBytes > 0);
      } finally {
        optimizer.dispose();
        model.params.dispose();
        backend.pool.setCap(originalCap);
        await setupBackend();
      }
    });
  }
}
