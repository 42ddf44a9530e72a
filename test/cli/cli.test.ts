import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromRoot } from '../../src/util/paths.js';
import { tempDirs } from '../temp-dirs.js';

const temp = tempDirs();

function longner(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [fromRoot('bin', 'longner.js'), ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('--help lists the commands', (t) => {
  const r = longner('--help');
  t.is(r.code, 0);
  t.regex(r.stdout, /datasets <command>/);
  t.regex(r.stdout, /config <command>/);
});

test('an unknown dataset is a one-line error listing the known ones, exit 2', (t) => {
  const r = longner('datasets', 'stats', 'nope');
  t.is(r.code, 2);
  t.is(r.stderr.trim().split('\n').length, 1);
  t.regex(
    r.stderr,
    /unknown dataset "nope" \(known: scholar-xl, profiling-07, scirex\); for your own corpus set dataset.files in the config, or run `longner datasets add NAME/,
  );
});

test('--threads and --memory-budget are checked before any work, exit 2', (t) => {
  const budget = longner('--memory-budget', 'lots', 'datasets', 'list');
  t.is(budget.code, 2);
  t.regex(budget.stderr, /--memory-budget must be a size such as 16GiB or 12000MB, got 'lots'/);
  const threads = longner('--threads', '0', 'datasets', 'list');
  t.is(threads.code, 2);
  t.regex(threads.stderr, /--threads must be a positive integer, got 0/);
});

test('a bad memory budget in the environment is an error, not a silent fall-back to another backend', (t) => {
  const r = spawnSync(
    process.execPath,
    [fromRoot('bin', 'longner.js'), 'train', fromRoot('configs', 'global-pointer', 'scholar-xl.yaml'), '--preset', 'quick'],
    {
      encoding: 'utf8',
      env: { ...process.env, LONGNER_MEMORY_BUDGET: 'xx' },
    },
  );
  t.is(r.status, 2, r.stderr);
  t.regex(r.stderr, /LONGNER_MEMORY_BUDGET \(--memory-budget\) must be a size such as 16GiB or 12000MB, got 'xx'/);
});

test('a bad config key names the key path and the file', (t) => {
  const dir = temp('cli');
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, 'train:\n  lr: fast\n');
  const r = longner('config', 'print', file);
  t.is(r.code, 2);
  t.regex(r.stderr, /bad\.yaml: train\.lr: expected/);
});

test('config print shows the resolved config with a --set override and the run id', (t) => {
  const r = longner('config', 'print', fromRoot('configs', 'presets', 'quick.yaml'), '--set', 'train.seed=3618');
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /# run id: .*-s3618/);
  t.regex(r.stdout, /seed: 3618/);
});

const mirror = fromRoot('..', 'shared', 'datasets');
const statsTest = existsSync(mirror) ? test : test.skip;
statsTest("datasets stats prints the local files' Table 1 rows beside the paper's", (t) => {
  const r = longner('datasets', 'stats');
  t.is(r.code, 0, r.stderr);
  const row = (prefix: RegExp) => r.stdout.split('\n').find((l) => prefix.test(l)) ?? '';
  t.regex(row(/^scholar-xl\s+test/), /\s350\s.*\s3,877\s+12\s/);
  t.regex(row(/^profiling-07\s+test/), /\s143\s/);
  t.regex(row(/^scirex\s+train/), /\s306\s.*\s13,731\s.*\s2\.28\s/);
  t.regex(row(/^scholar-xl\s+paper/), /2,099/);
});
