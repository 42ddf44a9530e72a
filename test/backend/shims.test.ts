import test from 'ava';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import { LongnerError } from '../../src/errors.js';
import { activeBackend, backendMemory, initBackend, type BackendChoice } from '../../src/backend/index.js';
import { broadcastSourceIndex } from '../../src/backend/batch-matmul.js';
import { segmentSumInto } from '../../src/backend/segment-sum.js';
import { loadTensorflowPackage, tensorflowUnavailableMessage, type Importer } from '../../src/backend/tensorflow.js';
import { loadNativeAddon } from '../../src/backend/native/addon.js';
import { randn } from './helpers.js';

const require = createRequire(import.meta.url);
const installed = (name: string): boolean => {
  try {
    require.resolve(name);
    return true;
  } catch {
    return false;
  }
};
const hasTensorflow = installed('@tensorflow/tfjs-node-gpu') || installed('@tensorflow/tfjs-node');

// ---- backend selection ----

// auto = tensorflow -> native -> wasm -> cpu: here native when the engine is built, else wasm.
const nativeBuilt = loadNativeAddon().ok;

(hasTensorflow ? test.serial.skip : test.serial)('auto picks native when the engine is built, else wasm (no tensorflow package here)', async (t) => {
  const info = await initBackend('auto', { quiet: true });
  if (nativeBuilt) {
    t.is(info.name, 'native');
    t.regex(info.detail, /^native \(oneDNN [\d.]+, \w+, \d+ threads?, memory budget [\d.]+ GiB, pool cap [\d.]+ GiB\)$/);
    t.regex(info.library, /^oneDNN /);
  } else {
    t.is(info.name, 'wasm');
    t.regex(info.detail, /^wasm \((no )?SIMD, \d+ threads?, shims: BatchMatMul override, UnsortedSegmentSum\)$/);
    t.is(typeof info.simd, 'boolean');
  }
  t.is(tf.getBackend(), info.name);
  t.true(info.threads >= 1);
  t.is(activeBackend(), info);
  // Repeating the choice is a no-op that returns the same record.
  t.is(await initBackend('auto', { quiet: true }), info);
});

test.serial('wasm and cpu name their library and threads', async (t) => {
  const wasm = await initBackend('wasm', { quiet: true });
  t.regex(wasm.library, /^XNNPACK \(wasm/);
  t.true(wasm.threads >= 1);
  const cpu = await initBackend('cpu', { quiet: true });
  t.is(cpu.library, 'JavaScript');
  t.is(cpu.threads, 1);
});

(hasTensorflow ? test.serial.skip : test.serial)('an explicit tensorflow choice fails with an install hint', async (t) => {
  const err = await t.throwsAsync(initBackend('tensorflow', { quiet: true }), { instanceOf: LongnerError });
  t.regex(err?.message ?? '', /neither @tensorflow\/tfjs-node-gpu nor @tensorflow\/tfjs-node is installed/);
  t.regex(err?.message ?? '', /npm install @tensorflow\/tfjs-node/);
  // A failed switch leaves a usable backend behind only if the caller picks one; picking works.
  t.is((await initBackend('cpu', { quiet: true })).name, 'cpu');
});

test.serial('an unknown backend name is a user error', async (t) => {
  await t.throwsAsync(initBackend('gpu' as BackendChoice, { quiet: true }), { instanceOf: LongnerError, message: /unknown backend 'gpu'/ });
});

test.serial('switching between cpu and wasm; one stderr line unless quiet', async (t) => {
  await initBackend('wasm', { quiet: true });
  const lines: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array): boolean => {
    lines.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    await initBackend('cpu');
    await initBackend('cpu'); // no-op: nothing printed
    await initBackend('wasm', { quiet: true });
  } finally {
    process.stderr.write = write;
  }
  t.deepEqual(lines, ['longner: backend cpu (pure JS reference, shims: UnsortedSegmentSum)\n']);
  t.is(tf.getBackend(), 'wasm');
  t.is(activeBackend()?.name, 'wasm');
});

test.serial('backendMemory reports the wasm heap on wasm only', async (t) => {
  await initBackend('wasm', { quiet: true });
  const x = tf.zeros([256, 256]);
  const onWasm = backendMemory();
  t.true(onWasm.tfTensors >= 1);
  t.true(onWasm.tfBytes >= 256 * 256 * 4);
  t.true((onWasm.wasmHeapBytes ?? 0) >= 256 * 256 * 4);
  x.dispose();
  await initBackend('cpu', { quiet: true });
  t.is(backendMemory().wasmHeapBytes, undefined);
});

test('the tensorflow loader takes the first package that loads and tells absent from broken', async (t) => {
  const missing = (name: string): Error => Object.assign(new Error(`Cannot find package '${name}' imported from somewhere`), { code: 'ERR_MODULE_NOT_FOUND' });
  const tried: string[] = [];
  const onlyCpu: Importer = async (name) => {
    tried.push(name);
    if (name === '@tensorflow/tfjs-node-gpu') throw missing(name);
    return {};
  };
  t.deepEqual(await loadTensorflowPackage(onlyCpu), { ok: true, packageName: '@tensorflow/tfjs-node' });
  t.deepEqual(tried, ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']);

  const none: Importer = async (name) => {
    throw missing(name);
  };
  const absent = await loadTensorflowPackage(none);
  t.deepEqual(absent, { ok: false, broken: [] });

  const brokenGpu: Importer = async (name) => {
    if (name === '@tensorflow/tfjs-node-gpu') throw new Error('libtensorflow.so.2: cannot open shared object file');
    throw missing(name);
  };
  const broken = await loadTensorflowPackage(brokenGpu);
  t.false(broken.ok);
  if (!broken.ok) {
    t.is(broken.broken.length, 1);
    t.regex(tensorflowUnavailableMessage(broken), /@tensorflow\/tfjs-node-gpu is installed but failed to load: libtensorflow\.so\.2/);
  }
  // A missing dependency of an installed package is a broken install, not an absent package.
  const missingDep: Importer = async (name) => {
    if (name === '@tensorflow/tfjs-node') throw missing('@tensorflow/tfjs');
    throw missing(name);
  };
  const dep = await loadTensorflowPackage(missingDep);
  t.false(dep.ok);
  if (!dep.ok) t.is(dep.broken.length, 1);
});

(hasTensorflow ? test.skip : test)('the real import of the absent packages is classified as absent', async (t) => {
  t.deepEqual(await loadTensorflowPackage(), { ok: false, broken: [] });
});

// ---- UnsortedSegmentSum ----

test('segmentSumInto adds rows into their segments and drops out-of-range ids', (t) => {
  const out = new Float32Array(6);
  segmentSumInto(out, Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), Int32Array.from([2, 0, 2, 3, -1]), 3, 2);
  t.deepEqual([...out], [3, 4, 0, 0, 1 + 5, 2 + 6]);
});

for (const backend of ['wasm', 'cpu'] as const) {
  test.serial(`${backend}: UnsortedSegmentSum matches a hand-computed case`, async (t) => {
    await initBackend(backend, { quiet: true });
    const x = tf.tensor2d([
      [1, 2],
      [3, 4],
      [5, 6],
      [7, 8],
      [9, 10],
    ]);
    const ids = tf.tensor1d([2, 0, 2, 3, -1], 'int32'); // 3 and -1 are out of range for 3 segments
    const sum = tf.unsortedSegmentSum(x, ids, 3);
    t.deepEqual(sum.arraySync(), [
      [3, 4],
      [0, 0],
      [6, 8],
    ]);

    // Rows that are matrices, int32 values.
    const xi = tf.tensor3d(
      [
        [
          [1, 1],
          [2, 2],
        ],
        [
          [3, 3],
          [4, 4],
        ],
        [
          [50, 50],
          [60, 60],
        ],
      ],
      [3, 2, 2],
      'int32',
    );
    const idsi = tf.tensor1d([1, 1, 7], 'int32');
    const sumi = tf.unsortedSegmentSum(xi, idsi, 2);
    t.is(sumi.dtype, 'int32');
    t.deepEqual(sumi.arraySync(), [
      [
        [0, 0],
        [0, 0],
      ],
      [
        [4, 4],
        [6, 6],
      ],
    ]);

    // The gradient of gather is exactly this kernel: repeated rows accumulate.
    const table = tf.ones([4, 3]);
    const g = tf.grad((tb: tf.Tensor) => tf.sum(tf.gather(tb, tf.tensor1d([1, 1, 3], 'int32'))))(table);
    t.deepEqual(g.arraySync(), [
      [0, 0, 0],
      [2, 2, 2],
      [0, 0, 0],
      [1, 1, 1],
    ]);
    tf.dispose([x, ids, sum, xi, idsi, sumi, table, g]);
  });
}

// ---- BatchMatMul override ----

test('broadcastSourceIndex follows numpy broadcasting of batch dims', (t) => {
  t.deepEqual(
    [0, 1, 2, 3, 4, 5].map((i) => broadcastSourceIndex([2, 3], [2, 1], i)),
    [0, 0, 0, 1, 1, 1],
  );
  t.deepEqual(
    [0, 1, 2, 3, 4, 5].map((i) => broadcastSourceIndex([2, 3], [1, 3], i)),
    [0, 1, 2, 0, 1, 2],
  );
  t.deepEqual(
    [0, 1, 2, 3, 4, 5].map((i) => broadcastSourceIndex([2, 3], [3], i)),
    [0, 1, 2, 0, 1, 2],
  );
  t.deepEqual(
    [0, 1, 2, 3, 4, 5].map((i) => broadcastSourceIndex([2, 3], [2, 3], i)),
    [0, 1, 2, 3, 4, 5],
  );
  t.deepEqual(
    [0, 1, 2].map((i) => broadcastSourceIndex([3], [], i)),
    [0, 0, 0],
  );
});

/** Logical product [..., m, k] x [..., k, n]; each case is run with all four transpose flags. */
const products: Array<{ a: number[]; b: number[]; m: number; k: number; n: number }> = [
  { a: [], b: [], m: 3, k: 4, n: 5 },
  { a: [3], b: [3], m: 4, k: 5, n: 6 },
  { a: [1], b: [3], m: 4, k: 5, n: 6 },
  { a: [3], b: [1], m: 4, k: 5, n: 6 },
  { a: [], b: [3], m: 4, k: 5, n: 6 },
  { a: [2, 3], b: [2, 3], m: 2, k: 3, n: 4 },
  { a: [2, 3], b: [], m: 2, k: 3, n: 4 },
  { a: [4], b: [4], m: 33, k: 40, n: 17 },
];

const stored = (batch: number[], rows: number, cols: number, transposed: boolean): number[] => (transposed ? [...batch, cols, rows] : [...batch, rows, cols]);

async function productOn(backend: 'wasm' | 'cpu', a: tf.Tensor, b: tf.Tensor, tA: boolean, tB: boolean): Promise<{ shape: number[]; values: Float32Array }> {
  await initBackend(backend, { quiet: true });
  const c = tf.matMul(a, b, tA, tB);
  const out = { shape: c.shape, values: Float32Array.from(c.dataSync() as Float32Array) };
  c.dispose();
  return out;
}

const maxAbsDiff = (x: Float32Array, y: Float32Array): number => x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i]!)), 0);

test.serial('wasm BatchMatMul override equals cpu for batched, broadcast and transposed products', async (t) => {
  let seed = 100;
  for (const p of products) {
    for (const [tA, tB] of [
      [false, false],
      [false, true],
      [true, false],
      [true, true],
    ] as const) {
      const a = randn(stored(p.a, p.m, p.k, tA), seed++);
      const b = randn(stored(p.b, p.k, p.n, tB), seed++);
      const wasm = await productOn('wasm', a, b, tA, tB);
      const cpu = await productOn('cpu', a, b, tA, tB);
      const label = `[${a.shape}] x [${b.shape}] tA=${tA} tB=${tB}`;
      t.deepEqual(wasm.shape, cpu.shape, label);
      t.true(maxAbsDiff(wasm.values, cpu.values) <= 1e-4, `${label}: max diff ${maxAbsDiff(wasm.values, cpu.values)}`);
      tf.dispose([a, b]);
    }
  }
});

test.serial('wasm BatchMatMul override broadcasts batch dims that are 1 on different sides', async (t) => {
  // [2,1] x [1,3] batches: the stock kernels index batches modulo their size, which is only right
  // when one side has a single batch; the override broadcasts per dimension, as numpy does.
  const a = randn([2, 1, 3, 4], 7);
  const b = randn([1, 3, 4, 5], 8);
  await initBackend('cpu', { quiet: true });
  const reference = tf.tidy(() => tf.matMul(tf.tile(a, [1, 3, 1, 1]), tf.tile(b, [2, 1, 1, 1])));
  const expected = Float32Array.from(reference.dataSync() as Float32Array);
  reference.dispose();
  const got = await productOn('wasm', a, b, false, false);
  t.deepEqual(got.shape, [2, 3, 3, 5]);
  t.true(maxAbsDiff(got.values, expected) <= 1e-4);
  tf.dispose([a, b]);
});

test.serial('wasm BatchMatMul override frees its temporaries', async (t) => {
  await initBackend('wasm', { quiet: true });
  const a = randn([3, 6, 6], 9);
  const b = randn([3, 6, 6], 10);
  const single = randn([1, 6, 6], 11);
  const dataIds = (): number => tf.backend().numDataIds();
  const before = dataIds();
  for (const [tA, tB] of [
    [false, true],
    [true, false],
    [true, true],
  ] as const)
    tf.matMul(a, b, tA, tB).dispose();
  tf.matMul(single, b).dispose();
  tf.matMul(single, b, true, true).dispose();
  t.is(dataIds(), before);
  tf.dispose([a, b, single]);
});
