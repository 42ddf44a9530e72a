/**
 * One el4ner run: the protocol's test documents (dataset.maxDocs.test respected) through the pipeline,
 * scored with the strict metric, recorded as runs/<experiment>/<run id>/ with result.json (token counts and
 * latency in its `llm` field), test.predictions.jsonl, log.jsonl and llm-calls.jsonl (one line per call:
 * model, stage, tokens, ms, cached; never a prompt or a key).
 *
 * With no model configured nothing can run: the result is status 'not-run' with no metrics at all.
 */
import { join } from 'node:path';
import type { LlmModelConfig } from '../config/methods/el4ner.js';
import type { Config } from '../config/schema.js';
import { loadProtocolFor } from '../data/pipeline.js';
import type { ProtocolData } from '../data/protocol.js';
import type { Registry } from '../data/registry.js';
import { writeGenericJsonl } from '../data/readers.js';
import type { Entity } from '../data/types.js';
import { LongnerError } from '../errors.js';
import { scoreEntities } from '../eval/metrics.js';
import { RunRecord } from './record.js';
import { emptyMemory, emptyMetrics, emptyTiming, resultHeader, type RunResult, type RunStatus } from './result.js';
import { appendJsonl } from '../util/atomic.js';
import { Progress } from '../util/progress.js';
import { createClient, resolveModel } from '../llm/clients/index.js';
import { Ledger } from '../llm/ledger.js';
import { newCounters, predictDocument, type PipelineContext, type PipelineModel } from '../llm/pipeline.js';
import { PosWeigher } from '../llm/pos.js';
import { Retriever, demoPool } from '../llm/retrieval.js';
import { LlmCallError, type LlmClient } from '../llm/types.js';

export const NOT_RUN_REASON = 'not run: no model configured';
export const CALLS_FILE = 'llm-calls.jsonl';
export const PREDICTIONS_FILE = 'test.predictions.jsonl';

export interface EnsembleRunOptions {
  /** Folder that holds <experiment>/<run id>/; default runsRoot() ($LONGNER_RUNS_DIR or the project's runs/). */
  root?: string;
  quiet?: boolean;
  /** Where ${VAR} references and API keys are read from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Builds the client of a model entry (tests pass scripted clients); default: gguf or openai per its kind, behind the cache. */
  clientFor?: (model: LlmModelConfig, index: number) => LlmClient;
  /** Dataset registry (tests pass one over fixture files); default the project's. */
  registry?: Registry;
}

export async function executeEnsembleRun(config: Config, opts: EnsembleRunOptions = {}): Promise<RunResult> {
  const started = Date.now();
  const cfg = config.el4ner;
  const record = RunRecord.create(config, opts.root);
  record.log({ event: 'start', method: config.method, models: cfg.models.map((m) => m.id) });
  let protocol: ProtocolData | null = null;
  let peakRss = 0;
  const finish = (status: RunStatus, extra: Partial<RunResult>): RunResult => {
    const result: RunResult = {
      // No TensorFlow.js backend is involved: the models run in llama.cpp or behind an endpoint.
      ...resultHeader(config, protocol, null),
      status,
      metrics: emptyMetrics(),
      memory: emptyMemory(),
      timing: { ...emptyTiming(), wallSeconds: (Date.now() - started) / 1000 },
      ...extra,
    };
    record.writeResult(result);
    record.log({ event: 'result', status, reason: result.reason });
    return result;
  };

  if (cfg.models.length === 0) return finish('not-run', { reason: NOT_RUN_REASON, timing: emptyTiming() });

  const clients: LlmClient[] = [];
  try {
    protocol = await loadProtocolFor(config, opts.registry);
    const env = opts.env ?? process.env;
    const onEvent = (event: Record<string, unknown>): void => record.log(event);
    const resolved = cfg.models.map((m, i) => resolveModel(m, i, env));
    resolved.forEach((m, i) => {
      clients.push(opts.clientFor ? opts.clientFor(m, i) : createClient(m, cfg, { env, onEvent }));
    });
    const identities = await Promise.all(clients.map((c) => c.identity()));
    const ledgerModels = resolved.map((m, i) => ({ id: m.id, kind: m.kind, model: identities[i]! }));
    record.log({ event: 'llm-models', models: ledgerModels, offsetRule: cfg.offsetRule, verifier: cfg.models[cfg.verifier]?.id ?? null });

    const pool = demoPool(protocol.train, cfg.retrieval.demoWindow);
    const retriever = new Retriever(pool, { ...cfg.retrieval, seed: config.train.seed }, new PosWeigher());
    const models: PipelineModel[] = resolved.map((m, i) => ({ client: clients[i]!, config: m }));
    const callsFile = join(record.dir, CALLS_FILE);
    const ctx: PipelineContext = {
      models,
      types: protocol.types,
      config: cfg,
      retriever,
      ledger: new Ledger(),
      counters: newCounters(),
      onEvent: (event) => {
        if (event.event === 'llm-call') appendJsonl(callsFile, { time: new Date().toISOString(), ...event });
        else record.log(event);
      },
    };

    const docs = protocol.test;
    const progress = opts.quiet ? null : new Progress({ label: `el4ner ${config.dataset.name} test`, total: docs.length, unit: ' docs' });
    const predictions = new Map<string, Entity[]>();
    const loopStarted = Date.now();
    for (const doc of docs) {
      predictions.set(doc.id, await predictDocument(doc, ctx));
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      progress?.tick(1, `${ctx.ledger.records.length} calls`);
    }
    progress?.finish();
    const loopMs = Date.now() - loopStarted;

    const summary = ctx.ledger.summary(ledgerModels, { offsetRule: cfg.offsetRule, ...ctx.counters, documents: docs.length });
    writeGenericJsonl(
      join(record.dir, PREDICTIONS_FILE),
      docs.map((d) => ({ id: d.id, words: d.words, entities: predictions.get(d.id) ?? [] })),
    );
    const memory = { ...emptyMemory(), rssBytes: peakRss };
    const timing = { ...emptyTiming(), msPerDocument: docs.length > 0 ? loopMs / docs.length : null, wallSeconds: (Date.now() - started) / 1000 };
    if (summary.calls > 0 && summary.failedCalls === summary.calls) {
      return finish('failed', { reason: `every LLM call failed (${summary.calls} calls; the reasons are in ${CALLS_FILE})`, memory, timing, llm: summary });
    }
    const metrics = scoreEntities(docs, predictions);
    return finish('ok', { metrics: { overall: metrics.overall, perType: metrics.perType, perLength: metrics.perLength }, memory, timing, llm: summary });
  } catch (err) {
    const reason = (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 300);
    finish('failed', { reason });
    // An endpoint refusing the request is the user's to fix (key, model name, URL): a one-line error, no stack.
    if (err instanceof LlmCallError && err.fatal) throw new LongnerError(err.message);
    throw err;
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  }
}
