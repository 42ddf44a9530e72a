/** Bringing your own corpus: readers' bad-input checks, user datasets, fingerprints, brat round trip. */
import test from 'ava';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, resolveConfigFromObject } from '../../src/config/load.js';
import { readBrat, writeBrat } from '../../src/data/brat.js';
import { checkIssues, describeIssues } from '../../src/data/issues.js';
import { loadOrTrainTokenizer, loadProtocolFor, runTokenizerKey, wordsOf } from '../../src/data/pipeline.js';
import { readDocumentsWithReport, readSenerJsonlWithReport, writeSenerJsonl } from '../../src/data/readers.js';
import { registryFor } from '../../src/data/registry.js';
import { SubwordTokenizer } from '../../src/data/tokenizer.js';
import type { Document } from '../../src/data/types.js';
import { LongnerError } from '../../src/errors.js';
import { runId } from '../../src/runs/id.js';
import { pretrainRunDir, pretrainTokenizerKey } from '../../src/train/pretrain/index.js';
import { tempDirs } from '../temp-dirs.js';

const temp = tempDirs();

const base = temp('own');
let counter = 0;
function file(lines: string[] | Buffer): string {
  const path = join(base, `f${counter++}.jsonl`);
  writeFileSync(path, Array.isArray(lines) ? `${lines.join('\n')}\n` : lines);
  return path;
}
const line = (id: string, words: string[], entity: unknown[] = []): string => JSON.stringify({ doc_id: id, text: words, entity });

/** A corpus folder with its config, outside the repository; returns the config path. */
function corpus(): { dir: string; config: string } {
  const dir = join(base, `corpus${counter++}`);
  mkdirSync(dir);
  const doc = (i: number, p: string): Document => ({
    id: `${p}${i}`,
    words: ['Alpha', 'meets', `Beta${p}${i}`, 'in', 'town', '.'],
    entities: [
      { start: 0, end: 1, type: 'Person' },
      { start: 2, end: 3, type: 'Place' },
    ],
  });
  writeSenerJsonl(
    join(dir, 'train.jsonl'),
    [0, 1, 2, 3, 4, 5].map((i) => doc(i, 't')),
  );
  writeSenerJsonl(
    join(dir, 'dev.jsonl'),
    [0, 1].map((i) => doc(i, 'v')),
  );
  writeSenerJsonl(
    join(dir, 'test.jsonl'),
    [0, 1].map((i) => doc(i, 'x')),
  );
  const config = join(dir, 'own.yaml');
  writeFileSync(
    config,
    'dataset:\n  name: own\n  files: {train: train.jsonl, validation: dev.jsonl, test: test.jsonl}\ntokenizer: {vocabSize: 100}\nencoder: {pretrained: mlm}\n',
  );
  return { dir, config };
}

test('duplicate document ids name both lines', (t) => {
  const path = file([line('a', ['x']), line('b', ['y']), line('a', ['z'])]);
  const err = t.throws(() => readSenerJsonlWithReport(path), { instanceOf: LongnerError });
  t.regex(err!.message, /f\d+\.jsonl:3: document id "a" already used on line 1; expected a unique id per document in a file$/);
});

test('a JSON array instead of JSON Lines says one object per line is expected', (t) => {
  const spread = file(['[', `  ${line('a', ['x'])}`, ']']);
  t.throws(() => readDocumentsWithReport(spread, 'auto'), {
    instanceOf: LongnerError,
    message: /:1: expected JSON Lines: one JSON object per line, one document per object; this looks like a JSON array spread over lines/,
  });
  const oneLine = file([`[${line('a', ['x'])}]`]);
  t.throws(() => readDocumentsWithReport(oneLine, 'sener'), {
    instanceOf: LongnerError,
    message: /:1: expected JSON Lines: one JSON object per line, one document per object, got a JSON array/,
  });
});

test('invalid UTF-8 and entity words that disagree with the text: counted with examples, a warning or a --strict error', (t) => {
  const good = Buffer.from(`${line('a', ['Alpha', 'x'], [[0, 1, ['Alpha'], 'P']])}\n`);
  const bad = Buffer.concat([Buffer.from('{"doc_id": "b", "text": ["caf'), Buffer.from([0xe9]), Buffer.from('"], "entity": [[0, 1, ["cafe"], "P"]]}\n')]);
  const r = readSenerJsonlWithReport(file(Buffer.concat([good, bad])));
  t.is(r.issues.invalidUtf8.count, 1);
  t.deepEqual(r.issues.invalidUtf8.lines, [2]);
  t.is(r.issues.wordMismatches.count, 1);
  t.regex(r.issues.wordMismatches.examples[0]!, /:2: entity \[0, 1, P\] stores \["cafe"\], the text has \["caf\uFFFD"\]/);
  const text = describeIssues(r)!;
  t.regex(text, /1 entity stores words that differ from text\[start:end\].*1 line with bytes that are not UTF-8 \(line 2; they read as U\+FFFD\)/);
  t.notThrows(() => checkIssues(r, false));
  t.throws(() => checkIssues(r, true), { instanceOf: LongnerError, message: /an error under --strict/ });
});

test('dataset.files: paths relative to the config file, types inferred from the training file and sorted', async (t) => {
  const { dir, config: path } = corpus();
  const { config } = loadConfig(path);
  t.is(config.dataset.files?.train, join(dir, 'train.jsonl'));
  const data = await loadProtocolFor(config);
  t.deepEqual(data.types, ['Person', 'Place']);
  t.deepEqual([data.train.length, data.validation.length, data.test.length], [6, 2, 2]);
  t.regex(data.description, /train = the train file \(6 docs\)/);
});

test('a name taken by a registered dataset, an empty test file and an unknown type are one-line errors', async (t) => {
  const { dir, config: path } = corpus();
  t.throws(() => runId(loadConfig(path, { set: ['dataset.name=scirex'] }).config), {
    instanceOf: LongnerError,
    message: /dataset name "scirex" is taken by a registered dataset/,
  });
  writeFileSync(join(dir, 'empty.jsonl'), '\n');
  const empty = loadConfig(path, { set: [`dataset.files.test=${join(dir, 'empty.jsonl')}`] }).config;
  await t.throwsAsync(loadProtocolFor(empty), {
    instanceOf: LongnerError,
    message: /empty\.jsonl: no documents; expected at least one JSON object per line \(it is the test split of own\)/,
  });
  const typed = loadConfig(path, { set: ['dataset.types=[Person]'] }).config;
  await t.throwsAsync(loadProtocolFor(typed), {
    instanceOf: LongnerError,
    message: /train\.jsonl:1: document t0: entity \[2, 3, Place\] has a type that is not one of own's types \(expected one of Person\)/,
  });
  const noValidation = loadConfig(path, { set: ['dataset.files.validation=null', 'dataset.validationFraction=0'] }).config;
  await t.throwsAsync(loadProtocolFor(noValidation), { instanceOf: LongnerError, message: /dataset\.validationFraction 0 holds out no validation document/ });
});

test('editing a data file gives a new run id, pretraining run and tokenizer', async (t) => {
  const { dir, config: path } = corpus();
  const config = loadConfig(path).config;
  const before = { id: runId(config), pretrain: pretrainRunDir(config, base), tok: runTokenizerKey(config), preTok: pretrainTokenizerKey(config) };
  t.is(runId(loadConfig(path).config), before.id, 'the same data gives the same id');
  const tokPath = join(base, `tok${counter++}.json`);
  const words = async () => wordsOf((await loadProtocolFor(config)).train);
  const w1 = [...(await words())];
  await loadOrTrainTokenizer(tokPath, () => w1, config, before.tok);
  const bytesBefore = readFileSync(tokPath, 'utf8');

  const train = join(dir, 'train.jsonl');
  writeFileSync(train, readFileSync(train, 'utf8').replaceAll('town', 'village'));
  const edited = loadConfig(path).config;
  t.not(runId(edited), before.id);
  t.not(pretrainRunDir(edited, base), before.pretrain);
  t.not(runTokenizerKey(edited), before.tok);
  t.not(pretrainTokenizerKey(edited), before.preTok);
  const w2 = [...wordsOf((await loadProtocolFor(edited)).train)];
  const tok = await loadOrTrainTokenizer(tokPath, () => w2, edited, runTokenizerKey(edited));
  t.not(readFileSync(tokPath, 'utf8'), bytesBefore, 'the tokenizer trained on the old text is not reused');
  t.is(SubwordTokenizer.readKey(tokPath), runTokenizerKey(edited));
  t.true(tok.vocabSize > 0);
  // Moving the corpus does not change the run: the content counts, not the path.
  const moved = resolveConfigFromObject({ ...edited, dataset: { ...edited.dataset, files: { ...edited.dataset.files!, test: join(dir, 'test.jsonl') } } });
  t.is(runId(moved), runId(edited));
  t.is(registryFor(edited).dataset('own').source, "the config's dataset.files (dataset own)");
});

test('brat standoff round-trips documents, entities and scores; unsafe ids get safe file names', (t) => {
  const docs: Document[] = [
    {
      id: 'd1',
      words: ['Alpha', 'meets', 'Beta', 'in', 'New', 'York', '.'],
      entities: [{ start: 0, end: 1, type: 'Person' }, { start: 4, end: 6, type: 'Place', score: 0.75 } as Document['entities'][number]],
    },
    { id: 'd2', words: ['Nothing', 'here'], entities: [] },
  ];
  const out = join(base, `brat${counter++}`);
  writeBrat(out, docs);
  t.is(readFileSync(join(out, 'd1.ann'), 'utf8'), 'T1\tPerson 0 5\tAlpha\nT2\tPlace 20 28\tNew York\n#2\tAnnotatorNotes T2\tscore=0.75\n');
  t.deepEqual(readBrat(out), docs);
  t.throws(() => writeBrat(join(base, 'x'), [{ id: 'a', words: ['a b'], entities: [] }]), { instanceOf: LongnerError, message: /holds a space/ });
});
