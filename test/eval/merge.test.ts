import test from 'ava';
import { mergeSegmentPredictions } from '../../src/eval/merge.js';
import type { ScoredEntity } from '../../src/data/types.js';

const span = (start: number, end: number, type: string, score: number): ScoredEntity => ({ start, end, type, score });

test('shifts each segment by its word offset', (t) => {
  const out = mergeSegmentPredictions([
    { wordOffset: 0, spans: [span(1, 3, 'A', 0.9)] },
    { wordOffset: 10, spans: [span(0, 2, 'A', 0.8)] },
  ]);
  t.deepEqual(out, [span(1, 3, 'A', 0.9), span(10, 12, 'A', 0.8)]);
});

test('unites a span with an overlapping same-type span of an earlier segment (union, max score)', (t) => {
  // Segment 1 starts at word 9; its [0,3) is document [9,12), which shares word 9 with [8,10).
  const out = mergeSegmentPredictions([
    { wordOffset: 0, spans: [span(8, 10, 'A', 0.7)] },
    { wordOffset: 9, spans: [span(0, 3, 'A', 0.6)] },
  ]);
  t.deepEqual(out, [span(8, 12, 'A', 0.7)]);
});

test('different types never merge', (t) => {
  const out = mergeSegmentPredictions([
    { wordOffset: 0, spans: [span(8, 10, 'A', 0.7)] },
    { wordOffset: 9, spans: [span(0, 3, 'B', 0.6)] },
  ]);
  t.deepEqual(out, [span(8, 10, 'A', 0.7), span(9, 12, 'B', 0.6)]);
});

test('adjacent spans (end exclusive) do not overlap', (t) => {
  const out = mergeSegmentPredictions([
    { wordOffset: 0, spans: [span(8, 10, 'A', 0.7)] },
    { wordOffset: 10, spans: [span(0, 2, 'A', 0.6)] },
  ]);
  t.deepEqual(out, [span(8, 10, 'A', 0.7), span(10, 12, 'A', 0.6)]);
});

test('same-type nested spans within one segment stay apart', (t) => {
  const out = mergeSegmentPredictions([{ wordOffset: 5, spans: [span(0, 6, 'A', 0.9), span(1, 3, 'A', 0.8)] }]);
  t.deepEqual(out, [span(5, 11, 'A', 0.9), span(6, 8, 'A', 0.8)]);
});

test('exact duplicates collapse to the highest score', (t) => {
  // Overlapping segments predict document span [4,6) twice; one segment also repeats a span.
  const out = mergeSegmentPredictions([
    { wordOffset: 0, spans: [span(4, 6, 'A', 0.6), span(0, 1, 'B', 0.5), span(0, 1, 'B', 0.55)] },
    { wordOffset: 3, spans: [span(1, 3, 'A', 0.8)] },
  ]);
  t.deepEqual(out, [span(0, 1, 'B', 0.55), span(4, 6, 'A', 0.8)]);
});

test('a span overlapping two earlier spans is united with each of them (the reference rule)', (t) => {
  // Earlier [0,10) and [6,9) nested; the later [8,11) overlaps both:
  // union with [0,10) -> [0,11), union with [6,9) -> [6,11); both earlier spans are replaced.
  const out = mergeSegmentPredictions([
    { wordOffset: 0, spans: [span(0, 10, 'X', 0.5), span(6, 9, 'X', 0.6)] },
    { wordOffset: 8, spans: [span(0, 3, 'X', 0.4)] },
  ]);
  t.deepEqual(out, [span(0, 11, 'X', 0.5), span(6, 11, 'X', 0.6)]);
});

test('a union can grow again in a later segment', (t) => {
  const out = mergeSegmentPredictions([
    { wordOffset: 0, spans: [span(3, 5, 'A', 0.5)] },
    { wordOffset: 4, spans: [span(0, 4, 'A', 0.6)] }, // [4,8) -> [3,8)
    { wordOffset: 7, spans: [span(0, 3, 'A', 0.9)] }, // [7,10) -> [3,10)
  ]);
  t.deepEqual(out, [span(3, 10, 'A', 0.9)]);
});

test('inputs are not modified and empty input gives nothing', (t) => {
  const parts = [{ wordOffset: 4, spans: [span(0, 2, 'A', 0.5)] }];
  mergeSegmentPredictions(parts);
  t.deepEqual(parts[0]!.spans[0], span(0, 2, 'A', 0.5));
  t.deepEqual(mergeSegmentPredictions([]), []);
});
