/**
 * The native engine trains like wasm: 50 steps of the real training step (src/train/trainer.ts's
 * trainStep: loss, gradients, divergence check, global-norm clipping, AdamW, which is one fused
 * kernel on native) on real small models, from the same seed and batches, give the same per-step
 * losses on wasm and native. On native the model also runs its fused LayerNorm and GELU kernels, so
 * this compares them, in a training trajectory, with wasm's compositions of stock ops.
 */
import test from 'ava';
import { initBackend, type BackendName } from '../../src/backend/index.js';
import { loadNativeAddon } from '../../src/backend/native/addon.js';
import type { Config } from '../../src/config/schema.js';
import { createModel } from '../../src/models/index.js';
import { AdamW } from '../../src/train/adamw.js';
import { linearSchedule } from '../../src/train/schedule.js';
import { epochOrder, stepRng, trainStep } from '../../src/train/trainer.js';
import { backendsUnderTest } from '../backend/helpers.js';
import { syntheticSegments, tinyConfig, type SyntheticData } from '../models/helpers.js';
import { setupBackend } from './helpers.js';

const STEPS = 50;

interface Trajectory {
  losses: number[];
  gradNorms: number[];
  ms: number;
}

/** STEPS optimizer steps as the trainer takes them: seeded epoch order, batches, step rngs, warm-up and decay. */
async function trajectory(backend: BackendName, config: Config, data: SyntheticData): Promise<Trajectory> {
  await initBackend(backend, { quiet: true });
  const tc = config.train;
  const model = createModel(config, { types: data.types, vocabSize: data.vocabSize });
  const optimizer = AdamW.forModel(model, { weightDecay: tc.weightDecay });
  const schedule = linearSchedule(STEPS, tc.warmup);
  const losses: number[] = [];
  const gradNorms: number[] = [];
  const started = performance.now();
  try {
    for (let epoch = 0, step = 0; step < STEPS; epoch++) {
      const order = epochOrder(data.segments, tc.seed, epoch);
      for (let i = 0; i < order.length && step < STEPS; i += tc.batchSize, step++) {
        const segments = order.slice(i, i + tc.batchSize);
        const rng = stepRng(tc.seed, step);
        // The schedule's factor is 0 at step 0 (warm-up starts at zero), as in the trainer.
        const f = schedule.factor(step);
        const out = trainStep(() => model.loss({ segments }, { rng }), optimizer, { head: tc.lr * f, encoder: tc.encoderLr * f }, tc.clip);
        if (out.diverged) throw new Error(`${backend}: step ${step} diverged (loss ${out.loss})`);
        losses.push(out.loss);
        gradNorms.push(out.gradNorm);
      }
    }
  } finally {
    optimizer.dispose();
    model.params.dispose();
  }
  return { losses, gradNorms, ms: performance.now() - started };
}

/**
 * Relative difference of the per-step losses allowed at 0-based step s: 1e-5 on the first step,
 * growing linearly to 1e-3 at the last. Only float32 rounding differs between the two (summation
 * order in oneDNN's blocked sgemm and the C reductions vs XNNPACK and tfjs's loops, the polynomial
 * exp/tanh of the native kernels), about 1e-7..1e-6 relative per op; each update feeds the rounding
 * of the step before into the next, so the bound grows with the step. Measured on the three cases:
 * step 1 at most 5.5e-7, any step at most 2.1e-6. (While the fused AdamW formed 1 - beta2 in
 * float32, biasing every second moment by 1.3e-5, differences reached 4e-5; adamw.test.ts's hand
 * computation is what pins that down to 1e-6.)
 */
function tolerance(s: number): number {
  return 1e-5 + (1e-3 - 1e-5) * (s / (STEPS - 1));
}

const cases: { name: string; config: () => Config; data: () => SyntheticData }[] = [
  {
    name: 'SeNER (arrow attention + LogN, BiSPA, LoRA, whole-word masking, dropout)',
    config: () =>
      tinyConfig({
        method: 'sener',
        encoder: { layers: 1, hidden: 32, heads: 2, ffn: 64, attention: 'arrow', window: 4, logN: 'padded', dropout: 0.1 },
        sener: { window: 4, depth: 1, biaffineSize: 16, cnnDim: 16, lora: { rank: 4, alpha: 8 }, wwm: 0.15 },
        train: { seed: 3, batchSize: 2, lr: 1e-2, encoderLr: 5e-3, warmup: 0.1, clip: 1 },
      }),
    data: () => syntheticSegments({ docs: 4, words: 36, entitiesPerDoc: 4, maxLen: 24, split: true, seed: 21 }),
  },
  {
    name: 'Global Pointer (full fine-tuning, full attention)',
    config: () =>
      tinyConfig({
        method: 'global-pointer',
        encoder: { layers: 1, hidden: 32, heads: 2, ffn: 64, attention: 'full', dropout: 0.1 },
        globalPointer: { headSize: 16 },
        train: { seed: 5, batchSize: 2, lr: 5e-3, encoderLr: 2e-3, warmup: 0.1, clip: 1 },
      }),
    data: () => syntheticSegments({ docs: 4, words: 36, entitiesPerDoc: 4, maxLen: 24, split: true, seed: 22 }),
  },
  {
    name: 'CNN-NER (biaffine + masked 3x3 convolutions, window attention)',
    config: () =>
      tinyConfig({
        method: 'cnn-ner',
        encoder: { layers: 1, hidden: 32, heads: 2, ffn: 64, attention: 'window', window: 4, dropout: 0.1 },
        cnnNer: { biaffineSize: 16, cnnDim: 16, depth: 2, dropout: 0.1, logitDropout: 0.1 },
        train: { seed: 6, batchSize: 2, lr: 1e-2, encoderLr: 2e-3, warmup: 0.1, clip: 1 },
      }),
    data: () => syntheticSegments({ docs: 4, words: 36, entitiesPerDoc: 4, maxLen: 24, split: true, seed: 23 }),
  },
];

const hasNative = backendsUnderTest().includes('native');

function skipReason(): string {
  const load = loadNativeAddon();
  return load.ok ? 'native engine available' : load.reason;
}

for (const c of cases) {
  const title = `wasm and native give the same losses over ${STEPS} training steps: ${c.name}`;
  if (!hasNative) {
    test.skip(`${title} [skipped outside CI: ${skipReason()}]`, () => undefined);
    continue;
  }
  test.serial(title, async (t) => {
    try {
      const config = c.config();
      const data = c.data();
      t.true(data.segments.length >= 4, `${data.segments.length} segments`);
      const wasm = await trajectory('wasm', config, data);
      const native = await trajectory('native', config, data);
      t.is(wasm.losses.length, STEPS);
      t.is(native.losses.length, STEPS);
      const rel = wasm.losses.map((l, s) => Math.abs(native.losses[s]! - l) / Math.max(Math.abs(l), 1e-6));
      const relNorm = wasm.gradNorms.map((g, s) => Math.abs(native.gradNorms[s]! - g) / Math.max(Math.abs(g), 1e-6));
      t.log(
        `loss ${wasm.losses[0]!.toFixed(4)} -> ${wasm.losses[STEPS - 1]!.toFixed(4)} (wasm); ${(wasm.ms / STEPS).toFixed(0)} ms/step wasm, ${(native.ms / STEPS).toFixed(0)} ms/step native`,
      );
      t.log(
        `relative loss difference: step 1 ${rel[0]!.toExponential(2)}, step 10 ${rel[9]!.toExponential(2)}, step 25 ${rel[24]!.toExponential(2)}, step 50 ${rel[STEPS - 1]!.toExponential(2)}, max ${Math.max(...rel).toExponential(2)}`,
      );
      t.log(`relative gradient-norm difference: max ${Math.max(...relNorm).toExponential(2)}`);
      // The run trains: the comparison is not between two flat lines.
      t.true(wasm.losses[STEPS - 1]! < 0.7 * wasm.losses[0]!, `loss ${wasm.losses[0]} -> ${wasm.losses[STEPS - 1]}`);
      const bad = rel.map((r, s) => ({ s, r })).filter(({ s, r }) => !(r <= tolerance(s)));
      t.deepEqual(
        bad.map(
          ({ s, r }) =>
            `step ${s + 1}: ${wasm.losses[s]} (wasm) vs ${native.losses[s]} (native), relative ${r.toExponential(2)} > ${tolerance(s).toExponential(2)}`,
        ),
        [],
      );
    } finally {
      await setupBackend();
    }
  });
}
