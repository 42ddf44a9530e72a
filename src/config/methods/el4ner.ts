/**
 * Options of the el4ner method (src/llm/): an EL4NER-style ensemble of small LLMs, and with one model and the
 * ensemble stages off, the single-LLM k-shot baseline (the paper's GPT-4o / Claude 5-shot rows).
 *
 * Defaults follow research/baselines.md B.5 (the unofficial reimplementation: k = 5, POS weights
 * 4/2/1/0, typing in one prompt per span list, verification per (span, type) pair) where it has a value.
 * Model locations may name environment variables as `${NAME}` (expanded when the run starts), so that a
 * committed config never holds a machine's path or an endpoint's address; API keys are only ever named
 * (`apiKeyEnv`), never written in a config.
 */
import { z } from 'zod';
import { posInt, section } from '../sections.js';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const LlmModelSchema = section({
  id: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/)
    .describe('Short name of the model in logs and run records; the list order is the tie-break priority of the type vote (first wins).'),
  kind: z
    .enum(['gguf', 'openai'])
    .describe(
      "'gguf': a local GGUF file run in-process by node-llama-cpp; 'openai': an OpenAI-compatible chat-completions endpoint (vLLM, llama.cpp server, Ollama, hosted APIs).",
    ),
  path: z.string().min(1).nullable().default(null).describe('GGUF file (kind gguf); may be ${ENV_VAR}.'),
  baseUrl: z
    .string()
    .min(1)
    .nullable()
    .default(null)
    .describe('Endpoint base URL including the API version, e.g. http://127.0.0.1:8000/v1 (kind openai); may be ${ENV_VAR}.'),
  model: z.string().min(1).nullable().default(null).describe('Model name sent to the endpoint (kind openai); may be ${ENV_VAR}.'),
  apiKeyEnv: z
    .string()
    .regex(ENV_NAME)
    .nullable()
    .default(null)
    .describe('Name of the environment variable holding the API key (sent as a Bearer token; never logged, cached or recorded); null = no key.'),
  contextSize: posInt()
    .default(4096)
    .describe('Context window in tokens (kind gguf: the llama.cpp context allocated; both kinds: prompts are sized to fit it).'),
  maxTokens: posInt().default(512).describe('Most tokens one answer may have.'),
  responseFormat: z
    .enum(['json-schema', 'json-object', 'none'])
    .default('json-schema')
    .describe(
      "How an openai endpoint is asked for JSON: 'json-schema' (response_format json_schema, the answer constrained to the schema), " +
        "'json-object' (any JSON object) or 'none' (the prompt alone). gguf models always decode under a grammar built from the schema.",
    ),
  device: z
    .enum(['auto', 'cpu'])
    .default('auto')
    .describe("kind gguf: 'auto' runs on a GPU when node-llama-cpp finds one and a binary for it, else on the CPU; 'cpu' forces the CPU."),
  threads: posInt()
    .nullable()
    .default(null)
    .describe(
      'kind gguf: CPU threads of llama.cpp; null = every core. On a busy machine fewer threads can be much faster (its threads spin-wait for each other).',
    ),
});
export type LlmModelConfig = z.output<typeof LlmModelSchema>;

const StagesSection = section({
  preExtract: z
    .boolean()
    .default(true)
    .describe('Zero-shot span pre-extraction by every model (union): the query spans of span-level retrieval (EL4NER B.4 step 1).'),
  typing: z
    .boolean()
    .default(true)
    .describe(
      'Separate span typing by every model with a plurality vote (EL4NER stage 3). false: extraction asks for typed entities directly ' +
        '(the classic k-shot NER prompt) and the typed answers of all models are united.',
    ),
  verify: z
    .boolean()
    .default(true)
    .describe('Self-verification: the verifier model answers yes/no per (span, type); rejected pairs are dropped (EL4NER stage 4).'),
});

const RetrievalSection = section({
  method: z
    .enum(['span-sim', 'text-sim', 'random', 'none'])
    .default('span-sim')
    .describe(
      "How the k demonstrations are chosen from the training windows: 'span-sim' (EL4NER's SpanSim over pre-extracted query spans and " +
        "gold candidate spans, POS-weighted), 'text-sim' (cosine of the windows' character n-gram TF-IDF), 'random' (seeded by train.seed), " +
        "'none' (zero-shot).",
    ),
  k: z.number().int().min(0).default(5).describe("Demonstrations per prompt (reimplementation and the paper's LLM baselines: 5)."),
  demoWindow: posInt().default(128).describe('Words per demonstration: training documents are cut into consecutive windows of this size, each a candidate.'),
  ngramMin: posInt().default(3).describe('Smallest character n-gram of the TF-IDF span embeddings.'),
  ngramMax: posInt().default(5).describe('Largest character n-gram of the TF-IDF span embeddings.'),
}).superRefine((r, ctx) => {
  if (r.ngramMax < r.ngramMin) ctx.addIssue({ code: 'custom', path: ['ngramMax'], message: `an integer >= retrieval.ngramMin = ${r.ngramMin}` });
});

export const El4nerSection = section({
  models: z
    .array(LlmModelSchema)
    .default([])
    .describe('The LLMs of the ensemble, in tie-break priority order; empty = nothing can run (the run is recorded as not-run). No model ships with longner.'),
  stages: StagesSection.prefault({}).describe('Pipeline stages, each switchable for ablations.'),
  retrieval: RetrievalSection.prefault({}).describe('Demonstration retrieval.'),
  window: posInt().default(256).describe('Words of a long document sent in one prompt; documents are cut into windows of this size.'),
  stride: posInt()
    .default(224)
    .describe('Words between the starts of consecutive windows (window - stride words overlap); predictions of all windows are merged.'),
  verifier: z.number().int().min(0).default(0).describe('Index in el4ner.models of the model that verifies (default: the first).'),
  offsetRule: z
    .enum(['every-occurrence', 'first-occurrence'])
    .default('every-occurrence')
    .describe(
      'How an answer string becomes word offsets in its window (whitespace ignored, case-sensitive, start and end on word boundaries): ' +
        "'every-occurrence' marks each occurrence, 'first-occurrence' only the first. Strings that occur nowhere produce no span and are counted.",
    ),
  typeSpansPerCall: posInt().default(20).describe("Spans typed in one prompt (the reimplementation types a window's spans in one prompt)."),
  verifySpansPerCall: posInt().default(1).describe('(span, type) pairs verified in one prompt (1 = one yes/no question per pair, as the reimplementation).'),
  maxSpans: posInt().default(48).describe("Most spans one extraction answer may list (the JSON schema's maxItems)."),
  maxSpanChars: posInt().default(400).describe("Longest span string an answer may give, in characters (the JSON schema's maxLength)."),
  temperature: z.number().min(0).max(2).default(0).describe('Sampling temperature of every call (0 = greedy).'),
  cache: z.boolean().default(true).describe('Reuse answers from the disk cache (keyed by model, messages, sampling and schema), so reruns cost nothing.'),
  cacheDir: z.string().min(1).default('.cache/llm').describe('Cache folder; relative paths are under the project root.'),
  concurrency: posInt().default(4).describe('Most requests in flight per openai endpoint (a gguf model answers one call at a time).'),
  timeoutMs: posInt().default(120000).describe('Timeout of one call (one HTTP attempt, or one local generation).'),
  retries: z
    .number()
    .int()
    .min(0)
    .default(3)
    .describe('Retries of an HTTP call after a 5xx, a 429 or a network error (exponential backoff); timeouts are not retried.'),
  retryBaseMs: posInt().default(1000).describe('First backoff delay; each retry doubles it (a Retry-After header wins, up to 60 s).'),
}).superRefine((e, ctx) => {
  if (e.stride > e.window)
    ctx.addIssue({ code: 'custom', path: ['stride'], message: `an integer <= el4ner.window = ${e.window} (windows must cover every word)` });
  if (e.models.length > 0 && e.verifier >= e.models.length) {
    ctx.addIssue({ code: 'custom', path: ['verifier'], message: `an index below the ${e.models.length} configured models` });
  }
  const ids = new Set<string>();
  e.models.forEach((m, i) => {
    if (ids.has(m.id)) ctx.addIssue({ code: 'custom', path: ['models', i, 'id'], message: `a model id not used before in el4ner.models ("${m.id}" repeats)` });
    ids.add(m.id);
    if (m.kind === 'gguf' && m.path === null) ctx.addIssue({ code: 'custom', path: ['models', i, 'path'], message: 'the path of a GGUF file (kind gguf)' });
    if (m.kind === 'openai' && m.baseUrl === null)
      ctx.addIssue({ code: 'custom', path: ['models', i, 'baseUrl'], message: 'an endpoint base URL (kind openai)' });
    if (m.kind === 'openai' && m.model === null)
      ctx.addIssue({ code: 'custom', path: ['models', i, 'model'], message: 'the model name to send (kind openai)' });
  });
});
export type El4nerConfig = z.output<typeof El4nerSection>;
