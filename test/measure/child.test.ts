import test from 'ava';
import { classifyExit, runProbeInChild } from '../../src/measure/child.js';
import { loadNativeAddon } from '../../src/backend/native/addon.js';
import { classifyProbeError, fakeTokenize, probeConfig, probeDocument, parseProbeTask, WASM_HEAP_CAP, type ProbeTaskInput } from '../../src/measure/task.js';

/** A probe small enough to run in about a second: a 1-layer, 16-wide encoder on 24 words. */
const tiny: ProbeTaskInput = {
  method: 'global-pointer',
  preset: 'quick',
  overrides: { encoder: { layers: 1, hidden: 16, heads: 2, ffn: 32, attention: 'full' }, tokenizer: { vocabSize: 200 }, globalPointer: { headSize: 8 } },
  words: 24,
  mode: 'train',
  seed: 7,
};

test('a tiny real training probe in a child process is ok, with positive peak bytes and times', async (t) => {
  const r = await runProbeInChild(tiny, { timeoutMs: 120_000 });
  t.is(r.status, 'ok', r.reason ?? '');
  t.is(r.reason, null);
  t.is(r.tokens, 26);
  t.true(r.peakBytes! > 0);
  t.true(r.peakBytes! >= r.baselineBytes!);
  t.true(r.ms! > 0 && r.msProfiled! > 0);
  t.true(r.rssBytes! > 0);
  t.true(r.params! > 0 && r.trainableParams! > 0);
  t.truthy(r.backend);
  t.true(r.wallMs >= r.ms!);
});

test('a tiny inference probe is ok', async (t) => {
  const r = await runProbeInChild({ ...tiny, mode: 'infer' }, { timeoutMs: 120_000 });
  t.is(r.status, 'ok', r.reason ?? '');
  t.true(r.peakBytes! > 0);
});

test('an exception that looks like memory exhaustion is recorded as oom; another one as failed', async (t) => {
  const [oom, bug] = await Promise.all([
    runProbeInChild({ ...tiny, fault: { kind: 'throw', message: 'RuntimeError: memory access out of bounds' } }, { timeoutMs: 120_000 }),
    runProbeInChild({ ...tiny, fault: { kind: 'throw', message: 'undefined is not a function' } }, { timeoutMs: 120_000 }),
  ]);
  t.is(oom.status, 'oom');
  t.regex(oom.reason!, /memory access out of bounds/);
  t.is(bug.status, 'failed');
  t.regex(bug.reason!, /undefined is not a function/);
});

test('a peak above an artificial budget is recorded as oom', async (t) => {
  const r = await runProbeInChild({ ...tiny, budgetBytes: 1000 }, { timeoutMs: 120_000 });
  t.is(r.status, 'oom');
  t.regex(r.reason!, /exceeds the budget of 1000 bytes/);
  t.true(r.peakBytes! > 1000);
});

test('a child that dies is classified, never an exception in the parent', async (t) => {
  const [exit137, exit3, segv, killed] = await Promise.all([
    runProbeInChild({ ...tiny, fault: { kind: 'exit', code: 137 } }, { timeoutMs: 120_000 }),
    runProbeInChild({ ...tiny, fault: { kind: 'exit', code: 3 } }, { timeoutMs: 120_000 }),
    runProbeInChild({ ...tiny, fault: { kind: 'signal', signal: 'SIGSEGV' } }, { timeoutMs: 120_000 }),
    runProbeInChild({ ...tiny, fault: { kind: 'signal', signal: 'SIGKILL' } }, { timeoutMs: 120_000 }),
  ]);
  t.is(exit137.status, 'oom');
  t.regex(exit137.reason!, /code 137/);
  t.is(exit3.status, 'failed');
  t.regex(exit3.reason!, /exited with code 3/);
  t.is(segv.status, 'failed');
  t.regex(segv.reason!, /SIGSEGV/);
  t.is(killed.status, 'oom');
  t.regex(killed.reason!, /SIGKILL/);
  for (const r of [exit137, exit3, segv, killed]) {
    t.is(r.peakBytes, null);
    t.is(r.method, 'global-pointer');
    t.is(r.words, 24);
  }
});

test('a hung probe is killed at the timeout and recorded as failed: timeout', async (t) => {
  const r = await runProbeInChild({ ...tiny, fault: { kind: 'hang' } }, { timeoutMs: 5_000 });
  t.is(r.status, 'failed');
  t.regex(r.reason!, /^timeout after 5 s/);
});

test('classifyExit: out-of-memory output wins over the exit code; other deaths are failed', (t) => {
  const v8 = classifyExit({
    code: null,
    signal: 'SIGABRT',
    output: 'FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\n',
    timedOut: false,
  });
  t.is(v8.status, 'oom');
  t.regex(v8.reason, /SIGABRT: FATAL ERROR/);
  t.is(classifyExit({ code: 1, signal: null, output: 'RuntimeError: memory access out of bounds', timedOut: false }).status, 'oom');
  const crash = classifyExit({
    code: 1,
    signal: null,
    output: 'file.js:3\nTypeError: x is undefined\n    at f (file.js:3:1)\n\nNode.js v20.20.2\n',
    timedOut: false,
  });
  t.is(crash.status, 'failed');
  t.is(crash.reason, 'exited with code 1: TypeError: x is undefined');
  t.is(classifyExit({ code: 0, signal: null, output: '', timedOut: false }).reason, 'exited without sending a result');
  t.is(classifyExit({ code: null, signal: 'SIGKILL', output: '', timedOut: true, timeoutMs: 60_000 }).reason, 'timeout after 60 s');
});

test('classifyProbeError: any error with the wasm heap at its cap is an oom', (t) => {
  const err = new TypeError("Cannot read properties of undefined (reading 'map')");
  t.is(classifyProbeError(err, WASM_HEAP_CAP - 65536).status, 'oom');
  t.is(classifyProbeError(err, 512 * 2 ** 20).status, 'failed');
  t.is(classifyProbeError(err, null).status, 'failed');
});

test('probeConfig fits the input in one segment, batch 1, random weights; the task is validated', (t) => {
  const config = probeConfig(parseProbeTask({ ...tiny, words: 300, overrides: { ...tiny.overrides, encoder: { pretrained: 'mlm' } } }));
  t.is(config.method, 'global-pointer');
  t.is(config.segment.maxLen, 302);
  t.is(config.train.batchSize, 1);
  t.is(config.encoder.pretrained, null);
  t.is(config.preset, 'quick');
  t.throws(() => parseProbeTask({ method: 'global-pointer', words: 0, mode: 'train' }), { message: /words/ });
  t.throws(() => probeConfig(parseProbeTask({ method: 'sener', configFile: 'configs/span-enum/scholar-xl.yaml', words: 8, mode: 'train' })), {
    message: /is for method 'span-enum'/,
  });
});

test('fakeTokenize gives one token per word and never a special id', (t) => {
  const doc = probeDocument(500, ['A', 'B'], { entityDensity: 2, entityLength: { dist: 'geometric', mean: 8, max: 64 }, nested: 0.1 }, 3);
  t.is(doc.words.length, 500);
  t.true(doc.entities.length >= 5);
  const tok = fakeTokenize(doc, 100);
  t.is(tok.ids.length, 500);
  t.true(tok.ids.every((id) => id >= 5 && id < 100));
  t.deepEqual(Array.from(tok.wordIndex.slice(0, 3)), [0, 1, 2]);
  // The same word always gets the same id.
  const first = doc.words[0]!;
  const again = doc.words.indexOf(first, 1);
  if (again > 0) t.is(tok.ids[again], tok.ids[0]);
});

const nativeBuilt = loadNativeAddon().ok || process.env.CI !== undefined;

(nativeBuilt ? test : test.skip)('on native, a step past the memory budget (--memory-budget) is recorded as oom', async (t) => {
  // 1-layer, 64-wide encoder on 400 words: the full-attention scores alone are 640 KB per head.
  const big: ProbeTaskInput = {
    ...tiny,
    overrides: { ...tiny.overrides, backend: 'native', encoder: { layers: 1, hidden: 64, heads: 2, ffn: 128, attention: 'full' } },
    words: 400,
  };
  const [fits, over] = await Promise.all([
    runProbeInChild(big, { timeoutMs: 120_000, env: { ...process.env, LONGNER_MEMORY_BUDGET: '4GiB' } }),
    runProbeInChild(big, { timeoutMs: 120_000, env: { ...process.env, LONGNER_MEMORY_BUDGET: '6MB' } }),
  ]);
  t.is(fits.status, 'ok', fits.reason ?? '');
  t.is(fits.backend, 'native');
  t.regex(fits.backendDetail!, /memory budget 4\.00 GiB/);
  t.is(over.status, 'oom', over.reason ?? '');
  t.regex(over.reason!, /out of memory: .* would pass the memory budget of 0\.01 GiB/);
});
