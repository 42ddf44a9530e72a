import test from 'ava';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { LongnerError } from '../../src/errors.js';
import { resolveConfigFromObject } from '../../src/config/load.js';
import { runDir, runId } from '../../src/runs/id.js';
import { RunRecord } from '../../src/runs/record.js';
import { emptyMemory, emptyTiming, type RunResult } from '../../src/runs/result.js';
import { configHash } from '../../src/data/config-hash.js';
import { collectEnv } from '../../src/util/env.js';
import { tempDirs } from '../temp-dirs.js';

const temp = tempDirs();

const tempRoot = (): string => temp('runs');

function sampleResult(overrides: Partial<RunResult> = {}): RunResult {
  const prf = { tp: 8, fp: 2, fn: 4, precision: 0.8, recall: 8 / 12, f1: 0.7272727 };
  return {
    method: 'sener',
    dataset: 'scholar-xl',
    split: 'test',
    seed: 2288,
    configHash: '0123456789',
    preset: null,
    backend: 'wasm',
    status: 'ok',
    metrics: { overall: prf, perType: { gender: prf }, perLength: { '1': prf } },
    memory: { ...emptyMemory(), peakBytesTrainStep: 1024 },
    timing: { ...emptyTiming(), wallSeconds: 1.5 },
    env: { gitCommit: null, packageVersions: { longner: '0.1.0' }, node: 'v20.0.0', platform: 'linux-x64' },
    dataProtocol: 'local: train on dev, test on test',
    dedup: { documents: 3 },
    createdAt: new Date().toISOString(),
    ...overrides,
  };
}

test('the run id ignores key order and the preset name', (t) => {
  const a = resolveConfigFromObject({ train: { lr: 1e-3, epochs: 3 }, dataset: { name: 'scirex' } });
  const b = resolveConfigFromObject({ dataset: { name: 'scirex' }, train: { epochs: 3, lr: 1e-3 }, preset: 'cpu' });
  t.is(runId(a), runId(b));
  t.regex(runId(a), /^sener-scirex-[0-9a-f]{10}-s2288$/);
  // The experiment is the parent folder, not part of the id.
  const c = resolveConfigFromObject({ ...structuredClone(a), experiment: 'other' });
  t.is(runId(c), runId(a));
  t.not(runDir(c, 'root'), runDir(a, 'root'));
  t.is(relative('root', runDir(a, 'root')).split(sep)[0], 'default');
});

test('the run id changes with any value and with the seed', (t) => {
  const base = resolveConfigFromObject({});
  const lr = resolveConfigFromObject({ train: { lr: 1e-3 } });
  const nested = resolveConfigFromObject({ dataset: { maxDocs: { test: 5 } } });
  const seed = resolveConfigFromObject({ train: { seed: 3618 } });
  t.not(runId(lr), runId(base));
  t.not(runId(nested), runId(base));
  t.not(runId(seed), runId(base));
  t.is(configHash(seed), configHash(base)); // the seed has its own slot in the id
  t.true(runId(seed).endsWith('-s3618'));
});

test("the run hash covers the run's own method section only", (t) => {
  const sener = resolveConfigFromObject({ method: 'sener' });
  // Another method's option leaves a SeNER run's id alone; SeNER's own options change it.
  t.is(configHash(resolveConfigFromObject({ method: 'sener', utcIe: { depth: 5 } })), configHash(sener));
  t.is(configHash(resolveConfigFromObject({ method: 'sener', cnnNer: { cnnDim: 64 } })), configHash(sener));
  t.not(configHash(resolveConfigFromObject({ method: 'sener', sener: { depth: 3 } })), configHash(sener));
  // And the other way round.
  const utc = resolveConfigFromObject({ method: 'utc-ie' });
  t.is(configHash(resolveConfigFromObject({ method: 'utc-ie', sener: { depth: 3 } })), configHash(utc));
  t.not(configHash(resolveConfigFromObject({ method: 'utc-ie', utcIe: { depth: 5 } })), configHash(utc));
  // Shared sections count for every method.
  t.not(configHash(resolveConfigFromObject({ method: 'utc-ie', encoder: { layers: 3 } })), configHash(utc));
});

test('create writes the resolved config atomically and is idempotent', (t) => {
  const root = tempRoot();
  const config = resolveConfigFromObject({ experiment: 'exp1', train: { epochs: 2 } });
  const record = RunRecord.create(config, root);
  t.is(record.dir, runDir(config, root));
  t.deepEqual(readdirSync(record.dir).sort(), ['config.json', 'config.yaml']);
  t.deepEqual(JSON.parse(readFileSync(join(record.dir, 'config.json'), 'utf8')), config);
  t.deepEqual(RunRecord.open(record.dir).readConfig(), config);
  t.regex(readFileSync(join(record.dir, 'config.yaml'), 'utf8'), /^# run sener-scholar-xl-[0-9a-f]{10}-s2288/);
  t.is(RunRecord.create(config, root).dir, record.dir);
});

test('results round-trip, finish the run and leave no temp file', (t) => {
  const record = RunRecord.create(resolveConfigFromObject({}), tempRoot());
  t.is(record.readResult(), null);
  t.false(record.isFinished());
  const result = sampleResult({ status: 'oom', reason: 'wasm heap 4 GiB', metrics: { overall: null, perType: null, perLength: null } });
  record.writeResult(result);
  t.deepEqual(record.readResult(), result);
  t.true(record.isFinished());
  t.deepEqual(
    readdirSync(record.dir).filter((name) => name.endsWith('.tmp')),
    [],
  );
});

test('writing an invalid result throws before touching the disk', (t) => {
  const record = RunRecord.create(resolveConfigFromObject({}), tempRoot());
  const bad = { ...sampleResult(), status: 'exploded' } as unknown as RunResult;
  const error = t.throws(() => record.writeResult(bad));
  t.true(error?.message.includes('status'));
  t.false(existsSync(join(record.dir, 'result.json')));
});

test('a result.json that fails validation is a LongnerError naming the file and key', (t) => {
  const record = RunRecord.create(resolveConfigFromObject({}), tempRoot());
  const broken = sampleResult() as unknown as { metrics: { overall: Record<string, unknown> }; extra?: number };
  broken.metrics.overall.f1 = 'high';
  broken.extra = 1;
  writeFileSync(join(record.dir, 'result.json'), JSON.stringify(broken));
  const error = t.throws(() => record.readResult(), { instanceOf: LongnerError });
  t.true(error?.message.includes('result.json: metrics.overall.f1:'), error?.message);
  t.true(error?.message.includes('unknown key "extra"'), error?.message);
  t.throws(() => record.isFinished(), { instanceOf: LongnerError });

  writeFileSync(join(record.dir, 'result.json'), '{ not json');
  t.throws(() => record.readResult(), { instanceOf: LongnerError, message: /result\.json: invalid JSON/ });
});

test('log appends timestamped lines', (t) => {
  const record = RunRecord.create(resolveConfigFromObject({}), tempRoot());
  record.log({ event: 'start', step: 0 });
  record.log({ event: 'step', step: 1, loss: 0.5, time: 'not mine' });
  const lines = readFileSync(join(record.dir, 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  t.is(lines.length, 2);
  t.like(lines[0], { event: 'start', step: 0 });
  t.like(lines[1], { event: 'step', step: 1, loss: 0.5 });
  for (const line of lines) t.false(Number.isNaN(Date.parse(String(line.time))));
});

test('open refuses a folder that is not a run', (t) => {
  t.throws(() => RunRecord.open(tempRoot()), { instanceOf: LongnerError, message: /not a run directory/ });
});

test('collectEnv records node, platform and the tfjs version', (t) => {
  const env = collectEnv();
  t.is(env.node, process.version);
  t.regex(env.packageVersions['@tensorflow/tfjs-core'] ?? '', /^\d+\.\d+\.\d+/);
  t.truthy(env.packageVersions.longner);
  t.true(env.gitCommit === null || /^[0-9a-f]{40}/.test(env.gitCommit));
  // Read once per process, so a record names the commit its run started from.
  t.is(collectEnv(), env);
});

test('run folders, pretraining folders and run-id lookups honour LONGNER_RUNS_DIR', async (t) => {
  const { pretrainRunDir } = await import('../../src/train/pretrain/index.js');
  const { locateRunFolder, runsRoot } = await import('../../src/runs/locate.js');
  const root = tempRoot();
  const before = process.env.LONGNER_RUNS_DIR;
  process.env.LONGNER_RUNS_DIR = root;
  try {
    const config = resolveConfigFromObject({ experiment: 'env-test' });
    t.is(runsRoot(), root);
    t.is(runDir(config), join(root, 'env-test', runId(config)));
    t.true(pretrainRunDir(config).startsWith(join(root, 'pretrain') + sep));
    const record = RunRecord.create(config);
    t.is(record.dir, runDir(config, root));
    t.is(locateRunFolder(runId(config), runsRoot()), record.dir);
    t.throws(() => locateRunFolder('sener-nope-0123456789-s1', root), {
      instanceOf: LongnerError,
      message: /expected a run folder or the run id of a run under/,
    });
  } finally {
    if (before === undefined) delete process.env.LONGNER_RUNS_DIR;
    else process.env.LONGNER_RUNS_DIR = before;
  }
});
