import test, { type ExecutionContext } from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { checkGradients } from '../../src/backend/gradcheck.js';
import { initBackend } from '../../src/backend/index.js';
import { ParamStore } from '../../src/nn/params.js';
import {
  bandPairScores,
  cellIndex,
  createGlobalPointerModel,
  decodeGp,
  gpLabels,
  gpLoss,
  gpScores,
  logitThreshold,
  MASK,
  maskBias,
  pairLayout,
  validCells,
  type GpHead,
  type GpLabels,
  type PairLayout,
} from '../../src/models/global-pointer.js';
import { createRng } from '../../src/util/rng.js';
import { maxAbsDiff, randomTensor } from '../nn/helpers.js';
import { backendsUnderTest, fitUntilPerfect, setupBackend, syntheticSegments, tinyConfig } from './helpers.js';

// Every test sets its backend first and runs serially: tfjs has one global backend, and the gradient
// checks switch between cpu and wasm.

const types = ['A', 'B'];
const typeIndex = new Map(types.map((t, i) => [t, i]));

const lin = (W: tf.Tensor, b: tf.Tensor) => ({ W: W as tf.Tensor2D, b: b as tf.Tensor1D, lora: null });

function gpHead(W: tf.Tensor, b: tf.Tensor, R: number, d: number, rope = true): GpHead {
  return { variant: 'gp', headSize: d, rope, types: R, qk: lin(W, b), typeBias: null };
}

function egpHead(W: tf.Tensor, b: tf.Tensor, V: tf.Tensor, c: tf.Tensor, R: number, d: number, rope = true): GpHead {
  return { variant: 'egp', headSize: d, rope, types: R, qk: lin(W, b), typeBias: lin(V, c) };
}

const read2d = (x: tf.Tensor): number[][] => x.arraySync() as number[][];

test.serial('layouts: full holds (i, j), band holds (i, i + o); lower triangle, padding and past-the-end cells are invalid', async (t) => {
  await setupBackend();
  const full = pairLayout(4, null, 3);
  // Row-major 4 x 4; valid = upper triangle with both ends < 3.
  t.deepEqual([...validCells(full)], [1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
  const bias = maskBias(full);
  t.deepEqual(read2d(bias)[1], [Math.fround(MASK), 0, 0, Math.fround(MASK)]);
  bias.dispose();
  const band = pairLayout(5, 2);
  t.is(band.cols, 2);
  // Cell (i, o): valid while i + o < 5.
  t.deepEqual([...validCells(band)], [1, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
  t.is(cellIndex(band, 2, 3), 2 * 2 + 1);
  t.is(cellIndex(band, 0, 2), -1); // 3 words > K = 2
  t.is(pairLayout(3, 10).cols, 3); // the band never exceeds L
});

test.serial('band scores equal the full q k^T on the band, 0 past the end', async (t) => {
  await setupBackend();
  for (const [L, K] of [
    [7, 3],
    [6, 3],
    [2, 2],
    [5, 1],
  ] as const) {
    const q = randomTensor([L, 4], L * 10 + K) as tf.Tensor2D;
    const k = randomTensor([L, 4], L * 10 + K + 1) as tf.Tensor2D;
    const fullS = read2d(tf.matMul(q, k, false, true));
    const band = bandPairScores(q, k, K);
    t.deepEqual(band.shape, [L, K]);
    const b = read2d(band);
    for (let i = 0; i < L; i++) {
      for (let o = 0; o < K; o++) {
        const want = i + o < L ? fullS[i]![i + o]! : 0;
        t.true(Math.abs(b[i]![o]! - want) < 1e-5, `L=${L} K=${K} cell (${i}, ${o})`);
      }
    }
    tf.dispose([q, k, band]);
  }
});

test.serial('GP loss: a hand-computed case (3 words, 1 type)', async (t) => {
  await setupBackend();
  // Scores of the valid cells (i <= j):   (0,0)  0.5   (0,1)  2 *  (0,2) -1
  //                                                    (1,1)  0     (1,2)  1
  //                                                                 (2,2) -1 *
  // * = gold. The lower triangle holds +50: masked cells must enter neither sum.
  // L = log(1 + e^-2 + e^1)                       = log(3.85361711) = 1.34901222
  //   + log(1 + e^0.5 + e^-1 + e^0 + e^1)         = log(6.73488254) = 1.90730037
  //   = 3.25631259
  const S = tf.tensor2d([0.5, 2, -1, 50, 0, 1, 50, 50, -1], [3, 3]);
  const layout = pairLayout(3, null);
  const labels = gpLabels(
    layout,
    [
      { start: 0, end: 2, type: 'A' },
      { start: 2, end: 3, type: 'A' },
    ],
    new Map([['A', 0]]),
  );
  const loss = gpLoss([S], layout, labels);
  t.true(Math.abs(loss.dataSync()[0]! - 3.25631259) < 1e-5, `${loss.dataSync()[0]}`);
  // A type without gold spans: only the negative term, log(1 + sum over all valid cells of e^s).
  const none = gpLoss([S], layout, { positives: [new Int32Array(0)], dropped: 0 });
  const want = Math.log(1 + Math.exp(0.5) + Math.exp(2) + Math.exp(-1) + Math.exp(0) + Math.exp(1) + Math.exp(-1));
  t.true(Math.abs(none.dataSync()[0]! - want) < 1e-5);
  tf.dispose([S, loss, none]);
});

test.serial('masks: scores of the lower triangle and of padding are MASK, never positive, and never reach the loss', async (t) => {
  await setupBackend();
  const L = 5;
  const layout = pairLayout(L, null, 3); // words 3 and 4 are padding
  const h = randomTensor([L, 6], 3) as tf.Tensor2D;
  // Large weights, so that unmasked scores would be far from 0 both ways.
  const W = randomTensor([6, 2 * 2 * 4], 4, 3);
  const b = randomTensor([2 * 2 * 4], 5, 1);
  const valid = validCells(layout);
  const scores = gpScores(h, gpHead(W, b, 2, 4), layout);
  for (const s of scores) {
    const v = s.dataSync();
    for (let n = 0; n < v.length; n++) if (!valid[n]) t.true(v[n]! < MASK / 2);
  }
  // Decoding with threshold 0 (keep everything valid) still emits valid cells only.
  const out = decodeGp(
    scores.map((s) => s.dataSync() as Float32Array),
    layout,
    types,
    0,
  );
  t.is(out.length, 2 * 6); // 6 valid cells of 3 real words, 2 types
  t.true(out.every((e) => e.start < e.end && e.end <= 3));

  // The loss and its gradient ignore masked cells: overwrite them with +100 and nothing changes.
  const labels = gpLabels(layout, [{ start: 0, end: 3, type: 'B' }], typeIndex);
  const poison = tf.tensor2d(
    Float32Array.from(valid, (ok) => (ok ? 0 : 1)),
    [L, L],
  );
  const withPoison = (ss: tf.Tensor[]) => ss.map((s) => tf.add(tf.mul(s, tf.sub(1, poison)), tf.mul(poison, 100)) as tf.Tensor2D);
  const clean = gpLoss(scores, layout, labels).dataSync()[0]!;
  const poisoned = gpLoss(withPoison(scores), layout, labels).dataSync()[0]!;
  t.is(poisoned, clean);
  const g = tf.grads((s0: tf.Tensor, s1: tf.Tensor) => gpLoss([s0 as tf.Tensor2D, s1 as tf.Tensor2D], layout, labels))(withPoison(scores));
  for (const gi of g) {
    const v = gi.dataSync();
    for (let n = 0; n < v.length; n++) if (!valid[n]) t.is(v[n], 0);
    t.true(tf.max(tf.abs(gi)).dataSync()[0]! > 0);
  }
  // Gold never falls in a masked cell: an entity on padding is an error, not a label.
  t.throws(() => gpLabels(layout, [{ start: 2, end: 4, type: 'A' }], typeIndex));
  tf.dispose([h, W, b, poison, ...scores, ...g]);
});

test.serial('GP: per-type chunks of 2d are [q; k]; with RoPE a score depends only on j - i', async (t) => {
  await setupBackend();
  // H = 2, d = 2, R = 2, no RoPE. Type 0: q = h, k = 0 -> s_0 = 0. Type 1: q = h, k = 2h -> s_1(i, j) = 2 h_i . h_j / sqrt(2).
  // prettier-ignore
  const W = tf.tensor2d([1, 0, 0, 0, 1, 0, 2, 0, 0, 1, 0, 0, 0, 1, 0, 2], [2, 8]);
  const b = tf.zeros([8]);
  const h = tf.tensor2d([1, 0, 0.5, -1, 2, 1], [3, 2]);
  const layout = pairLayout(3, null);
  const [s0, s1] = gpScores(h, gpHead(W, b, 2, 2, false), layout);
  const hv = h.arraySync();
  const dot = (i: number, j: number) => hv[i]![0]! * hv[j]![0]! + hv[i]![1]! * hv[j]![1]!;
  const v0 = read2d(s0!);
  const v1 = read2d(s1!);
  for (let i = 0; i < 3; i++) {
    for (let j = i; j < 3; j++) {
      t.true(Math.abs(v0[i]![j]!) < 1e-6);
      t.true(Math.abs(v1[i]![j]! - (2 * dot(i, j)) / Math.sqrt(2)) < 1e-5);
    }
  }
  // With RoPE and every word alike, s(i, j) is a function of j - i only (and not constant).
  const same = tf.tile(tf.tensor2d([[0.3, -0.7, 1.1]]), [6, 1]) as tf.Tensor2D;
  const W2 = randomTensor([3, 2 * 8], 9);
  const [r] = gpScores(same, gpHead(W2, tf.zeros([16]), 1, 8), pairLayout(6, null));
  const rv = read2d(r!);
  for (let off = 0; off < 6; off++) for (let i = 1; i + off < 6; i++) t.true(Math.abs(rv[i]![i + off]! - rv[0]![off]!) < 1e-4);
  t.true(Math.abs(rv[0]![0]! - rv[0]![3]!) > 1e-3);
  tf.dispose([W, b, h, s0!, s1!, same, W2, r!]);
});

test.serial('EGP: shapes, and a hand case of its start/end terms', async (t) => {
  await setupBackend();
  // H = 2, d = 2, R = 1. u_t = W h_t = [0, h_t0, 0, h_t1]: the even dimensions (q) are 0, so the shared
  // RoPE score is 0 and s(i, j) = c_i[1] + c_j[0] with c_t = (V u_t + c) / 2.
  // V picks u_1 for channel 0 and u_3 for channel 1, c = (0.2, -0.4): c_t = ((h_t0 + 0.2) / 2, (h_t1 - 0.4) / 2).
  // h = (1, 2), (3, -1), (0.5, 0):  c_0 = (0.6, 0.8), c_1 = (1.6, -0.7), c_2 = (0.35, -0.2).
  // s(0,0) = 0.8 + 0.6 = 1.4    s(0,1) = 0.8 + 1.6 = 2.4    s(0,2) = 0.8 + 0.35 = 1.15
  //                             s(1,1) = -0.7 + 1.6 = 0.9   s(1,2) = -0.7 + 0.35 = -0.35
  //                                                         s(2,2) = -0.2 + 0.35 = 0.15
  const W = tf.tensor2d([0, 1, 0, 0, 0, 0, 0, 1], [2, 4]);
  const V = tf.tensor2d([0, 0, 1, 0, 0, 0, 0, 1], [4, 2]);
  const h = tf.tensor2d([1, 2, 3, -1, 0.5, 0], [3, 2]);
  const [s] = gpScores(h, egpHead(W, tf.zeros([4]), V, tf.tensor1d([0.2, -0.4]), 1, 2), pairLayout(3, null));
  const v = read2d(s!);
  const want = [
    [1.4, 2.4, 1.15],
    [null, 0.9, -0.35],
    [null, null, 0.15],
  ];
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++) {
      const w = want[i]![j];
      if (w === null || w === undefined) t.true(v[i]![j]! < MASK / 2);
      else t.true(Math.abs(v[i]![j]! - w) < 1e-6, `(${i}, ${j}): ${v[i]![j]} vs ${w}`);
    }
  // The model's EGP parameters: shared [H, 2d], type terms [2d, 2R].
  const config = tinyConfig({ method: 'global-pointer', globalPointer: { variant: 'egp', headSize: 8 } });
  const model = createGlobalPointerModel(config, { types: ['A', 'B', 'C'], vocabSize: 20 });
  t.deepEqual(model.params.get('head.qk.W').shape, [32, 16]);
  t.deepEqual(model.params.get('head.type_bias.W').shape, [16, 6]);
  const gp = createGlobalPointerModel(tinyConfig({ method: 'global-pointer', globalPointer: { headSize: 8 } }), { types: ['A', 'B', 'C'], vocabSize: 20 });
  t.deepEqual(gp.params.get('head.qk.W').shape, [32, 3 * 16]);
  t.false(gp.params.has('head.type_bias.W'));
  model.params.dispose();
  gp.params.dispose();
  tf.dispose([W, V, h, s!]);
});

test.serial('band and full layouts give the same scores on the band (GP and EGP)', async (t) => {
  await setupBackend();
  const L = 7;
  const h = randomTensor([L, 6], 31) as tf.Tensor2D;
  const heads = [
    gpHead(randomTensor([6, 2 * 2 * 4], 32), randomTensor([16], 33), 2, 4),
    egpHead(randomTensor([6, 8], 34), randomTensor([8], 35), randomTensor([8, 4], 36), randomTensor([4], 37), 2, 4),
  ];
  for (const head of heads) {
    const full = gpScores(h, head, pairLayout(L, null)).map(read2d);
    const band = gpScores(h, head, pairLayout(L, 3)).map(read2d);
    for (let a = 0; a < 2; a++) {
      for (let i = 0; i < L; i++) {
        for (let o = 0; o < 3; o++) {
          if (i + o >= L) t.true(band[a]![i]![o]! < MASK / 2);
          else t.true(Math.abs(band[a]![i]![o]! - full[a]![i]![i + o]!) < 1e-5, `${head.variant} type ${a} (${i}, ${i + o})`);
        }
      }
    }
  }
  tf.dispose([h, ...heads.flatMap((x) => [x.qk.W, x.qk.b!, ...(x.typeBias ? [x.typeBias.W, x.typeBias.b!] : [])])]);
});

test.serial('decode: s > 0 at threshold 0.5 (sigmoid(s) as score), no overlap resolution, nested kept, several types per span', async (t) => {
  await setupBackend();
  const layout = pairLayout(3, null);
  // Type A: (0,2) = 1.5, (1,1) = 0.2 (nested in it), (0,1) = 0.7 (overlaps (1,1) and crosses nothing), (1,2) = 0 (not > 0).
  // Type B: (0,2) = 3 (same span as A). Lower triangle cells hold 9 but are masked cells: never emitted.
  // prettier-ignore
  const A = Float32Array.from([-1, 0.7, 1.5, 9, 0.2, 0, 9, 9, -2]);
  const B = Float32Array.from([-1, -1, 3, 9, -1, -1, 9, 9, -1]);
  const out = decodeGp([A, B], layout, types, 0.5);
  t.deepEqual(
    out.map((e) => [e.start, e.end, e.type]),
    [
      [0, 2, 'A'],
      [0, 3, 'A'],
      [0, 3, 'B'],
      [1, 2, 'A'],
    ],
  );
  t.true(Math.abs(out[1]!.score - 1 / (1 + Math.exp(-1.5))) < 1e-7);
  // The threshold is a probability: 0.7 keeps s > ln(0.7 / 0.3) = 0.847.
  t.is(logitThreshold(0.5), 0);
  t.deepEqual(
    decodeGp([A, B], layout, types, 0.7).map((e) => [e.start, e.end, e.type]),
    [
      [0, 3, 'A'],
      [0, 3, 'B'],
    ],
  );
  t.is(decodeGp([A, B], layout, types, 1).length, 0);
});

test.serial('labels: duplicates collapse, spans longer than the band are dropped and counted', async (t) => {
  await setupBackend();
  const band = pairLayout(6, 2);
  const ents = [
    { start: 0, end: 2, type: 'A' },
    { start: 0, end: 2, type: 'A' },
    { start: 0, end: 2, type: 'B' },
    { start: 1, end: 4, type: 'A' },
  ];
  const l: GpLabels = gpLabels(band, ents, typeIndex);
  t.deepEqual([...l.positives[0]!], [0 * 2 + 1]);
  t.deepEqual([...l.positives[1]!], [1]);
  t.is(l.dropped, 1);
  t.is(gpLabels(pairLayout(6, null), ents, typeIndex).dropped, 0);
  t.throws(() => gpLabels(band, [{ start: 0, end: 1, type: 'Z' }], typeIndex), { message: /not one of the model's types/ });
});

/** Gradient-check cases: a function of [word states, head weights...] and its inputs. */
function gradCases(): { name: string; layout: PairLayout; inputs: () => tf.Tensor[]; head: (w: tf.Tensor[]) => GpHead }[] {
  const L = 6;
  const H = 5;
  const d = 4;
  const R = 2;
  return [
    {
      name: 'GP, full',
      layout: pairLayout(L, null),
      inputs: () => [randomTensor([L, H], 41), randomTensor([H, R * 2 * d], 42, 0.6), randomTensor([R * 2 * d], 43, 0.3)],
      head: (w) => gpHead(w[0]!, w[1]!, R, d),
    },
    {
      name: 'EGP, full',
      layout: pairLayout(L, null),
      inputs: () => [
        randomTensor([L, H], 44),
        randomTensor([H, 2 * d], 45, 0.6),
        randomTensor([2 * d], 46, 0.3),
        randomTensor([2 * d, 2 * R], 47, 0.6),
        randomTensor([2 * R], 48, 0.3),
      ],
      head: (w) => egpHead(w[0]!, w[1]!, w[2]!, w[3]!, R, d),
    },
    {
      name: 'EGP, band K = 3',
      layout: pairLayout(L, 3),
      inputs: () => [
        randomTensor([L, H], 49),
        randomTensor([H, 2 * d], 50, 0.6),
        randomTensor([2 * d], 51, 0.3),
        randomTensor([2 * d, 2 * R], 52, 0.6),
        randomTensor([2 * R], 53, 0.3),
      ],
      head: (w) => egpHead(w[0]!, w[1]!, w[2]!, w[3]!, R, d),
    },
  ];
}

/*
 * Three checks per case and backend. The loss is a scalar of a few units whose gradient entries are
 * ~1e-3, so float32 rounding of the loss alone limits the end-to-end finite difference to a relative
 * error of a few 1e-4 (measured: up to 4e-4); that check gets tol 1e-3 (a gradient off by 10% scores
 * ~5e-2). The two halves are well conditioned and get the default tol: the scores (valid cells only:
 * adding MASK swallows a masked cell's change in float32, so only its analytic side would move)
 * w.r.t. word states and head parameters, and the loss w.r.t. the scores of a small layout.
 */
for (const backend of backendsUnderTest()) {
  for (const c of gradCases()) {
    const labels = gpLabels(
      c.layout,
      [
        { start: 1, end: 3, type: 'A' },
        { start: 4, end: 5, type: 'B' },
        { start: 0, end: 1, type: 'B' },
      ],
      typeIndex,
    );
    const check = (t: ExecutionContext, f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[], tol?: number): void => {
      const before = tf.memory().numTensors;
      const r = checkGradients(f, inputs, { coords: 8, eps: 0.1, ...(tol === undefined ? {} : { tol }) });
      t.log(`max relative error ${r.maxRelError.toExponential(2)}`);
      t.true(r.ok, `max relative error ${r.maxRelError} at ${JSON.stringify(r.worst)}`);
      t.is(tf.memory().numTensors, before);
      tf.dispose(inputs);
    };
    test.serial(`${backend}: ${c.name}: gradients of the scores w.r.t. word states and head parameters`, async (t) => {
      await initBackend(backend, { quiet: true });
      const valid = tf.tensor2d(Float32Array.from(validCells(c.layout)), [c.layout.L, c.layout.cols]);
      const f = (X: tf.Tensor, ...w: tf.Tensor[]): tf.Tensor => tf.stack(gpScores(X as tf.Tensor2D, c.head(w), c.layout).map((s) => tf.mul(s, valid)));
      check(t, f, c.inputs());
      valid.dispose();
    });
    test.serial(`${backend}: ${c.name}: gradients of the loss w.r.t. the scores`, async (t) => {
      await initBackend(backend, { quiet: true });
      // Few cells (L = 4), so that each cell carries a sizeable share of the loss's gradient.
      const small = pairLayout(4, c.layout.kind === 'full' ? null : 2);
      const smallLabels = gpLabels(
        small,
        [
          { start: 1, end: 3, type: 'A' },
          { start: 3, end: 4, type: 'B' },
        ],
        typeIndex,
      );
      const scores = [randomTensor([small.L, small.cols], 61), randomTensor([small.L, small.cols], 62)];
      check(t, (...ss: tf.Tensor[]) => gpLoss(ss as tf.Tensor2D[], small, smallLabels), scores);
    });
    test.serial(`${backend}: ${c.name}: gradients of the loss w.r.t. word states and head parameters (end to end)`, async (t) => {
      await initBackend(backend, { quiet: true });
      const f = (X: tf.Tensor, ...w: tf.Tensor[]): tf.Tensor => gpLoss(gpScores(X as tf.Tensor2D, c.head(w), c.layout), c.layout, labels);
      check(t, f, c.inputs(), 1e-3);
    });
  }
}

test.serial('model: parameter groups, droppedGold with a band, threshold from eval.threshold', async (t) => {
  await setupBackend();
  const data = syntheticSegments({ docs: 1, words: 20, entitiesPerDoc: 3, entityLength: { dist: 'fixed', length: 3 }, split: true });
  const config = tinyConfig({ method: 'global-pointer', globalPointer: { headSize: 8, maxSpanWords: 2 }, eval: { threshold: 0.9 } });
  const model = createGlobalPointerModel(config, { types: data.types, vocabSize: data.vocabSize });
  t.is(model.threshold, 0.9);
  t.is(model.paramGroup('encoder.tok_embed'), 'encoder');
  t.is(model.paramGroup('head.qk.W'), 'head');
  const loss = model.loss({ segments: data.segments }, { rng: createRng(1) });
  t.true(Number.isFinite(loss.dataSync()[0]!));
  t.is(model.droppedGold, 3);
  loss.dispose();
  const full = createGlobalPointerModel(tinyConfig({ method: 'global-pointer', globalPointer: { headSize: 8 } }), {
    types: data.types,
    vocabSize: data.vocabSize,
  });
  full.loss({ segments: data.segments }, { rng: createRng(1) }).dispose();
  t.is(full.droppedGold, 0);
  model.params.dispose();
  full.params.dispose();
});

for (const backend of backendsUnderTest()) {
  for (const variant of ['gp', 'egp'] as const) {
    test.serial(`${backend}: overfit (${variant}): two synthetic documents reach strict F1 = 1.0`, async (t) => {
      await initBackend(backend, { quiet: true });
      const data = syntheticSegments({ docs: 2, words: 30, entitiesPerDoc: 4, split: true, seed: 5 });
      const config = tinyConfig({ method: 'global-pointer', globalPointer: { variant, headSize: 16 } });
      const model = createGlobalPointerModel(config, { types: data.types, vocabSize: data.vocabSize });
      const r = fitUntilPerfect(model, data, { lr: 1e-2, maxSteps: 300, checkEvery: 5 });
      t.log(`${variant}: F1 ${r.f1} after ${r.steps} steps, ${r.msPerStep.toFixed(1)} ms/step, loss ${r.firstLoss.toFixed(3)} -> ${r.lastLoss.toFixed(4)}`);
      t.is(r.f1, 1);
      t.true(r.lastLoss < r.firstLoss);
      model.params.dispose();
    });
  }
}

test.serial('no tensor leaks: loss with gradients, and predict (GP full, EGP band)', async (t) => {
  await setupBackend();
  const data = syntheticSegments({ docs: 2, words: 15, split: true });
  for (const gpCfg of [
    { variant: 'gp', headSize: 8 },
    { variant: 'egp', headSize: 8, maxSpanWords: 4 },
  ] as const) {
    const params = new ParamStore(3);
    const model = createGlobalPointerModel(
      tinyConfig({ method: 'global-pointer', globalPointer: gpCfg }),
      { types: data.types, vocabSize: data.vocabSize },
      params,
    );
    const before = tf.memory().numTensors;
    for (let i = 0; i < 2; i++) {
      const { value, grads } = tf.variableGrads(() => model.loss({ segments: data.segments }, { rng: createRng(i) }), params.trainable());
      tf.dispose([value, ...Object.values(grads)]);
      model.predict({ segments: data.segments });
    }
    t.is(tf.memory().numTensors, before, gpCfg.variant);
    params.dispose();
  }
});

test.serial('same seed, same model: parameters and predictions repeat', async (t) => {
  await setupBackend();
  const data = syntheticSegments({ docs: 1, words: 12 });
  const config = tinyConfig({ method: 'global-pointer', globalPointer: { headSize: 8 } });
  const a = createGlobalPointerModel(config, { types: data.types, vocabSize: data.vocabSize });
  const b = createGlobalPointerModel(config, { types: data.types, vocabSize: data.vocabSize });
  t.is(maxAbsDiff(a.params.get('head.qk.W'), b.params.get('head.qk.W')), 0);
  t.deepEqual(a.predict({ segments: data.segments }), b.predict({ segments: data.segments }));
  a.params.dispose();
  b.params.dispose();
});
