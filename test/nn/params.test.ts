import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LongnerError } from '../../src/errors.js';
import { ParamStore } from '../../src/nn/params.js';
import { setupBackend } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'longner-params-'));

test.before(async () => {
  await setupBackend();
});

test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function values(store: ParamStore, name: string): number[] {
  return [...store.get(name).dataSync()];
}

test('same seed gives the same weights, in any creation order', (t) => {
  const a = new ParamStore(42);
  a.param('x.W', [4, 3], { kind: 'xavier' });
  a.param('y.E', [5, 2], { kind: 'normal', std: 0.5 });
  const b = new ParamStore(42);
  b.param('y.E', [5, 2], { kind: 'normal', std: 0.5 });
  b.param('x.W', [4, 3], { kind: 'xavier' });
  const c = new ParamStore(43);
  c.param('x.W', [4, 3], { kind: 'xavier' });
  t.deepEqual(values(a, 'x.W'), values(b, 'x.W'));
  t.deepEqual(values(a, 'y.E'), values(b, 'y.E'));
  t.notDeepEqual(values(a, 'x.W'), values(c, 'x.W'));
  [a, b, c].forEach((s) => {
    s.dispose();
  });
});

test('initialisers have the intended ranges and moments', (t) => {
  const s = new ParamStore(1);
  const limit = Math.sqrt(6 / (200 + 100));
  s.param('w', [200, 100], { kind: 'xavier' });
  const xav = values(s, 'w');
  t.true(xav.every((v) => Math.abs(v) <= limit));
  t.true(Math.max(...xav.map(Math.abs)) > 0.95 * limit);
  s.param('n', [20000], { kind: 'normal', std: 0.02 });
  const n = values(s, 'n');
  const mean = n.reduce((a, b) => a + b, 0) / n.length;
  const std = Math.sqrt(n.reduce((a, b) => a + (b - mean) ** 2, 0) / n.length);
  t.true(Math.abs(mean) < 1e-3);
  t.true(Math.abs(std - 0.02) < 1e-3);
  s.param('z', [3], { kind: 'zeros' });
  s.param('o', [2], { kind: 'ones' });
  t.deepEqual(values(s, 'z'), [0, 0, 0]);
  t.deepEqual(values(s, 'o'), [1, 1]);
  s.dispose();
});

test('param reuses an existing parameter and rejects a different shape', (t) => {
  const s = new ParamStore(1);
  const v = s.param('a', [2, 2], { kind: 'xavier' });
  t.is(s.param('a', [2, 2], { kind: 'zeros' }), v);
  t.throws(() => s.param('a', [2, 3], { kind: 'zeros' }), { message: /shape \[2,2\]/ });
  t.throws(() => s.get('nope'), { message: /no parameter named nope/ });
  s.dispose();
});

test('freeze, unfreeze, trainable and counts', (t) => {
  const s = new ParamStore(1);
  s.param('enc.a', [2, 3], { kind: 'ones' });
  s.param('enc.b', [4], { kind: 'ones' });
  s.param('head.c', [5], { kind: 'ones' });
  t.is(s.count(), 15);
  s.freeze('enc.');
  t.deepEqual(
    s.trainable().map((v) => s.nameOf(v)),
    ['head.c'],
  );
  t.is(s.count({ trainableOnly: true }), 5);
  s.unfreeze('enc.b');
  t.deepEqual(
    s.trainable().map((v) => s.nameOf(v)),
    ['enc.b', 'head.c'],
  );
  t.deepEqual(
    s.trainable('enc.').map((v) => s.nameOf(v)),
    ['enc.b'],
  );
  t.is(s.count({ filter: (n) => n.endsWith('a') }), 6);
  // The tfjs optimizer path: only trainable variables receive gradients.
  const { grads } = tf.variableGrads(() => tf.sum(tf.add(tf.sum(s.get('enc.a')), tf.sum(s.get('head.c')))) as tf.Scalar, s.trainable());
  t.deepEqual(
    Object.keys(grads).map((k) => s.nameOf(s.trainable().find((v) => v.name === k)!)),
    ['head.c'],
  );
  tf.dispose(Object.values(grads));
  s.dispose();
});

test('save and load round-trip the exact values', (t) => {
  const path = join(dir, 'round.bin');
  const a = new ParamStore(5);
  a.param('enc.W', [3, 4], { kind: 'xavier' });
  a.param('enc.g', [7], { kind: 'normal', std: 1 });
  a.param('odd name/ü', [1], { kind: 'ones' });
  a.save(path);
  const bytes = readFileSync(path);
  t.is(bytes.toString('latin1', 0, 8), 'LNPARAM1');
  const b = new ParamStore(999);
  b.param('enc.W', [3, 4], { kind: 'zeros' });
  b.param('enc.g', [7], { kind: 'zeros' });
  b.param('odd name/ü', [1], { kind: 'zeros' });
  t.deepEqual(b.load(path).sort(), ['enc.W', 'enc.g', 'odd name/ü']);
  for (const n of a.names()) t.deepEqual(values(b, n), values(a, n));
  a.dispose();
  b.dispose();
});

test('load names every difference and changes nothing', (t) => {
  const path = join(dir, 'mismatch.bin');
  const a = new ParamStore(5);
  a.param('enc.W', [3, 4], { kind: 'xavier' });
  a.param('enc.old', [2], { kind: 'ones' });
  a.save(path);
  const b = new ParamStore(6);
  b.param('enc.W', [4, 4], { kind: 'zeros' });
  b.param('enc.new', [2], { kind: 'zeros' });
  const err = t.throws(() => b.load(path), { instanceOf: LongnerError });
  t.regex(err!.message, /enc\.W \[3,4\] in the file, \[4,4\] in the model/);
  t.regex(err!.message, /missing from the file: enc\.new/);
  t.regex(err!.message, /not in the model: enc\.old/);
  t.deepEqual(values(b, 'enc.W'), new Array(16).fill(0));
  a.dispose();
  b.dispose();
});

test('load with a filter loads a subset; save with a filter writes a subset', (t) => {
  const full = join(dir, 'full.bin');
  const a = new ParamStore(5);
  a.param('encoder.W', [2, 2], { kind: 'xavier' });
  a.param('mlm.b', [3], { kind: 'ones' });
  a.save(full);
  const b = new ParamStore(6);
  b.param('encoder.W', [2, 2], { kind: 'zeros' });
  b.param('head.x', [1], { kind: 'zeros' });
  t.deepEqual(b.load(full, { only: 'encoder.' }), ['encoder.W']);
  t.deepEqual(values(b, 'encoder.W'), values(a, 'encoder.W'));
  t.deepEqual(values(b, 'head.x'), [0]);
  const part = join(dir, 'part.bin');
  a.save(part, 'mlm.');
  const c = new ParamStore(1);
  c.param('mlm.b', [3], { kind: 'zeros' });
  t.deepEqual(c.load(part), ['mlm.b']);
  [a, b, c].forEach((s) => {
    s.dispose();
  });
});

test('load rejects a file that is not a parameter file', (t) => {
  const path = join(dir, 'junk.bin');
  writeFileSync(path, 'hello world, not a checkpoint');
  const s = new ParamStore(1);
  t.throws(() => s.load(path), { instanceOf: LongnerError, message: /not a longner parameter file/ });
  s.dispose();
});

test.serial('dispose frees every variable', (t) => {
  const before = tf.memory().numTensors;
  const s = new ParamStore(1);
  s.param('a', [10], { kind: 'ones' });
  s.param('b', [10], { kind: 'ones' });
  t.is(tf.memory().numTensors, before + 2);
  s.dispose();
  t.is(tf.memory().numTensors, before);
  t.deepEqual(s.names(), []);
});
