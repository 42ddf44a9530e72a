import test from 'ava';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LongnerError } from '../../src/errors.js';
import { documentKey } from '../../src/data/dedup.js';
import { DEFAULT_PROTOCOL_OPTIONS, holdOut, loadProtocol, loadRawSplit, protocolSource, protocolUses, type ProtocolOptions } from '../../src/data/protocol.js';
import { writeSenerJsonl } from '../../src/data/readers.js';
import { createRegistry, parseManifest, type Registry } from '../../src/data/registry.js';
import { generateDocuments } from '../../src/data/synthetic.js';
import type { Document } from '../../src/data/types.js';
import { fromRoot } from '../../src/util/paths.js';

const types = ['A', 'B'];
const gen = (docs: number, seed: number, prefix: string): Document[] =>
  generateDocuments({ docs, words: [30, 60], entitiesPerDoc: 3, entityLength: { dist: 'uniform', min: 1, max: 4 }, types, seed }).map((d) => ({
    ...d,
    id: `${prefix}${d.id}`,
  }));

// Fixture: "toy" (SeNER-like: local = dev minus a fraction, test = test) and "paperish" (SciREX-like:
// local = train minus N docs, test = dev), written into a temp mirror.
const base = mkdtempSync(join(tmpdir(), 'longner-protocol-'));
const mirror = join(base, 'mirror');
const testDocs = gen(9, 1, 'test-');
testDocs.push({ ...testDocs[2]!, id: 'test-repeat' }); // 10 docs, one repeat kept
testDocs[0] = { ...testDocs[0]!, entities: [...testDocs[0]!.entities, testDocs[0]!.entities[0]!] }; // one duplicate triple
const devDocs = gen(37, 2, 'dev-');
devDocs.splice(5, 0, { ...testDocs[4]!, id: 'dev-copy-of-test' });
devDocs.splice(10, 0, { ...devDocs[1]!, id: 'dev-repeat-1' }, { ...devDocs[2]!, id: 'dev-repeat-2' });
devDocs[20] = { ...devDocs[20]!, entities: [...devDocs[20]!.entities, ...devDocs[20]!.entities] }; // 3 duplicate triples
const trainDocs = gen(25, 3, 'train-');
trainDocs.push({ ...devDocs[0]!, id: 'train-copy-of-dev' }); // paper protocol: this train doc keeps, the dev copy goes

function writeScirex(path: string, docs: Document[]): void {
  writeFileSync(
    path,
    `${docs.map((d) => JSON.stringify({ doc_id: d.id, words: d.words, ner: d.entities.map((e) => [e.start, e.end, e.type]), coref: {} })).join('\n')}\n`,
  );
}

mkdirSync(join(mirror, 'toy'), { recursive: true });
mkdirSync(join(mirror, 'paperish'), { recursive: true });
writeSenerJsonl(join(mirror, 'toy', 'dev.json'), devDocs);
writeSenerJsonl(join(mirror, 'toy', 'test.json'), testDocs);
writeSenerJsonl(join(mirror, 'toy', 'train.json'), trainDocs);
writeScirex(join(mirror, 'paperish', 'train.jsonl'), trainDocs);
writeScirex(join(mirror, 'paperish', 'dev.jsonl'), testDocs);
// Declared SeNER, stored in the SciREX layout: read by detection.
writeScirex(join(mirror, 'paperish', 'test.json'), gen(4, 4, 'ptest-'));

const split = (name: string, file: string, format: 'sener' | 'scirex') => ({
  split: name,
  file,
  format,
  sha256: null,
  bytes: null,
  docs: null,
  urls: [],
  howToGet: 'fixture',
});
const manifest = parseManifest(
  {
    version: 1,
    datasets: [
      {
        name: 'toy',
        title: 'Toy',
        citation: '',
        licence: '',
        types,
        protocols: { local: { train: 'dev', validation: 'fraction', test: 'test' }, paper: { train: 'train', validation: 'dev', test: 'test' } },
        splits: [split('train', 'train.json', 'sener'), split('dev', 'dev.json', 'sener'), split('test', 'test.json', 'sener')],
      },
      {
        name: 'paperish',
        title: 'Paperish',
        citation: '',
        licence: '',
        types,
        protocols: { local: { train: 'train', validation: 'docs', test: 'dev' }, paper: { train: 'train', validation: 'dev', test: 'test' } },
        splits: [split('train', 'train.jsonl', 'scirex'), split('dev', 'dev.jsonl', 'scirex'), split('test', 'test.json', 'sener')],
      },
    ],
  },
  'fixture manifest',
);
const registry: Registry = createRegistry({ root: join(base, 'project'), mirror, manifest });
const opts = (o: Partial<ProtocolOptions> = {}): ProtocolOptions => ({ ...DEFAULT_PROTOCOL_OPTIONS, registry, ...o });

test.after.always(() => rmSync(base, { recursive: true, force: true }));

const keys = (docs: Document[]): Set<string> => new Set(docs.map((d) => documentKey(d.words)));

test('local protocol, fraction: dedup, then a 10% validation carve, test untouched', async (t) => {
  const p = await loadProtocol('toy', opts());
  t.is(p.dataset, 'toy');
  t.deepEqual(p.types, types);
  // dev: 40 docs - 1 copy of a test doc - 2 repeats = 37; round(3.7) = 4 held out.
  t.is(p.validation.length, 4);
  t.is(p.train.length, 33);
  t.is(p.test.length, 10);
  t.deepEqual(p.dedup, {
    trainDroppedAsTestOverlap: 1,
    trainDroppedAsRepeat: 2,
    triplesCollapsed: { train: p.dedup.triplesCollapsed.train, validation: p.dedup.triplesCollapsed.validation, test: 1 },
    testRepeatsKept: 1,
  });
  t.is(p.dedup.triplesCollapsed.train + p.dedup.triplesCollapsed.validation, 3);
  // Nothing leaks: validation and train are disjoint texts, and neither shares a text with test.
  const testKeys = keys(p.test);
  const trainKeys = keys(p.train);
  for (const d of [...p.train, ...p.validation]) t.false(testKeys.has(documentKey(d.words)));
  for (const d of p.validation) t.false(trainKeys.has(documentKey(d.words)));
  t.is(trainKeys.size, 33);
  // Splits keep file order; duplicate triples are gone everywhere.
  const devOrder = devDocs.map((d) => d.id);
  const positions = p.train.map((d) => devOrder.indexOf(d.id));
  t.deepEqual(
    positions,
    [...positions].sort((a, b) => a - b),
  );
  for (const d of [...p.train, ...p.validation, ...p.test]) {
    t.is(new Set(d.entities.map((e) => `${e.start},${e.end},${e.type}`)).size, d.entities.length);
  }
  t.is(
    p.description,
    'local protocol: train = dev minus 10% (33 docs), validation = 10% of dev (4 docs), test = official test (10 docs); ' +
      'dedup: 1 dev doc also in test dropped, 2 repeated dev docs dropped, 1 repeated test doc kept',
  );
});

test('the validation carve is deterministic for a seed and changes with it', async (t) => {
  const ids = (p: { validation: Document[] }): string[] => p.validation.map((d) => d.id);
  const a = await loadProtocol('toy', opts({ splitSeed: 13 }));
  const b = await loadProtocol('toy', opts({ splitSeed: 13 }));
  const c = await loadProtocol('toy', opts({ splitSeed: 14 }));
  t.deepEqual(ids(a), ids(b));
  t.notDeepEqual(ids(a), ids(c));
  t.deepEqual(
    holdOut(a.train, 3, 5).heldOut.map((d) => d.id),
    holdOut(a.train, 3, 5).heldOut.map((d) => d.id),
  );
  const ho = holdOut(a.train, 3, 5);
  t.is(ho.rest.length + ho.heldOut.length, a.train.length);
});

test('local protocol, docs: train minus N held-out docs, test = official dev; SciREX layout read', async (t) => {
  const p = await loadProtocol('paperish', opts({ validationDocs: 6 }));
  t.is(p.validation.length, 6);
  t.is(p.train.length, 20);
  t.is(p.test.length, 10);
  t.is(
    p.description.split(';')[0],
    'local protocol: train = train minus 6 docs (20 docs), validation = 6 docs of train (6 docs), test = official dev (10 docs)',
  );
  const e = await t.throwsAsync(loadProtocol('paperish', opts({ validationDocs: 26 })), { instanceOf: LongnerError });
  t.true(e?.message.includes('validationDocs'), e?.message);
});

test('maxDocs keeps the first N of each split after the deterministic split', async (t) => {
  const full = await loadProtocol('toy', opts());
  const q = await loadProtocol('toy', opts({ maxDocs: { train: 3, validation: null, test: 2 } }));
  t.deepEqual(
    q.train.map((d) => d.id),
    full.train.slice(0, 3).map((d) => d.id),
  );
  t.is(q.validation.length, full.validation.length);
  t.is(q.test.length, 2);
  t.true(q.description.includes('(first 3 of 33 docs)'), q.description);
  t.true(q.description.includes('(first 2 of 10 docs)'), q.description);
});

test('paper protocol: official train / dev / test, copies of train docs dropped from validation', async (t) => {
  const p = await loadProtocol('toy', opts({ protocol: 'paper' }));
  // train 26 docs, one of which is a copy of dev[0]: the train copy comes first and stays; dev loses
  // its copy of dev[0], its copy of a test doc and its 2 repeats: 40 - 4 = 36.
  t.is(p.train.length, 26);
  t.is(p.validation.length, 36);
  t.is(p.test.length, 10);
  t.is(p.dedup.trainDroppedAsRepeat, 3);
  t.is(p.dedup.trainDroppedAsTestOverlap, 1);
  t.false(p.validation.some((d) => d.id === devDocs[0]!.id));
  t.true(p.description.startsWith('paper protocol: train = official train (26 docs), validation = official dev (36 docs), test = official test (10 docs)'));

  const other = await loadProtocol('paperish', opts({ protocol: 'paper' }));
  t.is(other.test.length, 4, 'a SciREX-layout file where the manifest says SeNER is still read');
});

test('protocolSource and protocolUses map protocol splits to raw splits', (t) => {
  t.deepEqual(protocolSource('toy', 'train', { registry }), { raw: 'dev', selection: 'minus-validation', text: 'dev minus 10%' });
  t.deepEqual(protocolSource('toy', 'validation', { registry, validationFraction: 0.2 }), { raw: 'dev', selection: 'held-out', text: '20% of dev' });
  t.deepEqual(protocolSource('paperish', 'test', { registry }), { raw: 'dev', selection: 'all', text: 'official dev' });
  t.deepEqual(protocolSource('paperish', 'validation', { registry }), { raw: 'train', selection: 'held-out', text: '30 docs of train' });
  t.deepEqual(protocolSource('toy', 'validation', { registry, protocol: 'paper' }), { raw: 'dev', selection: 'all', text: 'official dev' });
  t.deepEqual(protocolUses('toy', 'dev', 'local', registry), ['train', 'validation']);
  t.deepEqual(protocolUses('toy', 'train', 'local', registry), []);
  t.deepEqual(protocolUses('paperish', 'dev', 'local', registry), ['test']);
});

test('bad options and unknown names are user errors', async (t) => {
  await t.throwsAsync(loadProtocol('toy', opts({ validationFraction: 1 })), { instanceOf: LongnerError, message: /validationFraction/ });
  await t.throwsAsync(loadProtocol('toy', opts({ maxDocs: { train: -1 } })), { instanceOf: LongnerError, message: /maxDocs\.train/ });
  await t.throwsAsync(loadProtocol('toy', opts({ protocol: 'k-fold' as 'local' })), {
    instanceOf: LongnerError,
    message: /unknown protocol "k-fold" \(known: local, paper\)/,
  });
  await t.throwsAsync(loadProtocol('nope', opts()), { instanceOf: LongnerError, message: /known: toy, paperish/ });
});

test('an entity type outside the manifest is caught at load time', async (t) => {
  const dir = join(base, 'badtypes');
  mkdirSync(join(dir, 'paperish'), { recursive: true });
  writeScirex(join(dir, 'paperish', 'train.jsonl'), trainDocs);
  const dev = gen(2, 9, 'x-');
  dev[1]!.entities.push({ start: 0, end: 1, type: 'Z' });
  writeScirex(join(dir, 'paperish', 'dev.jsonl'), dev);
  const reg = createRegistry({ root: join(base, 'project'), mirror: dir, manifest });
  const e = await t.throwsAsync(loadProtocol('paperish', opts({ registry: reg })), { instanceOf: LongnerError });
  t.regex(e?.message ?? '', /dev\.jsonl:2: document x-syn-1: entity \[0, 1, Z\] has a type that is not one of paperish's types \(expected one of A, B\)/);
});

// The real data, only where the read-only mirror exists.
const realMirror = fromRoot('..', 'shared', 'datasets');
const real = existsSync(realMirror) ? test : test.skip;

real('local protocol on the real datasets', async (t) => {
  const reg = createRegistry({ root: join(base, 'project'), mirror: realMirror });
  const o = { ...DEFAULT_PROTOCOL_OPTIONS, registry: reg };
  const sx = await loadProtocol('scholar-xl', o);
  t.deepEqual([sx.train.length, sx.validation.length, sx.test.length], [310, 34, 350]);
  t.deepEqual([sx.dedup.trainDroppedAsTestOverlap, sx.dedup.trainDroppedAsRepeat, sx.dedup.testRepeatsKept], [3, 2, 11]);
  const pr = await loadProtocol('profiling-07', o);
  t.deepEqual([pr.train.length, pr.validation.length, pr.test.length], [64, 7, 143]);
  t.is(pr.dedup.triplesCollapsed.test, 104);
  t.is(pr.dedup.triplesCollapsed.train + pr.dedup.triplesCollapsed.validation, 37);
  const sr = await loadProtocol('scirex', o);
  t.deepEqual([sr.train.length, sr.validation.length, sr.test.length], [276, 30, 66]);
  t.true(sr.description.startsWith('local protocol: train = train minus 30 docs (276 docs)'));
});

test('loadRawSplit returns a split as stored, with its path and layout', async (t) => {
  const raw = await loadRawSplit('toy', 'dev', { registry, offline: true });
  t.is(raw.docs.length, 40);
  t.is(raw.path, join(mirror, 'toy', 'dev.json'));
  t.is(raw.format, 'sener');
  t.is(raw.docs[20]!.entities.length, devDocs[20]!.entities.length, 'no triple collapse on raw splits');
  const detected = await loadRawSplit('paperish', 'test', { registry, offline: true });
  t.is(detected.format, 'scirex');
});
