import test from 'ava';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { LongnerError } from '../../src/errors.js';
import { CachedClient } from '../../src/llm/clients/cache.js';
import { OpenAiClient, portableSchema, type OpenAiClientOptions } from '../../src/llm/clients/openai.js';
import { spansSchema } from '../../src/llm/answers.js';
import { LlmCallError, LlmTimeoutError, type ChatOptions } from '../../src/llm/types.js';
import { completion, sendJson, startServer } from './server.js';

const KEY = 'sk-test-NEVER-LOG-ME-4242';
const env = { LONGNER_TEST_KEY: KEY };
const call: ChatOptions = { maxTokens: 32, temperature: 0, timeoutMs: 2000, schema: spansSchema(4, 20) };
const hello = [{ role: 'user' as const, content: 'hello' }];

function client(url: string, o: Partial<OpenAiClientOptions> = {}): OpenAiClient {
  return new OpenAiClient({
    id: 'm',
    baseUrl: url,
    model: 'test-model',
    apiKeyEnv: 'LONGNER_TEST_KEY',
    responseFormat: 'json-schema',
    concurrency: 4,
    retries: 3,
    retryBaseMs: 5,
    env,
    ...o,
  });
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

test('a 500 is retried with backoff, then the answer and its usage come back', async (t) => {
  const server = await startServer((_req, res, i) => (i === 0 ? sendJson(res, 500, '{"error":"boom"}') : sendJson(res, 200, completion('{"entities": []}'))));
  t.teardown(server.close);
  const events: Array<Record<string, unknown>> = [];
  const r = await client(server.url, { onEvent: (e) => events.push(e) }).chat(hello, call);
  t.is(r.text, '{"entities": []}');
  t.is(r.promptTokens, 12);
  t.is(r.completionTokens, 3);
  t.is(server.requests.length, 2);
  t.deepEqual(
    events.map((e) => [e.event, e.status, e.attempt]),
    [['llm-retry', 500, 1]],
  );
  // The request: OpenAI chat-completions with the schema as response_format.
  const body = server.requests[0]!.body;
  t.is(body.model, 'test-model');
  t.is(body.max_tokens, 32);
  // Length and count bounds are left out of the wire schema (hosted strict modes reject some of them).
  t.deepEqual(body.response_format, {
    type: 'json_schema',
    json_schema: {
      name: 'answer',
      strict: true,
      schema: { type: 'object', properties: { entities: { type: 'array', items: { type: 'string' } } }, required: ['entities'], additionalProperties: false },
    },
  });
  t.deepEqual(portableSchema({ enum: ['a'] }), { enum: ['a'] });
});

test('429 honours Retry-After; retries run out into an error', async (t) => {
  const server = await startServer((_req, res) => sendJson(res, 429, '{}', { 'retry-after': '0' }));
  t.teardown(server.close);
  const e = await t.throwsAsync(client(server.url, { retries: 2 }).chat(hello, call), { instanceOf: LlmCallError });
  t.regex(e!.message, /HTTP 429 .*gave up after 3 attempts/);
  t.false((e as LlmCallError).fatal);
  t.is(server.requests.length, 3);
});

test('a slow answer times out and is not retried', async (t) => {
  const server = await startServer((_req, res) => {
    setTimeout(() => sendJson(res, 200, completion('late')), 20_000).unref();
  });
  t.teardown(server.close);
  const started = Date.now();
  await t.throwsAsync(client(server.url).chat(hello, { ...call, timeoutMs: 300 }), { instanceOf: LlmTimeoutError });
  // The client gave up long before the answer (20 s); the margin is wide because CI machines are busy.
  t.true(Date.now() - started < 15_000);
  // Not retried: at most the one request (on a loaded machine it may not even have arrived in 300 ms).
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.true(server.requests.length <= 1);
});

test('no more requests in flight than the concurrency limit', async (t) => {
  const server = await startServer((_req, res) => {
    setTimeout(() => sendJson(res, 200, completion('{"entities": []}')), 60);
  });
  t.teardown(server.close);
  const c = client(server.url, { concurrency: 3 });
  const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => c.chat([{ role: 'user', content: `q${i}` }], call)));
  t.is(answers.length, 10);
  t.is(server.requests.length, 10);
  t.is(server.maxInFlight(), 3);
});

test('a network error is retried; a refused key is fatal at once', async (t) => {
  // A server that is closed before the call: connection refused on every attempt.
  const gone = await startServer(() => undefined);
  await gone.close();
  const e = await t.throwsAsync(client(gone.url, { retries: 1 }).chat(hello, call), { instanceOf: LlmCallError });
  t.regex(e!.message, /network error .*gave up after 2 attempts/);

  const server = await startServer((_req, res) => sendJson(res, 401, JSON.stringify({ error: `Incorrect API key provided: ${KEY}` })));
  t.teardown(server.close);
  const refused = await t.throwsAsync(client(server.url).chat(hello, call), { instanceOf: LlmCallError });
  t.true((refused as LlmCallError).fatal);
  t.is(server.requests.length, 1);
  t.regex(refused!.message, /LONGNER_TEST_KEY/);
  t.false(refused!.message.includes(KEY));
});

test('an endpoint echoing the key in an error body is redacted', async (t) => {
  const server = await startServer((_req, res) => sendJson(res, 400, JSON.stringify({ error: `bad request from ${KEY}` })));
  t.teardown(server.close);
  const e = await t.throwsAsync(client(server.url).chat(hello, call), { instanceOf: LlmCallError });
  t.regex(e!.message, /\[redacted\]/);
  t.false(e!.message.includes(KEY));
});

test('the API key goes in the Authorization header and nowhere else: not in cache files, events or the client object', async (t) => {
  const server = await startServer((_req, res, i) => (i === 0 ? sendJson(res, 503, '{}') : sendJson(res, 200, completion('{"entities": ["x"]}'))));
  t.teardown(server.close);
  const dir = mkdtempSync(join(tmpdir(), 'longner-llm-cache-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const events: Array<Record<string, unknown>> = [];
  const inner = client(server.url, { onEvent: (e) => events.push(e) });
  const cached = new CachedClient(inner, dir);

  const first = await cached.chat(hello, call);
  t.is(server.requests[0]!.headers.authorization, `Bearer ${KEY}`);
  t.false(first.cached);
  const again = await cached.chat(hello, call);
  t.true(again.cached, 'the second call is answered from disk');
  t.is(again.text, first.text);
  t.is(server.requests.length, 2, 'one 503 and one answer; the cached call made no request');

  const files = filesUnder(dir);
  t.is(files.length, 1);
  for (const f of files) t.false(readFileSync(f, 'utf8').includes(KEY), f);
  t.false(JSON.stringify(events).includes(KEY));
  t.false(inspect(inner, { depth: 5, showHidden: true }).includes(KEY));
  t.false(JSON.stringify(inner).includes(KEY));
  t.false((await inner.identity()).includes(KEY));
});

test('a named key variable that is unset is a one-line user error naming it', (t) => {
  const e = t.throws(() => client('http://127.0.0.1:9/v1', { env: {} }), { instanceOf: LongnerError });
  t.regex(e!.message, /environment variable LONGNER_TEST_KEY is not set/);
});

test('json-object and none formats change only the request, not the answer', async (t) => {
  const server = await startServer((_req, res) => sendJson(res, 200, completion('{"entities": []}', undefined)));
  t.teardown(server.close);
  await client(server.url, { responseFormat: 'json-object', apiKeyEnv: null }).chat(hello, call);
  await client(server.url, { responseFormat: 'none', apiKeyEnv: null }).chat(hello, call);
  t.deepEqual(server.requests[0]!.body.response_format, { type: 'json_object' });
  t.false('response_format' in server.requests[1]!.body);
  t.is(server.requests[1]!.headers.authorization, undefined);
});
