import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { checkGradients, type GradCheckResult } from '../../src/backend/gradcheck.js';
import { bandedBiaffine, bandIndex, bandLabels, bandPair, bandValidity, gridBiaffine, gridToBand, rollFlip } from '../../src/nn/band.js';
import { backendsUnderTest } from '../backend/helpers.js';
import { maxAbsDiff, randomTensor } from './helpers.js';

const backends = backendsUnderTest();

const report = (r: GradCheckResult): string =>
  `max relative error ${r.maxRelError.toExponential(2)} at input ${r.worst.input}[${r.worst.index}]: ${r.worst.analytic} vs ${r.worst.numeric}`;

test.before(async () => {
  await initBackend('cpu', { quiet: true });
});

test('every pair within the window is found at (i, w + j - i) and its mirror at (j, w - (j - i))', (t) => {
  for (const [L, w] of [
    [9, 3],
    [5, 4],
    [6, 0],
    [4, 7],
  ] as const) {
    const K = 2 * w + 1;
    const valid = bandValidity(L, w);
    const seen = new Set<string>();
    for (let i = 0; i < L; i++) {
      for (let j = 0; j < L; j++) {
        const cell = bandIndex(i, j, w);
        if (Math.abs(i - j) > w) {
          t.is(cell, null);
          continue;
        }
        t.deepEqual(cell, [i, w + j - i]);
        t.deepEqual(bandIndex(j, i, w), [j, w - (j - i)]);
        t.deepEqual(bandPair(i, w + j - i, w), [i, j]);
        t.is(valid[i * K + (w + j - i)], 1);
        seen.add(`${i},${w + j - i}`);
      }
    }
    // The valid cells are exactly the in-window pairs.
    t.is(
      valid.reduce((a, b) => a + b, 0),
      seen.size,
      `L=${L} w=${w}`,
    );
  }
});

/** A random full pair grid M [L, L, c] and its band x(i, k) = M(i, i + k - w) (0 outside). */
function pairGrid(L: number, w: number, c: number, seed: number): { M: number[][][]; band: tf.Tensor3D } {
  const flat = randomTensor([L, L, c], seed).arraySync() as number[][][];
  const K = 2 * w + 1;
  const band = new Float32Array(L * K * c);
  for (let i = 0; i < L; i++) {
    for (let k = 0; k < K; k++) {
      const j = i + k - w;
      if (j < 0 || j >= L) continue;
      for (let f = 0; f < c; f++) band[(i * K + k) * c + f] = flat[i]![j]![f]!;
    }
  }
  return { M: flat, band: tf.tensor3d(band, [L, K, c]) };
}

test('rollFlip puts the pairs whose tail is i in row i, ordered by head (brute force on L x L)', (t) => {
  for (const [L, w, c] of [
    [7, 2, 3],
    [5, 4, 2],
    [3, 1, 1],
  ] as const) {
    const K = 2 * w + 1;
    const { M, band } = pairGrid(L, w, c, L * 10 + w);
    const rolled = rollFlip(band);
    const got = rolled.arraySync();
    for (let i = 0; i < L; i++) {
      for (let k = 0; k < K; k++) {
        const head = i + k - w;
        for (let f = 0; f < c; f++) {
          const want = head >= 0 && head < L ? M[head]![i]![f]! : 0;
          t.true(Math.abs(got[i]![k]![f]! - want) < 1e-7, `L=${L} w=${w} cell (${i}, ${k})`);
        }
      }
    }
    // Involution: rolling twice gives the band back.
    t.is(maxAbsDiff(rollFlip(rolled), band), 0);
    tf.dispose([band, rolled]);
  }
});

/** Dense reference: S(i, j, r) = h_i'^T U_r h_j' + W_r [h_i'; h_j'] for every pair, in JS. */
function denseBiaffine(hs: number[][], he: number[][], U: number[][][], W: number[][]): number[][][] {
  const L = hs.length;
  const c = U.length;
  const p = (h: number[]): number[] => [...h, 1];
  return Array.from({ length: L }, (_, i) =>
    Array.from({ length: L }, (_, j) =>
      Array.from({ length: c }, (_, r) => {
        const a = p(hs[i]!);
        const b = p(he[j]!);
        let s = 0;
        for (let x = 0; x < a.length; x++) for (let y = 0; y < b.length; y++) s += a[x]! * U[r]![x]![y]! * b[y]!;
        const cat = [...a, ...b];
        for (let x = 0; x < cat.length; x++) s += W[r]![x]! * cat[x]!;
        return s;
      }),
    ),
  );
}

test('bandedBiaffine equals the band of the dense biaffine, and is 0 on invalid cells', (t) => {
  for (const [L, w, d, c] of [
    [6, 2, 3, 2],
    [4, 5, 2, 3],
    [5, 0, 2, 1],
  ] as const) {
    tf.tidy(() => {
      const hs = randomTensor([L, d], 1);
      const he = randomTensor([L, d], 2);
      const U = randomTensor([c, d + 1, d + 1], 3);
      const W = randomTensor([c, 2 * (d + 1)], 4);
      const out = bandedBiaffine(hs as tf.Tensor2D, he as tf.Tensor2D, U as tf.Tensor3D, W as tf.Tensor2D, w);
      const K = 2 * w + 1;
      t.deepEqual(out.shape, [L, K, c]);
      const dense = denseBiaffine(hs.arraySync() as number[][], he.arraySync() as number[][], U.arraySync() as number[][][], W.arraySync() as number[][]);
      const got = out.arraySync();
      let worst = 0;
      for (let i = 0; i < L; i++) {
        for (let k = 0; k < K; k++) {
          const j = i + k - w;
          for (let r = 0; r < c; r++) {
            const want = j >= 0 && j < L ? dense[i]![j]![r]! : 0;
            worst = Math.max(worst, Math.abs(got[i]![k]![r]! - want));
          }
        }
      }
      t.true(worst < 1e-4, `L=${L} w=${w}: max difference ${worst}`);
    });
  }
});

test('gridBiaffine equals the dense biaffine on every pair; gridToBand of it is bandedBiaffine for every window', (t) => {
  for (const [L, d, c] of [
    [6, 3, 2],
    [1, 2, 3],
  ] as const) {
    tf.tidy(() => {
      const hs = randomTensor([L, d], 1) as tf.Tensor2D;
      const he = randomTensor([L, d], 2) as tf.Tensor2D;
      const U = randomTensor([c, d + 1, d + 1], 3) as tf.Tensor3D;
      const W = randomTensor([c, 2 * (d + 1)], 4) as tf.Tensor2D;
      const grid = gridBiaffine(hs, he, U, W);
      t.deepEqual(grid.shape, [L, L, c]);
      const dense = denseBiaffine(hs.arraySync(), he.arraySync(), U.arraySync(), W.arraySync());
      t.true(maxAbsDiff(grid, tf.tensor3d(dense)) < 1e-4);
      for (const w of [0, 2, L - 1, L + 2]) {
        const band = gridToBand(grid, w);
        t.deepEqual(band.shape, [L, 2 * w + 1, c]);
        t.true(maxAbsDiff(band, bandedBiaffine(hs, he, U, W, w)) < 1e-4, `L=${L} w=${w}`);
      }
    });
  }
});

test('gridToBand puts grid cell (i, j) at band cell (i, w + j - i) and zeros where the tail leaves the segment', (t) => {
  const [L, w] = [4, 2];
  const K = 2 * w + 1;
  tf.tidy(() => {
    // Grid value 10 i + j: every cell names its pair.
    const grid = tf.tensor3d(
      Array.from({ length: L * L }, (_, n) => 10 * Math.floor(n / L) + (n % L)),
      [L, L, 1],
    );
    const band = gridToBand(grid, w).dataSync();
    for (let i = 0; i < L; i++) {
      for (let k = 0; k < K; k++) {
        const j = i + k - w;
        t.is(band[i * K + k], j >= 0 && j < L ? 10 * i + j : 0, `cell (${i}, ${k})`);
      }
    }
  });
  t.throws(() => gridToBand(tf.zeros([2, 3, 1]), 1), { message: /square/ });
});

test('bandLabels marks both orientations and counts spans longer than w + 1 words', (t) => {
  const w = 2;
  const K = 5;
  const types = ['A', 'B'];
  // [1, 3) = words 1..2 (A); [4, 5) = word 4 (B); [0, 4) = words 0..3, 4 words > w + 1 = 3: dropped.
  const { values, shape, dropped } = bandLabels(
    [
      { start: 1, end: 3, type: 'A' },
      { start: 4, end: 5, type: 'B' },
      { start: 0, end: 4, type: 'A' },
      { start: 2, end: 5, type: 'B' },
    ],
    6,
    w,
    types,
  );
  t.deepEqual(shape, [6, K, 2]);
  t.is(dropped, 1);
  const at = (i: number, k: number, r: number): number => values[(i * K + k) * 2 + r]!;
  t.is(at(1, w + 1, 0), 1);
  t.is(at(2, w - 1, 0), 1);
  t.is(at(4, w, 1), 1);
  t.is(at(2, w + 2, 1), 1); // [2, 5): words 2..4, exactly w + 1 words: kept
  t.is(at(4, w - 2, 1), 1);
  t.is(
    values.reduce((a, b) => a + b, 0),
    5,
  ); // 2 + 1 (diagonal counted once) + 2
  t.throws(() => bandLabels([{ start: 0, end: 1, type: 'C' }], 3, w, types), { message: /type 'C'/ });
  t.throws(() => bandLabels([{ start: 2, end: 4, type: 'A' }], 3, w, types), { message: /does not fit/ });
});

for (const backend of backends) {
  test.serial(`${backend}: bandedBiaffine gradients (hs, he, U, W)`, async (t) => {
    await initBackend(backend, { quiet: true });
    const [L, w, d, c] = [5, 2, 3, 2];
    const inputs = [randomTensor([L, d], 11), randomTensor([L, d], 12), randomTensor([c, d + 1, d + 1], 13, 0.5), randomTensor([c, 2 * (d + 1)], 14, 0.5)];
    try {
      const r = checkGradients((hs, he, U, W) => bandedBiaffine(hs as tf.Tensor2D, he as tf.Tensor2D, U as tf.Tensor3D, W as tf.Tensor2D, w), inputs, {
        coords: 8,
      });
      t.true(r.ok, report(r));
    } finally {
      tf.dispose(inputs);
    }
  });

  test.serial(`${backend}: gridBiaffine and gridToBand gradients (hs, he, U, W)`, async (t) => {
    await initBackend(backend, { quiet: true });
    const [L, d, c] = [4, 3, 2];
    const inputs = [randomTensor([L, d], 15), randomTensor([L, d], 16), randomTensor([c, d + 1, d + 1], 17, 0.5), randomTensor([c, 2 * (d + 1)], 18, 0.5)];
    try {
      const r = checkGradients(
        (hs, he, U, W) => tf.tanh(gridToBand(gridBiaffine(hs as tf.Tensor2D, he as tf.Tensor2D, U as tf.Tensor3D, W as tf.Tensor2D), 2)),
        inputs,
        { coords: 8 },
      );
      t.true(r.ok, report(r));
    } finally {
      tf.dispose(inputs);
    }
  });

  test.serial(`${backend}: rollFlip gradients`, async (t) => {
    await initBackend(backend, { quiet: true });
    const x = randomTensor([6, 5, 3], 21);
    try {
      // tanh after the gather so the check sees a non-linear function of the rearranged cells.
      const r = checkGradients((v) => tf.tanh(rollFlip(v as tf.Tensor3D)), [x], { coords: 20 });
      t.true(r.ok, report(r));
    } finally {
      x.dispose();
    }
  });
}

test.serial('band ops leave no tensors behind', async (t) => {
  await initBackend('cpu', { quiet: true });
  const hs = randomTensor([4, 3], 31) as tf.Tensor2D;
  const U = randomTensor([2, 4, 4], 32) as tf.Tensor3D;
  const W = randomTensor([2, 8], 33) as tf.Tensor2D;
  const before = tf.memory().numTensors;
  const out = bandedBiaffine(hs, hs, U, W, 1);
  const grid = gridBiaffine(hs, hs, U, W);
  tf.dispose([out, rollFlip(out), grid, gridToBand(grid, 1)]);
  t.is(tf.memory().numTensors, before);
  tf.dispose([hs, U, W]);
});
