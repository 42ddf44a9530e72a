import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LongnerError } from '../../src/errors.js';
import {
  detectFormat,
  readDocuments,
  readDocumentsWithReport,
  readGenericJsonl,
  readScirexJsonl,
  readSenerJsonl,
  readSenerJsonlWithReport,
  writeGenericJsonl,
  writeSenerJsonl,
} from '../../src/data/readers.js';
import { fromRoot } from '../../src/util/paths.js';

const fixture = (name: string): string => fromRoot('test', 'fixtures', 'data', name);
const dir = mkdtempSync(join(tmpdir(), 'longner-readers-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

let counter = 0;
/** Writes `lines` to a fresh temp file named after the case, so messages can be checked for the name. */
function file(name: string, lines: string[]): string {
  const path = join(dir, `${name}-${counter++}.jsonl`);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

function throwsUser(t: import('ava').ExecutionContext, fn: () => unknown, ...parts: string[]): void {
  const err = t.throws(fn, { instanceOf: LongnerError });
  for (const part of parts) t.true(err?.message.includes(part), `"${err?.message}" should mention "${part}"`);
}

test('SeNER layout: reads documents, skips blank lines, counts stored-word mismatches', (t) => {
  const { docs, issues, lines } = readSenerJsonlWithReport(fixture('sener-small.json'));
  t.deepEqual(
    docs.map((d) => d.id),
    ['d1', 'd2', 'd3'],
  );
  t.deepEqual(docs[0]!.entities[1], { start: 3, end: 6, type: 'org' });
  t.is(docs[0]!.entities.length, 4, 'duplicates are kept as stored; dedup is a separate step');
  t.deepEqual(lines, [1, 3, 4], 'each document keeps its line, blank lines counted');
  t.is(issues.wordMismatches.count, 1);
  t.regex(issues.wordMismatches.examples[0] ?? '', /sener-small\.json:3: entity \[3, 4, org\] stores \["Acme"\], the text has \["ACME"\]$/);
  t.is(issues.invalidUtf8.count, 0);
  t.is(docs[2]!.entities.length, 0);
});

test('SeNER layout round-trips through writeSenerJsonl (offsets win over stored words)', (t) => {
  const docs = readSenerJsonl(fixture('sener-small.json'));
  const out = join(dir, 'roundtrip-sener.json');
  writeSenerJsonl(out, docs);
  const again = readSenerJsonlWithReport(out);
  t.deepEqual(again.docs, docs);
  t.is(again.issues.wordMismatches.count, 0, 'the writer stores text[start:end]');
});

test('SciREX layout: reads words and ner, ignores the other fields, round-trips via the generic layout', (t) => {
  const docs = readScirexJsonl(fixture('scirex-small.jsonl'));
  t.deepEqual(docs[0], {
    id: 'aaa1',
    words: ['BERT', 'is', 'for', 'entity', 'recognition', '.'],
    entities: [
      { start: 0, end: 1, type: 'Method' },
      { start: 3, end: 5, type: 'Task' },
    ],
  });
  t.deepEqual(Object.keys(docs[1]!).sort(), ['entities', 'id', 'words']);
  const out = join(dir, 'roundtrip-scirex.jsonl');
  writeGenericJsonl(out, docs);
  t.deepEqual(readGenericJsonl(out), docs);
});

test('generic layout: reads CRLF lines, keeps prediction scores, round-trips', (t) => {
  const docs = readGenericJsonl(fixture('generic-small.jsonl'));
  t.is(docs.length, 2);
  t.deepEqual(docs[0]!.entities[0], { start: 0, end: 1, type: 'person', score: 0.9 });
  t.deepEqual(docs[0]!.entities[1], { start: 2, end: 3, type: 'person' });
  const out = join(dir, 'roundtrip-generic.jsonl');
  writeGenericJsonl(out, docs);
  t.deepEqual(readGenericJsonl(out), docs);
});

test('format detection and auto reading', (t) => {
  t.is(detectFormat(fixture('sener-small.json')), 'sener');
  t.is(detectFormat(fixture('scirex-small.jsonl')), 'scirex');
  t.is(detectFormat(fixture('generic-small.jsonl')), 'generic');
  const auto = readDocumentsWithReport(fixture('scirex-small.jsonl'), 'auto', 'sener');
  t.is(auto.format, 'scirex');
  t.is(auto.docs.length, 2);
  t.deepEqual(readDocuments(fixture('sener-small.json'), 'sener'), readSenerJsonl(fixture('sener-small.json')));
});

test('malformed JSON names the file, the line and the parser message', (t) => {
  const path = file('broken', ['{"doc_id": "a", "text": [], "entity": []}', '', '{"doc_id": "b", "text": [']);
  throwsUser(t, () => readSenerJsonl(path), 'broken-', ':3: malformed JSON (');
});

test('missing and mistyped fields name the file, the line, the field and what was expected', (t) => {
  const missing = file('missing', ['{"doc_id": "a", "entity": []}']);
  throwsUser(t, () => readSenerJsonl(missing), 'missing-', ':1:', 'missing field "text"');

  const notList = file('textstr', ['{"doc_id": "a", "text": "a b", "entity": []}']);
  throwsUser(t, () => readSenerJsonl(notList), 'textstr-', ':1:', 'field "text"', 'a list of word strings');

  const badWord = file('badword', ['{"doc_id": "a", "text": ["a", 3], "entity": []}']);
  throwsUser(t, () => readSenerJsonl(badWord), ':1:', 'field "text[1]"', 'a string');

  const badId = file('badid', ['{"doc_id": null, "text": ["a"], "entity": []}']);
  throwsUser(t, () => readSenerJsonl(badId), ':1:', 'field "doc_id"', 'a string');

  const shortEntity = file('short', ['{"doc_id": "a", "text": ["a"], "entity": [[0, 1, "X"]]}']);
  throwsUser(t, () => readSenerJsonl(shortEntity), ':1:', 'field "entity[0]"', '[start, end_exclusive, [words], type]');

  const badStart = file('badstart', ['{"doc_id": "a", "text": ["a"], "entity": [[0.5, 1, ["a"], "X"]]}']);
  throwsUser(t, () => readSenerJsonl(badStart), ':1:', 'field "entity[0][0]"', 'integer');

  const badType = file('badtype', ['{"words": ["a"], "ner": [[0, 1, 7]], "doc_id": "s"}']);
  throwsUser(t, () => readScirexJsonl(badType), ':1:', 'field "ner[0][2]"', 'type string');

  const noNer = file('noner', ['{"words": ["a"], "doc_id": "s"}']);
  throwsUser(t, () => readScirexJsonl(noNer), 'noner-', ':1:', 'missing field "ner"');

  const genericEntity = file('genent', ['{"id": "g", "words": ["a"], "entities": [[0, 1, "X"]]}']);
  throwsUser(t, () => readGenericJsonl(genericEntity), ':1:', 'field "entities[0]"', 'an object');

  const genericEnd = file('genend', ['{"id": "g", "words": ["a"], "entities": [{"start": 0, "type": "X"}]}']);
  throwsUser(t, () => readGenericJsonl(genericEnd), ':1:', 'field "entities[0].end"');

  const notObject = file('array', ['[1, 2]']);
  throwsUser(t, () => readGenericJsonl(notObject), 'array-', ':1:', 'JSON object');
});

test('an entity outside its document names the file, line, document and entity', (t) => {
  const sener = file('outside', ['', '{"doc_id": "doc7", "text": ["a", "b", "c"], "entity": [[1, 5, ["b"], "X"]]}']);
  throwsUser(t, () => readSenerJsonl(sener), 'outside-', ':2:', 'document doc7', 'entity [1, 5, X] lies outside its 3 words');

  const negative = file('negative', ['{"doc_id": "s1", "words": ["a"], "ner": [[-1, 1, "T"]]}']);
  throwsUser(t, () => readScirexJsonl(negative), ':1:', 'document s1', '[-1, 1, T] lies outside its 1 words');
});

test('start >= end is reported with the document and entity', (t) => {
  const path = file('empty-span', ['{"id": "g1", "words": ["a", "b"], "entities": [{"start": 1, "end": 1, "type": "X"}]}']);
  throwsUser(t, () => readGenericJsonl(path), 'empty-span-', ':1:', 'document g1', 'entity [1, 1, X] has start >= end');
  const reversed = file('reversed', ['{"doc_id": "r", "text": ["a", "b"], "entity": [[2, 1, ["b"], "X"]]}']);
  throwsUser(t, () => readSenerJsonl(reversed), 'document r', '[2, 1, X] has start >= end');
});

test('a missing file is a user error naming it', (t) => {
  throwsUser(t, () => readSenerJsonl(join(dir, 'nope.json')), 'nope.json', 'cannot read');
});

test('writers write atomically and empty lists give empty files', (t) => {
  const out = join(dir, 'empty.jsonl');
  writeGenericJsonl(out, []);
  t.deepEqual(readGenericJsonl(out), []);
  writeSenerJsonl(out, []);
  t.deepEqual(readSenerJsonl(out), []);
});
