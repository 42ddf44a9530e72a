import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { defaultConfig } from '../../src/config/schema.js';
import { blockConstants, createUtcIeHead, createUtcIeModel, crossBlock, UTC_IE_SIZE_BUCKETS, utcIeLogits, type UtcIeConfig } from '../../src/models/utc-ie.js';
import { encodeWords } from '../../src/models/encode.js';
import { biaffineGrid } from '../../src/models/grid-head.js';
import { ParamStore } from '../../src/nn/params.js';
import { createRng } from '../../src/util/rng.js';
import { checkVarGradients, maxAbsDiff, randomTensor } from '../nn/helpers.js';
import { backendsUnderTest, fitTwoRates, setupBackend, syntheticSegments, tinyConfig, trainingBackendsUnderTest } from './helpers.js';

// Every test is serial: the gradient checks and the overfit test switch the global backend.
test.before(async () => {
  await setupBackend();
});

const small: UtcIeConfig = {
  biaffineSize: 4,
  cnnDim: 4,
  depth: 1,
  dropout: 0,
  encoderOutputDropout: 0,
  attnDropout: 0,
  sizeEmbedDim: 0,
  biaffineNorm: true,
  triangleEmbedding: true,
  triangleInitGain: 0.1,
  scaleRope: true,
  columnTransposeBack: true,
  symmetric: true,
  lowMemory: false,
  recompute: false,
};

/**
 * Random values everywhere, so zero-initialised biases and LayerNorm shifts are exercised too.
 * LayerNorm gains stay near 1: a gain near 0 leaves the next LayerNorm a near-constant input, so
 * curved that a finite difference of step 0.05 is off by 10% (measured).
 */
function randomize(store: ParamStore, scale = 0.5): void {
  store.names().forEach((n, i) => {
    tf.tidy(() => {
      const r = randomTensor(store.get(n).shape, 900 + i, n.endsWith('.gamma') ? 0.2 : scale);
      store.get(n).assign(n.endsWith('.gamma') ? tf.add(r, 1) : r);
    });
  });
}

/** Cells "i,j" whose block output moves when input cell (a, b) moves, with the convolutions switched off. */
function reach(columnTransposeBack: boolean, L: number, a: number, b: number): Set<string> {
  const cfg = { ...small, columnTransposeBack };
  const store = new ParamStore(8);
  const head = createUtcIeHead(store, 3, 2, cfg);
  randomize(store, 0.8);
  const blk = head.blocks[0]!;
  // Zero taps: the 3x3 convolutions would spread a change to the neighbouring cells.
  tf.tidy(() => {
    (blk.conv1 as tf.Variable).assign(tf.zerosLike(blk.conv1));
    (blk.conv2 as tf.Variable).assign(tf.zerosLike(blk.conv2));
  });
  const c = cfg.cnnDim;
  const base = randomTensor([L * L, c], 3) as tf.Tensor2D;
  const moved = tf.tidy(() => tf.add(base, tf.mul(tf.oneHot(tf.tensor1d([a * L + b], 'int32'), L * L).reshape([L * L, 1]), 0.7))) as tf.Tensor2D;
  const diff = tf.tidy(() => {
    const k = blockConstants(L, c, cfg);
    const run = (x: tf.Tensor2D): tf.Tensor2D => crossBlock(x, blk, L, cfg, { training: false }, k);
    return tf.max(tf.abs(tf.sub(run(moved), run(base))), 1).dataSync() as Float32Array;
  });
  tf.dispose([base, moved]);
  store.dispose();
  const out = new Set<string>();
  diff.forEach((d, cell) => {
    if (d > 1e-5) out.add(`${Math.floor(cell / L)},${cell % L}`);
  });
  return out;
}

test.serial('plus shape: a cell reaches its own row and column; the reference layout reaches row i and row j instead', (t) => {
  const L = 5;
  const [a, b] = [1, 3];
  const cells = (pred: (i: number, j: number) => boolean): Set<string> => {
    const s = new Set<string>();
    for (let i = 0; i < L; i++) for (let j = 0; j < L; j++) if (pred(i, j)) s.add(`${i},${j}`);
    return s;
  };
  t.deepEqual(
    reach(true, L, a, b),
    cells((i, j) => i === a || j === b),
  );
  t.deepEqual(
    reach(false, L, a, b),
    cells((i) => i === a || i === b),
  );
});

test.serial('head gradients match finite differences on every backend under test (fixed word states)', async (t) => {
  try {
    for (const backend of backendsUnderTest()) {
      await initBackend(backend, { quiet: true });
      // The reference layout with the reference's scaled RoPE, the plus shape, plain RoPE, and the
      // optional span-size embedding.
      for (const [columnTransposeBack, scaleRope, sizeEmbedDim] of [
        [false, true, 0],
        [true, true, 0],
        [true, false, 0],
        [false, true, 3],
      ] as const) {
        const store = new ParamStore(6);
        const head = createUtcIeHead(store, 6, 2, { ...small, columnTransposeBack, scaleRope, sizeEmbedDim });
        randomize(store, 0.4);
        const x = randomTensor([4, 6], 31) as tf.Tensor2D;
        // Attention, two convolutions and four LayerNorms deep, the float32 rounding of the 32 outputs
        // is ~1e-5 of a finite difference, as large as the smallest entries (query and key weights,
        // which the softmax barely feels): errors count relative to at least 1e-3 of the largest entry,
        // and the worst measured is 3.5e-3 (cpu) / 2.1e-3 (wasm) / 4.1e-3 (native). A gradient off by 10% scores ~5e-2.
        const res = checkVarGradients(() => utcIeLogits(x, head, { training: false }), store.trainable(), { coords: 3, tol: 1e-2, floorShare: 1e-3 });
        t.log(
          `${backend} columnTransposeBack=${columnTransposeBack} scaleRope=${scaleRope} sizeEmbedDim=${sizeEmbedDim}: max relative error ${res.maxRelError.toExponential(2)} over ${store.names().length} parameters`,
        );
        t.true(res.ok, `${backend}: ${JSON.stringify(res.worst)}`);
        x.dispose();
        store.dispose();
      }
    }
  } finally {
    await setupBackend();
  }
});

test.serial('scaleRope: dividing the RoPE tables by sqrt(c) equals dividing the query and key weights by sqrt(c)', (t) => {
  // RoPE is linear in its tables, so the reference's scaled sinusoid table is plain RoPE on
  // queries and keys shrunk by sqrt(c) each: the attention logits shrink by c.
  const c = small.cnnDim;
  const L = 5;
  const scaled = new ParamStore(12);
  const plain = new ParamStore(12);
  const a = createUtcIeHead(scaled, 6, 2, { ...small, scaleRope: true });
  const b = createUtcIeHead(plain, 6, 2, { ...small, scaleRope: false });
  randomize(scaled, 0.8);
  for (const n of scaled.names()) {
    tf.tidy(() => {
      let v: tf.Tensor = scaled.get(n);
      // Q and K are the first 2c of the 3c outputs of a block's row_qkv / col_qkv.
      if (/\.(row|col)_qkv\.[Wb]$/.test(n)) {
        const cols = v.shape[v.shape.length - 1]!;
        const f = Float32Array.from({ length: cols }, (_, j) => (j < 2 * c ? 1 / Math.sqrt(c) : 1));
        v = tf.mul(v, tf.tensor1d(f));
      }
      plain.get(n).assign(v);
    });
  }
  const x = randomTensor([L, 6], 41) as tf.Tensor2D;
  const logits = (head: typeof a): tf.Tensor2D => utcIeLogits(x, head, { training: false });
  const diff = tf.tidy(() => maxAbsDiff(logits(a), logits(b)));
  t.true(diff < 1e-4, `max difference ${diff}`);
  const tables = tf.tidy(() => {
    const k1 = blockConstants(L, c, { scaleRope: true });
    const k0 = blockConstants(L, c, { scaleRope: false });
    return tf.max(tf.abs(tf.sub(tf.mul(k1.rope.cos, Math.sqrt(c)), k0.rope.cos))).dataSync()[0]!;
  });
  t.true(tables < 1e-6);
  // And the scale matters: the same weights under plain RoPE give other logits.
  const other = tf.tidy(() => maxAbsDiff(logits(a), logits({ ...a, cfg: { ...a.cfg, scaleRope: false } })));
  t.true(other > 1e-3, `plain RoPE differs by ${other}`);
  x.dispose();
  scaled.dispose();
  plain.dispose();
});

test.serial('triangle embedding: xavier-normal with gain triangleInitGain (reference 0.1 under use_ln)', (t) => {
  // 16 blocks of [2, 64] tables: 2,048 values, so the sample standard deviation is close to its target.
  const c = 64;
  const std = (gain: number): number => {
    const store = new ParamStore(13);
    const head = createUtcIeHead(store, 4, 1, { ...small, cnnDim: c, depth: 16, triangleInitGain: gain });
    const v = head.blocks.flatMap((b) => [...(b.tri!.dataSync() as Float32Array)]);
    store.dispose();
    return Math.sqrt(v.reduce((m, x) => m + x * x, 0) / v.length);
  };
  const target = Math.sqrt(2 / (c + 2));
  t.true(Math.abs(std(0.1) / (0.1 * target) - 1) < 0.1, `gain 0.1: ${std(0.1)} vs ${0.1 * target}`);
  t.true(Math.abs(std(1) / target - 1) < 0.1, `gain 1: ${std(1)} vs ${target}`);
});

test.serial("encoderOutputDropout drops out the encoder's states in training only", (t) => {
  const data = syntheticSegments({ seed: 61, types: ['A'], entitiesPerDoc: 2, entityLength: { dist: 'uniform', min: 1, max: 2 } });
  const seg = data.segments[0]!;
  // Every other dropout off: only the encoder output's can change the loss.
  const head = { biaffineSize: 4, cnnDim: 4, depth: 1, dropout: 0, attnDropout: 0 };
  const lossOf = (rate: number): number => {
    const config = tinyConfig({ method: 'utc-ie', utcIe: { ...head, encoderOutputDropout: rate } });
    const model = createUtcIeModel(config, { types: data.types, vocabSize: data.vocabSize });
    const value = tf.tidy(() => model.loss({ segments: [seg] }, { rng: createRng(3) }).dataSync()[0]!);
    model.params.dispose();
    return value;
  };
  t.not(lossOf(0.4), lossOf(0));
  // The word states themselves: with one token per word, each entry is 0 or 1 / (1 - rate) times its value.
  const config = tinyConfig({ method: 'utc-ie', utcIe: head });
  const model = createUtcIeModel(config, { types: data.types, vocabSize: data.vocabSize });
  const [plain, dropped] = tf.tidy(() => [
    encodeWords(model.encoder, seg, { training: true, rng: createRng(5) }).dataSync() as Float32Array,
    encodeWords(model.encoder, seg, { training: true, rng: createRng(5), outputDropout: 0.5 }).dataSync() as Float32Array,
  ]);
  t.true(dropped!.every((v, i) => v === 0 || Math.abs(v - 2 * plain![i]!) < 1e-5 * Math.max(1, Math.abs(v))));
  t.true(dropped!.some((v) => v === 0));
  const inference = tf.tidy(() => encodeWords(model.encoder, seg, { training: false, outputDropout: 0.5 }).dataSync() as Float32Array);
  t.deepEqual([...inference], [...plain!]);
  model.params.dispose();
});

test.serial('sizeEmbedDim: cell (i, j) adds E_size[clip(j - i, -25, 24) + 25] W_size to the linear term (50 buckets)', (t) => {
  // Everything but the size rows of W zeroed and no LayerNorms: the linear term is the size term alone.
  const store = new ParamStore(4);
  const L = 30;
  const head = createUtcIeHead(store, 3, 1, { ...small, biaffineNorm: false, sizeEmbedDim: 2 });
  randomize(store);
  const d1 = small.biaffineSize + 1;
  tf.tidy(() => {
    (head.biaffine.U as tf.Variable).assign(tf.zerosLike(head.biaffine.U));
    const W = head.biaffine.W;
    (W as tf.Variable).assign(tf.concat([tf.zeros([2 * d1, W.shape[1]]), tf.slice(W, [2 * d1, 0], [2, W.shape[1]])]));
  });
  const x = randomTensor([L, 3], 5) as tf.Tensor2D;
  const S = tf.tidy(() => biaffineGrid(x, head.biaffine, 0, { training: false }).arraySync());
  const want = tf.tidy(() =>
    (tf.matMul(head.biaffine.size!, tf.slice(head.biaffine.W, [2 * d1, 0], [2, head.biaffine.W.shape[1]])) as tf.Tensor2D).arraySync(),
  );
  for (const [i, j, bucket] of [
    [0, 0, 25],
    [2, 5, 28],
    [0, 24, 49],
    [0, 29, 49],
    [29, 0, 0],
    [25, 0, 0],
    [24, 0, 1],
  ] as const) {
    const gap = Math.max(...S[i * L + j]!.map((v, k) => Math.abs(v - want[bucket]![k]!)));
    t.true(gap < 1e-5, `cell (${i}, ${j}) uses bucket ${bucket}`);
  }
  x.dispose();
  store.dispose();
});

test.serial('factory: parameter names and groups, options switch parameters off, defaults', (t) => {
  const config = tinyConfig({ method: 'utc-ie', utcIe: { depth: 2 } });
  const model = createUtcIeModel(config, { types: ['A'], vocabSize: 30 });
  t.is(model.method, 'utc-ie');
  const names = model.params.names();
  t.true(names.includes('head.block1.col_qkv.W'));
  t.true(names.includes('head.block0.tri'));
  t.true(names.includes('head.biaffine.ln_bilinear.gamma'));
  t.is(model.paramGroup('head.block1.col_qkv.W'), 'head');
  t.is(model.paramGroup('encoder.tok_embed'), 'encoder');
  t.false(names.includes('head.biaffine.size_embed'), 'the reference has no span-size embedding by default');
  model.params.dispose();
  const bare = createUtcIeModel(tinyConfig({ method: 'utc-ie', utcIe: { triangleEmbedding: false, biaffineNorm: false } }), { types: ['A'], vocabSize: 30 });
  t.false(bare.params.names().some((n) => n.endsWith('.tri') || n.includes('.ln_bilinear')));
  bare.params.dispose();
  // use_size_embed 1: a [50, e] table, and W grows by e rows for it.
  const sized = createUtcIeModel(tinyConfig({ method: 'utc-ie', utcIe: { sizeEmbedDim: 5 } }), { types: ['A'], vocabSize: 30 });
  const d1 = config.utcIe.biaffineSize + 1;
  t.deepEqual(sized.params.get('head.biaffine.size_embed').shape, [UTC_IE_SIZE_BUCKETS, 5]);
  t.deepEqual(sized.params.get('head.biaffine.W').shape, [2 * d1 + 5, config.utcIe.cnnDim]);
  sized.params.dispose();
  t.throws(() => tinyConfig({ method: 'utc-ie', utcIe: { cnnDim: 7 } }));
  const d = defaultConfig().utcIe;
  t.deepEqual([d.cnnDim, d.depth, d.biaffineSize, d.attnDropout], [32, 3, 200, 0.15]);
  // use_ln = 1 and its `scale` flag; drop_p on the encoder output.
  t.deepEqual([d.biaffineNorm, d.scaleRope, d.triangleInitGain, d.encoderOutputDropout, d.sizeEmbedDim], [true, true, 0.1, 0.4, 0]);
});

for (const backend of trainingBackendsUnderTest()) {
  test.serial(`${backend}: overfit: a tiny model reaches F1 = 1.0 on two synthetic documents`, async (t) => {
    // The documents of cnn-ner.test.ts (one entity per type per document). On the training backends
    // (wasm, native): the cpu backend's 3D slices make the convolutions about 20x slower there.
    await initBackend(backend, { quiet: true });
    try {
      const data = syntheticSegments({ seed: 60, types: ['PER', 'ORG', 'LOC'], entitiesPerDoc: 3, entityLength: { dist: 'uniform', min: 2, max: 4 } });
      const config = tinyConfig({
        method: 'utc-ie',
        train: { seed: 4 },
        utcIe: { biaffineSize: 16, cnnDim: 16, depth: 1, dropout: 0, encoderOutputDropout: 0, attnDropout: 0 },
      });
      const model = createUtcIeModel(config, { types: data.types, vocabSize: data.vocabSize });
      const before = tf.memory().numTensors;
      // Measured (native): train seeds 1-4 reach F1 = 1.0 after 50-135 steps (seed 4: 50).
      const fit = fitTwoRates(model, data, { encoderLr: 1e-3, headLr: 3e-2, maxSteps: 250 });
      const words = data.segments.reduce((n, s) => n + s.words, 0);
      t.log(`utc-ie: F1 ${fit.f1} after ${fit.steps} steps, ${fit.msPerStep.toFixed(0)} ms per step (prediction included), ${words} words`);
      t.is(fit.f1, 1);
      t.is(tf.memory().numTensors, before, 'training and prediction leave no tensors behind');
      model.params.dispose();
    } finally {
      await setupBackend();
    }
  });
}
