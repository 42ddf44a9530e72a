import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.js';
import { checkGradients } from '../../src/backend/gradcheck.js';
import { REFERENCE_BCE, sparseBce, type BceOptions } from '../../src/nn/bce.js';
import { backendsUnderTest, randn } from '../backend/helpers.js';

/** The loss written cell by cell from its definition (nn/bce.ts), in double precision. */
function denseBce(z: Float32Array, positives: Int32Array, trained: Float32Array | null, opts: BceOptions): number {
  const pos = new Set(positives);
  let total = 0;
  let cells = 0;
  for (let i = 0; i < z.length; i++) {
    const w = trained === null ? 1 : trained[Math.floor(i / 3)]!;
    if (w === 0) continue;
    cells++;
    const p = 1 / (1 + Math.exp(-z[i]!));
    total += pos.has(i) ? opts.posWeight * (1 - p) ** opts.focalGamma * -Math.log(p) : p ** opts.focalGamma * -Math.log(1 - p);
  }
  return opts.reduction === 'mean' ? total / cells : total;
}

const SWITCHES: BceOptions[] = [
  REFERENCE_BCE,
  { reduction: 'mean', posWeight: 1, focalGamma: 0 },
  { reduction: 'sum', posWeight: 5, focalGamma: 0 },
  { reduction: 'sum', posWeight: 1, focalGamma: 2 },
  { reduction: 'mean', posWeight: 3, focalGamma: 1.5 },
];

// Logits [8, 3]: rows 5..7 untrained; positives only on trained rows.
const positives = Int32Array.from([1, 6, 8, 14]);
const trainedRows = Float32Array.from([1, 1, 1, 1, 1, 0, 0, 0]);

for (const backend of backendsUnderTest()) {
  test.serial(`${backend}: sparseBce equals the cell-by-cell definition under every switch`, async (t) => {
    await initBackend(backend, { quiet: true });
    const z = randn([8, 3], 11, 2);
    const zv = z.dataSync() as Float32Array;
    for (const opts of SWITCHES) {
      for (const masked of [false, true]) {
        const trained = masked ? tf.tensor2d(trainedRows, [8, 1]) : null;
        const cells = masked ? 15 : 24;
        const got = sparseBce(z, positives, trained, cells, opts).dataSync()[0]!;
        const want = denseBce(zv, positives, masked ? trainedRows : null, opts);
        t.true(Math.abs(got - want) <= 1e-5 * Math.max(1, Math.abs(want)), `${JSON.stringify(opts)} masked=${masked}: ${got} vs ${want}`);
        trained?.dispose();
      }
    }
    z.dispose();
  });

  test.serial(`${backend}: sparseBce passes a finite-difference gradient check under every switch`, async (t) => {
    await initBackend(backend, { quiet: true });
    const z = randn([8, 3], 12, 1.5);
    const trained = tf.tensor2d(trainedRows, [8, 1]);
    for (const opts of SWITCHES) {
      const r = checkGradients((x) => sparseBce(x, positives, trained, 15, opts), [z]);
      t.true(r.ok, `${JSON.stringify(opts)}: max relative error ${r.maxRelError}`);
    }
    tf.dispose([z, trained]);
  });
}

test('the switches change the loss, each in its direction', (t) => {
  const z = tf.tensor2d([[-1, 0.5, 2, -3, 0, 1]]);
  const pos = Int32Array.from([0]);
  const at = (o: Partial<BceOptions>) => sparseBce(z, pos, null, 6, { ...REFERENCE_BCE, ...o }).dataSync()[0]!;
  const ref = at({});
  t.true(Math.abs(at({ reduction: 'mean' }) - ref / 6) < 1e-6);
  t.true(at({ posWeight: 10 }) > ref, 'a heavier positive term');
  t.true(at({ focalGamma: 2 }) < ref, 'focal scaling only shrinks terms');
  z.dispose();
});
