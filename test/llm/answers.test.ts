import test from 'ava';
import { extractJson, labelsSchema, parseLabels, parseSpans, parseTypedSpans, parseVerdicts } from '../../src/llm/answers.js';

test('answers are read from plain JSON, code fences and surrounding text', (t) => {
  t.deepEqual(parseSpans('{"entities": ["a", "b"]}'), ['a', 'b']);
  t.deepEqual(parseSpans('```json\n{"entities": ["a"]}\n```'), ['a']);
  t.deepEqual(parseSpans('Sure! {"entities": []} Hope this helps.'), []);
  t.is(parseSpans('{"entities": "a"}'), null);
  t.is(parseSpans('{"entities": ["a"'), null, 'cut off by maxTokens');
  t.is(extractJson('no json here'), undefined);
});

test('typed answers drop unknown types; labels and verdicts must have the asked length', (t) => {
  t.deepEqual(parseTypedSpans('{"entities": [{"text": "x", "type": "org"}, {"text": "y", "type": "planet"}]}', ['org']), [{ text: 'x', type: 'org' }]);
  t.deepEqual(parseLabels('{"types": ["org", "none"]}', ['org'], 2), ['org', 'none']);
  t.is(parseLabels('{"types": ["org"]}', ['org'], 2), null);
  t.is(parseLabels('{"types": ["org", "planet"]}', ['org'], 2), null);
  t.deepEqual(parseVerdicts('{"answers": ["yes", " No "]}', 2), [true, false]);
  t.is(parseVerdicts('{"answers": ["maybe"]}', 1), null);
});

test('the typing schema fixes the number of labels', (t) => {
  const schema = labelsSchema(['org'], 3);
  t.deepEqual(schema, {
    type: 'object',
    properties: { types: { type: 'array', items: { enum: ['org', 'none'] }, minItems: 3, maxItems: 3 } },
    required: ['types'],
    additionalProperties: false,
  });
});
