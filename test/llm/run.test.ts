import test from 'ava';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfigFromObject } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { writeSenerJsonl } from '../../src/data/readers.js';
import { createRegistry, parseManifest } from '../../src/data/registry.js';
import { generateDocuments } from '../../src/data/synthetic.js';
import { LongnerError } from '../../src/errors.js';
import { writeTestGguf } from '../../src/llm/gguf-writer.js';
import { CALLS_FILE, NOT_RUN_REASON, PREDICTIONS_FILE, executeEnsembleRun } from '../../src/runs/el4ner.js';
import { runDir } from '../../src/runs/id.js';
import { RunRecord } from '../../src/runs/record.js';
import { completion, sendJson, startServer, type SeenRequest } from './server.js';

const KEY = 'sk-run-test-SECRET-777';
const types = ['A', 'B'];
const base = mkdtempSync(join(tmpdir(), 'longner-el4ner-run-'));
test.after.always(() => rmSync(base, { recursive: true, force: true }));

// A toy dataset in a temp mirror: local protocol = train on dev (minus 10%), test on test.
const mirror = join(base, 'mirror');
mkdirSync(join(mirror, 'toy'), { recursive: true });
const gen = (docs: number, seed: number, prefix: string) =>
  generateDocuments({ docs, words: [40, 70], entitiesPerDoc: 3, entityLength: { dist: 'uniform', min: 1, max: 3 }, types, seed }).map((d) => ({
    ...d,
    id: `${prefix}${d.id}`,
  }));
const devDocs = gen(12, 2, 'dev-');
const testDocs = gen(4, 1, 'test-');
writeSenerJsonl(join(mirror, 'toy', 'dev.json'), devDocs);
writeSenerJsonl(join(mirror, 'toy', 'test.json'), testDocs);
// Each type's entities start with that type's own UPPER-CASE cue word: the scripted model types by it.
const cueType = new Map<string, string>();
for (const d of [...devDocs, ...testDocs]) for (const e of d.entities) cueType.set(d.words[e.start]!, e.type);
const split = (name: string, file: string) => ({
  split: name,
  file,
  format: 'sener' as const,
  sha256: null,
  bytes: null,
  docs: null,
  urls: [],
  howToGet: 'fixture',
});
const registry = createRegistry({
  root: join(base, 'project'),
  mirror,
  manifest: parseManifest(
    {
      version: 1,
      datasets: [
        {
          name: 'toy',
          title: 'Toy',
          citation: '',
          licence: '',
          types,
          protocols: { local: { train: 'dev', validation: 'fraction', test: 'test' }, paper: { train: 'dev', validation: 'fraction', test: 'test' } },
          splits: [split('dev', 'dev.json'), split('test', 'test.json')],
        },
      ],
    },
    'fixture manifest',
  ),
});

function config(el4ner: Record<string, unknown>, experiment: string): Config {
  return resolveConfigFromObject({ method: 'el4ner', experiment, dataset: { name: 'toy', maxDocs: { test: 3 } }, el4ner });
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

/** Answers like a model that marks every UPPER-CASE word (the synthetic entities' first words), types it by its cue and approves everything. */
function answer(req: SeenRequest): string {
  const format = req.body.response_format as { json_schema: { schema: { properties: Record<string, unknown> } } };
  const props = format.json_schema.schema.properties;
  const user = (req.body.messages as Array<{ content: string }>).at(-1)!.content;
  if ('types' in props) return JSON.stringify({ types: [...user.matchAll(/^\d+\. "(.*)"$/gm)].map((m) => cueType.get(m[1]!) ?? 'none') });
  if ('answers' in props) return JSON.stringify({ answers: [...user.matchAll(/^\d+\. Is /gm)].map(() => 'yes') });
  const text = user.slice(user.lastIndexOf('Text: ') + 6, user.lastIndexOf('\nAnswer:'));
  return JSON.stringify({ entities: [...new Set(text.split(/\s+/).filter((w) => /^[A-Z]{2,}$/.test(w))), 'NOT-IN-TEXT'] });
}

test('with no model configured the run is recorded as not-run, with no metrics and without touching the data', async (t) => {
  const root = join(base, 'runs-none');
  const cfg = resolveConfigFromObject({ method: 'el4ner', experiment: 'none', dataset: { name: 'no-such-dataset' } });
  const result = await executeEnsembleRun(cfg, { root, quiet: true });
  t.is(result.status, 'not-run');
  t.is(result.reason, NOT_RUN_REASON);
  t.deepEqual(result.metrics, { overall: null, perType: null, perLength: null });
  t.is(result.llm, undefined);
  t.true(
    Object.values(result.timing).every((v) => v === null),
    'no number at all',
  );
  const stored = RunRecord.open(runDir(cfg, root)).readResult();
  t.is(stored?.status, 'not-run');
  t.is(stored?.reason, 'not run: no model configured');
});

test('end to end against a local OpenAI-style server: record with tokens and latency, key nowhere on disk, rerun from cache', async (t) => {
  const server = await startServer((req, res) => sendJson(res, 200, completion(answer(req))));
  t.teardown(server.close);
  const root = join(base, 'runs-http');
  const cacheDir = join(base, 'cache-http');
  const cfg = config(
    {
      models: [{ id: 'remote', kind: 'openai', baseUrl: '${TEST_LLM_URL}', model: 'toy-model', apiKeyEnv: 'TEST_LLM_KEY' }],
      retrieval: { k: 2, demoWindow: 20 },
      window: 30,
      stride: 25,
      cacheDir,
    },
    'http',
  );
  const env = { TEST_LLM_URL: server.url, TEST_LLM_KEY: KEY };
  const result = await executeEnsembleRun(cfg, { root, quiet: true, env, registry });

  t.is(result.status, 'ok', result.reason);
  t.is(result.backend, null);
  const llm = result.llm!;
  t.is(llm.calls, server.requests.length);
  t.is(llm.promptTokens, 12 * llm.calls, 'the usage the server reported, summed');
  t.is(llm.completionTokens, 3 * llm.calls);
  t.is(llm.cachedCalls, 0);
  t.true(llm.msTotal > 0 && llm.msPerDocument! > 0);
  t.is(llm.offsetRule, 'every-occurrence');
  t.true(llm.unalignedAnswers >= 3, 'NOT-IN-TEXT, once per window at least');
  t.is(llm.unparseableAnswers, 0, 'every scripted answer has the asked shape');
  t.deepEqual(Object.keys(llm.stages).sort(), ['extract', 'pre-extract', 'type', 'verify']);
  t.regex(llm.models[0]!.model, /^openai http:\/\/127\.0\.0\.1:\d+\/v1 toy-model$/);
  const overall = result.metrics.overall!;
  t.true(overall.tp + overall.fp > 0, 'the scripted model predicted something');
  t.true(overall.tp > 0, 'the one-word entities are right');
  for (const req of server.requests) t.is(req.headers.authorization, `Bearer ${KEY}`);

  const dir = runDir(cfg, root);
  t.true(readFileSync(join(dir, CALLS_FILE), 'utf8').trim().split('\n').length === llm.calls);
  t.true(readFileSync(join(dir, PREDICTIONS_FILE), 'utf8').includes('"entities"'));
  for (const file of [...filesUnder(root), ...filesUnder(cacheDir)]) t.false(readFileSync(file, 'utf8').includes(KEY), file);

  const before = server.requests.length;
  const rerun = await executeEnsembleRun(cfg, { root, quiet: true, env, registry });
  t.is(server.requests.length, before, 'a rerun makes no request');
  t.is(rerun.llm!.cachedCalls, rerun.llm!.calls);
  t.is(rerun.llm!.promptTokens, llm.promptTokens, 'cached calls keep their recorded cost');
  t.deepEqual(rerun.metrics, result.metrics);
});

test('a run whose every call fails is recorded as failed, with its calls counted', async (t) => {
  const server = await startServer((_req, res) => sendJson(res, 500, '{}'));
  t.teardown(server.close);
  const cfg = config(
    { models: [{ id: 'down', kind: 'openai', baseUrl: server.url, model: 'm' }], retries: 0, cache: false, retrieval: { method: 'none' } },
    'down',
  );
  const result = await executeEnsembleRun(cfg, { root: join(base, 'runs-down'), quiet: true, registry });
  t.is(result.status, 'failed');
  t.regex(result.reason!, /every LLM call failed/);
  t.is(result.llm!.failedCalls, result.llm!.calls);
  t.is(result.metrics.overall, null);
});

test('a refused key stops the run with a one-line user error and a failed record', async (t) => {
  const server = await startServer((_req, res) => sendJson(res, 401, '{}'));
  t.teardown(server.close);
  const root = join(base, 'runs-401');
  const cfg = config({ models: [{ id: 'x', kind: 'openai', baseUrl: server.url, model: 'm', apiKeyEnv: 'K' }], cache: false }, 'refused');
  const e = await t.throwsAsync(executeEnsembleRun(cfg, { root, quiet: true, registry, env: { K: KEY } }), { instanceOf: LongnerError });
  t.regex(e!.message, /HTTP 401/);
  t.false(e!.message.includes(KEY));
  t.is(RunRecord.open(runDir(cfg, root)).readResult()?.status, 'failed');
});

test('an unset ${VAR} in a model entry is a user error naming the key and the variable', async (t) => {
  const cfg = config({ models: [{ id: 'x', kind: 'gguf', path: '${LONGNER_NO_SUCH_VAR}' }] }, 'unset');
  const e = await t.throwsAsync(executeEnsembleRun(cfg, { root: join(base, 'runs-unset'), quiet: true, registry, env: {} }), { instanceOf: LongnerError });
  t.regex(e!.message, /el4ner\.models\.0\.path: environment variable LONGNER_NO_SUCH_VAR is not set/);
});

test('end to end on a random-weight GGUF run by node-llama-cpp: every stage runs, tokens and latency recorded', async (t) => {
  const gguf = join(base, 'tiny.gguf');
  writeTestGguf(gguf);
  const cfg = resolveConfigFromObject({
    method: 'el4ner',
    experiment: 'gguf',
    dataset: { name: 'toy', maxDocs: { test: 1 } },
    el4ner: {
      models: [{ id: 'tiny', kind: 'gguf', path: '${TINY_GGUF}', contextSize: 4096, maxTokens: 48, device: 'cpu', threads: 1 }],
      retrieval: { k: 1, demoWindow: 20 },
      window: 40,
      stride: 40,
      cacheDir: join(base, 'cache-gguf'),
    },
  });
  const result = await executeEnsembleRun(cfg, { root: join(base, 'runs-gguf'), quiet: true, registry, env: { TINY_GGUF: gguf } });
  t.is(result.status, 'ok', result.reason);
  const llm = result.llm!;
  t.true(llm.calls >= 2, 'pre-extraction and extraction at least');
  t.is(llm.failedCalls, 0);
  t.true(llm.promptTokens > 0 && llm.completionTokens > 0);
  t.true(llm.msTotal > 0);
  t.regex(llm.models[0]!.model, /^gguf tiny\.gguf sha256:[0-9a-f]{64}$/);
  // Random weights: whatever the scores are, they are valid fractions computed from counts.
  t.true(result.metrics.overall!.f1 >= 0 && result.metrics.overall!.f1 <= 1);
});
