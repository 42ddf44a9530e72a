import test from 'ava';
import { totalmem } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, setMemoryBudget } from '../../src/backend/index.js';
import { loadNativeAddon } from '../../src/backend/native/addon.js';
import { defaultBudgetBytes, shareMemoryBudget } from '../../src/backend/native/register.js';
import { isOutOfMemory } from '../../src/measure/oom.js';

const native = loadNativeAddon().ok || process.env.CI !== undefined;

(native ? test.serial : test.serial.skip)('the budget also counts resident memory that no tensor holds (uncollected arrays)', async (t) => {
  await initBackend('native', { quiet: true });
  // 400 MiB of plain arrays, touched so they are resident, that no tensor knows about.
  const garbage = Array.from({ length: 4 }, () => new Float32Array(25 * 2 ** 20).fill(1));
  const rss = process.memoryUsage.rss();
  try {
    // Room for a 64 MiB tensor by live-tensor bytes alone, but not on top of the resident set.
    setMemoryBudget(rss + 32 * 2 ** 20);
    const err = t.throws(() => tf.tidy(() => tf.fill([16 * 2 ** 20], 1)));
    t.true(isOutOfMemory(err), err?.message);
    t.regex(err?.message ?? '', /resident/);
    // Small requests do not read the resident set: they fit the live-tensor budget.
    t.notThrows(() => tf.tidy(() => tf.fill([1000], 1)));
  } finally {
    setMemoryBudget(null);
  }
  t.is(garbage.length, 4);
  t.notThrows(() => tf.tidy(() => tf.fill([16 * 2 ** 20], 1)).dispose());
});

test.serial('runs or probes started together share the default budget; a budget the user set is kept', (t) => {
  const saved = process.env.LONGNER_MEMORY_BUDGET;
  try {
    delete process.env.LONGNER_MEMORY_BUDGET;
    shareMemoryBudget(1);
    t.is(process.env.LONGNER_MEMORY_BUDGET, undefined);
    shareMemoryBudget(2);
    t.is(Number(process.env.LONGNER_MEMORY_BUDGET), defaultBudgetBytes(2));
    t.is(defaultBudgetBytes(2), Math.floor((0.75 * totalmem()) / 2));
    process.env.LONGNER_MEMORY_BUDGET = '6GiB';
    shareMemoryBudget(3);
    t.is(process.env.LONGNER_MEMORY_BUDGET, '6GiB');
  } finally {
    if (saved === undefined) delete process.env.LONGNER_MEMORY_BUDGET;
    else process.env.LONGNER_MEMORY_BUDGET = saved;
  }
});
