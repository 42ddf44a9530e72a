import test from 'ava';
import type { ScoredEntity } from '../../src/data/types.js';
import { gridCandidates, resolveSpans } from '../../src/models/decode.js';

const span = (start: number, end: number, type: string, score: number): ScoredEntity => ({ start, end, type, score });
const sorted = (xs: ScoredEntity[]): ScoredEntity[] => [...xs].sort((a, b) => a.start - b.start || a.end - b.end);

test('nested spans are both kept when nesting is allowed', (t) => {
  const out = resolveSpans([span(2, 4, 'B', 0.7), span(0, 6, 'A', 0.9), span(2, 3, 'C', 0.6)], { allowNested: true });
  t.deepEqual(sorted(out), [span(0, 6, 'A', 0.9), span(2, 3, 'C', 0.6), span(2, 4, 'B', 0.7)]);
});

test('a crossing span is removed when a higher-scored span was kept, whatever the input order', (t) => {
  // [0,3) and [2,5) share word 2 and neither contains the other.
  const a = span(0, 3, 'A', 0.6);
  const b = span(2, 5, 'B', 0.8);
  t.deepEqual(resolveSpans([a, b], { allowNested: true }), [b]);
  t.deepEqual(resolveSpans([b, a], { allowNested: true }), [b]);
  // Spans that only touch ([0,3) and [3,5)) do not cross.
  t.is(resolveSpans([a, span(3, 5, 'B', 0.8)], { allowNested: true }).length, 2);
});

test('a crossing span survives when the span it crosses was itself rejected', (t) => {
  // [4,8) crosses [6,10) (kept first), so it goes; [0,5) crosses only the rejected [4,8), so it stays.
  const out = resolveSpans([span(6, 10, 'A', 0.9), span(4, 8, 'A', 0.8), span(0, 5, 'A', 0.7)], { allowNested: true });
  t.deepEqual(sorted(out), [span(0, 5, 'A', 0.7), span(6, 10, 'A', 0.9)]);
});

test('duplicate spans are skipped: one type per span, the best-scored one', (t) => {
  const out = resolveSpans([span(1, 3, 'A', 0.6), span(1, 3, 'B', 0.9), span(1, 3, 'A', 0.95)], { allowNested: true });
  t.deepEqual(out, [span(1, 3, 'A', 0.95)]);
});

test('without nesting any overlap conflicts', (t) => {
  const out = resolveSpans([span(0, 6, 'A', 0.9), span(2, 4, 'B', 0.7), span(7, 8, 'B', 0.5)], { allowNested: false });
  t.deepEqual(sorted(out), [span(0, 6, 'A', 0.9), span(7, 8, 'B', 0.5)]);
});

test('ties in score are broken by position, not by input order; the input is not mutated', (t) => {
  const a = span(0, 3, 'A', 0.5);
  const b = span(2, 5, 'A', 0.5);
  const input = [b, a];
  t.deepEqual(resolveSpans(input, { allowNested: true }), [a]);
  t.deepEqual(resolveSpans([a, b], { allowNested: true }), [a]);
  t.deepEqual(input, [b, a]);
});

test('gridCandidates: upper triangle only, best type, threshold, symmetric averaging', (t) => {
  const L = 3;
  const types = ['A', 'B'];
  const p = new Float32Array(L * L * 2);
  const set = (i: number, j: number, r: number, v: number): void => {
    p[(i * L + j) * 2 + r] = v;
  };
  set(0, 1, 0, 0.9); // span [0,2) A, mirror 0.3 -> 0.6 averaged
  set(1, 0, 0, 0.3);
  set(0, 1, 1, 0.7); // B at 0.7 with mirror 0.7 -> 0.7: B wins after averaging
  set(1, 0, 1, 0.7);
  set(2, 2, 1, 0.49); // below threshold
  set(2, 1, 0, 0.99); // lower triangle alone never makes a candidate without symmetry
  const sym = gridCandidates(p, L, types, { threshold: 0.5, symmetric: true });
  // (1, 2) averaged with (2, 1) is (0 + 0.99) / 2 = 0.495: just under the threshold.
  t.deepEqual(
    sym.map((c) => [c.start, c.end, c.type]),
    [[0, 2, 'B']],
  );
  t.true(Math.abs(sym[0]!.score - 0.7) < 1e-6);
  const upper = gridCandidates(p, L, types, { threshold: 0.5, symmetric: false });
  t.deepEqual(
    upper.map((c) => [c.start, c.end, c.type, Math.round(c.score * 100)]),
    [[0, 2, 'A', 90]],
  );
  t.throws(() => gridCandidates(p, 4, types, { threshold: 0.5, symmetric: true }));
});
