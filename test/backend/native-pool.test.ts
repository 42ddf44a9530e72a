import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { backendMemory, setMemoryBudget } from '../../src/backend/index.js';
import { MemoryBudgetError, NativeBackend } from '../../src/backend/native/backend.js';
import { BufferPool } from '../../src/backend/native/pool.js';
import { fusedAdamW, fusedLayerNorm } from '../../src/backend/fused.js';
import { isOutOfMemory } from '../../src/measure/oom.js';
import { nativeTest, rand, registerBackends } from './native-helpers.js';

/*
 * The native engine's output pool: BufferPool on its own (no addon needed), then the backend's use
 * of it: values read out are copies, a buffer is recycled only when no tensor (view included) uses
 * it, the memory budget fails as out of memory, and a tidy'd loop holds tensors and bytes steady.
 */

registerBackends();

const F = 4; // bytes per float

// ---- BufferPool ----

test('BufferPool: take allocates, release of the last user frees, take reuses the buffer', (t) => {
  const pool = new BufferPool(1 << 20);
  const a = pool.take(10);
  t.is(a.length, 10);
  t.true(pool.isPooled(a));
  t.like(pool.snapshot(), { allocated: 1, reused: 0, freeBytes: 0, liveBytes: 0 });
  pool.retain(a);
  t.like(pool.snapshot(), { liveBytes: 10 * F, peakLiveBytes: 10 * F });
  pool.release(a);
  t.like(pool.snapshot(), { liveBytes: 0, freeBytes: 10 * F });
  const b = pool.take(10);
  t.is(b.buffer, a.buffer, 'the freed buffer is served again');
  t.is(b.length, 10);
  t.like(pool.snapshot(), { allocated: 1, reused: 1, freeBytes: 0 });
});

test('BufferPool: a buffer used by two tensors is freed only when both release it', (t) => {
  const pool = new BufferPool(1 << 20);
  const a = pool.take(8);
  pool.retain(a);
  pool.retain(a);
  t.is(pool.snapshot().liveBytes, 8 * F, 'one buffer is counted once');
  pool.release(a);
  t.is(pool.snapshot().freeBytes, 0);
  t.not(pool.take(8).buffer, a.buffer, 'still in use: not served');
  pool.release(a);
  t.is(pool.snapshot().freeBytes, 8 * F);
  t.is(pool.take(8).buffer, a.buffer);
});

test('BufferPool: a view keeps its parent buffer out of the free list until the view is released', (t) => {
  const pool = new BufferPool(1 << 20);
  const whole = pool.take(16);
  whole.fill(7);
  const view = whole.subarray(4, 8);
  pool.retain(whole);
  pool.retain(view);
  t.true(pool.isPooled(view), 'a view of a pooled buffer counts as pooled');
  pool.release(whole);
  t.is(pool.snapshot().freeBytes, 0);
  const other = pool.take(16);
  t.not(other.buffer, whole.buffer, 'the parent is not recycled while its view lives');
  other.fill(-1);
  t.deepEqual(Array.from(view), [7, 7, 7, 7]);
  pool.release(view);
  t.is(pool.snapshot().freeBytes, 16 * F);
  const again = pool.take(16);
  t.is(again.buffer, whole.buffer);
  t.is(again.length, 16, 'the whole array comes back, not the view');
  t.is(again.byteOffset, 0);
});

test('BufferPool: free lists are per length', (t) => {
  const pool = new BufferPool(1 << 20);
  const ten = pool.take(10);
  pool.retain(ten);
  pool.release(ten);
  t.not(pool.take(12).buffer, ten.buffer);
  t.not(pool.take(9).buffer, ten.buffer);
  t.is(pool.take(10).buffer, ten.buffer);
});

test('BufferPool: recycle gives back a scratch array, but never one a tensor uses', (t) => {
  const pool = new BufferPool(1 << 20);
  const scratch = pool.take(6);
  pool.recycle(scratch);
  t.is(pool.snapshot().freeBytes, 6 * F);
  t.is(pool.take(6).buffer, scratch.buffer);

  const used = pool.take(6);
  pool.retain(used);
  pool.recycle(used);
  t.is(pool.snapshot().freeBytes, 0, 'recycle of a live array is ignored');
  t.not(pool.take(6).buffer, used.buffer);
});

test('BufferPool: arrays it did not allocate are counted while live but never pooled', (t) => {
  const pool = new BufferPool(1 << 20);
  const foreign = new Float32Array(5);
  t.false(pool.isPooled(foreign));
  pool.retain(foreign);
  t.is(pool.snapshot().liveBytes, 5 * F);
  pool.release(foreign);
  t.like(pool.snapshot(), { liveBytes: 0, freeBytes: 0 });
  pool.recycle(foreign);
  t.is(pool.snapshot().freeBytes, 0);
  t.not(pool.take(5).buffer, foreign.buffer);
  // Int32Array and Uint8Array outputs (argMax, bool) are live bytes too.
  const ints = new Int32Array(3);
  pool.retain(ints);
  t.is(pool.snapshot().liveBytes, 3 * F);
  pool.release(ints);
  t.is(pool.snapshot().liveBytes, 0);
});

test('BufferPool: non-views and unknown or repeated releases are ignored', (t) => {
  const pool = new BufferPool(1 << 20);
  pool.retain(['a', 'b']);
  pool.retain(undefined);
  pool.release(['a', 'b']);
  pool.release(null);
  t.like(pool.snapshot(), { liveBytes: 0, freeBytes: 0 });
  const a = pool.take(4);
  pool.release(a); // never retained
  t.is(pool.snapshot().freeBytes, 0);
  pool.retain(a);
  pool.release(a);
  pool.release(a); // once too often
  t.like(pool.snapshot(), { liveBytes: 0, freeBytes: 4 * F });
  t.is(pool.take(4).buffer, a.buffer);
  t.not(pool.take(4).buffer, a.buffer, 'the buffer was listed once, not twice');
});

test('BufferPool: the cap bounds the free bytes; trim and setCap drop free buffers', (t) => {
  const pool = new BufferPool(2 * 10 * F);
  t.is(pool.cap, 80);
  const arrays = [pool.take(10), pool.take(10), pool.take(10)];
  for (const a of arrays) pool.retain(a);
  for (const a of arrays) pool.release(a);
  t.is(pool.snapshot().freeBytes, 80, 'the third buffer evicts one of the first two: the free bytes stay under the cap');

  const big = new BufferPool(1 << 20);
  const many = Array.from({ length: 4 }, () => big.take(10));
  for (const a of many) {
    big.retain(a);
    big.release(a);
  }
  t.is(big.snapshot().freeBytes, 160);
  big.trim(80);
  t.true(big.snapshot().freeBytes <= 80);
  big.trim();
  t.is(big.snapshot().freeBytes, 0);
  const fresh = big.take(10);
  t.false(
    many.some((a) => a.buffer === fresh.buffer),
    'trimmed buffers are gone',
  );

  const capped = new BufferPool(1 << 20);
  const xs = Array.from({ length: 3 }, () => capped.take(10));
  for (const a of xs) {
    capped.retain(a);
    capped.release(a);
  }
  capped.setCap(40);
  t.is(capped.cap, 40);
  t.true(capped.snapshot().freeBytes <= 40, 'a lower cap trims at once');
});

test('BufferPool: at the cap, the least recently used lengths are evicted first', (t) => {
  // Room for two free buffers of 10 floats.
  const pool = new BufferPool(2 * 10 * F);
  const free = (a: Float32Array): void => {
    pool.retain(a);
    pool.release(a);
  };
  const x = pool.take(10);
  const y = pool.take(9);
  free(x);
  free(y);
  // Length 10 is used again (taken and freed): now length 9 is the least recent.
  const again = pool.take(10);
  t.is(again.buffer, x.buffer);
  free(again);
  const z = pool.take(8);
  free(z);
  t.true(pool.snapshot().freeBytes <= pool.cap);
  t.is(pool.take(10).buffer, x.buffer, 'the recently used length stays');
  t.is(pool.take(8).buffer, z.buffer, 'the newly freed buffer is kept');
  t.not(pool.take(9).buffer, y.buffer, 'the least recently used length was evicted');
  // A buffer larger than the whole cap is never kept, and evicts nothing.
  const w = pool.take(8);
  free(w);
  free(pool.take(30));
  t.is(pool.take(8).buffer, w.buffer);
});

test('BufferPool: free bytes never exceed twice the most bytes ever in use at once', (t) => {
  const pool = new BufferPool(1 << 20);
  // One buffer in use at a time, of a new length each time: the free lists keep at most two.
  for (const n of [10, 9, 8, 7, 6]) {
    const a = pool.take(n);
    pool.retain(a);
    pool.release(a);
    t.true(pool.snapshot().freeBytes <= 2 * 10 * F, `after length ${n}: ${pool.snapshot().freeBytes} free bytes`);
  }
  t.true(pool.snapshot().freeBytes > 0);
  // Three at once raise the mark: all three come back.
  const three = [pool.take(10), pool.take(10), pool.take(10)];
  for (const a of three) pool.retain(a);
  for (const a of three) pool.release(a);
  const again = new Set([pool.take(10), pool.take(10), pool.take(10)].map((a) => a.buffer));
  t.true(
    three.every((a) => again.has(a.buffer)),
    'the three buffers were kept',
  );
});

test('BufferPool: live and peak bytes; resetPeak', (t) => {
  const pool = new BufferPool(1 << 20);
  const a = pool.take(10),
    b = pool.take(20);
  pool.retain(a);
  pool.retain(b);
  t.like(pool.snapshot(), { liveBytes: 120, peakLiveBytes: 120 });
  pool.release(b);
  t.like(pool.snapshot(), { liveBytes: 40, peakLiveBytes: 120 });
  pool.resetPeak();
  t.is(pool.snapshot().peakLiveBytes, 40);
});

// ---- the backend's use of the pool ----

async function nativeBackend(): Promise<NativeBackend> {
  await tf.setBackend('native');
  const backend: unknown = tf.backend();
  if (!(backend instanceof NativeBackend)) throw new Error('the active backend is not the native one');
  return backend;
}

/** Allocates and frees `count` same-sized outputs of native kernels, so any free buffer gets reused and overwritten. */
function churn(shape: number[], count: number): void {
  for (let i = 0; i < count; i++) tf.tidy(() => tf.neg(tf.fill(shape, -1000 - i)).dataSync());
}

nativeTest('values read with data() and dataSync() are copies: later kernels never change them', async (t) => {
  const b = await nativeBackend();
  const x = rand([64, 32], 1);
  const a = tf.exp(x);
  const stored = b.valuesOf(a);
  t.true(b.pool.isPooled(stored), 'the output of a native kernel is pooled');
  const async = await a.data();
  const sync = a.dataSync();
  t.not((async as Float32Array).buffer, (stored as Float32Array).buffer, 'data() is a copy');
  t.not((sync as Float32Array).buffer, (stored as Float32Array).buffer, 'dataSync() is a copy');
  const saved = Array.from(sync);
  a.dispose();
  x.dispose();
  const reusedBefore = b.poolStats().reused;
  churn([64, 32], 10);
  t.true(b.poolStats().reused > reusedBefore, 'the freed buffer was reused (so the test would see an aliasing bug)');
  t.deepEqual(Array.from(async), saved);
  t.deepEqual(Array.from(sync), saved);
  t.deepEqual(Array.from(tf.tidy(() => tf.exp(rand([64, 32], 1)).dataSync())), saved, 'and the kernel still gives the same values');
});

nativeTest('a stock-kernel view (unstack) keeps its parent buffer out of the pool while alive', async (t) => {
  const b = await nativeBackend();
  const a = tf.exp(rand([4, 1000], 2));
  const expected = (await a.array()) as number[][];
  const parts = tf.unstack(a); // the stock Unpack slices with subarray: views into a's buffer
  const parent = b.valuesOf(a) as Float32Array;
  for (const p of parts) t.is((b.valuesOf(p) as Float32Array).buffer, parent.buffer, 'unstack returned views (the case under test)');
  a.dispose();
  churn([4, 1000], 20);
  for (const [i, p] of parts.entries()) t.deepEqual(Array.from(p.dataSync()), expected[i]!, `part ${i} unchanged`);
  const free = b.poolStats().freeBytes;
  for (const p of parts.slice(0, 3)) p.dispose();
  t.is(b.poolStats().freeBytes, free, 'one view alive still holds the buffer');
  parts[3]!.dispose();
  // The buffer returned last is the first a take of its length gets back.
  const next = b.pool.take(parent.length);
  t.is(next.buffer, parent.buffer, 'the last view returns the buffer');
  b.pool.recycle(next);
});

nativeTest('a reshape shares its data: disposing the original keeps the values for the reshape', async (t) => {
  await nativeBackend();
  const a = tf.exp(rand([8, 50], 3));
  const r = tf.reshape(a, [400]);
  const expected = Array.from(a.dataSync());
  a.dispose();
  churn([8, 50], 10);
  t.deepEqual(Array.from(r.dataSync()), expected);
  r.dispose();
});

nativeTest('makeTensorInfo with a subarray of a pooled array pins the buffer until it is disposed', async (t) => {
  const b = await nativeBackend();
  const a = tf.exp(rand([256], 4));
  const pooled = b.valuesOf(a) as Float32Array;
  const view = pooled.subarray(10, 20);
  const expected = Array.from(view);
  const info = b.makeTensorInfo([10], 'float32', view);
  a.dispose();
  churn([256], 10);
  t.deepEqual(Array.from(b.readSync(info.dataId) as Float32Array), expected);
  const other = b.pool.take(pooled.length);
  t.not(other.buffer, pooled.buffer, 'pinned while the view lives');
  b.pool.recycle(other);
  b.disposeData(info.dataId);
  const next = b.pool.take(pooled.length);
  t.is(next.buffer, pooled.buffer, 'disposing the view frees the buffer');
  b.pool.recycle(next);
});

nativeTest('memory budget: past it a kernel fails as out of memory; null lifts it', async (t) => {
  const b = await nativeBackend();
  const tensors = tf.memory().numTensors;
  const live = b.poolStats().liveBytes;
  try {
    t.true(setMemoryBudget(live + 2 ** 20), 'a budget is in force');
    t.is(b.budget, live + 2 ** 20);
    // 64 KiB fits; 4 MiB does not, from a native kernel or from data written in.
    t.notThrows(() => tf.tidy(() => tf.fill([16384], 1).dataSync()));
    const fromKernel = t.throws(() => tf.tidy(() => tf.fill([2 ** 20], 1)));
    t.true(fromKernel instanceof MemoryBudgetError);
    t.true(isOutOfMemory(fromKernel), fromKernel?.message);
    const fromWrite = t.throws(() => tf.tensor(new Float32Array(2 ** 20)));
    t.true(isOutOfMemory(fromWrite), fromWrite?.message);
    const fromMatMul = t.throws(() => tf.tidy(() => tf.matMul(tf.ones([512, 4]), tf.ones([4, 1024]))));
    t.true(isOutOfMemory(fromMatMul), fromMatMul?.message);
    t.is(tf.memory().numTensors, tensors, 'failed kernels leave no tensors behind');
    t.false(setMemoryBudget(null), 'null lifts the budget');
    t.is(b.budget, null);
    t.notThrows(() => tf.tidy(() => tf.fill([2 ** 20], 1).dataSync()));
  } finally {
    setMemoryBudget(null);
  }
  t.is(tf.memory().numTensors, tensors);
});

// A kernel takes all its outputs before it wraps any as a tensor: the budget counts the ones taken
// but not yet wrapped (the pool's outstanding bytes), so AdamW's three outputs do not pass a
// budget that has room for 2.5 of them (before, each output was checked without its siblings).
nativeTest('memory budget: a kernel with several outputs counts all of them', async (t) => {
  const b = await nativeBackend();
  const n = 2 ** 18; // 1 MiB per tensor
  const [p, g, m, v] = [1, 2, 3, 4].map(() => tf.ones([n]));
  const live = b.poolStats().liveBytes;
  try {
    setMemoryBudget(live + 2.5 * 4 * n);
    const err = t.throws(() =>
      tf.tidy(() => {
        fusedAdamW(p!, g!, m!, v!, { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, decay: 1, stepSize: 1e-3, biasCorrection2Sqrt: 1 });
      }),
    );
    t.true(isOutOfMemory(err));
  } finally {
    setMemoryBudget(null);
    tf.dispose([p!, g!, m!, v!]);
  }
});

nativeTest('memory budget: lifting it restores the pool cap it lowered', async (t) => {
  const b = await nativeBackend();
  const cap = b.pool.cap;
  try {
    setMemoryBudget(2 ** 20);
    t.true(b.pool.cap <= 2 ** 20, 'free buffers count against the budget, so the cap comes down');
    setMemoryBudget(null);
    t.is(b.pool.cap, cap, 'and goes back up when the budget is lifted');
    setMemoryBudget(cap * 4);
    t.is(b.pool.cap, cap, 'a budget above the cap leaves it alone');
  } finally {
    setMemoryBudget(null);
  }
  t.is(b.pool.cap, cap);
});

nativeTest('memory budget: ignored (false) on other backends', async (t) => {
  await tf.setBackend('cpu');
  t.false(setMemoryBudget(2 ** 20));
  t.notThrows(() => tf.tidy(() => tf.fill([2 ** 20], 1).dataSync()));
  await tf.setBackend('native');
});

nativeTest('a tidy loop over many kernels holds tensors and live bytes steady and reuses buffers', async (t) => {
  const b = await nativeBackend();
  const w = rand([32, 48], 5);
  const gamma = tf.ones([48]),
    beta = tf.zeros([48]);
  const step = (i: number): void => {
    tf.tidy(() => {
      const x = rand([16, 32], 100 + i);
      const h = tf.matMul(x, w);
      const n = fusedLayerNorm(h, gamma, beta, 1e-5)?.y ?? h;
      const p = tf.softmax(tf.relu(n));
      const [l, r] = tf.split(p, [20, 28], 1);
      const c = tf.concat([tf.transpose(tf.transpose(r!)), l!], 1);
      const g = tf.gather(c, tf.tensor1d([0, 3, 3, 15], 'int32'));
      tf.sum(tf.mul(tf.exp(tf.slice(g, [0, 1], [4, 10])), 2)).dataSync();
    });
  };
  b.pool.trim(); // start from empty free lists, whatever the tests before left there
  step(0); // warm-up: first use of each size
  const tensors = tf.memory().numTensors;
  const bytes = tf.memory().numBytes;
  const live = b.poolStats().liveBytes;
  const before = b.poolStats();
  for (let i = 1; i <= 30; i++) step(i);
  const after = b.poolStats();
  t.is(tf.memory().numTensors, tensors);
  t.is(tf.memory().numBytes, bytes);
  t.is(after.liveBytes, live, 'live bytes back where they were');
  t.true(after.reused - before.reused > 30 * 5, `outputs came from the pool (${after.reused - before.reused} reused)`);
  t.true(after.allocated - before.allocated < 30, `few fresh allocations after the warm-up (${after.allocated - before.allocated})`);
  const memory = backendMemory();
  t.is(memory.poolFreeBytes, after.freeBytes, 'backendMemory reports the free pool bytes');
  tf.dispose([w, gamma, beta]);
});
