import test from 'ava';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LongnerError } from '../../src/errors.js';
import { readDocuments, readScirexJsonl, readSenerJsonl } from '../../src/data/readers.js';
import { createRegistry } from '../../src/data/registry.js';
import { computeStats, countByType, readPaperTable1 } from '../../src/data/stats.js';
import { fromRoot } from '../../src/util/paths.js';

const dir = mkdtempSync(join(tmpdir(), 'longner-stats-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

test('computeStats on a hand-computed fixture (entities as stored, duplicates included)', (t) => {
  // d1: 7 words, entities of 1, 3, 1, 1 words (one duplicate triple); d2: 5 words, 1 + 1; d3: 2 words, none.
  const s = computeStats(readSenerJsonl(fromRoot('test', 'fixtures', 'data', 'sener-small.json')));
  t.is(s.docs, 3);
  t.is(s.avgWords, 14 / 3);
  t.is(s.maxWords, 7);
  t.is(s.entities, 6);
  t.is(s.types, 3);
  t.is(s.avgEntityWords, 8 / 6);
  t.is(s.maxEntityWords, 3);
});

test('computeStats on nothing is all zeros, not NaN', (t) => {
  t.deepEqual(computeStats([]), { docs: 0, avgWords: 0, maxWords: 0, entities: 0, types: 0, avgEntityWords: 0, maxEntityWords: 0 });
});

test('countByType sorts by count then name', (t) => {
  const docs = readScirexJsonl(fromRoot('test', 'fixtures', 'data', 'scirex-small.jsonl'));
  t.deepEqual(countByType([...docs, docs[0]!]), [
    { type: 'Method', count: 2 },
    { type: 'Task', count: 2 },
    { type: 'Material', count: 1 },
    { type: 'Metric', count: 1 },
  ]);
});

test('readPaperTable1 reads the paper numbers', (t) => {
  const table = readPaperTable1();
  t.deepEqual(Object.keys(table).sort(), ['profiling-07', 'scholar-xl', 'scirex']);
  t.deepEqual(table.scirex, {
    docs: 438,
    avgWords: 5678.29,
    maxWords: 13731,
    entities: 156931,
    types: 4,
    avgEntityWords: 2.28,
    maxEntityWords: 18,
  });
  t.is(table['scholar-xl']!.entities, 20994);
  t.is(table['profiling-07']!.maxWords, 17382);
});

test('readPaperTable1 names the file, line and column of a bad cell', (t) => {
  const path = join(dir, 'table1.csv');
  writeFileSync(path, 'dataset,docs,avg_words,max_words,entities,types,avg_entity_words,max_entity_words\nx,1,2,3,4,5,6,7\ny,1,2,three,4,5,6,7\n');
  const err = t.throws(() => readPaperTable1(path), { instanceOf: LongnerError });
  t.regex(err?.message ?? '', /table1\.csv:3: column "max_words" must be a number/);
});

// The real files, only where the read-only mirror exists; the code path above is the same.
const mirror = fromRoot('..', 'shared', 'datasets');
const real = existsSync(mirror) ? test : test.skip;

real('computeStats on the real files matches research/datasets.md', async (t) => {
  const registry = createRegistry({ mirror, root: dir });
  const load = async (ds: string, split: string) => readDocuments(await registry.resolveSplit(ds, split, { offline: true }), registry.split(ds, split).format);

  const sxTest = computeStats(await load('scholar-xl', 'test'));
  t.is(sxTest.docs, 350);
  t.is(sxTest.entities, 3877);
  t.is(sxTest.types, 12);
  t.is(sxTest.maxWords, 624);
  t.is(sxTest.maxEntityWords, 463);

  const sxDev = computeStats(await load('scholar-xl', 'dev'));
  t.is(sxDev.docs, 349);
  t.is(sxDev.entities, 3308);
  t.is(sxDev.maxEntityWords, 480);

  const prTest = computeStats(await load('profiling-07', 'test'));
  t.is(prTest.docs, 143);
  t.is(prTest.entities, 2220);
  t.is(prTest.types, 13);
  t.is(prTest.avgEntityWords.toFixed(2), '8.88');

  const srTrain = computeStats(await load('scirex', 'train'));
  t.is(srTrain.docs, 306);
  t.is(srTrain.maxWords, 13731);
  t.is(srTrain.entities, 107997);
  t.is(srTrain.types, 4);
  t.is(srTrain.avgEntityWords.toFixed(2), '2.28');
  t.is(srTrain.maxEntityWords, 17);
});
