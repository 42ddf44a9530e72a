import test from 'ava';
import { LongnerError } from '../../src/errors.js';
import { LENGTH_BUCKETS, lengthBucket, scoreEntities } from '../../src/eval/metrics.js';
import type { Document, Entity } from '../../src/data/types.js';

const e = (start: number, end: number, type: string): Entity => ({ start, end, type });

// Gold, with a duplicate and a PER nested inside a LOC:
//   d1: PER[0,1) ORG[2,4) ORG[2,4)(dup) LOC[5,20)(15 words) PER[6,8)
//   d2: LOC[0,60)(60 words) ORG[10,11)
// Distinct gold tuples: 6.
const gold: Document[] = [
  { id: 'd1', words: Array.from({ length: 30 }, () => 'w'), entities: [e(0, 1, 'PER'), e(2, 4, 'ORG'), e(2, 4, 'ORG'), e(5, 20, 'LOC'), e(6, 8, 'PER')] },
  { id: 'd2', words: Array.from({ length: 70 }, () => 'w'), entities: [e(0, 60, 'LOC'), e(10, 11, 'ORG')] },
];
// Predictions, with a duplicate and a right-span wrong-type PER[2,4):
//   d1: PER[0,1) TP, PER[0,1) dup, PER[2,4) FP (gold ORG[2,4) becomes a FN), LOC[5,20) TP, PER[6,8) TP, ORG[9,10) FP
//   d2: LOC[0,60) TP; ORG[10,11) missed -> FN
// Distinct predicted tuples: 6. TP 4, FP 2, FN 2.
const pred = new Map<string, Entity[]>([
  ['d1', [e(0, 1, 'PER'), e(0, 1, 'PER'), e(2, 4, 'PER'), e(5, 20, 'LOC'), e(6, 8, 'PER'), e(9, 10, 'ORG')]],
  ['d2', [e(0, 60, 'LOC')]],
]);

test('overall strict micro P/R/F1 with duplicates, a wrong type and nesting', (t) => {
  const m = scoreEntities(gold, pred);
  // P = 4/6, R = 4/6, F1 = 2*4/(2*4+2+2) = 8/12.
  t.deepEqual(m.overall, { tp: 4, fp: 2, fn: 2, precision: 4 / 6, recall: 4 / 6, f1: 8 / 12 });
});

test('per-type numbers', (t) => {
  const m = scoreEntities(gold, pred);
  t.deepEqual(Object.keys(m.perType), ['LOC', 'ORG', 'PER']);
  // LOC: pred {d1[5,20), d2[0,60)} = gold -> tp 2, fp 0, fn 0 -> 1/1/1.
  t.deepEqual(m.perType.LOC, { tp: 2, fp: 0, fn: 0, precision: 1, recall: 1, f1: 1 });
  // ORG: pred {d1[9,10)}, gold {d1[2,4), d2[10,11)} -> tp 0, fp 1, fn 2 -> 0/0/0.
  t.deepEqual(m.perType.ORG, { tp: 0, fp: 1, fn: 2, precision: 0, recall: 0, f1: 0 });
  // PER: pred {[0,1), [2,4), [6,8)}, gold {[0,1), [6,8)} -> tp 2, fp 1, fn 0 -> P 2/3, R 1, F1 4/5.
  t.deepEqual(m.perType.PER, { tp: 2, fp: 1, fn: 0, precision: 2 / 3, recall: 1, f1: 4 / 5 });
});

test('per-length-bucket numbers', (t) => {
  const m = scoreEntities(gold, pred);
  t.deepEqual(Object.keys(m.perLength), [...LENGTH_BUCKETS]);
  // '1': pred PER[0,1) tp, ORG[9,10) fp; gold ORG d2[10,11) fn -> 1/1/1 -> 0.5 each.
  t.deepEqual(m.perLength['1'], { tp: 1, fp: 1, fn: 1, precision: 0.5, recall: 0.5, f1: 0.5 });
  // '2-3': pred PER[6,8) tp, PER[2,4) fp; gold ORG[2,4) fn -> 0.5 each.
  t.deepEqual(m.perLength['2-3'], { tp: 1, fp: 1, fn: 1, precision: 0.5, recall: 0.5, f1: 0.5 });
  // '4-10': nothing of that length on either side -> zeros with zero counts.
  t.deepEqual(m.perLength['4-10'], { tp: 0, fp: 0, fn: 0, precision: 0, recall: 0, f1: 0 });
  // '11-50': LOC[5,20) (15 words) tp. '>50': LOC d2[0,60) (60 words) tp.
  t.deepEqual(m.perLength['11-50'], { tp: 1, fp: 0, fn: 0, precision: 1, recall: 1, f1: 1 });
  t.deepEqual(m.perLength['>50'], { tp: 1, fp: 0, fn: 0, precision: 1, recall: 1, f1: 1 });
});

test('gold as a Map scores like gold as documents', (t) => {
  const asMap = new Map(gold.map((d) => [d.id, d.entities]));
  t.deepEqual(scoreEntities(asMap, pred), scoreEntities(gold, pred));
});

test('documents without predictions count their gold as missed', (t) => {
  const m = scoreEntities(gold, new Map([['d2', [e(0, 60, 'LOC')]]]));
  // Gold 6 distinct, pred 1 correct: P 1/1, R 1/6, F1 2/(2+0+5) = 2/7.
  t.deepEqual(m.overall, { tp: 1, fp: 0, fn: 5, precision: 1, recall: 1 / 6, f1: 2 / 7 });
});

test('no predictions and no gold give zeros, not NaN', (t) => {
  const m = scoreEntities([{ id: 'x', words: ['a'], entities: [] }], new Map());
  t.deepEqual(m.overall, { tp: 0, fp: 0, fn: 0, precision: 0, recall: 0, f1: 0 });
  t.deepEqual(m.perType, {});
});

test('predictions for an unknown document are a user error naming it', (t) => {
  t.throws(() => scoreEntities(gold, new Map([['nope', [e(0, 1, 'PER')]]])), { instanceOf: LongnerError, message: /"nope"/ });
});

test('invalid spans and repeated gold documents are user errors', (t) => {
  t.throws(() => scoreEntities(gold, new Map([['d1', [e(3, 3, 'PER')]]])), { instanceOf: LongnerError, message: /d1/ });
  t.throws(() => scoreEntities([gold[0]!, gold[0]!], new Map()), { instanceOf: LongnerError, message: /d1/ });
});

test('length buckets have the documented edges', (t) => {
  t.deepEqual([1, 2, 3, 4, 10, 11, 50, 51, 500].map(lengthBucket), ['1', '2-3', '2-3', '4-10', '4-10', '11-50', '11-50', '>50', '>50']);
  t.throws(() => lengthBucket(0), { instanceOf: RangeError });
});
