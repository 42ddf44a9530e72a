/**
 * `longner train`, `eval` and `predict` end to end, in child processes, on the corpus shipped in
 * test/fixtures/data/long-entities (never skipped: it needs no data mirror), asserting what they
 * write; and a training process killed with SIGKILL mid-run, resumed with --resume, ending exactly
 * where an uninterrupted run ends.
 */
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readDocuments } from '../../src/data/readers.js';
import { scoreEntities } from '../../src/eval/metrics.js';
import type { RunResult } from '../../src/runs/result.js';
import { fromRoot } from '../../src/util/paths.js';
import { tempDirs } from '../temp-dirs.js';

const temp = tempDirs();

const base = temp('fixture-e2e');
const fixture = (split: string) => fromRoot('test', 'fixtures', 'data', 'long-entities', `${split}.jsonl`);
const env: NodeJS.ProcessEnv = { ...process.env, LONGNER_THREADS: '1' };
delete env.LONGNER_STRICT;

function longner(args: string[], runs: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [fromRoot('bin', 'longner.js'), ...args, '--runs-dir', runs], { encoding: 'utf8', env, cwd: base });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function config(name: string, maxSteps: number, every: number): string {
  const path = join(base, `${name}.yaml`);
  writeFileSync(
    path,
    `method: sener
experiment: fixture
dataset:
  name: long-entities
  files: {train: ${fixture('train')}, validation: ${fixture('dev')}, test: ${fixture('test')}}
tokenizer: {vocabSize: 300}
segment: {maxLen: 64}
encoder: {layers: 1, hidden: 16, heads: 2, ffn: 32, window: 8, pretrained: null}
train: {epochs: 1, maxSteps: ${maxSteps}, batchSize: 2}
sener: {window: 6, cnnDim: 4, biaffineSize: 8, depth: 1}
eval: {batchSize: 4, every: ${every}, threshold: tuned}
`,
  );
  return path;
}

const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;
const lines = (path: string): Record<string, unknown>[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

test.serial('train, eval and predict on the shipped fixture corpus write consistent results, curves and predictions', (t) => {
  const runs = join(base, 'runs-a');
  const trained = longner(['train', config('a', 6, 2)], runs);
  t.is(trained.code, 0, trained.stderr);
  const dir = /longner: run (.*)/.exec(trained.stderr)![1]!.trim();
  const result = readJson<RunResult>(join(dir, 'result.json'));
  t.is(result.status, 'ok');

  // The learning curves and the per-step log.
  const steps = lines(join(dir, 'log.jsonl')).filter((e) => e.event === 'step');
  t.deepEqual(
    steps.map((e) => e.step),
    [1, 2, 3, 4, 5, 6],
  );
  for (const e of steps) {
    t.true(Number.isFinite(e.loss) && Number.isFinite(e.gradNorm), JSON.stringify(e));
    const lr = e.lr as Record<string, number>;
    t.true(lr.head! > 0 && lr.encoder! > 0);
  }
  t.deepEqual(
    result.curves!.trainLoss.map(([s]) => s),
    [1, 2, 3, 4, 5, 6],
  );
  t.deepEqual(
    result.curves!.validation.map((v) => v.step),
    [2, 4, 6],
  );

  // Thresholds: tuned on validation, and the test split scored at 0.5 too.
  const th = result.thresholds!;
  t.is(th.mode, 'tuned');
  t.true(th.used !== null && th.tuned !== null && th.used === th.tuned.threshold);
  t.true(th.reference !== null);

  // The predictions file scores to the recorded metrics, and holds as many spans as the diagnostics say.
  const gold = readDocuments(fixture('test'), 'generic');
  const predicted = readDocuments(join(dir, 'test.predictions.jsonl'), 'generic');
  t.deepEqual(
    predicted.map((d) => d.id),
    gold.map((d) => d.id),
  );
  const rescored = scoreEntities(gold, new Map(predicted.map((d) => [d.id, d.entities])));
  t.deepEqual(rescored.overall, result.metrics.overall);
  t.is(
    predicted.reduce((n, d) => n + d.entities.length, 0),
    result.diagnostics!.predicted,
  );
  const oracle = result.diagnostics!.oracle;
  t.is(oracle.gold, new Set(gold.flatMap((d) => d.entities.map((e) => `${d.id}:${e.start}:${e.end}:${e.type}`))).size);
  t.true(oracle.reachable < oracle.gold, 'entities of up to 12 words do not all fit a band of w + 1 = 7 words and 62-token segments');

  // eval scores the best checkpoint at the run's threshold: the same numbers.
  const id = dir.split('/').at(-1)!;
  const evaluated = longner(['eval', id], runs);
  t.is(evaluated.code, 0, evaluated.stderr);
  const ev = readJson<{ threshold: number | null; metrics: RunResult['metrics'] }>(join(dir, 'eval-test.json'));
  t.is(ev.threshold, th.used);
  t.deepEqual(ev.metrics.overall, result.metrics.overall);

  // predict on the raw test file gives the test predictions again.
  const out = join(base, 'predicted.jsonl');
  const p = longner(['predict', id, fixture('test'), '--out', out], runs);
  t.is(p.code, 0, p.stderr);
  t.deepEqual(
    readDocuments(out, 'generic').map((d) => d.entities.map((e) => [e.start, e.end, e.type])),
    predicted.map((d) => d.entities.map((e) => [e.start, e.end, e.type])),
  );
});

test.serial('a training process killed with SIGKILL and resumed ends with the result of an uninterrupted run', async (t) => {
  const cfg = config('k', 24, 4);
  const straight = longner(['train', cfg], join(base, 'runs-straight'));
  t.is(straight.code, 0, straight.stderr);
  const straightDir = /longner: run (.*)/.exec(straight.stderr)![1]!.trim();

  const runs = join(base, 'runs-killed');
  const child = spawn(process.execPath, [fromRoot('bin', 'longner.js'), 'train', cfg, '--runs-dir', runs], { env, cwd: base, stdio: 'ignore' });
  const killedDir = join(runs, straightDir.split('/').slice(-2).join('/'));
  // The first save comes with the validation at step 4; kill as soon as it is on disk.
  const killedAt = await new Promise<number>((resolve, reject) => {
    const timer = setInterval(() => {
      const state = join(killedDir, 'trainer-state.json');
      if (!existsSync(state)) return;
      clearInterval(timer);
      child.kill('SIGKILL');
      resolve(readJson<{ step: number }>(state).step);
    }, 5);
    child.on('exit', () => {
      clearInterval(timer);
      reject(new Error('the run ended before it could be killed'));
    });
  }).catch((e: Error) => e);
  await new Promise((r) => child.once('exit', r).once('close', r));
  t.true(typeof killedAt === 'number' && killedAt < 24, `killed at step ${String(killedAt)}`);
  t.false(existsSync(join(killedDir, 'result.json')), 'the killed run had not finished');

  const resumed = longner(['train', cfg, '--resume'], runs);
  t.is(resumed.code, 0, resumed.stderr);
  const a = readJson<RunResult>(join(straightDir, 'result.json'));
  const b = readJson<RunResult>(join(killedDir, 'result.json'));
  t.deepEqual(b.metrics, a.metrics);
  t.deepEqual(b.curves, a.curves);
  t.deepEqual(b.thresholds, a.thresholds);
  t.true(readFileSync(join(killedDir, 'best.ckpt')).equals(readFileSync(join(straightDir, 'best.ckpt'))), 'best.ckpt bit for bit');
});
