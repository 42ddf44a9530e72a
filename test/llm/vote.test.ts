import test from 'ava';
import { pluralityVote, unionStrings } from '../../src/llm/vote.js';

test('plurality wins', (t) => {
  t.is(pluralityVote(['org', 'person', 'person']), 'person');
  t.is(pluralityVote(['none', 'none', 'org']), 'none');
});

test('ties go to the highest-priority model among the tied labels', (t) => {
  t.is(pluralityVote(['org', 'loc', 'person']), 'org', 'three-way tie: the first model');
  t.is(pluralityVote(['loc', 'org', 'org', 'loc']), 'loc');
  // The first model voted for a label outside the tie: the next model whose label is tied wins.
  t.is(pluralityVote(['date', 'org', 'org', 'loc', 'loc']), 'org');
  t.is(pluralityVote([null, 'loc', 'org']), 'loc', 'a model without a vote is skipped');
});

test('no votes, no label', (t) => {
  t.is(pluralityVote([null, null]), null);
  t.is(pluralityVote([]), null);
});

test('union keeps first-seen order and drops whitespace variants and empties', (t) => {
  t.deepEqual(unionStrings([['Alice', 'Acme  Corp'], [' Acme Corp', 'Paris', ''], ['Alice']]), ['Alice', 'Acme Corp', 'Paris']);
});
