/**
 * Resume equivalence: a run stopped (as by a kill) and resumed ends with bit-identical parameters
 * and identical metrics to an uninterrupted run with the same seed on the same backend.
 * Serial: peak bytes are the process's live tensor bytes, which a concurrent test would add to.
 */
import test from 'ava';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { evaluateDocuments, groupSegments } from '../../src/eval/evaluate.js';
import { loadCheckpoint, STATE_FILE } from '../../src/train/checkpoint.js';
import { train, type StopPoint, type TrainOutcome } from '../../src/train/trainer.js';
import { readLog, setupBackend, tempRecord, toyData, trainConfig } from './helpers.js';
import { sameBits, ToyModel } from './toy-model.js';

test.before(async () => {
  await setupBackend();
});

const data = toyData();
const config = trainConfig();

async function validationF1(model: ToyModel): Promise<number> {
  return (await evaluateDocuments(model, data.validation, groupSegments(data.validationSegments), 3, { profile: false })).metrics.overall.f1;
}

/**
 * Outcome fields that depend only on the computation (not on timing or on this process). The peak
 * bytes of the profiled step are among them: the toy batches differ in size, so a resumed run that
 * profiled another step than the uninterrupted one would report another peak.
 */
function computed(o: TrainOutcome): unknown {
  return {
    status: o.status,
    steps: o.steps,
    bestEpoch: o.bestEpoch,
    bestValidationF1: o.bestValidationF1,
    bestMetrics: o.bestMetrics,
    history: o.history,
    peakBytesTrainStep: o.peakBytesTrainStep,
  };
}

let reference: { outcome: TrainOutcome; params: Map<string, Float32Array>; f1: number } | undefined;

async function uninterrupted(): Promise<NonNullable<typeof reference>> {
  if (reference) return reference;
  const model = new ToyModel();
  const record = tempRecord(config);
  const outcome = await train({ model, config, data, record, quiet: true });
  reference = { outcome, params: model.snapshot(), f1: await validationF1(model) };
  model.dispose();
  return reference;
}

async function stopThenResume(
  t: { true: (v: boolean, m?: string) => void; is: (a: unknown, b: unknown) => void },
  stopAt: (p: StopPoint) => boolean,
  every?: { steps: number },
) {
  const record = tempRecord(config);
  const first = new ToyModel();
  const stopped = await train({ model: first, config, data, record, quiet: true, shouldStop: stopAt, checkpointEvery: every });
  t.is(stopped.status, 'aborted');
  first.dispose();
  t.true(existsSync(join(record.dir, STATE_FILE)), 'a state was saved before the stop');
  // The training time before the stop is carried into the resumed run's record.
  const savedWall = loadCheckpoint(record.dir)?.wallSeconds;
  t.true(savedWall !== undefined && savedWall > 0, `the saved state holds the wall time so far (${savedWall})`);
  // A new process: a freshly initialised model, the state from disk.
  const second = new ToyModel();
  const resumed = await train({ model: second, config, data, record, quiet: true, resume: true });
  t.is(resumed.priorWallSeconds, savedWall);
  const out = { outcome: resumed, params: second.snapshot(), f1: await validationF1(second), record };
  second.dispose();
  return { stopped, ...out };
}

test.serial('stopped after epoch 1 of 3 and resumed: the same parameters bit for bit and the same metrics', async (t) => {
  const ref = await uninterrupted();
  t.is(ref.outcome.status, 'ok');
  t.is(ref.outcome.steps, 12);
  t.is(ref.outcome.history.length, 3);
  const run = await stopThenResume(t, (p) => p.epochEnd && p.epoch === 1);
  t.is(run.stopped.steps, 4);
  t.is(run.outcome.resumedFromStep, 4);
  t.true(sameBits(run.params, ref.params), 'final parameters differ');
  t.is(run.f1, ref.f1);
  t.deepEqual(computed(run.outcome), computed(ref.outcome));
  const starts = readLog(run.record).filter((e) => e.event === 'train-start');
  t.deepEqual(
    starts.map((e) => [e.resume, e.fromStep]),
    [
      [false, 0],
      [true, 4],
    ],
  );
});

test.serial('killed mid-epoch (after step 7 of 12, last save at step 6) and resumed: identical result', async (t) => {
  const ref = await uninterrupted();
  const run = await stopThenResume(t, (p) => !p.epochEnd && p.step === 7, { steps: 2 });
  t.is(run.outcome.resumedFromStep, 6);
  t.true(sameBits(run.params, ref.params), 'final parameters differ');
  t.is(run.f1, ref.f1);
  t.deepEqual(computed(run.outcome), computed(ref.outcome));
});

test.serial("killed right after an epoch's last step, before its evaluation: identical result", async (t) => {
  const ref = await uninterrupted();
  const run = await stopThenResume(t, (p) => !p.epochEnd && p.step === 8);
  t.is(run.outcome.resumedFromStep, 4);
  t.true(sameBits(run.params, ref.params));
  t.deepEqual(computed(run.outcome), computed(ref.outcome));
});

test.serial('resuming a finished run trains nothing and gives the same outcome; another seed is refused', async (t) => {
  const record = tempRecord(config);
  const a = new ToyModel();
  const first = await train({ model: a, config, data, record, quiet: true });
  const params = a.snapshot();
  a.dispose();
  const b = new ToyModel();
  const again = await train({ model: b, config, data, record, quiet: true, resume: true });
  t.is(b.lossCalls, 0);
  t.true(sameBits(b.snapshot(), params));
  t.deepEqual(computed(again), computed(first));
  b.dispose();
  const c = new ToyModel();
  await t.throwsAsync(train({ model: c, config: trainConfig({ lr: 0.01 }), data, record, quiet: true, resume: true }), { message: /another config/ });
  c.dispose();
});

test.serial('a different seed gives different parameters (the seed reaches shuffling and dropout)', async (t) => {
  const ref = await uninterrupted();
  const other = trainConfig({ seed: 12 });
  const model = new ToyModel();
  await train({ model, config: other, data, record: tempRecord(other), quiet: true });
  t.false(sameBits(model.snapshot(), ref.params));
  model.dispose();
});
