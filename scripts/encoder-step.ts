/**
 * One encoder layer's training step, timed on one backend: the measurement behind the engine's
 * speed target (research/backends.md 1c and 8 use the same step). Run by `npm run bench` in a child
 * process per backend and length, so that the wasm heap and the native pool start fresh.
 *
 *   node dist/scripts/encoder-step.js --backend native --tokens 512 [--repeats 5]
 *
 * The step: token embedding (8,000 x 256) -> one pre-LN layer (hidden 256, 4 heads, FFN 1,024, full
 * attention, RoPE, tanh GELU) -> masked-LM head on 15% of the positions (tied output embedding),
 * then gradients, global-norm clipping and AdamW over every parameter: the project's own Encoder,
 * mlmLoss, trainStep and AdamW. Prints one JSON line: median and mean ms, the layer's FLOPs.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, type BackendChoice } from '../src/backend/index.js';
import { Encoder, type EncoderConfig } from '../src/nn/encoder.js';
import { createMlmHead, mlmLoss } from '../src/nn/mlm.js';
import { ParamStore } from '../src/nn/params.js';
import { AdamW, decaysWeight } from '../src/train/adamw.js';
import { trainStep } from '../src/train/trainer.js';
import { createRng } from '../src/util/rng.js';

export const ENCODER_STEP: EncoderConfig = {
  vocabSize: 8000,
  layers: 1,
  hidden: 256,
  heads: 4,
  ffn: 1024,
  dropout: 0,
  attention: 'full',
  window: 128,
  logN: 'off',
};

/** Training FLOPs of the layer's products on T tokens: 3x the forward (see scripts/bench.ts encoderTrainFlops). */
export function layerTrainFlops(T: number, c: EncoderConfig = ENCODER_STEP): number {
  const forward = 8 * T * c.hidden * c.hidden + 4 * T * c.hidden * c.ffn + 4 * T * T * c.hidden;
  return 3 * forward;
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

export async function main(): Promise<void> {
  const backendName = arg('backend', 'native') as BackendChoice;
  const T = Number(arg('tokens', '512'));
  const repeats = Number(arg('repeats', '5'));
  const backend = await initBackend(backendName, { quiet: true });
  const params = new ParamStore(7);
  const encoder = new Encoder(ENCODER_STEP, params);
  createMlmHead(params, ENCODER_STEP.hidden, ENCODER_STEP.vocabSize);
  const optimizer = new AdamW(
    params.trainable().map((variable) => {
      const name = params.nameOf(variable);
      return { name, variable, group: 'encoder', decay: decaysWeight(name) };
    }),
    { weightDecay: 0.01 },
  );
  const rng = createRng(11);
  const tokens = Int32Array.from({ length: T }, () => Math.floor(rng.next() * ENCODER_STEP.vocabSize));
  const targets = Int32Array.from(tokens, (t) => (rng.next() < 0.15 ? t : -1));
  const step = (): number => trainStep(() => mlmLoss(encoder.forward(tokens, { training: true }), targets, params), optimizer, { encoder: 1e-4 }, 1).loss;
  step(); // warm-up: the pool fills, V8 compiles
  const times: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    step();
    times.push(performance.now() - t0);
  }
  const sorted = [...times].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  process.stdout.write(
    `${JSON.stringify({
      backend: backend.name,
      detail: backend.detail,
      tokens: T,
      times,
      medianMs: median,
      meanMs: times.reduce((s, t) => s + t, 0) / times.length,
      flops: layerTrainFlops(T),
      numTensors: tf.memory().numTensors,
    })}\n`,
  );
}

if (process.argv[1]?.endsWith('encoder-step.js')) await main();
