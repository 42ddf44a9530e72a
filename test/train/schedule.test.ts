import test from 'ava';
import { linearSchedule, stepsPerEpoch, totalSteps } from '../../src/train/schedule.js';

test('total steps: ceil(segments / batch) per epoch, times epochs, capped by maxSteps', (t) => {
  t.is(stepsPerEpoch(10, 4), 3);
  t.is(stepsPerEpoch(8, 4), 2);
  t.is(stepsPerEpoch(0, 4), 0);
  t.is(totalSteps(10, 4, 5, null), 15);
  t.is(totalSteps(10, 4, 5, 7), 7);
  t.is(totalSteps(10, 4, 5, 100), 15);
  t.throws(() => stepsPerEpoch(3, 0), { instanceOf: RangeError });
});

test('linear warm-up then linear decay to zero (HF get_linear_schedule_with_warmup)', (t) => {
  const s = linearSchedule(20, 0.1);
  t.is(s.warmupSteps, 2);
  const f = Array.from({ length: 21 }, (_, i) => s.factor(i));
  t.deepEqual(f.slice(0, 4), [0, 0.5, 1, 17 / 18]);
  t.is(f[19], 1 / 18);
  t.is(f[20], 0);
  t.is(Math.max(...f), 1);
  // Non-increasing after the peak.
  t.true(f.slice(2).every((x, i, a) => i === 0 || x <= a[i - 1]!));
  t.is(s.factor(25), 0);
});

test('no warm-up: the first step has the full rate; warm-up below one step rounds down to none', (t) => {
  const s = linearSchedule(4, 0);
  t.deepEqual(
    [0, 1, 2, 3].map((i) => s.factor(i)),
    [1, 0.75, 0.5, 0.25],
  );
  t.is(linearSchedule(5, 0.1).warmupSteps, 0);
  t.is(linearSchedule(5, 0.1).factor(0), 1);
  t.throws(() => linearSchedule(5, 1), { instanceOf: RangeError });
});
