import test from 'ava';
import { resolveConfigFromObject } from '../../src/config/load.js';
import type { El4nerConfig } from '../../src/config/methods/el4ner.js';
import { Ledger } from '../../src/llm/ledger.js';
import { newCounters, predictDocument, predictWindow, type PipelineContext } from '../../src/llm/pipeline.js';
import { PosWeigher } from '../../src/llm/pos.js';
import { Retriever } from '../../src/llm/retrieval.js';
import { LlmCallError, LlmTimeoutError, type LlmClient } from '../../src/llm/types.js';
import { ScriptedClient, listedSpans, type Script } from './fakes.js';

const types = ['person', 'org', 'loc'];
const words = ['Alice', 'works', 'at', 'Acme', 'Corp', 'in', 'Paris', ',', 'and', 'Alice', 'likes', 'Paris', '.'];

function el4ner(overrides: Record<string, unknown> = {}, models = 3): El4nerConfig {
  const ids = ['a', 'b', 'c'].slice(0, models);
  return resolveConfigFromObject({
    method: 'el4ner',
    el4ner: {
      models: ids.map((id) => ({ id, kind: 'openai', baseUrl: 'http://127.0.0.1:9/v1', model: id })),
      retrieval: { method: 'none' },
      ...overrides,
    },
  }).el4ner;
}

function context(cfg: El4nerConfig, clients: LlmClient[]): PipelineContext {
  return {
    models: clients.map((client, i) => ({ client, config: cfg.models[i]! })),
    types,
    config: cfg,
    retriever: new Retriever([], { ...cfg.retrieval, seed: 1 }, new PosWeigher()),
    ledger: new Ledger(),
    counters: newCounters(),
  };
}

/** A model that extracts `spans`, labels listed spans from `labels` (span -> label) and answers verification from `verdicts`. */
function model(id: string, spans: string[], labels: Record<string, string>, verdicts: Record<string, 'yes' | 'no'> = {}): ScriptedClient {
  const script: Script = (kind, messages) => {
    if (kind === 'spans') return JSON.stringify({ entities: spans });
    if (kind === 'types') return JSON.stringify({ types: listedSpans(messages).map((s) => labels[s] ?? 'none') });
    if (kind === 'verdicts') return JSON.stringify({ answers: listedSpans(messages).map((s) => verdicts[s] ?? 'yes') });
    return new Error(`unexpected ${kind}`);
  };
  return new ScriptedClient(id, script);
}

// Extraction: a: Alice, Acme Corp, works; b: Acme Corp, Paris, Bob (Bob occurs nowhere); c: "Alice " (a variant).
// Union: Alice, Acme Corp, works, Paris (+ Bob, unaligned and counted).
// Votes (a > b > c in priority):
//   Alice:     person, person, org     -> person (2 votes)
//   Acme Corp: org, loc, person        -> three-way tie -> org (model a's label)
//   works:     none, none, org         -> none -> dropped
//   Paris:     org, loc, loc           -> loc (2 votes)
// Verification by a: Paris/loc -> no, dropped.
// Offsets (every occurrence): Alice [0,1) and [9,10), Acme Corp [3,5).
const scripted = (): ScriptedClient[] => [
  model('a', ['Alice', 'Acme Corp', 'works'], { Alice: 'person', 'Acme Corp': 'org', works: 'none', Paris: 'org' }, { Paris: 'no' }),
  model('b', ['Acme Corp', 'Paris', 'Bob'], { Alice: 'person', 'Acme Corp': 'loc', works: 'none', Paris: 'loc' }),
  model('c', ['Alice '], { Alice: 'org', 'Acme Corp': 'person', works: 'org', Paris: 'loc' }),
];

test('union, plurality vote with tie-break, verification and offsets on scripted answers', async (t) => {
  const clients = scripted();
  const ctx = context(el4ner(), clients);
  const out = await predictWindow(words, 'w', ctx);
  t.deepEqual(out, [
    { start: 0, end: 1, type: 'person' },
    { start: 9, end: 10, type: 'person' },
    { start: 3, end: 5, type: 'org' },
  ]);
  t.is(ctx.counters.unalignedAnswers, 1, 'Bob');
  t.is(ctx.counters.unparseableAnswers, 0);
  // Every model extracted and typed once; only the verifier (a) verified, one call per pair (3 pairs survive the vote).
  t.deepEqual(
    clients.map((c) => c.calls.map((x) => x.kind).join(',')),
    ['spans,types,verdicts,verdicts,verdicts', 'spans,types', 'spans,types'],
  );
  const summary = ctx.ledger.summary([], { offsetRule: 'every-occurrence', ...ctx.counters, documents: 1 });
  t.is(summary.calls, 9);
  t.is(summary.promptTokens, 900);
  t.deepEqual(Object.keys(summary.stages), ['extract', 'type', 'verify']);
});

test('first-occurrence maps each kept string once', async (t) => {
  const ctx = context(el4ner({ offsetRule: 'first-occurrence' }), scripted());
  const out = await predictWindow(words, 'w', ctx);
  t.deepEqual(out, [
    { start: 0, end: 1, type: 'person' },
    { start: 3, end: 5, type: 'org' },
  ]);
});

test('the verifier is the configured model, and several pairs can share one prompt', async (t) => {
  const clients = scripted();
  const ctx = context(el4ner({ verifier: 1, verifySpansPerCall: 10 }), clients);
  const out = await predictWindow(words, 'w', ctx);
  // b approves everything: Paris/loc survives now.
  t.true(out.some((e) => e.start === 6 && e.type === 'loc'));
  t.deepEqual(
    clients.map((c) => c.calls.filter((x) => x.kind === 'verdicts').length),
    [0, 1, 0],
  );
});

test('an unparseable verification keeps its pairs; a failed model drops out of the vote', async (t) => {
  const clients = scripted();
  clients[0] = new ScriptedClient('a', (kind, messages) =>
    kind === 'spans'
      ? JSON.stringify({ entities: ['Alice'] })
      : kind === 'types'
        ? JSON.stringify({ types: listedSpans(messages).map(() => 'org') })
        : 'I think so',
  );
  clients[2] = new ScriptedClient('c', () => new LlmTimeoutError('c', 10));
  const ctx = context(el4ner(), clients);
  const out = await predictWindow(words, 'w', ctx);
  // Union: Alice (a), Acme Corp, Paris (b; Bob unaligned). c fails, so a and b vote:
  //   Alice: org, person -> tie -> a's org; Acme Corp: org, loc -> org; Paris: org, loc -> org.
  // a's three verification answers are prose: unparseable, so every pair is kept.
  t.deepEqual(out, [
    { start: 0, end: 1, type: 'org' },
    { start: 9, end: 10, type: 'org' },
    { start: 3, end: 5, type: 'org' },
    { start: 6, end: 7, type: 'org' },
    { start: 11, end: 12, type: 'org' },
  ]);
  t.is(ctx.counters.unparseableAnswers, 3);
  const failed = ctx.ledger.records.filter((r) => r.failed);
  t.deepEqual(
    failed.map((r) => [r.model, r.stage]),
    [
      ['c', 'extract'],
      ['c', 'type'],
    ],
  );
});

test('an endpoint refusing the request stops the pipeline', async (t) => {
  const clients = scripted();
  clients[1] = new ScriptedClient('b', () => new LlmCallError('b: HTTP 401', 401, true));
  await t.throwsAsync(predictWindow(words, 'w', context(el4ner(), clients)), { instanceOf: LlmCallError, message: /401/ });
});

test('with typing off, one model gives typed entities directly: the single-model k-shot baseline', async (t) => {
  const single = new ScriptedClient('a', (kind) =>
    kind === 'typed'
      ? JSON.stringify({
          entities: [
            { text: 'Acme Corp', type: 'org' },
            { text: 'Paris', type: 'loc' },
            { text: 'Mars', type: 'loc' },
            { text: 'x', type: 'planet' },
          ],
        })
      : new Error(`unexpected ${kind}`),
  );
  const ctx = context(el4ner({ stages: { preExtract: false, typing: false, verify: false } }, 1), [single]);
  const out = await predictWindow(words, 'w', ctx);
  t.deepEqual(out, [
    { start: 3, end: 5, type: 'org' },
    { start: 6, end: 7, type: 'loc' },
    { start: 11, end: 12, type: 'loc' },
  ]);
  t.is(single.calls.length, 1);
  t.is(ctx.counters.unalignedAnswers, 1, 'Mars; the unknown type is dropped by the parser');
});

test('long documents go through overlapping windows and are merged without duplicates', async (t) => {
  const doc = { id: 'd', words: [...words, ...words], entities: [] };
  const clients = [model('a', ['Alice'], { Alice: 'person' })];
  const cfg = el4ner({ window: 10, stride: 8, stages: { verify: false } }, 1);
  const ctx = context(cfg, clients);
  const out = await predictDocument(doc, ctx);
  // Alice is at 0, 9, 13, 22; windows [0,10) [8,18) [16,26): 9 is seen twice, kept once.
  t.deepEqual(
    out.map((e) => e.start),
    [0, 9, 13, 22],
  );
  t.is(ctx.counters.windows, 3);
});

test("pre-extraction runs only for span-level retrieval and feeds it the union of the models' spans", async (t) => {
  const clients = scripted();
  const cfg = el4ner({ retrieval: { method: 'span-sim', k: 1 }, stages: { typing: true, verify: false } });
  const ctx = context(cfg, clients);
  ctx.retriever = new Retriever(
    [{ id: 'demo', words: ['Bob', 'visits', 'Rome', '.'], entities: [{ start: 0, end: 1, type: 'person' }] }],
    { ...cfg.retrieval, seed: 1 },
    new PosWeigher(),
  );
  await predictWindow(words, 'w', ctx);
  // Each model: pre-extract (zero-shot) then extract with the one demonstration.
  const first = clients[0]!.calls;
  t.is(first[0]!.kind, 'spans');
  t.false(first[0]!.messages[1]!.content.includes('Example 1'));
  t.true(first[1]!.messages[1]!.content.includes('Example 1\nText: Bob visits Rome.'));
  t.is(ctx.ledger.records.filter((r) => r.stage === 'pre-extract').length, 3);
});
