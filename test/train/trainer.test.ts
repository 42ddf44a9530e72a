import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BEST_CKPT, STATE_FILE } from '../../src/train/checkpoint.js';
import { deriveSeed, epochOrder, train } from '../../src/train/trainer.js';
import { metricsWithF1, readLog, setupBackend, tempRecord, toyData, trainConfig } from './helpers.js';
import { sameBits, ToyModel } from './toy-model.js';

test.before(async () => {
  await setupBackend();
});

const data = toyData();

test('epoch order is a seeded permutation that changes with the epoch', (t) => {
  const items = Array.from({ length: 20 }, (_, i) => i);
  const e0 = epochOrder(items, 5, 0);
  t.deepEqual(
    [...e0].sort((a, b) => a - b),
    items,
  );
  t.deepEqual(epochOrder(items, 5, 0), e0);
  t.notDeepEqual(epochOrder(items, 5, 1), e0);
  t.notDeepEqual(epochOrder(items, 6, 0), e0);
  t.not(deriveSeed(1, 2, 3), deriveSeed(1, 3, 2));
  t.not(deriveSeed(1, 2, 2 ** 32), deriveSeed(1, 2, 0));
});

test('the loss goes down and the run is logged per epoch', async (t) => {
  const config = trainConfig({ epochs: 4, lr: 0.1 });
  const record = tempRecord(config);
  const model = new ToyModel({ dropout: 0 });
  const outcome = await train({ model, config, data, record, quiet: true });
  t.is(outcome.status, 'ok');
  t.is(outcome.stoppedBy, 'epochs');
  const losses = outcome.history.map((h) => h.loss!);
  t.true(losses[3]! < losses[0]!, `losses ${losses}`);
  const epochs = readLog(record).filter((e) => e.event === 'epoch');
  t.deepEqual(
    epochs.map((e) => [e.epoch, e.step]),
    [
      [1, 4],
      [2, 8],
      [3, 12],
      [4, 16],
    ],
  );
  t.true(epochs.every((e) => typeof e.validationF1 === 'number' && typeof e.loss === 'number'));
  t.true(outcome.msPerStep !== null && outcome.msPerStep > 0);
  t.true(outcome.peakBytesTrainStep !== null && outcome.peakBytesTrainStep > 0);
  t.true(readLog(record).some((e) => e.event === 'probe' && e.step === 2));
  model.dispose();
});

test('best checkpoint and early stopping follow a scripted validation-F1 sequence', async (t) => {
  const config = trainConfig({ epochs: 10, patience: 2 });
  const record = tempRecord(config);
  const model = new ToyModel();
  const script = [0.2, 0.5, 0.4, 0.5, 0.9, 0.9];
  const seen: Map<string, Float32Array>[] = [];
  const outcome = await train({
    model,
    config,
    data,
    record,
    quiet: true,
    evaluate: (m) => {
      seen.push((m as ToyModel).snapshot());
      return metricsWithF1(script[seen.length - 1]!);
    },
  });
  // Epoch 2 (0.5) is best; 3 (0.4) and 4 (0.5, a tie is no gain) use up the patience of 2.
  t.is(outcome.stoppedBy, 'patience');
  t.is(outcome.epochs, 4);
  t.is(outcome.bestEpoch, 2);
  t.is(outcome.bestValidationF1, 0.5);
  t.deepEqual(
    outcome.history.map((h) => h.best),
    [true, true, false, false],
  );
  t.true(sameBits(model.snapshot(), seen[1]!), 'the model holds the best epoch after training');
  t.false(sameBits(seen[3]!, seen[1]!));
  t.true(existsSync(join(record.dir, BEST_CKPT)));
  const state = JSON.parse(readFileSync(join(record.dir, STATE_FILE), 'utf8')) as { badEpochs: number; finished: { stoppedBy: string } };
  t.is(state.badEpochs, 2);
  t.is(state.finished.stoppedBy, 'patience');
  model.dispose();
});

test('maxSteps ends mid-epoch with a final validation of the partial epoch', async (t) => {
  const config = trainConfig({ epochs: 5, maxSteps: 6 });
  const record = tempRecord(config);
  const model = new ToyModel();
  const outcome = await train({ model, config, data, record, quiet: true });
  t.is(outcome.stoppedBy, 'maxSteps');
  t.is(outcome.steps, 6);
  t.is(outcome.totalSteps, 6);
  t.deepEqual(
    outcome.history.map((h) => [h.epoch, h.step, h.partial]),
    [
      [1, 4, false],
      [2, 6, true],
    ],
  );
  model.dispose();
});

test('a NaN loss at step 3 ends the run as diverged, weights as after step 2', async (t) => {
  const config = trainConfig();
  const record = tempRecord(config);
  const model = new ToyModel({ nanAtCall: 3 });
  let afterStep2: Map<string, Float32Array> | undefined;
  const outcome = await train({
    model,
    config,
    data,
    record,
    quiet: true,
    onProgress: (p) => {
      if (p.step === 2) afterStep2 = model.snapshot();
    },
  });
  t.is(outcome.status, 'diverged');
  t.is(outcome.steps, 2);
  t.regex(outcome.reason!, /non-finite loss NaN at step 3/);
  t.true(sameBits(model.snapshot(), afterStep2!));
  const diverged = readLog(record).filter((e) => e.event === 'diverged');
  t.is(diverged.length, 1);
  t.is(diverged[0]!.step, 3);
  t.is(readLog(record).find((e) => e.event === 'train-end')!.status, 'diverged');
  // Resuming a diverged run does not train again.
  const again = new ToyModel({ nanAtCall: 3 });
  const second = await train({ model: again, config, data, record, quiet: true, resume: true });
  t.is(second.status, 'diverged');
  t.is(again.lossCalls, 0);
  model.dispose();
  again.dispose();
});

test('a NaN gradient with a finite loss also counts as divergence; the best epoch so far is kept', async (t) => {
  const config = trainConfig();
  const record = tempRecord(config);
  const model = new ToyModel({ badGradAtCall: 6 });
  let afterEpoch1: Map<string, Float32Array> | undefined;
  const outcome = await train({
    model,
    config,
    data,
    record,
    quiet: true,
    evaluate: (m) => {
      afterEpoch1 ??= (m as ToyModel).snapshot();
      return metricsWithF1(0.3);
    },
  });
  t.is(outcome.status, 'diverged');
  t.is(outcome.steps, 5);
  t.regex(outcome.reason!, /gradient norm NaN at step 6/);
  t.is(outcome.bestEpoch, 1);
  t.true(sameBits(model.snapshot(), afterEpoch1!));
  model.dispose();
});

test.serial('no tensor is left behind by training steps or by a whole run', async (t) => {
  const config = trainConfig({ epochs: 2 });
  const record = tempRecord(config);
  const model = new ToyModel();
  const before = tf.memory().numTensors;
  const counts: number[] = [];
  await train({ model, config, data, record, quiet: true, onProgress: () => counts.push(tf.memory().numTensors) });
  t.is(counts.length, 8);
  t.true(
    counts.every((c) => c === counts[0]),
    `tensor counts per step: ${counts}`,
  );
  t.is(tf.memory().numTensors, before);
  model.dispose();
});

test('no validation set: every epoch is kept as the latest best, no early stop', async (t) => {
  const config = trainConfig({ epochs: 2, patience: 1 });
  const record = tempRecord(config);
  const model = new ToyModel();
  const outcome = await train({ model, config, data: { ...data, validation: [], validationSegments: [] }, record, quiet: true });
  t.is(outcome.stoppedBy, 'epochs');
  t.is(outcome.bestEpoch, 2);
  t.deepEqual(
    outcome.history.map((h) => h.validationF1),
    [null, null],
  );
  model.dispose();
});
