/**
 * One process per run folder (src/runs/execute.ts, util/lock.ts): a second `run` or `train --resume` of
 * a run that a live process is training stops before it writes, a grid skips that cell, and a lock left
 * by a killed process (or one from before a reboot) does not block the resume that follows a crash.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { executeRun } from '../../src/runs/execute.js';
import type { GridCell } from '../../src/runs/grid.js';
import { runDir, runId } from '../../src/runs/id.js';
import { findRuns } from '../../src/runs/locate.js';
import { planCell } from '../../src/runs/plan.js';
import { CONFIG_JSON, RESULT_FILE, RUN_LOCK } from '../../src/runs/record.js';
import { runExperiment } from '../../src/runs/runner.js';
import { runCellInChild } from '../../src/runs/spawn.js';
import { BusyError, lockHolder } from '../../src/util/lock.js';
import { fromRoot } from '../../src/util/paths.js';
import { tempDirs } from '../temp-dirs.js';

const temp = tempDirs();
const fixture = (split: string) => fromRoot('test', 'fixtures', 'data', 'long-entities', `${split}.jsonl`);

function tinyRun(): Config {
  return loadConfig(fromRoot('configs', 'span-enum', 'scholar-xl.yaml'), {
    preset: 'quick',
    set: [
      'experiment=locks',
      'dataset.name=long-entities',
      `dataset.files={train: ${fixture('train')}, validation: ${fixture('dev')}, test: ${fixture('test')}}`,
      'dataset.maxDocs.test=2',
      'train.maxSteps=2',
    ],
  }).config;
}

const owner = (pid: number, extra: Record<string, string> = {}): string => JSON.stringify({ pid, host: hostname(), since: 'then', ...extra });

test.serial('a run that a live process holds is neither run again nor resumed; a dead holder does not block', async (t) => {
  const root = temp('locks');
  const config = tinyRun();
  const dir = runDir(config, root);
  mkdirSync(dir, { recursive: true });
  const lock = join(dir, RUN_LOCK);

  // This process is alive, so its lock is held: a second process stops before it writes anything.
  writeFileSync(lock, owner(process.pid));
  await t.throwsAsync(() => executeRun(config, { root, quiet: true }), { instanceOf: BusyError, message: /being run by process \d+ on / });
  t.deepEqual(readdirSync(dir), [RUN_LOCK]);

  // A grid sees the partial run as running and skips it, even with --resume.
  writeFileSync(join(dir, CONFIG_JSON), JSON.stringify(config));
  const cell: GridCell = {
    index: 0,
    entry: 0,
    label: 'span-enum',
    row: 'span-enum',
    method: config.method,
    dataset: config.dataset.name,
    seed: config.train.seed,
    axes: {},
    configFile: 'test',
    config,
    runId: runId(config),
    notConfigured: null,
  };
  const found = findRuns(root, 'locks', [cell.runId]).get(cell.runId)!;
  t.is(found.status, 'partial');
  const planned = planCell(cell, found, { experiment: 'locks', resume: true });
  t.is(planned.action, 'skip');
  t.regex(planned.why, new RegExp(`^running: process ${process.pid} on `));

  // Its process gone (a SIGKILL): the lock is stale, the grid resumes the run and the run takes it over.
  const dead = spawnSync(process.execPath, ['-e', '']).pid!;
  writeFileSync(lock, owner(dead));
  t.is(planCell(cell, findRuns(root, 'locks', [cell.runId]).get(cell.runId)!, { experiment: 'locks', resume: true }).action, 'resume');
  const result = await executeRun(config, { root, quiet: true });
  t.is(result.status, 'ok', result.reason);
  t.false(existsSync(lock), 'released at the end');
});

test('a lock from before a reboot is stale even when its pid is alive again', (t) => {
  const dir = temp('reboot');
  writeFileSync(join(dir, RUN_LOCK), owner(process.pid, { boot: 'an-earlier-boot' }));
  const thisBoot = existsSync('/proc/sys/kernel/random/boot_id');
  // Where the kernel has no boot id the pid is all there is to go by.
  t.is(lockHolder(dir, RUN_LOCK) === null, thisBoot);
  writeFileSync(join(dir, RUN_LOCK), owner(process.pid, { host: 'another-host' }));
  t.regex(lockHolder(dir, RUN_LOCK) ?? '', /^process \d+ on another-host/, 'a process on another host cannot be checked, so its lock holds');
});

test('a cell that another process takes after the grid planned it is skipped when its turn comes, and nothing is written', async (t) => {
  const root = temp('taken');
  const file = join(temp('exp'), 'taken.yaml');
  writeFileSync(file, 'name: taken\nseeds: [1, 2]\ngrid:\n  - methods: [global-pointer]\n    datasets: [scholar-xl]\n    set: { encoder.pretrained: null }\n');
  const dirs: string[] = [];
  const lines: string[] = [];
  // Both cells are new at planning time (and need no shared pretraining); then another process (this one,
  // alive) takes them.
  const summary = await runExperiment(file, {
    root,
    quiet: true,
    print: (line) => lines.push(line),
    onPlan: (plan) => {
      t.deepEqual(plan.pretrain, []);
      t.deepEqual(
        plan.plan.map((p) => p.action),
        ['run', 'run'],
      );
      for (const p of plan.plan) {
        const dir = runDir(p.cell.config!, root);
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, RUN_LOCK), owner(process.pid));
        dirs.push(dir);
      }
    },
  });
  t.deepEqual(
    summary.outcomes.map((o) => o.outcome.status),
    ['skipped', 'skipped'],
  );
  t.regex(lines.join('\n'), /\[1\/2\] skipped .*: running: process \d+ on /);
  for (const dir of dirs) t.deepEqual(readdirSync(dir), [RUN_LOCK], 'no child ran and no result was written');
});

test('a child that stops at a lock taken after its turn came writes nothing over the holder', async (t) => {
  const root = temp('race');
  const config = tinyRun();
  const dir = runDir(config, root);
  // The child is the one that loses the race: the lock appears (held by the live parent) and it exits.
  const script = join(temp('scripts'), 'lose.mjs');
  writeFileSync(
    script,
    `import { mkdirSync, writeFileSync } from 'node:fs';\n` +
      `process.once('message', () => { mkdirSync(${JSON.stringify(dir)}, { recursive: true }); ` +
      `writeFileSync(${JSON.stringify(join(dir, RUN_LOCK))}, ${JSON.stringify(owner(process.pid))}); process.exit(3); });\n`,
  );
  const outcome = await runCellInChild(config, root, { script });
  t.is(outcome.status, 'skipped');
  t.regex(outcome.reason ?? '', /^running: process \d+ on /);
  t.false(existsSync(join(dir, RESULT_FILE)));
  t.false(outcome.writtenByParent);
});
