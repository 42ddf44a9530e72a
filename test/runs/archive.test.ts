import test from 'ava';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { collect } from '../../src/report/collect.js';
import { archiveGridSettings, archiveRun, relativePaths } from '../../src/runs/archive.js';
import { loadExperiment } from '../../src/runs/experiment.js';
import { expandGrid } from '../../src/runs/grid.js';
import { fixtureResult, prf, writeFixture } from '../fixtures/report/results.js';
import { tempDirs } from '../temp-dirs.js';

const temp = tempDirs();

test('relativePaths rewrites existing absolute paths only, at any depth', (t) => {
  const base = temp('paths');
  const folder = join(base, 'models', 'enc');
  mkdirSync(folder, { recursive: true });
  const from = join(base, 'results', 'x', 'run');
  const value = { a: folder, list: [folder, '/no/such/path'], unit: '/ 2', text: 'per token', n: 3, none: null };
  const out = relativePaths(value, from);
  t.is(out.a, join('..', '..', '..', 'models', 'enc'));
  t.is(resolve(from, out.a), folder, 'the relative path leads back to the folder from the archived file');
  t.deepEqual(out.list, [out.a, '/no/such/path'], 'a string that names no existing path is kept');
  t.is(out.unit, '/ 2');
  t.is(out.text, 'per token');
  t.is(out.n, 3);
  t.is(out.none, null);
});

test('an archived grid holds result.json and config.yaml without absolute paths, and reports the same', (t) => {
  const dir = temp('exp');
  const file = join(dir, 'fixture-archive.yaml');
  writeFileSync(file, 'name: fixture-archive\nseeds: [1, 2]\ngrid:\n  - methods: [sener]\n    datasets: [scholar-xl]\n');
  const root = temp('runs');
  const encoder = join(temp('models'), 'enc');
  mkdirSync(encoder);
  const [one, two] = expandGrid(loadExperiment(file));
  const runFolder = writeFixture(root, 'fixture-archive', one!, fixtureResult(one!, { overall: prf(40, 40, 80) }));
  // What a real run folder also has: an absolute encoder.pretrained in config.json, and checkpoints.
  const config = JSON.parse(readFileSync(join(runFolder, 'config.json'), 'utf8')) as { encoder: { pretrained: string | null } };
  config.encoder.pretrained = encoder;
  writeFileSync(join(runFolder, 'config.json'), JSON.stringify(config));
  writeFileSync(join(runFolder, 'last.ckpt'), 'weights');
  mkdirSync(join(root, 'fixture-archive', two!.runId), { recursive: true }); // started, unfinished: not archived

  const to = temp('archive');
  t.is(archiveRun(runFolder, to, 'fixture-archive', one!.runId), 'added');
  archiveGridSettings(to, 'fixture-archive', null, []);
  const archived = join(to, 'fixture-archive', one!.runId);
  t.deepEqual(readdirSync(archived).sort(), ['config.yaml', 'result.json']);
  for (const name of ['config.yaml', 'result.json']) {
    const text = readFileSync(join(archived, name), 'utf8');
    t.false(text.includes(encoder), `${name} holds no absolute path`);
    t.false(text.includes(root), `${name} does not name the runs root`);
  }
  const yaml = readFileSync(join(archived, 'config.yaml'), 'utf8');
  const pretrained = /pretrained: (\S+)/.exec(yaml)?.[1];
  t.truthy(pretrained);
  t.is(resolve(archived, pretrained!), encoder, 'written relative to the archived file, as config files write paths');
  t.is(archiveRun(runFolder, to, 'fixture-archive', one!.runId), 'unchanged', 'archiving twice changes nothing');

  // The archive copied into another runs root (to finish the grid there) archives back unchanged.
  const again = join(temp('runs-again'), 'fixture-archive', one!.runId);
  mkdirSync(again, { recursive: true });
  for (const name of ['config.yaml', 'result.json']) writeFileSync(join(again, name), readFileSync(join(archived, name)));
  t.is(archiveRun(again, to, 'fixture-archive', one!.runId), 'unchanged', 'an archived record archives as it is');

  const fromRuns = collect(file, { root });
  const fromArchive = collect(file, { root: to });
  const f1 = (c: typeof fromRuns): [string, string, number | null][] =>
    c.groups.flatMap((g) => g.seeds.map((s): [string, string, number | null] => [s.runId, s.status, s.result?.metrics.overall?.f1 ?? null]));
  t.deepEqual(f1(fromArchive), [
    [one!.runId, 'ok', prf(40, 40, 80).f1],
    [two!.runId, 'missing', null],
  ]);
  t.deepEqual(f1(fromArchive).slice(0, 1), f1(fromRuns).slice(0, 1), 'the finished run reads the same from the archive');
  t.true(existsSync(join(to, 'fixture-archive', 'grid.json')));
});
