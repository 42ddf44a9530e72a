/**
 * The issue's "done when": a corpus in its own folder, configured from a file outside the repository,
 * trains, evaluates, predicts and appears in a report, with the checkout's `git status` unchanged; and
 * each bad-input case is a one-line error, exit 2, before any training.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readBrat } from '../../src/data/brat.js';
import { readSenerJsonl, writeSenerJsonl } from '../../src/data/readers.js';
import type { Document } from '../../src/data/types.js';
import { fromRoot } from '../../src/util/paths.js';
import { tempDirs } from '../temp-dirs.js';

const temp = tempDirs();

const base = temp('own-cli');
const home = join(base, 'home');
const env: NodeJS.ProcessEnv = { ...process.env, LONGNER_HOME: home, LONGNER_RUNS_DIR: join(base, 'runs') };
delete env.LONGNER_STRICT;

function longner(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [fromRoot('bin', 'longner.js'), ...args], { encoding: 'utf8', env, cwd: base });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function gitStatus(): string {
  return spawnSync('git', ['status', '--porcelain', '--untracked-files=all'], { cwd: fromRoot(), encoding: 'utf8' }).stdout;
}

const doc = (i: number, p: string): Document => ({
  id: `${p}${i}`,
  words: ['Alpha', 'met', `Beta${p}${i}`, 'in', 'the', 'town', 'of', `Gamma${i}`, '.'],
  entities: [
    { start: 0, end: 1, type: 'Person' },
    { start: 5, end: 8, type: 'Place' },
    { start: 7, end: 8, type: 'Name' },
  ],
});
const corpus = join(base, 'corpus');
mkdirSync(corpus);
writeSenerJsonl(
  join(corpus, 'train.jsonl'),
  [0, 1, 2, 3, 4, 5].map((i) => doc(i, 't')),
);
writeSenerJsonl(
  join(corpus, 'dev.jsonl'),
  [0, 1].map((i) => doc(i, 'v')),
);
writeSenerJsonl(
  join(corpus, 'test.jsonl'),
  [0, 1].map((i) => doc(i, 'x')),
);
const TINY = `
tokenizer: {vocabSize: 100}
segment: {maxLen: 32}
encoder: {layers: 1, hidden: 16, heads: 2, ffn: 32, window: 4, pretrained: mlm}
pretrain: {steps: 2, batchSize: 2, seqLen: 16}
train: {epochs: 1, maxSteps: 2, batchSize: 2}
sener: {window: 4, cnnDim: 4, biaffineSize: 8, depth: 1}
eval: {batchSize: 2}
`;
writeFileSync(
  join(corpus, 'sener.yaml'),
  `method: sener\nexperiment: mine\ndataset:\n  name: mine\n  files: {train: train.jsonl, validation: dev.jsonl, test: test.jsonl}\n${TINY}`,
);
writeFileSync(join(corpus, 'mine.yaml'), 'name: mine\nseeds: [7]\ngrid:\n  - configs: [sener.yaml]\n    label: sener\nreport:\n  tables: [main]\n');

test.serial('a user corpus configured outside the repository trains, evaluates, predicts and shows in a report; git status unchanged', (t) => {
  const before = gitStatus();

  const added = longner('datasets', 'add', 'mine-reg', '--train', 'corpus/train.jsonl', '--validation', 'corpus/dev.jsonl', '--test', 'corpus/test.jsonl');
  t.is(added.code, 0, added.stderr);
  t.regex(added.stdout, /added mine-reg in .*datasets\.json/);
  t.regex(added.stdout, /types: Name, Person, Place \(inferred from the training file\)/);
  const listed = longner('datasets', 'list', 'mine-reg');
  t.is(listed.code, 0, listed.stderr);
  t.regex(listed.stdout, /mine-reg: your dataset, defined in .*datasets\.json \(3 types\)/);

  const trained = longner('train', join(corpus, 'sener.yaml'));
  t.is(trained.code, 0, trained.stderr);
  const runDir = /record: (.*)/.exec(trained.stdout)![1]!.trim();
  t.true(runDir.startsWith(`${join(base, 'runs', 'mine')}/`), runDir);
  const result = JSON.parse(readFileSync(join(runDir, 'result.json'), 'utf8')) as {
    status: string;
    data: { types: string[]; fingerprints: Record<string, Record<string, string>> };
  };
  t.is(result.status, 'ok');
  t.deepEqual(result.data.types, ['Name', 'Person', 'Place']);
  t.deepEqual(Object.keys(result.data.fingerprints.mine!), ['test', 'train', 'validation']);
  t.true(existsSync(join(runDir, 'dataset.json')));

  const id = runDir.split('/').at(-1)!;
  const evaluated = longner('eval', id);
  t.is(evaluated.code, 0, evaluated.stderr);
  t.regex(evaluated.stdout, /sener on mine test \(2 docs\)/);

  const brat = longner('predict', id, 'corpus/test.jsonl', '--format', 'brat', '--out', 'brat');
  t.is(brat.code, 0, brat.stderr);
  t.deepEqual(
    readBrat(join(base, 'brat')).map((d) => d.id),
    ['x0', 'x1'],
  );
  const sener = longner('predict', id, 'corpus/test.jsonl', '--format', 'sener', '--out', 'pred.sener.jsonl');
  t.is(sener.code, 0, sener.stderr);
  t.deepEqual(
    readSenerJsonl(join(base, 'pred.sener.jsonl')).map((d) => d.words),
    [doc(0, 'x').words, doc(1, 'x').words],
  );

  const grid = longner('run', join(corpus, 'mine.yaml'));
  t.is(grid.code, 0, grid.stderr + grid.stdout);
  const report = longner('report', join(corpus, 'mine.yaml'), '--out', join(base, 'report'));
  t.is(report.code, 0, report.stderr);
  const md = readFileSync(join(base, 'report', 'index.md'), 'utf8');
  t.regex(md, /\*\*mine\*\*, test split/);
  t.regex(md, /\| sener \| 1 ok \|/);

  t.is(gitStatus(), before, 'nothing written inside the checkout');
});

function badCase(name: string, lines: string[]): string {
  const path = join(base, `${name}.jsonl`);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

function exits2(t: import('ava').ExecutionContext, r: ReturnType<typeof longner>, pattern: RegExp): void {
  t.is(r.code, 2, r.stderr);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  t.regex(r.stderr, pattern);
}

const good = join(corpus, 'train.jsonl');
const line = (id: string, entity: unknown[] = []) => JSON.stringify({ doc_id: id, text: ['Alpha', 'x'], entity });

test('bad input: one line, exit 2, before any training', (t) => {
  const dup = badCase('dup', [line('a'), line('b'), line('a')]);
  exits2(t, longner('datasets', 'add', 'dup', '--train', dup, '--test', good), /dup\.jsonl:3: document id "a" already used on line 1/);

  const array = badCase('array', ['[', line('a'), ']']);
  exits2(t, longner('datasets', 'add', 'arr', '--train', good, '--test', array), /array\.jsonl:1: expected JSON Lines: one JSON object per line/);

  const empty = badCase('empty', ['']);
  exits2(
    t,
    longner('datasets', 'add', 'emp', '--train', good, '--validation', empty, '--test', good),
    /empty\.jsonl: no documents; expected at least one JSON object per line \(it is the validation split of emp\)/,
  );

  const mismatch = badCase('mismatch', [line('m', [[0, 1, ['Alfa'], 'Person']])]);
  const warned = longner('datasets', 'add', 'mis', '--train', good, '--test', mismatch);
  t.is(warned.code, 0, warned.stderr);
  t.regex(
    warned.stderr,
    /warning: .*mismatch\.jsonl: 1 entity stores words that differ from text\[start:end\], e\.g\. .*mismatch\.jsonl:1: entity \[0, 1, Person\] stores \["Alfa"\], the text has \["Alpha"\].*--strict makes this an error/,
  );
  exits2(t, longner('--strict', 'datasets', 'stats', 'mis'), /mismatch\.jsonl: 1 entity stores words .*\(an error under --strict\)/);

  const typed = badCase('typed', [line('u', [[0, 1, ['Alpha'], 'Alien']])]);
  const registry = JSON.parse(readFileSync(join(home, 'datasets.json'), 'utf8')) as { datasets: unknown[] };
  registry.datasets.push({ name: 'typed', files: { train: good, validation: null, test: typed }, format: 'sener', types: ['Person', 'Place', 'Name'] });
  writeFileSync(join(home, 'datasets.json'), JSON.stringify(registry));
  exits2(
    t,
    longner('datasets', 'stats', 'typed'),
    /typed\.jsonl:1: document u: entity \[0, 1, Alien\] has a type that is not one of typed's types \(expected one of Person, Place, Name\)/,
  );

  const cfg = join(base, 'empty-test.yaml');
  writeFileSync(cfg, `method: sener\ndataset:\n  name: emptytest\n  files: {train: ${good}, validation: ${good}, test: ${empty}}\n${TINY}`);
  const train = longner('train', cfg);
  // train prints its backend and run folder first; the error itself is the last line.
  t.is(train.code, 2, train.stderr);
  t.regex(
    train.stderr.trim().split('\n').at(-1)!,
    /^longner: .*empty\.jsonl: no documents; expected at least one JSON object per line \(it is the test split of emptytest\)$/,
  );
  t.notRegex(train.stderr + train.stdout, /pretrain \[|train \[/, 'nothing trained');
});
