import { REFERENCE_BCE } from '../../src/nn/bce.js';
import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { checkGradients } from '../../src/backend/gradcheck.js';
import { ConfigSchema, type Config, type ConfigInput } from '../../src/config/schema.js';
import type { Segment } from '../../src/data/segmenter.js';
import { generateDocuments } from '../../src/data/synthetic.js';
import { CLS_ID, SEP_ID } from '../../src/data/tokenizer.js';
import type { Document, Entity, ScoredEntity } from '../../src/data/types.js';
import { bandValidMask, gridToBand, rollFlip } from '../../src/nn/band.js';
import { createLayerNorm, createLinear } from '../../src/nn/layers.js';
import { ParamStore } from '../../src/nn/params.js';
import {
  bandContext,
  bispaAttention,
  bispaBlock,
  createSenerHead,
  createSenerModel,
  decodeBand,
  gridContext,
  senerLogits,
  symmetricProbabilities,
  type BispaBlock,
  type SenerConfig,
  type SenerModel,
} from '../../src/models/sener.js';
import { createRng } from '../../src/util/rng.js';
import { backendsUnderTest, trainingBackendsUnderTest } from '../backend/helpers.js';
import { checkVarGradients, maxAbsDiff, randomTensor, setupBackend } from '../nn/helpers.js';

const backends = backendsUnderTest();

// Gradient checks run on every backend under test (cpu, wasm, native); the overfit test on the
// training backends (wasm, native); every other test runs on the one setupBackend picks (cpu, or
// LONGNER_TEST_BACKEND) and sets it itself, since serial tests switch backends.

// ---------------------------------------------------------------------------------------------
// Fixtures: one token per word, so no tokenizer has to be trained.

function vocabularyOf(docs: readonly Document[]): Map<string, number> {
  const vocab = new Map<string, number>();
  for (const d of docs) for (const w of d.words) if (!vocab.has(w)) vocab.set(w, 5 + vocab.size);
  return vocab;
}

function segmentOf(doc: Document, vocab: Map<string, number>): Segment {
  const L = doc.words.length;
  return {
    docId: doc.id,
    index: 0,
    wordOffset: 0,
    words: L,
    tokenIds: Int32Array.from([CLS_ID, ...doc.words.map((w) => vocab.get(w)!), SEP_ID]),
    tokenWord: Int32Array.from([-1, ...doc.words.map((_, i) => i), -1]),
    entities: doc.entities,
    droppedEntities: 0,
  };
}

function tinyConfig(over: { encoder?: ConfigInput['encoder']; sener?: ConfigInput['sener'] } = {}): Config {
  return ConfigSchema.parse({
    method: 'sener',
    train: { seed: 7 },
    encoder: { layers: 1, hidden: 16, heads: 2, ffn: 32, dropout: 0.1, window: 4, ...over.encoder },
    sener: { biaffineSize: 8, cnnDim: 8, depth: 1, ...over.sener },
  });
}

const TYPES = ['A', 'B'];

function smallData(seed = 3): { segments: Segment[]; vocabSize: number } {
  const docs = generateDocuments({
    docs: 2,
    words: 20,
    entitiesPerDoc: 4,
    entityLength: { dist: 'uniform', min: 1, max: 4 },
    types: TYPES,
    nested: 0.4,
    vocabulary: 30,
    seed,
  });
  const vocab = vocabularyOf(docs);
  return { segments: docs.map((d) => segmentOf(d, vocab)), vocabSize: 5 + vocab.size };
}

function f1(gold: readonly Entity[][], pred: readonly ScoredEntity[][]): number {
  let tp = 0;
  let np = 0;
  let ng = 0;
  gold.forEach((g, s) => {
    const key = (e: Entity): string => `${e.start}:${e.end}:${e.type}`;
    const gs = new Set(g.map(key));
    const ps = new Set(pred[s]!.map(key));
    ng += gs.size;
    np += ps.size;
    for (const k of ps) if (gs.has(k)) tp++;
  });
  return tp === 0 ? 0 : (2 * tp) / (np + ng);
}

// ---------------------------------------------------------------------------------------------
// Gradient checks

function headConfig(over: Partial<SenerConfig> = {}): SenerConfig {
  return {
    window: 2,
    biaffineSize: 4,
    cnnDim: 4,
    depth: 1,
    mlpDropout: 0,
    attnDropout: 0,
    bispa: true,
    unrollVertical: false,
    lowMemory: false,
    recompute: false,
    decodeAverage: 'probability',
    multiType: false,
    referenceSortBug: false,
    threshold: 0.5,
    bce: REFERENCE_BCE,
    ...over,
  };
}

/** Random values for every parameter, so zero-initialised biases and LayerNorm shifts matter too. */
function randomizeAll(store: ParamStore, scale = 0.5): void {
  store.names().forEach((n, i) => {
    tf.tidy(() => store.get(n).assign(randomTensor(store.get(n).shape, 500 + i, scale)));
  });
}

/** A BiSPA block of width c with random weights (every parameter, so zero-initialised ones matter too). */
function randomBlock(store: ParamStore, c: number): BispaBlock {
  const block: BispaBlock = {
    pos: store.param('pos', [2, c], { kind: 'xavier' }) as tf.Variable<tf.Rank.R2>,
    hQkv: createLinear(store, 'h', c, 3 * c),
    vQkv: createLinear(store, 'v', c, 3 * c),
    fuse: createLinear(store, 'f', 2 * c, c),
    ln1: createLayerNorm(store, 'ln1', c),
    conv1: store.param('conv1', [9, c, c], { kind: 'uniform', limit: 0.4 }) as tf.Variable<tf.Rank.R3>,
    conv2: store.param('conv2', [9, c, c], { kind: 'uniform', limit: 0.4 }) as tf.Variable<tf.Rank.R3>,
    ln2: createLayerNorm(store, 'ln2', c),
  };
  randomizeAll(store);
  return block;
}

for (const backend of backends) {
  for (const [layout, unrollVertical] of [
    ['band', false],
    ['band', true],
    ['grid', false],
    ['grid', true],
  ] as const) {
    test.serial(`${backend}: one BiSPA block on the ${layout}, gradients w.r.t. its input and every weight (unrollVertical=${unrollVertical})`, async (t) => {
      await initBackend(backend, { quiet: true });
      const [L, w, c] = [5, 2, 4];
      const store = new ParamStore(3);
      const block = randomBlock(store, c);
      const ctx = layout === 'band' ? bandContext(L, w, c) : gridContext(L, c);
      const X = tf.variable(tf.tidy(() => tf.mul(randomTensor([L, ctx.K, c], 9), ctx.valid3))) as tf.Variable<tf.Rank.R3>;
      try {
        // Two LayerNorms over only c = 4 channels, attention and two convolutions in float32: at the
        // default step (5e-2) the truncation error of a LayerNorm shift reaches 1e-3, at 1e-2 the
        // float32 noise of small entries reaches 7e-4 (measured); 3e-2 with a bar of 1e-3 passes
        // both, while a gradient wrong by a factor of 1.1 scores about 5e-2 (src/backend/gradcheck.ts).
        const r = checkVarGradients(
          () => bispaBlock(X, block, ctx, { attnDropout: 0, unrollVertical, lowMemory: false }, { training: false }),
          [X, ...store.trainable()],
          {
            coords: 4,
            eps: 3e-2,
            tol: 1e-3,
          },
        );
        t.log(`max relative error ${r.maxRelError.toExponential(2)}`);
        t.true(
          r.ok,
          `max relative error ${r.maxRelError.toExponential(2)} at variable ${r.worst.input}[${r.worst.index}]: ${r.worst.analytic} vs ${r.worst.numeric}`,
        );
      } finally {
        ctx.dispose();
        X.dispose();
        store.dispose();
      }
    });
  }

  for (const bispa of [true, 'full'] as const) {
    test.serial(
      `${backend}: the whole head (biaffine, BiSPA, output; bispa ${bispa}), gradients w.r.t. every head parameter given fixed word states`,
      async (t) => {
        await initBackend(backend, { quiet: true });
        const [L, H, R] = [6, 6, 2];
        const store = new ParamStore(4);
        const head = createSenerHead(store, H, R, headConfig({ bispa }));
        randomizeAll(store, 0.4);
        const x = randomTensor([L, H], 10) as tf.Tensor2D;
        try {
          // Step as for one block. The floor (1e-2 of the largest entry, about 2.5) absorbs the attention
          // weights, whose gradients here are 1e-5 to 3e-3 with float32 noise of 1-2e-5 (the error halves
          // from eps 1e-2 to 2e-2: noise, not a wrong gradient); the one-block test above checks those
          // weights at their own scale. Measured at this floor: 3-4e-4 on the band, 5-9e-4 on the grid
          // (36 cells summed); a gradient wrong by a factor of 1.1 scores about 5e-2.
          const r = checkVarGradients(() => senerLogits(x, head, { training: false }), store.trainable(), {
            coords: 3,
            eps: 3e-2,
            floorShare: 1e-2,
            tol: 1.5e-3,
          });
          t.log(`max relative error ${r.maxRelError.toExponential(2)}`);
          t.true(
            r.ok,
            `max relative error ${r.maxRelError.toExponential(2)} at variable ${store.names()[r.worst.input]}[${r.worst.index}]: ${r.worst.analytic} vs ${r.worst.numeric}`,
          );
          // And w.r.t. the word states (what the encoder receives).
          const rx = checkGradients((xx) => senerLogits(xx as tf.Tensor2D, head, { training: false }), [x], { coords: 8 });
          t.true(rx.ok, `word states: max relative error ${rx.maxRelError.toExponential(2)}`);
        } finally {
          x.dispose();
          store.dispose();
        }
      },
    );
  }
}

test.serial('the attention half of a block on the full grid equals it on a band that holds every pair (w = L - 1), cell by cell', async (t) => {
  // Row i of both layouts holds the pairs with head i, the vertical view the pairs with tail i, RoPE
  // sees only position differences (k - k' = j - j'), and the upper/lower id is k >= w <=> j >= i: so
  // the grid's row and column attention is the band's, laid out square. (The 3x3 convolutions differ:
  // the band's neighbourhood is skewed in (i, j).)
  await setupBackend();
  for (const unrollVertical of [false, true]) {
    const [L, c] = [6, 4];
    const w = L - 1;
    const store = new ParamStore(8);
    const block = randomBlock(store, c);
    const band = bandContext(L, w, c);
    const grid = gridContext(L, c);
    try {
      tf.tidy(() => {
        const cfg = { attnDropout: 0, unrollVertical, lowMemory: false };
        const Xg = randomTensor([L, L, c], 12) as tf.Tensor3D;
        const Fg = tf.reshape(bispaAttention(Xg, block, grid, cfg, { training: false }), [L, L, c]) as tf.Tensor3D;
        const Fb = tf.reshape(bispaAttention(gridToBand(Xg, w), block, band, cfg, { training: false }), [L, 2 * w + 1, c]);
        const diff = maxAbsDiff(gridToBand(Fg, w), tf.mul(Fb, band.valid3));
        t.true(diff < 1e-4, `unrollVertical=${unrollVertical}: max difference ${diff}`);
      });
    } finally {
      band.dispose();
      grid.dispose();
      store.dispose();
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Decode

/** A band of probabilities [L, 2w+1, R] with given values at (pair (head, tail), type) and `base` elsewhere. */
function bandWith(L: number, w: number, R: number, cells: [number, number, number, number][], base = 0.1): Float32Array {
  const K = 2 * w + 1;
  const p = new Float32Array(L * K * R).fill(base);
  for (const [i, j, r, v] of cells) p[(i * K + w + j - i) * R + r] = v;
  return p;
}

const decodeOpts = { threshold: 0.5, multiType: false, referenceSortBug: false };

test.serial('symmetricProbabilities averages each pair with its mirror, in probability or logit space', async (t) => {
  await setupBackend();
  const [L, w, R] = [4, 2, 1];
  const K = 2 * w + 1;
  // Logits: pair (0 -> 2) = 3, pair (2 -> 0) = -1, everything else -5.
  const z = new Float32Array(L * K * R).fill(-5);
  z[0 * K + w + 2] = 3;
  z[2 * K + w - 2] = -1;
  const sig = (v: number): number => 1 / (1 + Math.exp(-v));
  tf.tidy(() => {
    const logits = tf.tensor2d(z, [L * K, R]);
    const p = symmetricProbabilities(logits, L, w, 'probability').dataSync();
    const pl = symmetricProbabilities(logits, L, w, 'logit').dataSync();
    const want = (sig(3) + sig(-1)) / 2;
    t.true(Math.abs(p[0 * K + w + 2]! - want) < 1e-6);
    t.true(Math.abs(p[2 * K + w - 2]! - want) < 1e-6); // the mirror cell holds the same average
    t.true(Math.abs(pl[0 * K + w + 2]! - sig(1)) < 1e-6);
    // The two averages differ, and with them the decision at threshold 0.7: 0.62 < 0.7 < 0.73.
    t.true(p[w + 2]! < 0.7 && pl[w + 2]! > 0.7);
  });
});

test.serial('decode: threshold, forward half only, one type per span (the argmax)', async (t) => {
  await setupBackend();
  const [L, w, R] = [6, 3, 2];
  // (1..3) type 1 at 0.9 and type 0 at 0.8; (4..4) at 0.49 (below); a backward cell (5 -> 2) at 0.99 is not read.
  const p = bandWith(L, w, R, [
    [1, 3, 1, 0.9],
    [1, 3, 0, 0.8],
    [4, 4, 0, 0.49],
    [5, 2, 0, 0.99],
  ]);
  const spans = decodeBand(p, L, w, TYPES, decodeOpts);
  t.deepEqual(spans, [{ start: 1, end: 4, type: 'B', score: Math.fround(0.9) }]);
  const both = decodeBand(p, L, w, TYPES, { ...decodeOpts, multiType: true });
  t.deepEqual(
    both.map((e) => e.type),
    ['B', 'A'],
  );
  t.is(decodeBand(p, L, w, TYPES, { ...decodeOpts, threshold: 0.45 }).length, 2);
});

test.serial('decode: nested spans are kept, the lower-scored of two crossing spans is removed', async (t) => {
  await setupBackend();
  const [L, w, R] = [10, 5, 1];
  // Outer [0..5] 0.9, nested [1..2] 0.6, crossing [4..7] 0.7 (crosses the outer one), [8..9] 0.55.
  const p = bandWith(L, w, R, [
    [0, 5, 0, 0.9],
    [1, 2, 0, 0.6],
    [4, 7, 0, 0.7],
    [8, 9, 0, 0.55],
  ]);
  const spans = decodeBand(p, L, w, ['A'], decodeOpts).map((e) => [e.start, e.end]);
  t.deepEqual(spans, [
    [0, 6],
    [1, 3],
    [8, 10],
  ]);
  // Raise the crossing span above the outer one: now it wins and the outer span goes.
  const q = bandWith(L, w, R, [
    [0, 5, 0, 0.9],
    [1, 2, 0, 0.6],
    [4, 7, 0, 0.95],
    [8, 9, 0, 0.55],
  ]);
  t.deepEqual(
    decodeBand(q, L, w, ['A'], decodeOpts).map((e) => [e.start, e.end]),
    [
      [1, 3],
      [4, 8],
      [8, 10],
    ],
  );
});

test.serial('decode: referenceSortBug sorts by the cell at column k - w, which can flip a crossing conflict', async (t) => {
  await setupBackend();
  const [L, w, R] = [8, 3, 1];
  // [0..2] 0.9 crosses [2..4] 0.8. With the bug, [0..2] is sorted by the cell (0, 2) = pair (0 -> -1),
  // invalid, read as 0; [2..4] by (2, 2) = pair (2 -> 1), set to 0.3. So [2..4] wins.
  const p = bandWith(
    L,
    w,
    R,
    [
      [0, 2, 0, 0.9],
      [2, 4, 0, 0.8],
      [2, 1, 0, 0.3],
    ],
    0,
  );
  t.deepEqual(
    decodeBand(p, L, w, ['A'], decodeOpts).map((e) => [e.start, e.end]),
    [[0, 3]],
  );
  const bug = decodeBand(p, L, w, ['A'], { ...decodeOpts, referenceSortBug: true });
  t.deepEqual(
    bug.map((e) => [e.start, e.end, e.score]),
    [[2, 5, Math.fround(0.8)]],
  );
});

// ---------------------------------------------------------------------------------------------
// Model: switches, LoRA, WWM, counters, leaks

const SWITCHES: [string, { encoder?: ConfigInput['encoder']; sener?: ConfigInput['sener'] }][] = [
  ['default (arrow, LogN, BiSPA, LoRA, WWM)', {}],
  ['w/o arrow (full attention)', { encoder: { attention: 'full' } }],
  ['w SWA (window attention)', { encoder: { attention: 'window' } }],
  ['w/o LogN', { encoder: { logN: 'off' } }],
  ['w/o BiSPA (the full L x L grid)', { sener: { bispa: 'full' } }],
  ['w/o BiSPA blocks (band kept)', { sener: { bispa: false } }],
  ['w/o LoRA', { sener: { lora: null } }],
  ['w/o WWM', { sener: { wwm: 0 } }],
  ['unrollVertical, logit averaging, separate BiSPA window', { sener: { unrollVertical: true, decodeAverage: 'logit', window: 3 } }],
];

for (const [name, over] of SWITCHES) {
  test.serial(`${name}: builds, takes one loss + gradient step and predicts`, async (t) => {
    await setupBackend();
    const { segments, vocabSize } = smallData();
    const model = createSenerModel(tinyConfig(over), { types: TYPES, vocabSize });
    try {
      const { value, grads } = tf.variableGrads(() => model.loss({ segments }, { rng: createRng(1) }), model.params.trainable());
      const loss = value.dataSync()[0]!;
      t.true(Number.isFinite(loss) && loss > 0);
      const norms = Object.values(grads).map((g) => tf.tidy(() => tf.norm(g).dataSync()[0]!));
      t.true(norms.every(Number.isFinite));
      t.true(norms.some((n) => n > 0));
      tf.dispose([value, ...Object.values(grads)]);
      const pred = model.predict({ segments });
      t.is(pred.length, 2);
      for (const spans of pred) for (const e of spans) t.true(e.start >= 0 && e.end <= 20 && e.start < e.end && TYPES.includes(e.type));
    } finally {
      model.params.dispose();
    }
  });
}

test.serial('LoRA freezes the encoder except the LoRA pairs and the Q/V biases; null trains everything; paramGroup', async (t) => {
  await setupBackend();
  const { vocabSize } = smallData();
  const withLora = createSenerModel(tinyConfig(), { types: TYPES, vocabSize });
  const full = createSenerModel(tinyConfig({ sener: { lora: null } }), { types: TYPES, vocabSize });
  try {
    const trainable = new Set(withLora.params.trainable().map((v) => withLora.params.nameOf(v)));
    const encoderTrainable = [...trainable].filter((n) => n.startsWith('encoder.')).sort();
    t.deepEqual(encoderTrainable, [
      'encoder.l0.q.b',
      'encoder.l0.q.lora_A',
      'encoder.l0.q.lora_B',
      'encoder.l0.v.b',
      'encoder.l0.v.lora_A',
      'encoder.l0.v.lora_B',
    ]);
    t.false(trainable.has('encoder.tok_embed'));
    t.false(trainable.has('encoder.l0.q.W'));
    t.true(withLora.params.names('head.').every((n) => trainable.has(n)));
    t.false(full.params.names().some((n) => n.includes('lora')));
    t.is(full.params.trainable().length, full.params.names().length);
    t.is(withLora.paramGroup('encoder.l0.q.lora_A'), 'encoder');
    t.is(withLora.paramGroup('head.bispa.b0.h_qkv.W'), 'head');
  } finally {
    withLora.params.dispose();
    full.params.dispose();
  }
});

test.serial('whole-word masking corrupts the training input only: loss changes, predictions do not', async (t) => {
  await setupBackend();
  const { segments, vocabSize } = smallData();
  const quiet = { encoder: { dropout: 0 }, sener: { mlpDropout: 0, attnDropout: 0 } };
  const store = new ParamStore(5);
  const plain = createSenerModel(tinyConfig({ ...quiet, sener: { ...quiet.sener, wwm: 0 } }), { types: TYPES, vocabSize }, store);
  const masked = createSenerModel(tinyConfig({ ...quiet, sener: { ...quiet.sener, wwm: 0.3 } }), { types: TYPES, vocabSize }, store);
  try {
    randomizeAll(store, 0.3);
    const loss = (m: SenerModel, seed: number): number => tf.tidy(() => m.loss({ segments }, { rng: createRng(seed) }).dataSync()[0]!);
    t.is(loss(plain, 1), loss(plain, 2)); // nothing random left without WWM
    t.not(loss(masked, 1), loss(plain, 1));
    t.not(loss(masked, 1), loss(masked, 2));
    t.deepEqual(masked.predict({ segments }), plain.predict({ segments }));
  } finally {
    store.dispose();
  }
});

test.serial("bispa 'full' represents every span: none dropped, and the gold cell of a span longer than the window is scored", async (t) => {
  await setupBackend();
  const { segments, vocabSize } = smallData();
  const model = createSenerModel(tinyConfig({ sener: { window: 2, bispa: 'full' } }), { types: TYPES, vocabSize });
  try {
    const seg: Segment = { ...segments[0]!, entities: [{ start: 5, end: 15, type: 'B' }] };
    tf.tidy(() => model.loss({ segments: [seg] }, { rng: createRng(1) }));
    t.deepEqual(model.spanStats, { gold: 1, dropped: 0 });
    const [info] = model.inspect!({ segments: [seg] }, [0.5]);
    const score = info!.goldScores[0];
    t.true(typeof score === 'number' && score > 0 && score < 1, `gold score ${score}`);
  } finally {
    model.params.dispose();
  }
});

test.serial('gold spans longer than w + 1 words are counted as dropped', async (t) => {
  await setupBackend();
  const { segments, vocabSize } = smallData();
  const model = createSenerModel(tinyConfig({ sener: { window: 2 } }), { types: TYPES, vocabSize });
  try {
    const seg: Segment = {
      ...segments[0]!,
      entities: [
        { start: 0, end: 3, type: 'A' },
        { start: 5, end: 9, type: 'B' },
        { start: 10, end: 11, type: 'A' },
      ],
    };
    tf.tidy(() => model.loss({ segments: [seg] }, { rng: createRng(1) }));
    t.deepEqual(model.spanStats, { gold: 3, dropped: 1 });
  } finally {
    model.params.dispose();
  }
});

test.serial('loss (under variableGrads) and predict leave no tensors behind', async (t) => {
  await setupBackend();
  const { segments, vocabSize } = smallData();
  const model = createSenerModel(tinyConfig(), { types: TYPES, vocabSize });
  try {
    // A first call creates nothing lasting either, but warms up kernels that cache constants.
    tf.tidy(() => model.loss({ segments }, { rng: createRng(1) }));
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => model.loss({ segments }, { rng: createRng(2) }), model.params.trainable());
    tf.dispose([value, ...Object.values(grads)]);
    model.predict({ segments });
    t.is(tf.memory().numTensors, before);
  } finally {
    model.params.dispose();
  }
});

test.serial('rollFlip of the logits is what decoding averages: a span scored in only one orientation is halved', async (t) => {
  await setupBackend();
  tf.tidy(() => {
    const [L, w] = [3, 1];
    const z = tf.tensor3d(
      Float32Array.from({ length: L * 3 }, (_, i) => (i === 1 * 3 + 2 ? 10 : -10)),
      [L, 3, 1],
    );
    const p = symmetricProbabilities(tf.reshape(z, [L * 3, 1]) as tf.Tensor2D, L, w, 'probability');
    // Pair (1 -> 2) at ~1, its mirror (2 -> 1) at ~0: both cells hold ~0.5.
    t.true(Math.abs(p.dataSync()[1 * 3 + 2]! - 0.5) < 1e-4);
    t.true(Math.abs(p.dataSync()[2 * 3 + 0]! - 0.5) < 1e-4);
    // p_sym is its own roll+flip on every valid cell.
    const valid = tf.reshape(bandValidMask(L, w), [L, 3, 1]);
    t.true(maxAbsDiff(tf.mul(rollFlip(p), valid), tf.mul(p, valid)) < 1e-7);
  });
});

// ---------------------------------------------------------------------------------------------
// Overfit and memory

for (const backend of trainingBackendsUnderTest()) {
  test.serial(`${backend}: overfit: a tiny SeNER reaches F1 = 1.0 on two synthetic documents with long and nested entities`, async (t) => {
    // Training-sized work runs on the training backends, wasm and native (the pure-JS cpu reference
    // is 5-10x slower here).
    await initBackend(backend, { quiet: true });
    const docs = generateDocuments({
      docs: 2,
      words: [40, 50],
      entitiesPerDoc: 6,
      entityLength: { dist: 'uniform', min: 1, max: 9 },
      types: TYPES,
      nested: 0.5,
      vocabulary: 60,
      seed: 11,
    });
    const vocab = vocabularyOf(docs);
    const segments = docs.map((d) => segmentOf(d, vocab));
    const longest = Math.max(...docs.flatMap((d) => d.entities.map((e) => e.end - e.start)));
    const nestedPairs = docs.reduce((n, d) => n + d.entities.filter((a) => d.entities.some((b) => b !== a && b.start <= a.start && a.end <= b.end)).length, 0);
    t.true(longest >= 7, `longest entity ${longest} words`);
    t.true(nestedPairs >= 1);
    const config = tinyConfig({
      encoder: { layers: 1, hidden: 32, heads: 2, ffn: 64, window: 8, dropout: 0 },
      sener: { window: 8, depth: 1, biaffineSize: 16, cnnDim: 16, mlpDropout: 0, attnDropout: 0, wwm: 0 },
    });
    const model = createSenerModel(config, { types: TYPES, vocabSize: 5 + vocab.size });
    const opt = tf.train.adam(1e-2);
    const maxSteps = 300;
    let steps = 0;
    let score = 0;
    const started = Date.now();
    try {
      while (steps < maxSteps) {
        steps++;
        const cost = opt.minimize(() => model.loss({ segments }, { rng: createRng(steps) }), true, model.params.trainable());
        cost?.dispose();
        if (steps % 10 === 0) {
          score = f1(
            segments.map((s) => s.entities),
            model.predict({ segments }),
          );
          if (score === 1) break;
        }
      }
      t.log(
        `F1 ${score} after ${steps} steps (${((Date.now() - started) / steps).toFixed(0)} ms per step on ${tf.getBackend()}); longest entity ${longest} words, ${nestedPairs} nested`,
      );
      t.is(score, 1);
      t.is(model.spanStats.dropped, 0);
    } finally {
      opt.dispose();
      model.params.dispose();
    }
  });
}

test.serial('peak bytes of a train step grow linearly in L at a fixed window', async (t) => {
  // Training-sized work runs on wasm, the training backend (the pure-JS cpu reference is 5-10x
  // slower here); tf.profile's byte counts are the same on both.
  await initBackend('wasm', { quiet: true });
  const config = tinyConfig({ encoder: { layers: 1, hidden: 32, heads: 2, ffn: 64, window: 8 }, sener: { window: 8, depth: 2, biaffineSize: 32, cnnDim: 16 } });
  const measure = async (L: number): Promise<{ peak: number; ms: number }> => {
    const docs = generateDocuments({
      docs: 1,
      words: L,
      entityDensity: 5,
      entityLength: { dist: 'uniform', min: 1, max: 8 },
      types: TYPES,
      vocabulary: 50,
      seed: L,
    });
    const vocab = vocabularyOf(docs);
    const model = createSenerModel(config, { types: TYPES, vocabSize: 5 + 50 + 100 }, new ParamStore(1));
    const segments = [segmentOf(docs[0]!, vocab)];
    try {
      const before = tf.memory().numBytes;
      const started = Date.now();
      const info = await tf.profile(() => {
        const { value, grads } = tf.variableGrads(() => model.loss({ segments }, { rng: createRng(1) }), model.params.trainable());
        tf.dispose([value, ...Object.values(grads)]);
      });
      return { peak: info.peakBytes - before, ms: Date.now() - started };
    } finally {
      model.params.dispose();
    }
  };
  const L = 128;
  const a = await measure(L);
  const b = await measure(2 * L);
  const ratio = b.peak / a.peak;
  t.log(
    `peak ${(a.peak / 2 ** 20).toFixed(2)} MiB at ${L} words, ${(b.peak / 2 ** 20).toFixed(2)} MiB at ${2 * L} (x${ratio.toFixed(2)}); ${a.ms} / ${b.ms} ms per profiled step on ${tf.getBackend()}`,
  );
  t.true(ratio <= 2.3, `ratio ${ratio}`);
  // Sanity: the peak does grow with L (activations, not only weights, are measured).
  t.true(ratio >= 1.6, `ratio ${ratio}`);
});
