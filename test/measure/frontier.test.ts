import test from 'ava';
import { evaluateFit, fitPeak, searchFrontier, solveBudget, type SearchStatus } from '../../src/measure/frontier.js';

/** A fake probe: lengths up to `threshold` train, longer ones run out of memory; counts its calls. */
function thresholdProbe(threshold: number, failAt?: number) {
  const calls: number[] = [];
  const probe = async (length: number): Promise<SearchStatus> => {
    calls.push(length);
    if (failAt !== undefined && length === failAt) return 'failed';
    return length <= threshold ? 'ok' : 'oom';
  };
  return { probe, calls };
}

test('doubling then bisection brackets a known threshold within 5% with few probes', async (t) => {
  for (const threshold of [300, 1000, 3000, 5123, 7777, 20_000]) {
    const { probe, calls } = thresholdProbe(threshold);
    const r = await searchFrontier(probe, { start: 256, tolerance: 0.05, maxLength: 1 << 20 });
    t.is(r.end, 'converged', `threshold ${threshold}`);
    t.true(r.maxOk! <= threshold && threshold < r.firstOom!, `bracket [${r.maxOk}, ${r.firstOom}) holds ${threshold}`);
    t.true((r.firstOom! - r.maxOk!) / r.maxOk! <= 0.05);
    t.true(threshold / r.maxOk! <= 1.05, `maxOk ${r.maxOk} within 5% of ${threshold}`);
    // log2(threshold / 256) doublings + about log2(1 / 0.05) bisections.
    t.true(calls.length <= Math.ceil(Math.log2(threshold / 256)) + 1 + 6, `${calls.length} probes for ${threshold}`);
    t.is(new Set(calls).size, calls.length, 'no length probed twice');
  }
});

test('a start length that already runs out is halved until one trains', async (t) => {
  const { probe, calls } = thresholdProbe(100);
  const r = await searchFrontier(probe, { start: 1024, tolerance: 0.05, maxLength: 1 << 16 });
  t.is(r.end, 'converged');
  t.true(r.maxOk! <= 100 && 100 < r.firstOom!);
  t.deepEqual(calls.slice(0, 5), [1024, 512, 256, 128, 64]);
});

test('the search stops at maxLength without an OOM, and at minLength when nothing fits', async (t) => {
  const big = await searchFrontier(thresholdProbe(1e9).probe, { start: 512, tolerance: 0.05, maxLength: 5000 });
  t.is(big.end, 'maxLength');
  t.is(big.maxOk, 5000);
  t.is(big.firstOom, null);
  const none = await searchFrontier(thresholdProbe(3).probe, { start: 64, tolerance: 0.05, maxLength: 1000, minLength: 16 });
  t.is(none.end, 'minLength');
  t.is(none.maxOk, null);
  t.is(none.firstOom, 16);
});

test('a failed probe ends the search with what was known before it', async (t) => {
  const r = await searchFrontier(thresholdProbe(10_000, 2048).probe, { start: 512, tolerance: 0.05, maxLength: 1 << 16 });
  t.is(r.end, 'failed');
  t.is(r.maxOk, 1024);
  t.is(r.firstOom, null);
  t.deepEqual(r.steps[r.steps.length - 1], { length: 2048, status: 'failed' });
});

test('the quadratic fit recovers known coefficients', (t) => {
  const truth = { a: 3e7, b: 2.5e4, c: 40 };
  const points = [256, 512, 1024, 2048, 4096].map((L) => [L, evaluateFit(truth, L)] as [number, number]);
  const fit = fitPeak(points)!;
  t.is(fit.degree, 2);
  t.true(Math.abs(fit.a - truth.a) / truth.a < 1e-6, `a ${fit.a}`);
  t.true(Math.abs(fit.b - truth.b) / truth.b < 1e-6, `b ${fit.b}`);
  t.true(Math.abs(fit.c - truth.c) / truth.c < 1e-6, `c ${fit.c}`);
  t.true(fit.rmse < 1);
  t.is(fit.minLength, 256);
  t.is(fit.maxLength, 4096);
});

test('the fit is least squares: noise averages out', (t) => {
  const truth = { a: 1e8, b: 1e5, c: 10 };
  const noise = [1, -1, 1, -1, 1, -1];
  const points = [100, 200, 400, 800, 1600, 3200].map((L, i) => [L, evaluateFit(truth, L) + noise[i]! * 1e6] as [number, number]);
  const fit = fitPeak(points)!;
  t.true(Math.abs(fit.c - truth.c) / truth.c < 0.05, `c ${fit.c}`);
  t.true(fit.rmse < 1e6);
});

test('the solver returns the right root', (t) => {
  const fit = { a: 1e8, b: 1e5, c: 50 };
  const budget = 80e9;
  const L = solveBudget(fit, budget)!;
  const exact = (-fit.b + Math.sqrt(fit.b * fit.b - 4 * fit.c * (fit.a - budget))) / (2 * fit.c);
  t.true(Math.abs(L - exact) / exact < 1e-12, `${L} vs ${exact}`);
  t.true(Math.abs(evaluateFit(fit, L) - budget) / budget < 1e-9);
  t.true(evaluateFit(fit, L * 1.01) > budget);
  // A budget below the fixed cost fits nothing; a fit that never grows fits everything.
  t.is(solveBudget(fit, 5e7), null);
  t.is(solveBudget({ a: 1e8, b: 0, c: 0 }, 1e9), Number.POSITIVE_INFINITY);
});

test('a method whose memory is linear (c ~ 0) still gets a fit and a budget', (t) => {
  const truth = { a: 2e8, b: 3e6, c: 0 };
  const points = [256, 512, 1024, 2048].map((L) => [L, evaluateFit(truth, L)] as [number, number]);
  const fit = fitPeak(points)!;
  t.true(fit.c >= 0);
  t.true(Math.abs(fit.b - truth.b) / truth.b < 1e-6);
  const L = solveBudget(fit, 80e9)!;
  const exact = (80e9 - truth.a) / truth.b;
  t.true(Math.abs(L - exact) / exact < 1e-6, `${L} vs ${exact}`);
});

test('a method whose quadratic term comes out negative falls back to the line through its longer lengths', (t) => {
  // Concave data (memory grows as L^2 while a band is as wide as the input, then linearly): the best
  // quadratic has c < 0, which would make the memory eventually shrink.
  const points: [number, number][] = [
    [64, 0.5e9],
    [128, 2.0e9],
    [256, 4.0e9],
    [512, 8.0e9],
  ];
  const fit = fitPeak(points)!;
  t.is(fit.degree, 1);
  t.is(fit.c, 0);
  // The line through (256, 4e9) and (512, 8e9): the slope that holds at the long end.
  t.true(Math.abs(fit.b - 4e9 / 256) / (4e9 / 256) < 1e-9, `b ${fit.b}`);
  t.true(Math.abs(fit.a) < 1, `a ${fit.a}`);
  t.true(Math.abs(solveBudget(fit, 80e9)! - 5120) < 1e-6);
});

test('two lengths give a line; fewer give no fit', (t) => {
  const line = fitPeak([
    [100, 1000],
    [200, 1500],
  ])!;
  t.is(line.degree, 1);
  t.true(Math.abs(line.b - 5) < 1e-9);
  t.true(Math.abs(line.a - 500) < 1e-6);
  t.is(fitPeak([[100, 1000]]), null);
  t.is(
    fitPeak([
      [100, 1000],
      [100, 1100],
    ]),
    null,
  );
});
