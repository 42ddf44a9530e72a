import test from 'ava';
import { parse } from 'yaml';
import { formatConfig } from '../../src/config/print.js';
import { resolveConfigFromObject } from '../../src/config/load.js';
import { ConfigSchema, defaultConfig } from '../../src/config/schema.js';

test('formatConfig round-trips and keeps schema key order', (t) => {
  // Built in scrambled key order, so the printed order can only come from the schema.
  const config = resolveConfigFromObject({ train: { maxSteps: 5, lr: 1e-3 }, eval: { threshold: 0.4 }, method: 'cnn-ner' });
  const text = formatConfig(config);
  const back: unknown = parse(text);
  t.deepEqual(resolveConfigFromObject(back), config);
  t.deepEqual(Object.keys(back as object), Object.keys(ConfigSchema.shape));
  t.deepEqual(Object.keys((back as { train: object }).train), Object.keys(defaultConfig().train));
  t.true(text.indexOf('seed:') < text.indexOf('maxSteps:'));
});

test('formatConfig with comments puts each description above its option', (t) => {
  const text = formatConfig(defaultConfig(), { comments: true });
  t.regex(text, /# Peak learning rate of the span head[^\n]*\n {2}lr: 0\.0007/);
  t.deepEqual(parse(text), parse(formatConfig(defaultConfig())));
});
