import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { checkGradients, type GradCheckResult } from '../../src/backend/gradcheck.js';
import { maskedConv3x3, rowAttention, type RowAttentionWeights } from '../../src/nn/grid.js';
import { ropeTables } from '../../src/nn/rope.js';
import { hasFusedRowAttention } from '../../src/backend/fused.js';
import { counterDropoutMask, drawSeed } from '../../src/backend/random.js';
import { createRng } from '../../src/util/rng.js';
import { backendsUnderTest } from '../backend/helpers.js';
import { maxAbsDiff, randomTensor } from './helpers.js';

const backends = backendsUnderTest();

/** A seeded 0/1 mask [R, C] with about `share` valid cells. */
function randomMask(R: number, C: number, seed: number, share = 0.7): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: R * C }, () => (rng.next() < share ? 1 : 0));
}

function qkvWeights(c: number, seed: number): RowAttentionWeights {
  return { qkv: { W: randomTensor([c, 3 * c], seed, 0.8) as tf.Tensor2D, b: randomTensor([3 * c], seed + 1, 0.3) as tf.Tensor1D, lora: null } };
}

test.serial('maskedConv3x3 equals tf.conv2d (same padding) on the masked input, with invalid outputs zeroed (cpu)', async (t) => {
  await initBackend('cpu', { quiet: true });
  for (const [R, C, cin, cout] of [
    [5, 7, 3, 4],
    [1, 1, 2, 2],
    [6, 3, 1, 5],
  ] as const) {
    tf.tidy(() => {
      const x = randomTensor([R, C, cin], R * 100 + C) as tf.Tensor3D;
      const taps = randomTensor([9, cin, cout], 7 + cin) as tf.Tensor3D;
      const m = randomMask(R, C, 3);
      const mask = tf.tensor3d(m, [R, C, 1]);
      const ours = maskedConv3x3(x, taps, mask);
      t.deepEqual(ours.shape, [R, C, cout]);
      const filter = tf.reshape(taps, [3, 3, cin, cout]) as tf.Tensor4D;
      const ref = tf.mul(tf.squeeze(tf.conv2d(tf.expandDims(tf.mul(x, mask), 0) as tf.Tensor4D, filter, 1, 'same'), [0]), mask);
      t.true(maxAbsDiff(ours, ref) < 1e-5, `R=${R} C=${C}`);
      // The mask matters: an all-ones mask gives a different result whenever a cell is invalid.
      if (m.includes(0)) t.true(maxAbsDiff(ours, maskedConv3x3(x, taps, tf.onesLike(mask))) > 1e-3);
    });
  }
});

test.serial('maskedConv3x3: tap t reads the neighbour at (dr, dc) = (t div 3 - 1, t mod 3 - 1)', async (t) => {
  await initBackend('cpu', { quiet: true });
  tf.tidy(() => {
    // One-hot input at (2, 2) of a 5x5 grid, one channel: out(r, c) = taps[t] where (r, c) + (dr, dc) = (2, 2).
    const x = tf.tensor3d(
      Float32Array.from({ length: 25 }, (_, i) => (i === 12 ? 1 : 0)),
      [5, 5, 1],
    );
    const taps = tf.tensor3d(
      Float32Array.from({ length: 9 }, (_, i) => i + 1),
      [9, 1, 1],
    );
    const out = maskedConv3x3(x, taps, tf.ones([5, 5, 1])).dataSync();
    for (let t9 = 0; t9 < 9; t9++) {
      const dr = Math.floor(t9 / 3) - 1;
      const dc = (t9 % 3) - 1;
      t.is(out[(2 - dr) * 5 + (2 - dc)], t9 + 1);
    }
  });
});

/**
 * Per-row reference: each row attended alone with plain 2D ops and an explicit RoPE rotation; with
 * `dropMask` [R, C, C], the probabilities are multiplied by it.
 */
function rowAttentionReference(x: tf.Tensor3D, { qkv: w }: RowAttentionWeights, mask: Float32Array, dropMask?: Float32Array): tf.Tensor3D {
  return tf.tidy(() => {
    const [R, C, c] = x.shape;
    const rows: tf.Tensor2D[] = [];
    const xs = x.arraySync();
    const rotate = (m: number[][]): tf.Tensor2D => {
      // out_{2k} = x_{2k} cos - x_{2k+1} sin, out_{2k+1} = x_{2k+1} cos + x_{2k} sin, angle = col * 10000^(-2k/c).
      const out = m.map((row, p) => {
        const r = row.slice();
        for (let k = 0; k < c / 2; k++) {
          const a = p * 10000 ** ((-2 * k) / c);
          r[2 * k] = row[2 * k]! * Math.cos(a) - row[2 * k + 1]! * Math.sin(a);
          r[2 * k + 1] = row[2 * k + 1]! * Math.cos(a) + row[2 * k]! * Math.sin(a);
        }
        return r;
      });
      return tf.tensor2d(out);
    };
    for (let r = 0; r < R; r++) {
      const xr = tf.tensor2d(xs[r]!);
      const y = tf.add(tf.matMul(xr, w.W), w.b!);
      const [q, k, v] = tf.split(y, 3, 1) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
      const qr = rotate(q.arraySync());
      const kr = rotate(k.arraySync());
      const valid = mask.slice(r * C, (r + 1) * C);
      if (!valid.includes(1)) {
        rows.push(tf.zeros([C, c]));
        continue;
      }
      const bias = tf.tensor2d(
        Array.from(valid, (m) => (m ? 0 : -1e9)),
        [1, C],
      );
      const p = tf.softmax(tf.add(tf.div(tf.matMul(qr, kr, false, true), Math.sqrt(c)), bias));
      rows.push(tf.matMul(dropMask ? tf.mul(p, tf.tensor2d(dropMask.slice(r * C * C, (r + 1) * C * C), [C, C])) : p, v));
    }
    return tf.stack(rows) as tf.Tensor3D;
  });
}

test.serial('rowAttention equals a per-row loop reference, and masked keys do not matter', async (t) => {
  await initBackend('cpu', { quiet: true });
  const [R, C, c] = [4, 5, 6];
  tf.tidy(() => {
    const x = randomTensor([R, C, c], 11) as tf.Tensor3D;
    const w = qkvWeights(c, 12);
    const m = randomMask(R, C, 5, 0.6);
    m.fill(0, 2 * C, 3 * C); // row 2 fully invalid
    m[0] = 1;
    m[1] = 0; // row 0 has a valid and an invalid key at least
    const rope = ropeTables(C, c);
    const validMask = tf.tensor2d(m, [R, C]);
    const out = rowAttention(x, w, { rope, validMask });
    t.deepEqual(out.shape, [R, C, c]);
    t.true(maxAbsDiff(out, rowAttentionReference(x, w, m)) < 1e-5);
    // Row 2 (no valid cell) outputs exactly 0.
    t.is(tf.max(tf.abs(tf.slice(out, [2, 0, 0], [1, C, c]))).dataSync()[0], 0);
    // Changing an invalid cell's features changes nothing (it is a key nobody sees); changing a valid one does.
    const bump = (cell: number): tf.Tensor3D => {
      const v = x.dataSync().slice();
      for (let j = 0; j < c; j++) v[cell * c + j] = v[cell * c + j]! + 3;
      return rowAttention(tf.tensor3d(v, [R, C, c]), w, { rope, validMask });
    };
    const valid0 = (i: number): boolean => m[i] === 1;
    // Cell 1 (row 0) is invalid: valid query cells of row 0 do not move.
    const rowValid = (y: tf.Tensor3D): tf.Tensor => tf.mul(tf.slice(y, [0, 0, 0], [1, C, c]), tf.reshape(validMask.slice([0, 0], [1, C]), [1, C, 1]));
    t.true(maxAbsDiff(rowValid(bump(1)), rowValid(out)) < 1e-6);
    t.true(valid0(0));
    t.true(maxAbsDiff(rowValid(bump(0)), rowValid(out)) > 1e-3);
    rope.dispose();
  });
});

test.serial('rowAttention: RoPE makes the output depend on column order; attention dropout is seeded', async (t) => {
  await initBackend('cpu', { quiet: true });
  const [R, C, c] = [2, 4, 4];
  tf.tidy(() => {
    const x = randomTensor([R, C, c], 21) as tf.Tensor3D;
    const w = qkvWeights(c, 22);
    const rope = ropeTables(C, c);
    const validMask = tf.ones([R, C]) as tf.Tensor2D;
    const a = rowAttention(x, w, { rope, validMask, dropout: 0.5, training: true, rng: createRng(1) });
    const b = rowAttention(x, w, { rope, validMask, dropout: 0.5, training: true, rng: createRng(1) });
    const evalOut = rowAttention(x, w, { rope, validMask, dropout: 0.5, training: false });
    t.is(maxAbsDiff(a, b), 0);
    t.true(maxAbsDiff(a, evalOut) > 1e-3);
    // Reversing the columns of the input does not simply reverse the output: positions matter.
    const rev = tf.reverse(x, 1) as tf.Tensor3D;
    t.true(maxAbsDiff(tf.reverse(rowAttention(rev, w, { rope, validMask }), 1), evalOut) > 1e-3);
    rope.dispose();
  });
});

for (const backend of backends) {
  test.serial(`${backend}: maskedConv3x3 gradients (input and taps)`, async (t) => {
    await initBackend(backend, { quiet: true });
    const mask = tf.tensor3d(randomMask(4, 5, 9), [4, 5, 1]);
    const inputs = [randomTensor([4, 5, 3], 31), randomTensor([9, 3, 2], 32)];
    try {
      const r = checkGradients((x, k) => maskedConv3x3(x as tf.Tensor3D, k as tf.Tensor3D, mask), inputs, { coords: 10 });
      t.true(
        r.ok,
        `max relative error ${r.maxRelError.toExponential(2)} at input ${r.worst.input}[${r.worst.index}]: ${r.worst.analytic} vs ${r.worst.numeric}`,
      );
    } finally {
      tf.dispose([mask, ...inputs]);
    }
  });

  test.serial(`${backend}: rowAttention gradients (input, qkv weight and bias)`, async (t) => {
    await initBackend(backend, { quiet: true });
    const [R, C, c] = [3, 5, 4];
    const m = randomMask(R, C, 41, 0.7);
    m.fill(0, C, 2 * C);
    const validMask = tf.tensor2d(m, [R, C]);
    const rope = ropeTables(C, c);
    const x = randomTensor([R, C, c], 42);
    const W = randomTensor([c, 3 * c], 43, 0.7);
    const b = randomTensor([3 * c], 44, 0.3);
    const attend = (xx: tf.Tensor, WW: tf.Tensor, bb: tf.Tensor): tf.Tensor =>
      rowAttention(xx as tf.Tensor3D, { qkv: { W: WW as tf.Tensor2D, b: bb as tf.Tensor1D, lora: null } }, { rope, validMask });
    const report = (r: GradCheckResult): string =>
      `max relative error ${r.maxRelError.toExponential(2)} at input ${r.worst.input}[${r.worst.index}]: ${r.worst.analytic} vs ${r.worst.numeric}`;
    try {
      const r = checkGradients((xx, WW) => attend(xx!, WW!, b), [x, W], { coords: 10 });
      t.true(r.ok, report(r));
      // The key bias shifts a row's logits almost uniformly (only RoPE makes it matter), so its
      // gradient is a small difference of large terms: measured 3e-4..6e-4 relative error in float32.
      const rb = checkGradients((bb) => attend(x, W, bb!), [b], { coords: 12, tol: 2e-3 });
      t.true(rb.ok, report(rb));
      // With attention dropout: the mask is drawn from a fresh seeded rng on every call, so f stays deterministic.
      const dropped = (xx: tf.Tensor, WW: tf.Tensor): tf.Tensor =>
        rowAttention(
          xx as tf.Tensor3D,
          { qkv: { W: WW as tf.Tensor2D, b: b as tf.Tensor1D, lora: null } },
          { rope, validMask, dropout: 0.3, training: true, rng: createRng(5) },
        );
      t.true(maxAbsDiff(dropped(x, W), attend(x, W, b)) > 1e-3);
      const rd = checkGradients((xx, WW) => dropped(xx!, WW!), [x, W], { coords: 10 });
      t.true(rd.ok, report(rd));
    } finally {
      tf.dispose([validMask, x, W, b]);
      rope.dispose();
    }
  });
}

for (const backend of backends) {
  test.serial(`${backend}: low-memory rowAttention equals the reference form given the same mask, and its gradients check`, async (t) => {
    await initBackend(backend, { quiet: true });
    const [R, C, c] = [4, 6, 4];
    const m = randomMask(R, C, 61, 0.7);
    m.fill(0, C, 2 * C); // row 1 fully invalid
    const validMask = tf.tensor2d(m, [R, C]);
    const rope = ropeTables(C, c);
    const x = randomTensor([R, C, c], 62);
    const W = randomTensor([c, 3 * c], 63, 0.7);
    const b = randomTensor([3 * c], 64, 0.3);
    const weights = (WW: tf.Tensor): RowAttentionWeights => ({ qkv: { W: WW as tf.Tensor2D, b: b as tf.Tensor1D, lora: null } });
    // On the native engine the fused kernel must be what runs, not the composition.
    t.is(hasFusedRowAttention(), backend === 'native');
    const lowMem = (xx: tf.Tensor, WW: tf.Tensor, training: boolean): tf.Tensor =>
      rowAttention(xx as tf.Tensor3D, weights(WW), { rope, validMask, dropout: 0.3, training, rng: createRng(7), lowMemory: true });
    try {
      // Without dropout (inference) the two forms compute the same function.
      tf.tidy(() => {
        const ref = rowAttention(x as tf.Tensor3D, weights(W), { rope, validMask, dropout: 0.3, training: false });
        t.true(maxAbsDiff(lowMem(x, W, false), ref) < 1e-5);
      });
      // With dropout: the reference composition fed the counter mask (built in JS) matches the
      // kernel, which draws the same mask in C; the seed is the first draw of the rng.
      tf.tidy(() => {
        const seed = drawSeed(createRng(7));
        const mask = counterDropoutMask(R, C, 0.3, seed);
        t.true(mask.includes(0) && mask.some((v) => v > 1));
        const drop = 1 - mask.filter((v) => v > 0).length / mask.length;
        t.true(Math.abs(drop - 0.3) < 0.12, `dropped share ${drop}`);
        const trained = lowMem(x, W, true);
        t.true(maxAbsDiff(trained, lowMem(x, W, false)) > 1e-3);
        // The same computation by hand: the reference form's per-row loop with this mask.
        t.true(maxAbsDiff(trained, rowAttentionReference(x as tf.Tensor3D, weights(W), m, mask)) < 1e-5);
      });
      const report = (r: GradCheckResult): string =>
        `max relative error ${r.maxRelError.toExponential(2)} at input ${r.worst.input}[${r.worst.index}]: ${r.worst.analytic} vs ${r.worst.numeric}`;
      const r = checkGradients((xx, WW) => lowMem(xx!, WW!, true), [x, W], { coords: 12 });
      t.true(r.ok, report(r));
      const r0 = checkGradients((xx, WW) => lowMem(xx!, WW!, false), [x, W], { coords: 12 });
      t.true(r0.ok, report(r0));
    } finally {
      tf.dispose([validMask, x, W, b]);
      rope.dispose();
    }
  });
}

test.serial('counterDropoutMask: a function of (seed, row, cell) only, with the asked drop rate', (t) => {
  const a = counterDropoutMask(3, 17, 0.2, 99);
  t.deepEqual(a, counterDropoutMask(3, 17, 0.2, 99));
  t.notDeepEqual(a, counterDropoutMask(3, 17, 0.2, 100));
  // Row r of a bigger mask is the same row: the counter does not depend on R.
  t.deepEqual(counterDropoutMask(5, 17, 0.2, 99).subarray(0, 3 * 17 * 17), a);
  const big = counterDropoutMask(64, 64, 0.2, 1);
  const dropped = big.filter((v) => v === 0).length / big.length;
  t.true(Math.abs(dropped - 0.2) < 0.01, `dropped share ${dropped}`);
  t.true(big.every((v) => v === 0 || Math.abs(v - 1.25) < 1e-6));
  t.true(counterDropoutMask(2, 3, 0, 5).every((v) => v === 1));
});

test.serial('grid ops leave no tensors behind', async (t) => {
  await initBackend('cpu', { quiet: true });
  const x = randomTensor([3, 4, 4], 51) as tf.Tensor3D;
  const taps = randomTensor([9, 4, 4], 52) as tf.Tensor3D;
  const mask = tf.ones([3, 4, 1]) as tf.Tensor3D;
  const validMask = tf.ones([3, 4]) as tf.Tensor2D;
  const rope = ropeTables(4, 4);
  const w = qkvWeights(4, 53);
  const before = tf.memory().numTensors;
  tf.dispose([maskedConv3x3(x, taps, mask), rowAttention(x, w, { rope, validMask, dropout: 0.2, training: true, rng: createRng(3) })]);
  t.is(tf.memory().numTensors, before);
  tf.dispose([x, taps, mask, validMask, w.qkv.W, w.qkv.b!]);
  rope.dispose();
});
