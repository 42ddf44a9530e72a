import test from 'ava';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LongnerError } from '../../src/errors.js';
import { loadConfig } from '../../src/config/load.js';
import { loadExperiment } from '../../src/runs/experiment.js';
import { expandGrid, runnableCells, type GridCell } from '../../src/runs/grid.js';
import { findRun } from '../../src/runs/locate.js';
import { GRID_FILE, planExperiment, runExperiment } from '../../src/runs/runner.js';
import { parseShard, shardItems } from '../../src/runs/shard.js';
import { runCellInChild } from '../../src/runs/spawn.js';
import { planTable } from '../../src/cli/run.js';
import { fromRoot } from '../../src/util/paths.js';
import { fixtureResult, writeFixture } from '../fixtures/report/results.js';
import { tempDirs } from '../temp-dirs.js';

const temp = tempDirs();

/** Writes experiments/<name>.yaml in a temp folder (the name must match the file) and returns its path. */
function experimentFile(name: string, body: string): string {
  const dir = temp('exp');
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, `name: ${name}\n${body}`);
  return file;
}

const GRID = `
seeds: [11, 22]
grid:
  - methods: [global-pointer, span-enum]
    datasets: [scholar-xl, scirex, no-such-dataset]
    set: { train.maxSteps: 7 }
  - configs: [configs/sener/scholar-xl.yaml]
    axes:
      w: { keys: [sener.window, encoder.window], values: [16, 32, 64] }
presets:
  quick:
    seeds: [11]
    set: { encoder.window: 8, dataset.maxDocs.test: 3 }
`;

test('the grid expands methods x datasets x axes x seeds, with set, axes and presets applied in order', (t) => {
  const file = experimentFile('grid-a', GRID);
  const cells = expandGrid(loadExperiment(file), { set: ['train.epochs=2'] });
  // 2 methods x 2 real datasets x 2 seeds + 2 not-configured + 3 windows x 2 seeds
  t.is(cells.length, 2 * 2 * 2 + 2 + 3 * 2);
  const runnable = cells.filter((c) => c.config !== null);
  t.is(new Set(runnable.map((c) => c.runId)).size, runnable.length, 'run ids are unique');
  t.true(
    runnable.every((c) => c.config!.train.epochs === 2),
    'command-line --set reaches every cell',
  );
  t.true(
    runnable.every((c) => c.config!.experiment === 'grid-a'),
    'runs are stored under the experiment',
  );
  t.deepEqual(new Set(runnable.map((c) => c.seed)), new Set([11, 22]));
  for (const c of runnable.filter((x) => x.method !== 'sener')) t.is(c.config!.train.maxSteps, 7);
  const sener = runnable.filter((c) => c.method === 'sener');
  t.deepEqual(
    sener.map((c) => [c.axes.w, c.config!.sener.window, c.config!.encoder.window]),
    [16, 16, 32, 32, 64, 64].map((w) => [w, w, w]),
    'both keys of an axis take its value',
  );
  const missing = cells.filter((c) => c.config === null);
  t.deepEqual(missing.map((c) => c.runId).sort(), ['global-pointer-no-such-dataset-unconfigured', 'span-enum-no-such-dataset-unconfigured']);
  t.regex(missing[0]!.notConfigured!, /no model configured \(configs\/.*no-such-dataset\.yaml does not exist\)/);
});

test("a preset applies the config preset and the experiment's block; the cell's own axes win over the block", (t) => {
  const file = experimentFile('grid-b', GRID);
  const quick = expandGrid(loadExperiment(file, { preset: 'quick' })).filter((c) => c.config !== null);
  t.deepEqual(new Set(quick.map((c) => c.seed)), new Set([11]), "the block's seeds replace the experiment's");
  t.true(quick.every((c) => c.config!.preset === 'quick' && c.config!.dataset.maxDocs.test === 3));
  t.true(quick.filter((c) => c.method !== 'sener').every((c) => c.config!.encoder.window === 8));
  t.deepEqual(
    quick.filter((c) => c.method === 'sener').map((c) => c.config!.encoder.window),
    [16, 32, 64],
  );
  const plain = expandGrid(loadExperiment(file)).filter((c) => c.config !== null);
  t.not(plain[0]!.runId, quick[0]!.runId, 'the preset changes the run id');
});

test('bad experiment files give one-line errors naming the file and key', (t) => {
  const bad = experimentFile('grid-c', 'grid:\n  - methods: [sener]\n');
  t.throws(() => loadExperiment(bad), { instanceOf: LongnerError, message: /grid-c\.yaml: grid\.0\.datasets: expected a list of datasets/ });
  const unknown = experimentFile('grid-d', 'grids: []\n');
  t.throws(() => loadExperiment(unknown), { instanceOf: LongnerError, message: /grid-d\.yaml: \(top level\): unknown key\(s\) "grids"/ });
  const key = experimentFile('grid-e', 'grid:\n  - configs: [configs/sener/scholar-xl.yaml]\n    set: { train.nope: 1 }\n');
  t.throws(() => expandGrid(loadExperiment(key)), { instanceOf: LongnerError, message: /grid-e\.yaml: grid\.0 .*unknown key "train\.nope"/ });
  const name = experimentFile('grid-f', '');
  writeFileSync(name, 'name: other\n');
  t.throws(() => loadExperiment(name), { message: /must equal the file's name "grid-f"/ });
});

test('shards are deterministic, disjoint, cover the grid and differ in size by at most one', (t) => {
  const items = Array.from({ length: 23 }, (_, i) => ({ runId: `run-${String((i * 7) % 23).padStart(2, '0')}` }));
  const n = 4;
  const shards = Array.from({ length: n }, (_, i) => shardItems(items, { index: i, count: n }));
  const ids = shards.flatMap((s) => s.map((x) => x.runId));
  t.is(ids.length, items.length);
  t.deepEqual([...ids].sort(), items.map((x) => x.runId).sort());
  const sizes = shards.map((s) => s.length);
  t.true(Math.max(...sizes) - Math.min(...sizes) <= 1);
  // Same answer from a differently ordered grid (each machine expands the grid itself).
  t.deepEqual(shardItems([...items].reverse(), { index: 2, count: n }), shards[2]);
  t.deepEqual(parseShard('3/8'), { index: 3, count: 8 });
  t.throws(() => parseShard('8/8'), { instanceOf: LongnerError, message: /0 <= i < n/ });
  t.throws(() => parseShard('1-4'), { instanceOf: LongnerError });
});

test('the plan skips finished runs (in any experiment), retries failures on request, resumes partial runs', (t) => {
  const file = experimentFile('grid-g', 'seeds: [1, 2, 3, 4]\ngrid:\n  - methods: [global-pointer]\n    datasets: [scholar-xl]\n');
  const root = temp('runs');
  const cells = runnableCells(expandGrid(loadExperiment(file)));
  const bySeed = (s: number): GridCell => cells.find((c) => c.seed === s)!;
  writeFixture(root, 'some-other-experiment', bySeed(1), fixtureResult(bySeed(1)));
  writeFixture(root, 'grid-g', bySeed(2), fixtureResult(bySeed(2), { status: 'oom', reason: 'memory access out of bounds' }));
  mkdirSync(join(root, 'grid-g', bySeed(3).runId), { recursive: true });
  writeFileSync(join(root, 'grid-g', bySeed(3).runId, 'config.json'), '{}');
  t.is(findRun(root, 'grid-g', bySeed(1).runId).experiment, 'some-other-experiment');

  const action = (opts: { resume?: boolean; retryFailed?: boolean }) =>
    Object.fromEntries(planExperiment(file, { root, ...opts }).plan.map((p) => [p.cell.seed, `${p.found.status}:${p.action}`]));
  t.deepEqual(action({}), { 1: 'ok:skip', 2: 'oom:skip', 3: 'partial:run', 4: 'missing:run' });
  t.deepEqual(action({ resume: true, retryFailed: true }), { 1: 'ok:skip', 2: 'oom:run', 3: 'partial:resume', 4: 'missing:run' });

  const table = planTable(planExperiment(file, { root }));
  t.regex(table, /finished in some-other-experiment\//);
  t.regex(table, /oom .*--retry-failed/);
  t.regex(table, /missing +run +new/);
  const shard = planExperiment(file, { root, shard: { index: 1, count: 2 } }).plan;
  t.is(shard.length, 2);
});

test("a preset block's datasets and axes narrow the grid and the report; unknown names are errors", (t) => {
  const grid =
    'grid:\n  - methods: [sener]\n    datasets: [scholar-xl, scirex]\n    axes:\n      w: { keys: [sener.window, encoder.window], values: [16, 32] }\n';
  const report = 'report: { datasets: [scholar-xl, scirex] }\n';
  const file = experimentFile('narrow', `${grid}${report}presets:\n  small:\n    preset: quick\n    datasets: [scirex]\n    axes: { w: [8] }\n`);
  const full = expandGrid(loadExperiment(file, { preset: 'quick' }));
  t.is(full.length, 4);
  const small = loadExperiment(file, { preset: 'small' });
  const cells = expandGrid(small);
  t.deepEqual(
    cells.map((c) => [c.dataset, c.axes.w, c.config?.sener.window, c.config?.encoder.window]),
    [['scirex', 8, 8, 8]],
  );
  t.deepEqual(small.report.datasets, ['scirex']);
  const typo = experimentFile('narrow-typo', `${grid}presets:\n  small: { datasets: [scirexx] }\n`);
  t.throws(() => loadExperiment(typo, { preset: 'small' }), { message: /presets\.small\.datasets: "scirexx" is not a dataset of the grid/ });
  const axisTypo = experimentFile('narrow-axis', `${grid}presets:\n  small: { axes: { window: [8] } }\n`);
  t.throws(() => loadExperiment(axisTypo, { preset: 'small' }), { message: /presets\.small\.axes: "window" is not an axis of the grid/ });
});

for (const preset of ['quick', 'cpu']) {
  test(`every experiment file of the repository expands; ${preset} cells are shared across experiments`, (t) => {
    const names = ['table1-datasets', 'table2-main', 'table3-ablation', 'fig7-efficiency', 'window-sweep', 'per-type'];
    const ids = new Map<string, Set<string>>();
    for (const name of names) {
      const cells = expandGrid(loadExperiment(fromRoot('experiments', `${name}.yaml`), { preset }));
      ids.set(name, new Set(cells.filter((c) => c.config !== null).map((c) => c.runId)));
    }
    t.is(ids.get('table1-datasets')!.size, 0);
    t.true(ids.get('table2-main')!.size >= 5 * 3 * 3, 'every span method x dataset x seed');
    const t2 = ids.get('table2-main')!;
    t.true(
      [...ids.get('per-type')!].every((id) => t2.has(id)),
      "per-type's cells are table2-main's runs",
    );
    const newT3 = [...ids.get('table3-ablation')!].filter((id) => !t2.has(id));
    const sweep = [...ids.get('window-sweep')!];
    // quick: one seed of everything; cpu: 3 seeds, Scholar-XL and SciREX, w in 8..64 (the files say why).
    const [seeds, datasets, windows] = preset === 'quick' ? [1, 3, 5] : [3, 2, 4];
    t.is(sweep.length, windows * datasets * seeds);
    // Table 3's SeNER and w/o LoRA rows are table2-main's sener and full fine-tuning cells.
    t.is(newT3.length, 6 * datasets * seeds, 'only the other six ablation rows of table3 are new');
    // At the cpu preset Profiling-07 trains 2,400 steps (configs/presets/cpu.yaml, datasets block):
    // profiling-budget's 2,400-step cells are table2-main's runs, its 800-step ones are not.
    if (preset === 'cpu') {
      const budget = expandGrid(loadExperiment(fromRoot('experiments', 'profiling-budget.yaml'), { preset }));
      const at = (steps: number) => budget.filter((c) => c.axes.steps === steps);
      t.is(at(2400).length, 5);
      t.true(
        at(2400).every((c) => t2.has(c.runId)),
        "profiling-budget's 2,400-step cells are table2-main's runs",
      );
      t.true(at(800).every((c) => !t2.has(c.runId)));
    }
  });
}

test("table3's ablation rows are SeNER's dataset configs plus exactly the switch of configs/ablations/", (t) => {
  const cells = expandGrid(loadExperiment(fromRoot('experiments', 'table3-ablation.yaml'), { preset: null }));
  const rows = new Set(cells.map((c) => c.row).filter((row) => row !== 'sener'));
  t.is(rows.size, 7);
  for (const row of rows) {
    const cell = cells.find((c) => c.row === row && c.dataset === 'scholar-xl' && c.seed === 2288)!;
    const { config } = loadConfig(fromRoot('configs', 'ablations', `sener-${row}.yaml`), { set: ['train.seed=2288'] });
    t.deepEqual({ ...cell.config!, experiment: null }, { ...config, experiment: null }, row);
  }
});

test('a child that dies without a result gets one written by the parent (oom or failed, with the reason)', async (t) => {
  const root = temp('runs');
  const file = experimentFile('grid-h', 'grid:\n  - methods: [global-pointer]\n    datasets: [scholar-xl]\n');
  const cell = runnableCells(expandGrid(loadExperiment(file)))[0]!;
  const scripts = temp('scripts');
  const script = (name: string, body: string): string => {
    const path = join(scripts, name);
    writeFileSync(path, `process.once('message', () => { ${body} });\n`);
    return path;
  };
  const killed = await runCellInChild(cell.config!, root, { script: script('kill.mjs', 'process.kill(process.pid, "SIGKILL");') });
  t.is(killed.status, 'oom');
  t.true(killed.writtenByParent);
  t.regex(killed.reason ?? '', /SIGKILL/);
  const result = JSON.parse(readFileSync(join(killed.dir, 'result.json'), 'utf8')) as { status: string; seed: number };
  t.is(result.status, 'oom');
  const wasm = await runCellInChild(cell.config!, root, {
    script: script('wasm.mjs', 'console.error("RuntimeError: memory access out of bounds"); process.exit(7);'),
  });
  t.is(wasm.status, 'oom');
  // The previous attempt's result must not pass for this one's, even when its time stamp is not
  // older than this attempt's start (attempts can end and start within one millisecond).
  const stale = join(wasm.dir, 'result.json');
  writeFileSync(stale, JSON.stringify({ ...JSON.parse(readFileSync(stale, 'utf8')), createdAt: '2100-01-01T00:00:00.000Z' }));
  const crash = await runCellInChild(cell.config!, root, { script: script('crash.mjs', 'console.error("Error: something broke"); process.exit(3);') });
  t.is(crash.status, 'failed');
  t.regex(crash.reason ?? '', /exited with code 3: Error: something broke/);
  t.true(existsSync(join(crash.dir, 'child.log')));
});

// Trains on real Scholar-XL documents: only where the data resolves without a download (as the other
// real-data tests: the read-only mirror beside the project, or $LONGNER_DATA_MIRROR).
const dataMirror = process.env.LONGNER_DATA_MIRROR ?? fromRoot('..', 'shared', 'datasets');
const withData = existsSync(dataMirror) || existsSync(fromRoot('datasets', 'scholar-xl', 'dev.json')) ? test : test.skip;

withData('end to end: `run` trains a 1-cell grid in a child process, then skips it', async (t) => {
  const root = temp('runs');
  const file = experimentFile(
    'tiny-e2e',
    [
      'grid:',
      '  - methods: [global-pointer]',
      '    datasets: [scholar-xl]',
      'presets:',
      '  quick:',
      '    seeds: [5]',
      '    set:',
      '      dataset.maxDocs: { train: 2, validation: 1, test: 1 }',
      '      segment.maxLen: 64',
      '      train.maxSteps: 2',
      '      encoder.pretrained: null',
      '',
    ].join('\n'),
  );
  const lines: string[] = [];
  const first = await runExperiment(file, { root, preset: 'quick', quiet: true, print: (l) => lines.push(l) });
  t.is(first.outcomes.length, 1);
  const outcome = first.outcomes[0]!.outcome;
  t.is(outcome.status, 'ok', outcome.reason ?? '');
  t.false(outcome.writtenByParent, 'the child wrote result.json itself');
  const result = JSON.parse(readFileSync(join(outcome.dir, 'result.json'), 'utf8')) as { status: string; seed: number; preset: string };
  t.deepEqual([result.status, result.seed, result.preset], ['ok', 5, 'quick']);
  t.true(existsSync(join(root, 'tiny-e2e', GRID_FILE)));
  t.regex(lines.join('\n'), /\[1\/1\] ok/);
  const second = await runExperiment(file, { root, preset: 'quick', quiet: true, print: () => undefined });
  t.is(second.outcomes.length, 0, 'a finished run is not run again');
  t.is(second.plan[0]!.action, 'skip');
});
