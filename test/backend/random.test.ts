import test from 'ava';
import { loadNativeAddon } from '../../src/backend/native/addon.js';
import { fillDropoutMask } from '../../src/backend/random.js';
import { createRng } from '../../src/util/rng.js';

/** The JS rule that every dropout mask follows (layers.ts dropout before the native fill existed). */
function jsMask(n: number, rate: number, seed: number): { mask: Float32Array; after: number } {
  const rng = createRng(seed);
  const keep = 1 / (1 - rate);
  const mask = new Float32Array(n);
  for (let i = 0; i < n; i++) mask[i] = rng.next() < rate ? 0 : keep;
  return { mask, after: rng.next() };
}

const native = loadNativeAddon().ok || process.env.CI !== undefined;

for (const rate of [0.1, 0.2, 0.4, 0.5]) {
  test(`fillDropoutMask draws the JS generator's numbers bit for bit (rate ${rate})`, (t) => {
    for (const [n, seed] of [
      [1, 3],
      [17, 5],
      [100_003, 2288],
    ] as const) {
      const expected = jsMask(n, rate, seed);
      const rng = createRng(seed);
      const mask = new Float32Array(n);
      fillDropoutMask(mask, rate, rng);
      let differing = 0;
      for (let i = 0; i < n; i++) if (mask[i] !== expected.mask[i]) differing++;
      t.is(differing, 0, `${n} values, seed ${seed}`);
      // The stream continues where the mask left it.
      t.is(rng.next(), expected.after);
    }
  });
}

(native ? test : test.skip)('the native fill is what runs when the engine is built', (t) => {
  const load = loadNativeAddon();
  t.true(load.ok);
  if (!load.ok) return;
  const rng = createRng(9);
  const mask = new Float32Array(1000);
  const state = load.addon.dropoutMask(mask, 0.3, 1 / 0.7, rng.state!.get());
  const expected = jsMask(1000, 0.3, 9);
  t.deepEqual(Array.from(mask), Array.from(expected.mask));
  rng.state!.set(state);
  t.is(rng.next(), expected.after);
  t.throws(() => load.addon.dropoutMask(mask, 1.5, 1, 0), { instanceOf: RangeError, message: /dropoutMask: rate/ });
});

test('a generator without state falls back to drawing in JS', (t) => {
  const inner = createRng(4);
  const plain = { next: () => inner.next(), int: (lo: number, hi: number) => inner.int(lo, hi) };
  const mask = new Float32Array(50);
  fillDropoutMask(mask, 0.25, plain);
  t.deepEqual(Array.from(mask), Array.from(jsMask(50, 0.25, 4).mask));
});
