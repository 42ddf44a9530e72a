/** The journaled save of last.ckpt + last.optim.ckpt + trainer-state.json survives a kill at any point. */
import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { copyFileSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AdamW } from '../../src/train/adamw.js';
import {
  clearCheckpoints,
  LAST_CKPT,
  LAST_OPTIM,
  loadCheckpoint,
  restoreCheckpoint,
  saveCheckpoint,
  STATE_FILE,
  type TrainerStateBody,
} from '../../src/train/checkpoint.js';
import { setupBackend } from './helpers.js';
import { sameBits, ToyModel } from './toy-model.js';
import { tempDirs } from '../temp-dirs.js';

const temp = tempDirs();

test.before(async () => {
  await setupBackend();
});

function body(step: number, opt: AdamW): TrainerStateBody {
  return {
    configHash: 'abc',
    seed: 1,
    epoch: 0,
    batchInEpoch: step,
    step,
    totalSteps: 10,
    epochLoss: { sum: 0.5 * step, count: step },
    best: { f1: null, epoch: null, metrics: null },
    badEpochs: 0,
    history: [],
    optimizer: opt.stepCounts(),
    measured: { msPerStep: null, peakBytesTrainStep: null, wasmHeapBytes: null, rssBytes: null },
    finished: null,
  };
}

/** A model + optimizer after `steps` updates with a fixed gradient, saved in a new folder. */
function savedAfter(steps: number): { dir: string; params: Map<string, Float32Array> } {
  const model = new ToyModel();
  const opt = AdamW.forModel(model, { weightDecay: 0.01 });
  for (let i = 0; i < steps; i++) {
    const grads = Object.fromEntries(opt.params.map((p) => [p.variable.name, tf.onesLike(p.variable)]));
    opt.step(grads, { head: 0.1, encoder: 0.1 });
    tf.dispose(Object.values(grads));
  }
  const dir = temp('ckpt');
  saveCheckpoint(dir, model.params, opt, body(steps, opt));
  const params = model.snapshot();
  opt.dispose();
  model.dispose();
  return { dir, params };
}

function restored(dir: string): { step: number; params: Map<string, Float32Array> } {
  const state = loadCheckpoint(dir);
  if (state === null) throw new Error('no state');
  const model = new ToyModel();
  const opt = AdamW.forModel(model, { weightDecay: 0.01 });
  restoreCheckpoint(dir, state, model.params, opt);
  const out = { step: state.step, params: model.snapshot() };
  opt.dispose();
  model.dispose();
  return out;
}

test('save and load round-trip; nothing saved gives null; clear removes the files', (t) => {
  const a = savedAfter(2);
  const back = restored(a.dir);
  t.is(back.step, 2);
  t.true(sameBits(back.params, a.params));
  t.is(loadCheckpoint(temp('ckpt')), null);
  clearCheckpoints(a.dir);
  t.is(loadCheckpoint(a.dir), null);
});

test('killed before the new state was written: the unfinished files are dropped, the old save loads', (t) => {
  const old = savedAfter(1);
  const next = savedAfter(3);
  copyFileSync(join(next.dir, LAST_CKPT), join(old.dir, `${LAST_CKPT}.next`));
  writeFileSync(join(old.dir, `${LAST_OPTIM}.next`), 'half a file');
  writeFileSync(join(old.dir, `${LAST_CKPT}.123.456.tmp`), 'temp of a killed write');
  const back = restored(old.dir);
  t.is(back.step, 1);
  t.true(sameBits(back.params, old.params));
  t.deepEqual(readdirSync(old.dir).sort(), [LAST_CKPT, LAST_OPTIM, STATE_FILE].sort());
});

test('killed during the renames: the complete new set is rolled forward', (t) => {
  const old = savedAfter(1);
  const next = savedAfter(3);
  // The parameter file was already renamed into place; the optimizer file and the state were not.
  copyFileSync(join(next.dir, LAST_CKPT), join(old.dir, LAST_CKPT));
  copyFileSync(join(next.dir, LAST_OPTIM), join(old.dir, `${LAST_OPTIM}.next`));
  copyFileSync(join(next.dir, STATE_FILE), join(old.dir, `${STATE_FILE}.next`));
  const back = restored(old.dir);
  t.is(back.step, 3);
  t.true(sameBits(back.params, next.params));
  t.false(existsSync(join(old.dir, `${STATE_FILE}.next`)));
});

test('a parameter file that does not belong to the state is refused', (t) => {
  const old = savedAfter(1);
  const next = savedAfter(3);
  copyFileSync(join(next.dir, LAST_CKPT), join(old.dir, LAST_CKPT));
  t.throws(() => loadCheckpoint(old.dir), { message: /does not match trainer-state.json/ });
  writeFileSync(join(old.dir, STATE_FILE), '{"format": "something else"}');
  t.throws(() => loadCheckpoint(old.dir), { message: /not a trainer state/ });
});
