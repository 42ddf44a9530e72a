/**
 * One training run from a resolved config: data -> (pretrained) model -> trainer -> test evaluation
 * -> result.json. `longner train` calls it in-process; `longner run` calls it in one child process
 * per run, because the wasm heap never shrinks (research/backends.md 3).
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { backendMemory, initBackend } from '../backend/index.js';
import type { Config } from '../config/schema.js';
import { prepareData, type PreparedData } from '../data/pipeline.js';
import { writeGenericJsonl } from '../data/readers.js';
import { SubwordTokenizer } from '../data/tokenizer.js';
import type { Document, ScoredEntity } from '../data/types.js';
import { evaluateDocuments, type Evaluation } from '../eval/evaluate.js';
import { errorReason, isOutOfMemory } from '../measure/oom.js';
import { createModel } from '../models/index.js';
import type { SpanModel } from '../models/span-model.js';
import { executeEnsembleRun } from './el4ner.js';
import { ensurePretrained, loadPretrainedEncoder } from '../train/pretrain/index.js';
import { train, type TrainOutcome } from '../train/trainer.js';
import { BEST_CKPT } from '../train/checkpoint.js';
import { RUN_LOCK, RunRecord } from './record.js';
import { runDir } from './id.js';
import { collectEnv } from '../util/env.js';
import { acquireLock } from '../util/lock.js';
import { writeRunDataset } from './run-dataset.js';
import { emptyMemory, emptyMetrics, emptyTiming, resultHeader, type RunResult, type RunStatus } from './result.js';

export const TOKENIZER_FILE = 'tokenizer.json';

export interface ExecuteOptions {
  resume?: boolean;
  /** Folder that holds <experiment>/<run id>/; default runsRoot() ($LONGNER_RUNS_DIR or the project's runs/). */
  root?: string;
  quiet?: boolean;
}

/**
 * The tokenizer path of a run; with a pretrained encoder, the pretraining run's tokenizer, copied in
 * (every time: the run must use the tokenizer its encoder was pretrained with).
 */
async function runTokenizer(
  config: Config,
  record: RunRecord,
  opts: ExecuteOptions,
): Promise<{ path: string; pretrained: SubwordTokenizer | undefined; encoderCheckpoint: string | null }> {
  const path = join(record.dir, TOKENIZER_FILE);
  if (config.encoder.pretrained === null) return { path, pretrained: undefined, encoderCheckpoint: null };
  const pre = await ensurePretrained(config, { root: opts.root, quiet: opts.quiet });
  copyFileSync(pre.tokenizerPath, path);
  record.log({ event: 'pretrained', from: pre.dir, kind: pre.kind });
  return { path, pretrained: SubwordTokenizer.load(path), encoderCheckpoint: pre.encoderCheckpoint };
}

/** Predictions as the generic JSONL layout (words, entities with scores), for `longner predict` and inspection. */
export function predictionDocuments(docs: readonly Document[], predictions: Map<string, ScoredEntity[]>): Document[] {
  return docs.map((d) => ({ id: d.id, words: d.words, entities: predictions.get(d.id) ?? [] }));
}

/**
 * The test split's decoding threshold and the others scored beside it: a model that tunes its
 * threshold decodes at the best checkpoint's tuned value under eval.threshold: tuned (else at its own)
 * and is also scored at 0.5 and at the tuned value; other models decode as they do.
 */
export function testThresholds(config: Config, model: SpanModel, outcome: TrainOutcome): { used: number | null; sweep: number[] } {
  if (model.tunesThreshold !== true) return { used: model.threshold ?? null, sweep: [] };
  const tuned = outcome.bestTunedThreshold;
  const used = config.eval.threshold === 'tuned' ? (outcome.bestThreshold ?? 0.5) : (model.threshold ?? 0.5);
  return { used, sweep: [0.5, ...(tuned === null ? [] : [tuned])].filter((t) => t !== used) };
}

function thresholdRecord(config: Config, model: SpanModel, outcome: TrainOutcome, ev: Evaluation): RunResult['thresholds'] {
  const at = (t: number) => (t === ev.threshold ? ev.metrics.overall : (ev.sweep.find((x) => x.threshold === t)?.overall ?? null));
  const tuned = model.tunesThreshold === true ? outcome.bestTunedThreshold : null;
  const tunedScores = tuned === null ? null : at(tuned);
  return {
    mode: config.eval.threshold === 'tuned' ? 'tuned' : 'fixed',
    used: ev.threshold,
    reference: ev.threshold === null ? null : at(0.5),
    tuned: tuned === null || tunedScores === null ? null : { threshold: tuned, overall: tunedScores },
  };
}

function curvesOf(outcome: TrainOutcome): RunResult['curves'] {
  return {
    trainLoss: outcome.lossCurve,
    validation: outcome.history.map((h) => ({
      step: h.step,
      epoch: h.epoch,
      f1: h.validationF1,
      referenceF1: h.referenceF1 ?? null,
      tunedF1: h.tunedF1 ?? null,
      threshold: h.threshold ?? null,
      predicted: h.predicted ?? null,
      goldScoreMedian: h.goldScoreMedian ?? null,
    })),
  };
}

/**
 * Trains and tests one run in its folder, which it holds alone: a second process on the same run (the
 * grid started twice, `train --resume` beside a running grid) stops with BusyError before it writes,
 * instead of interleaving checkpoints and log lines. A lock left by a killed process is taken over.
 */
export async function executeRun(config: Config, opts: ExecuteOptions = {}): Promise<RunResult> {
  const dir = runDir(config, opts.root);
  mkdirSync(dir, { recursive: true });
  const release = acquireLock(dir, RUN_LOCK, 'run');
  try {
    // The LLM ensemble does not train and uses no TensorFlow.js: it only predicts the test split.
    if (config.method === 'el4ner') return await executeEnsembleRun(config, { root: opts.root, quiet: opts.quiet });
    return await trainAndTest(config, opts);
  } finally {
    release();
  }
}

async function trainAndTest(config: Config, opts: ExecuteOptions): Promise<RunResult> {
  const started = Date.now();
  const backend = await initBackend(config.backend, { quiet: opts.quiet });
  const record = RunRecord.create(config, opts.root);
  // Each process of a run logs the commit it started from (a resumed run may continue on another).
  record.log({ event: 'start', backend: backend.detail, resume: opts.resume === true, gitCommit: collectEnv().gitCommit });
  let data: PreparedData | null = null;
  let model: SpanModel | null = null;
  let outcome: TrainOutcome | null = null;
  // A resumed run's record counts the training time of the processes before this one too.
  const wall = (): number => (outcome?.priorWallSeconds ?? 0) + (Date.now() - started) / 1000;
  const finish = (status: RunStatus, extra: Partial<RunResult>): RunResult => {
    const result: RunResult = {
      ...resultHeader(config, data?.protocol ?? null, backend),
      status,
      metrics: emptyMetrics(),
      memory: { ...emptyMemory(), peakBytesTrainStep: outcome?.peakBytesTrainStep ?? null },
      timing: { ...emptyTiming(), msPerTrainStep: outcome?.msPerStep ?? null, wallSeconds: wall() },
      ...extra,
    };
    record.writeResult(result);
    record.log({ event: 'result', status, reason: result.reason });
    return result;
  };
  try {
    const tok = await runTokenizer(config, record, opts);
    data = await prepareData(config, { tokenizerPath: tok.path, tokenizer: tok.pretrained });
    writeRunDataset(record.dir, config, data.protocol.types);
    model = createModel(config, { types: data.protocol.types, vocabSize: data.tokenizer.vocabSize });
    if (tok.encoderCheckpoint !== null && !(opts.resume && existsSync(join(record.dir, BEST_CKPT)))) {
      loadPretrainedEncoder(model.params, tok.encoderCheckpoint);
    }
    outcome = await train({
      model,
      config,
      data: { train: data.train.segments, validation: data.validation.docs, validationSegments: data.validation.segments },
      record,
      resume: opts.resume === true,
      quiet: opts.quiet,
    });
    if (outcome.status === 'aborted') throw new Error('training was aborted');
    if (outcome.status === 'diverged') return finish('diverged', { reason: outcome.reason ?? 'non-finite loss' });
    const { used, sweep } = testThresholds(config, model, outcome);
    const ev: Evaluation = await evaluateDocuments(model, data.test.docs, data.test.byDoc, config.eval.batchSize, { threshold: used ?? undefined, sweep });
    writeGenericJsonl(join(record.dir, 'test.predictions.jsonl'), predictionDocuments(data.test.docs, ev.predictions));
    const testSeconds = ((ev.msPerDocument ?? 0) * data.test.docs.length) / 1000;
    return finish('ok', {
      metrics: { overall: ev.metrics.overall, perType: ev.metrics.perType, perLength: ev.metrics.perLength },
      thresholds: thresholdRecord(config, model, outcome, ev),
      diagnostics: ev.diagnostics,
      curves: curvesOf(outcome),
      memory: {
        peakBytesTrainStep: outcome.peakBytesTrainStep,
        peakBytesInference: ev.peakBytesInference,
        wasmHeapBytes: Math.max(outcome.wasmHeapBytes ?? 0, ev.wasmHeapBytes ?? 0) || null,
        rssBytes: Math.max(outcome.rssBytes ?? 0, ev.rssBytes),
      },
      timing: {
        msPerTrainStep: outcome.msPerStep,
        msPerDocument: ev.msPerDocument,
        tokensPerSecond: testSeconds > 0 ? data.test.tokens / testSeconds : null,
        wallSeconds: wall(),
      },
    });
  } catch (err) {
    if (isOutOfMemory(err, backendMemory().wasmHeapBytes)) return finish('oom', { reason: errorReason(err) });
    finish('failed', { reason: errorReason(err) });
    throw err;
  } finally {
    model?.params.dispose();
  }
}
