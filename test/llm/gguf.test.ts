/**
 * The real node-llama-cpp runtime on a GGUF file written by the test itself (random weights, tiny
 * vocabulary): loading, grammar-constrained JSON, token counts, timeouts. The answers are gibberish by
 * construction; what is checked is that they always have the requested shape.
 */
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LongnerError } from '../../src/errors.js';
import { labelsSchema, parseLabels, parseSpans, spansSchema } from '../../src/llm/answers.js';
import { EmbeddedLlamaClient } from '../../src/llm/clients/embedded.js';
import { testVocabulary, writeTestGguf } from '../../src/llm/gguf-writer.js';
import { LlmTimeoutError } from '../../src/llm/types.js';

const dir = mkdtempSync(join(tmpdir(), 'longner-gguf-'));
const path = join(dir, 'tiny.gguf');
const bytes = writeTestGguf(path);
// One thread: on a busy 2-core machine llama.cpp's spinning threads are much slower with two.
const client = new EmbeddedLlamaClient({ id: 'tiny', path, contextSize: 2048, device: 'cpu', threads: 1 });

test.after.always(async () => {
  await client.close();
  rmSync(dir, { recursive: true, force: true });
});

test('the writer produces a GGUF v3 header with the declared size', (t) => {
  const head = readFileSync(path).subarray(0, 24);
  t.is(head.toString('latin1', 0, 4), 'GGUF');
  t.is(head.readUInt32LE(4), 3);
  t.is(Number(head.readBigUInt64LE(8)), 3 + 9 * 2, 'embeddings, output norm, output + 9 tensors per block');
  t.is(readFileSync(path).length, bytes);
  t.is(testVocabulary().tokens.length, 3 + 256 + 1 + 94 + 52);
});

test('node-llama-cpp loads it on the CPU and tokenizes any text through byte fallback', async (t) => {
  t.is(await client.device(), false);
  t.true((await client.countTokens('Hello, 世界 {"a": 1}')) > 5);
  t.regex(await client.identity(), /^gguf tiny\.gguf sha256:[0-9a-f]{64}$/);
});

test('grammar-constrained generation always parses against its schema', async (t) => {
  const schema = spansSchema(3, 8);
  for (const question of ['List the entities in: Alice met Bob in Paris.', 'Text: nothing here']) {
    const r = await client.chat(
      [
        { role: 'system', content: 'Answer with JSON.' },
        { role: 'user', content: question },
      ],
      { schema, maxTokens: 160, temperature: 0, timeoutMs: 60_000 },
    );
    const spans = parseSpans(r.text);
    t.not(spans, null, r.text);
    t.true(spans!.length <= 3 && spans!.every((s) => s.length <= 8), r.text);
    t.true(r.promptTokens! > 0);
    t.true(r.completionTokens! > 0);
    t.true(r.ms > 0);
  }
  const labels = await client.chat([{ role: 'user', content: 'Type these two spans.' }], {
    schema: labelsSchema(['person', 'org'], 2),
    maxTokens: 60,
    temperature: 0,
    timeoutMs: 60_000,
  });
  t.is(parseLabels(labels.text, ['person', 'org'], 2)?.length, 2, labels.text);
});

test('a call past its timeout fails with a timeout error, and the model keeps answering', async (t) => {
  const long = 'word '.repeat(1500);
  await t.throwsAsync(client.chat([{ role: 'user', content: long }], { maxTokens: 1000, temperature: 0, timeoutMs: 5 }), { instanceOf: LlmTimeoutError });
  const r = await client.chat([{ role: 'user', content: 'Hi' }], { schema: spansSchema(1, 4), maxTokens: 40, temperature: 0, timeoutMs: 60_000 });
  t.not(parseSpans(r.text), null);
});

test('a missing GGUF file is a user error naming it', (t) => {
  const e = t.throws(() => new EmbeddedLlamaClient({ id: 'x', path: join(dir, 'nope.gguf'), contextSize: 512, device: 'cpu', threads: 1 }), {
    instanceOf: LongnerError,
  });
  t.regex(e!.message, /GGUF file not found: .*nope\.gguf/);
});
