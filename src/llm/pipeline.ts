/**
 * The EL4NER-style pipeline on one document (research/baselines.md B.3-B.7), window by window:
 *   (a) pre-extraction: every model lists spans zero-shot; the union is the query of span-level retrieval;
 *   (b) retrieval of k demonstrations from the training windows (retrieval.ts);
 *   (c) extraction: every model lists spans with the demonstrations; union (strings that occur nowhere in
 *       the window are dropped and counted);
 *   (d) typing: every model labels every span; plurality vote, ties to the earliest model in el4ner.models
 *       (vote.ts); a span whose winning label is "none" is dropped;
 *   (e) verification: the verifier model answers yes/no per (span, type); a "no" drops the pair, while a
 *       failed or unparseable answer keeps it (verification only removes on an explicit no);
 *   (f) offsets: each kept (string, type) becomes word spans by the one offset rule (align.ts).
 * With el4ner.stages.typing off, (c) asks for typed entities and (d) is skipped; with one model, the union
 * and the vote are that model's answer: the single-LLM k-shot baseline. Windows overlap; the document's
 * prediction is the union of its windows' spans, duplicates removed.
 *
 * A call that fails (timeout, retries exhausted) or returns JSON of the wrong shape counts as an empty
 * answer and is recorded; an endpoint refusing the request (HTTP 4xx other than 429) stops the run.
 */
import type { El4nerConfig, LlmModelConfig } from '../config/methods/el4ner.js';
import type { Document, Entity } from '../data/types.js';
import { LongnerError } from '../errors.js';
import { Aligner } from './align.js';
import { NONE_LABEL, labelsSchema, parseLabels, parseSpans, parseTypedSpans, parseVerdicts, spansSchema, typedSpansSchema, verdictsSchema } from './answers.js';
import type { Ledger, Stage } from './ledger.js';
import { extractMessages, preExtractMessages, typeMessages, verifyMessages } from './prompts.js';
import type { Demo, Retriever } from './retrieval.js';
import { renderWords, wordWindows } from './text.js';
import { LlmCallError, type ChatMessage, type JsonSchema, type LlmClient } from './types.js';
import { normalizeSpace, pluralityVote, unionStrings } from './vote.js';

export interface PipelineModel {
  client: LlmClient;
  config: LlmModelConfig;
}

export interface PipelineCounters {
  unalignedAnswers: number;
  unparseableAnswers: number;
  windows: number;
}

export interface PipelineContext {
  models: readonly PipelineModel[];
  types: readonly string[];
  config: El4nerConfig;
  retriever: Retriever;
  ledger: Ledger;
  counters: PipelineCounters;
  /** Per-call and per-window events for the run log; never holds a key. */
  onEvent?: (event: Record<string, unknown>) => void;
}

interface TypedSpan {
  text: string;
  type: string;
}

/** Characters per token assumed when a client cannot count tokens itself (conservative for English BPE vocabularies). */
const CHARS_PER_TOKEN = 3;
/** Tokens kept free besides the answer, for the chat template's own markup. */
const TEMPLATE_MARGIN = 64;

export function newCounters(): PipelineCounters {
  return { unalignedAnswers: 0, unparseableAnswers: 0, windows: 0 };
}

/** The predicted entities of one document (word offsets, end exclusive, no duplicates). */
export async function predictDocument(doc: Document, ctx: PipelineContext): Promise<Entity[]> {
  const cfg = ctx.config;
  const merged = new Map<string, Entity>();
  for (const w of wordWindows(doc.words.length, cfg.window, cfg.stride)) {
    const words = doc.words.slice(w.start, w.end);
    const found = await predictWindow(words, `${doc.id}@${w.start}`, ctx);
    ctx.counters.windows++;
    for (const e of found) {
      const shifted = { start: e.start + w.start, end: e.end + w.start, type: e.type };
      merged.set(`${shifted.start}:${shifted.end}:${shifted.type}`, shifted);
    }
  }
  return [...merged.values()].sort((a, b) => a.start - b.start || a.end - b.end || (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
}

/** The pipeline on one window; offsets are relative to `words`. */
export async function predictWindow(words: readonly string[], key: string, ctx: PipelineContext): Promise<Entity[]> {
  const cfg = ctx.config;
  const text = renderWords(words);
  const aligner = new Aligner(words, cfg.offsetRule);
  const aligns = (s: string): boolean => aligner.align(s).length > 0;

  // (a) pre-extraction, only where span-level retrieval will read it.
  let querySpans: string[] = [];
  if (cfg.stages.preExtract && cfg.retrieval.method === 'span-sim' && cfg.retrieval.k > 0) {
    const schema = spansSchema(cfg.maxSpans, cfg.maxSpanChars);
    const answers = await Promise.all(ctx.models.map((m) => ask(ctx, m, 'pre-extract', preExtractMessages(ctx.types, text), schema)));
    querySpans = unionStrings(answers.map((a) => (a === null ? [] : (parseOrCount(ctx, () => parseSpans(a)) ?? []))));
  }

  // (b) demonstrations.
  const demos = await ctx.retriever.select(words, querySpans, key);

  // (c) extraction, then (d) typing.
  let typed: TypedSpan[];
  if (cfg.stages.typing) {
    const schema = spansSchema(cfg.maxSpans, cfg.maxSpanChars);
    const answers = await Promise.all(
      ctx.models.map(async (m) => {
        const messages = await fitDemos(m, demos, (d) => extractMessages(ctx.types, d, text, false));
        const a = await ask(ctx, m, 'extract', messages, schema);
        return a === null ? [] : (parseOrCount(ctx, () => parseSpans(a)) ?? []);
      }),
    );
    const spans = keepAligned(ctx, unionStrings(answers), aligns);
    typed = await typeSpans(spans, text, demos, ctx);
  } else {
    const schema = typedSpansSchema(ctx.types, cfg.maxSpans, cfg.maxSpanChars);
    const answers = await Promise.all(
      ctx.models.map(async (m) => {
        const messages = await fitDemos(m, demos, (d) => extractMessages(ctx.types, d, text, true));
        const a = await ask(ctx, m, 'extract', messages, schema);
        return a === null ? [] : (parseOrCount(ctx, () => parseTypedSpans(a, ctx.types)) ?? []);
      }),
    );
    typed = unionTyped(answers);
    const kept = new Set(keepAligned(ctx, unionStrings([typed.map((t) => t.text)]), aligns));
    typed = typed.filter((t) => kept.has(t.text));
  }

  // (e) verification.
  if (cfg.stages.verify && typed.length > 0) typed = await verify(typed, text, ctx);

  // (f) offsets.
  const out: Entity[] = [];
  for (const t of typed) for (const span of aligner.align(t.text)) out.push({ start: span.start, end: span.end, type: t.type });
  return out;
}

async function typeSpans(spans: readonly string[], text: string, demos: readonly Demo[], ctx: PipelineContext): Promise<TypedSpan[]> {
  const cfg = ctx.config;
  const chunks = chunk(spans, cfg.typeSpansPerCall);
  const labelled = await Promise.all(
    chunks.map(async (list) => {
      const schema = labelsSchema(ctx.types, list.length);
      // votes[model][span]: the label each model gave, null when it gave none.
      const votes = await Promise.all(
        ctx.models.map(async (m) => {
          const messages = await fitDemos(m, demos, (d) => typeMessages(ctx.types, d, text, list));
          const a = await ask(ctx, m, 'type', messages, schema);
          const labels = a === null ? null : parseOrCount(ctx, () => parseLabels(a, ctx.types, list.length));
          return list.map((_, i) => labels?.[i] ?? null);
        }),
      );
      return list.map((s, i) => ({ text: s, type: pluralityVote(votes.map((v) => v[i]!)) }));
    }),
  );
  return labelled.flat().filter((t): t is TypedSpan => t.type !== null && t.type !== NONE_LABEL);
}

async function verify(pairs: readonly TypedSpan[], text: string, ctx: PipelineContext): Promise<TypedSpan[]> {
  const verifier = ctx.models[ctx.config.verifier];
  if (verifier === undefined) throw new LongnerError(`el4ner.verifier: ${ctx.config.verifier} is not an index of el4ner.models`);
  const chunks = chunk(pairs, ctx.config.verifySpansPerCall);
  const kept = await Promise.all(
    chunks.map(async (list) => {
      const a = await ask(ctx, verifier, 'verify', verifyMessages(ctx.types, text, list), verdictsSchema(list.length));
      const verdicts = a === null ? null : parseOrCount(ctx, () => parseVerdicts(a, list.length));
      return verdicts === null ? list : list.filter((_, i) => verdicts[i]);
    }),
  );
  return kept.flat();
}

/** Union of typed answers: a (text, type) pair once, first-seen order. */
function unionTyped(lists: ReadonlyArray<readonly TypedSpan[]>): TypedSpan[] {
  const seen = new Map<string, TypedSpan>();
  for (const list of lists) {
    for (const t of list) {
      const item = { text: normalizeSpace(t.text), type: t.type };
      if (item.text !== '') seen.set(JSON.stringify([item.text, item.type]), item);
    }
  }
  return [...seen.values()];
}

/** Strings that map to at least one span; the others are counted and dropped. */
function keepAligned(ctx: PipelineContext, strings: readonly string[], aligns: (s: string) => boolean): string[] {
  const out: string[] = [];
  for (const s of strings) {
    if (aligns(s)) out.push(s);
    else ctx.counters.unalignedAnswers++;
  }
  return out;
}

function parseOrCount<T>(ctx: PipelineContext, parse: () => T | null): T | null {
  const value = parse();
  if (value === null) ctx.counters.unparseableAnswers++;
  return value;
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * The prompt with as many demonstrations as fit the model's context next to its answer budget, dropping
 * the least similar (last) ones first. Tokens are counted by the model where it can, else estimated.
 */
async function fitDemos(m: PipelineModel, demos: readonly Demo[], build: (demos: readonly Demo[]) => ChatMessage[]): Promise<ChatMessage[]> {
  const budget = m.config.contextSize - m.config.maxTokens - TEMPLATE_MARGIN;
  for (let n = demos.length; n > 0; n--) {
    const messages = build(demos.slice(0, n));
    if ((await promptTokens(m.client, messages)) <= budget) return messages;
  }
  return build([]);
}

async function promptTokens(client: LlmClient, messages: readonly ChatMessage[]): Promise<number> {
  const text = messages.map((m) => m.content).join('\n');
  return client.countTokens ? client.countTokens(text) : Math.ceil(text.length / CHARS_PER_TOKEN);
}

/** One call, recorded in the ledger; null when it failed for a reason a rerun might not have. */
async function ask(ctx: PipelineContext, m: PipelineModel, stage: Stage, messages: ChatMessage[], schema: JsonSchema): Promise<string | null> {
  const started = performance.now();
  try {
    const r = await m.client.chat(messages, {
      schema,
      maxTokens: m.config.maxTokens,
      temperature: ctx.config.temperature,
      timeoutMs: ctx.config.timeoutMs,
    });
    const record = {
      model: m.client.id,
      stage,
      promptTokens: r.promptTokens,
      completionTokens: r.completionTokens,
      ms: r.ms,
      cached: r.cached === true,
      failed: false,
    };
    ctx.ledger.record(record);
    ctx.onEvent?.({ event: 'llm-call', ...record });
    return r.text;
  } catch (err) {
    if (err instanceof LongnerError || (err instanceof LlmCallError && err.fatal)) throw err;
    const record = { model: m.client.id, stage, promptTokens: null, completionTokens: null, ms: performance.now() - started, cached: false, failed: true };
    ctx.ledger.record(record);
    ctx.onEvent?.({ event: 'llm-call', ...record, reason: err instanceof Error ? err.message : String(err) });
    return null;
  }
}
