import test from 'ava';
import { parseByteSize } from '../../src/util/bytes.js';

test('sizes as people write them', (t) => {
  t.is(parseByteSize('16GiB'), 16 * 2 ** 30);
  t.is(parseByteSize('16G'), 16 * 2 ** 30);
  t.is(parseByteSize('16 gb'), 16 * 2 ** 30);
  t.is(parseByteSize('500MB'), 500 * 2 ** 20);
  t.is(parseByteSize('1.5GiB'), 1.5 * 2 ** 30);
  t.is(parseByteSize('1.5e9'), 1.5e9);
  t.is(parseByteSize('4096'), 4096);
  t.is(parseByteSize('2TiB'), 2 * 2 ** 40);
});

test('anything else is not a size', (t) => {
  for (const bad of ['', 'lots', '16 GiBs', '-1GiB', '0', '0GiB', 'GiB', '1.2.3G', 'NaN']) t.is(parseByteSize(bad), null, bad);
});
