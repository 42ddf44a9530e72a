/**
 * Every shipped ablation config changes what the model computes: the same seed, data and two
 * optimizer steps give other gold-entity probabilities than SeNER's default config. A switch that
 * is parsed but not wired (an ablation row identical to the full model) fails here.
 */
import test from 'ava';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { createModel } from '../../src/models/index.js';
import type { SpanModel } from '../../src/models/span-model.js';
import { AdamW } from '../../src/train/adamw.js';
import { stepRng, trainStep } from '../../src/train/trainer.js';
import { fromRoot } from '../../src/util/paths.js';
import { setupBackend, syntheticSegments } from './helpers.js';

// Tiny sizes; segments of 48 tokens are longer than the 4-token arrow window, so the attention pattern
// matters, and two layers, because LogN scales only the [CLS] row, which reaches the words through the
// next layer's attention to [CLS] (the words are pooled from the last layer, [CLS] is not).
const TINY = [
  'encoder.layers=2',
  'encoder.hidden=32',
  'encoder.heads=2',
  'encoder.ffn=64',
  'encoder.window=4',
  'encoder.pretrained=null',
  'sener.window=3',
  'sener.cnnDim=4',
  'sener.biaffineSize=8',
  'train.seed=5',
];

const data = syntheticSegments({ seed: 21, docs: 2, words: 40, entitiesPerDoc: 6, maxLen: 48, split: true });
const batch = { segments: data.segments };

function goldScoresAfterTwoSteps(config: Config): number[] {
  const model: SpanModel = createModel(config, { types: data.types, vocabSize: data.vocabSize });
  const optimizer = AdamW.forModel(model, { weightDecay: config.train.weightDecay });
  try {
    for (let step = 0; step < 2; step++) {
      const rng = stepRng(config.train.seed, step);
      trainStep(() => model.loss(batch, { rng }), optimizer, { head: 1e-2, encoder: 1e-2 }, 1);
    }
    return model.inspect!(batch, [0.5]).flatMap((i) => i.goldScores.map((g) => g ?? -1));
  } finally {
    optimizer.dispose();
    model.params.dispose();
  }
}

const dir = fromRoot('configs', 'ablations');
let reference: number[] = [];
test.before(async () => {
  await setupBackend();
  reference = goldScoresAfterTwoSteps(loadConfig(fromRoot('configs', 'sener', 'scholar-xl.yaml'), { set: TINY }).config);
});

for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml'))) {
  test.serial(`${file} changes the model's output against SeNER's default`, (t) => {
    const config = loadConfig(join(dir, file), { set: TINY }).config;
    t.is(config.method, 'sener');
    const scores = goldScoresAfterTwoSteps(config);
    t.is(scores.length, reference.length);
    const diff = Math.max(...scores.map((s, i) => Math.abs(s - reference[i]!)));
    t.true(diff > 1e-6, `largest change of a gold probability: ${diff}`);
  });
}

test.serial('the same config twice gives the same output (so a difference above is the switch)', (t) => {
  const again = goldScoresAfterTwoSteps(loadConfig(fromRoot('configs', 'sener', 'scholar-xl.yaml'), { set: TINY }).config);
  t.deepEqual(again, reference);
});
