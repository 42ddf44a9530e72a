import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { availableParallelism } from 'node:os';
import { activeBackend, backendMemory, initBackend } from '../../src/backend/index.js';
import { loadNativeAddon, loadNativeAddonWith, NATIVE_INSTALL_HINT, NATIVE_PACKAGE } from '../../src/backend/native/addon.js';
import { LongnerError } from '../../src/errors.js';
import { addon, nativeLoad, nativeTest, onCi } from './native-helpers.js';

/*
 * Choosing the native engine: what initBackend reports, the thread setting, that CI really has the
 * engine, and what a machine without it is told (through an injected loader, since the addon is
 * built here).
 */

nativeTest("initBackend('native') names oneDNN, its threads and a detail line", async (t) => {
  const info = await initBackend('native', { quiet: true });
  t.is(info.name, 'native');
  t.is(tf.getBackend(), 'native');
  t.true(info.library.startsWith('oneDNN'), info.library);
  t.regex(info.library, /^oneDNN \d+\.\d+\.\d+$/);
  t.true(Number.isInteger(info.threads) && info.threads >= 1, String(info.threads));
  t.true(info.detail.startsWith('native ('), info.detail);
  t.true(info.detail.includes(info.library), info.detail);
  t.regex(info.detail, /\d+ threads?\b/);
  t.false(info.detail.includes('\n'), 'one line');
  t.is(activeBackend()?.name, 'native');
  t.deepEqual(await initBackend('native', { quiet: true }), info, 'repeating the choice is a no-op');
  t.is(typeof backendMemory().poolFreeBytes, 'number', 'backendMemory reports the pool on native');
});

nativeTest("initBackend('native', { threads: 1 }) runs the engine on one thread", async (t) => {
  try {
    const info = await initBackend('native', { quiet: true, threads: 1 });
    t.is(info.threads, 1);
    t.is(addon().info().threads, 1);
    t.regex(info.detail, /\b1 thread\b(?!s)/);
    // Still computes after the change.
    t.deepEqual(Array.from(tf.tidy(() => tf.matMul(tf.tensor2d([1, 2, 3, 4], [2, 2]), tf.eye(2)).dataSync())), [1, 2, 3, 4]);
    const two = await initBackend('native', { quiet: true, threads: 2 });
    t.is(two.threads, 2);
    t.is(addon().info().threads, 2);
  } finally {
    await initBackend('native', { quiet: true, threads: availableParallelism() });
  }
});

nativeTest('switching to cpu and back to native keeps the native kernels registered', async (t) => {
  await initBackend('cpu', { quiet: true });
  t.is(tf.getBackend(), 'cpu');
  const info = await initBackend('native', { quiet: true });
  t.is(info.name, 'native');
  t.is(tf.getBackend(), 'native');
  t.truthy(tf.getKernel('LongnerGelu', 'native'));
  t.true(tf.getKernel('LongnerGelu', 'cpu') === undefined);
});

(onCi() ? test : test.skip)(`on CI the native addon loads (CI installs libdnnl-dev)${onCi() ? '' : ' [skipped: CI is not set]'}`, (t) => {
  t.true(nativeLoad.ok, nativeLoad.ok ? '' : `native engine missing on CI: ${nativeLoad.reason}`);
  t.true(loadNativeAddon().ok);
});

test('loadNativeAddon loads once and caches the result', (t) => {
  t.is(loadNativeAddon(), loadNativeAddon());
  t.is(loadNativeAddon(), nativeLoad);
});

function moduleNotFound(): Error {
  return Object.assign(new Error(`Cannot find module '${NATIVE_PACKAGE}'\nRequire stack:\n- /somewhere`), { code: 'MODULE_NOT_FOUND' });
}

test('without the package: the reason says it is not built, and the hint says what to install', (t) => {
  let asked = '';
  const load = loadNativeAddonWith((id) => {
    asked = id;
    throw moduleNotFound();
  });
  t.is(asked, 'longner-native');
  t.false(load.ok);
  if (load.ok) return;
  t.regex(load.reason, /longner-native package is not built/);
  t.true(NATIVE_INSTALL_HINT.includes('apt-get install -y libdnnl-dev'), NATIVE_INSTALL_HINT);
  t.regex(NATIVE_INSTALL_HINT, /npm install/);
  // The one line src/backend/index.ts prints in auto mode is made of these two parts.
  const line = `longner: native engine unavailable (${load.reason}); using the next backend. To enable it, ${NATIVE_INSTALL_HINT}`;
  t.false(line.includes('\n'));
});

test('a library that fails to load is named in the reason (first line only)', (t) => {
  const load = loadNativeAddonWith(() => {
    throw new Error('libdnnl.so.2: cannot open shared object file: No such file or directory\n    at Module._extensions..node');
  });
  t.false(load.ok);
  if (load.ok) return;
  t.is(load.reason, 'longner-native failed to load (libdnnl.so.2: cannot open shared object file: No such file or directory)');
});

test('an addon missing entry points is out of date; a non-Error throw is still described', (t) => {
  const stale = loadNativeAddonWith(() => ({ info: () => ({}), gemm: () => undefined }));
  t.false(stale.ok);
  if (!stale.ok) t.regex(stale.reason, /out of date.*npm install/);
  const notObject = loadNativeAddonWith(() => 42);
  t.false(notObject.ok);
  const weird = loadNativeAddonWith(() => {
    throw 'plain string';
  });
  t.false(weird.ok);
  if (!weird.ok) t.is(weird.reason, 'longner-native failed to load (plain string)');
});

test('a loader returning every entry point is accepted as the addon', (t) => {
  const names = ['info', 'setThreads', 'gemm', 'binary', 'compare', 'logical', 'unary', 'reduce', 'softmax', 'adamw'];
  const fake = Object.fromEntries(names.map((n) => [n, () => undefined]));
  const load = loadNativeAddonWith(() => fake);
  t.true(load.ok);
  if (load.ok) t.is(load.addon as unknown, fake);
});

test("initBackend('native') where the addon is missing throws a LongnerError with the hint", async (t) => {
  if (nativeLoad.ok) {
    t.pass('the addon is built here: covered by the injected-loader tests above');
    return;
  }
  const err = await t.throwsAsync(initBackend('native', { quiet: true }), { instanceOf: LongnerError });
  t.true(err?.message.includes('apt-get install -y libdnnl-dev'), err?.message);
});
