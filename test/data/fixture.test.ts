import test from 'ava';
import { readDocuments } from '../../src/data/readers.js';
import { generateDocuments } from '../../src/data/synthetic.js';
import { fromRoot } from '../../src/util/paths.js';
import { LONG_ENTITIES } from '../fixtures/long-entities.js';

for (const [split, opts] of Object.entries(LONG_ENTITIES)) {
  test(`the shipped long-entities ${split} file is what its generator options make`, (t) => {
    const shipped = readDocuments(fromRoot('test', 'fixtures', 'data', 'long-entities', `${split}.jsonl`), 'generic');
    const made = generateDocuments(opts);
    t.deepEqual(
      shipped.map((d) => ({ id: d.id, words: d.words, entities: d.entities.map((e) => ({ start: e.start, end: e.end, type: e.type })) })),
      made.map((d) => ({ id: d.id, words: d.words, entities: d.entities.map((e) => ({ start: e.start, end: e.end, type: e.type })) })),
    );
  });
}
