/**
 * The training loop of every span model: seeded epochs of shuffled segment batches, AdamW with
 * warm-up and linear decay, global-norm clipping, a divergence guard, validation after every epoch
 * with best-checkpoint selection and early stopping, and exact resume.
 *
 * Determinism: every random choice is a pure function of (train.seed, epoch, step): the epoch's
 * segment order comes from an rng seeded by (seed, epoch), the loss's rng (dropout, masking) from
 * (seed, step). Together with checkpoints that restore parameters, moments and counters bit for bit,
 * a run killed anywhere and resumed ends with the same parameters and metrics as an uninterrupted
 * run on the same backend. The state is saved at every validation and, in between, every
 * `checkpointEvery` (default 10 minutes); a kill loses at most the work since the last save.
 *
 * Validation runs at every epoch end and, with eval.every = N, after every N-th step too. Under
 * eval.threshold: tuned a model that tunes its threshold is scored at the best value of
 * eval.thresholdGrid (the same forward passes decoded at each), and that value travels with the
 * best checkpoint (TrainOutcome.bestThreshold).
 *
 * Files in the run directory: checkpoint.ts. Log events in log.jsonl: `train-start`, `probe`,
 * `step` (loss, gradient norm, learning rates of every step), `validation` (scores, threshold
 * sweep, predicted spans, gold-score distribution, oracle ceiling), `epoch`, `diverged`, `train-end`.
 * A resumed run repeats the `step` events since its last save; readers keep the last of each step.
 */
import * as tf from '@tensorflow/tfjs-core';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
// Taking gradients needs the gradient registrations and kernel shims that come with the backend module.
import { activeBackend, backendMemory } from '../backend/index.js';
import type { Config } from '../config/schema.js';
import type { Segment } from '../data/segmenter.js';
import type { Document } from '../data/types.js';
import { LongnerError } from '../errors.js';
import { evaluateDocuments, groupSegments } from '../eval/evaluate.js';
import type { Metrics } from '../eval/metrics.js';
import { bestThreshold, type Diagnostics, type ThresholdScore } from '../eval/diagnostics.js';
import type { Batch, SpanModel } from '../models/span-model.js';
import { Progress } from '../util/progress.js';
import { createRng, shuffled, type Rng } from '../util/rng.js';
import { AdamW, clipByGlobalNorm } from './adamw.js';
import {
  BEST_CKPT,
  clearCheckpoints,
  loadCheckpoint,
  restoreCheckpoint,
  saveCheckpoint,
  type EpochRecord,
  type TrainerState,
  type TrainerStateBody,
} from './checkpoint.js';
import { linearSchedule, stepsPerEpoch, totalSteps } from './schedule.js';
import { configHash } from '../data/config-hash.js';
import { measureStep, timeStep } from '../backend/step.js';

export type { EpochRecord } from './checkpoint.js';

export interface TrainData {
  train: readonly Segment[];
  /** Validation documents: their own entity lists are the gold. */
  validation: readonly Document[];
  validationSegments: readonly Segment[];
}

export interface StepInfo {
  /** 1-based epoch of the step. */
  epoch: number;
  /** Optimizer steps done, this one included. */
  step: number;
  totalSteps: number;
  loss: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Learning rate per parameter group used by this step. */
  lr: Readonly<Record<string, number>>;
}

export interface StopPoint {
  /** 1-based epoch. */
  epoch: number;
  step: number;
  /** false: right after a step (before its epoch-end work); true: after an epoch's evaluation and save. */
  epochEnd: boolean;
}

/**
 * Where a training run keeps its state and its event log: the run folder (checkpoints, the resume
 * journal) and one JSON object per event. runs/record.ts's RunRecord is one.
 */
export interface TrainLog {
  readonly dir: string;
  log(event: Record<string, unknown>): void;
}

/** A validation: its scores at the model's threshold, and (for models that tune one) the sweep and diagnostics. */
export interface Validation {
  metrics: Metrics;
  /** The threshold `metrics` were decoded at; null for a method without one. */
  threshold: number | null;
  /** Overall scores at each eval.thresholdGrid value (models that tune their threshold); may be empty. */
  sweep: ThresholdScore[];
  diagnostics: Diagnostics | null;
}

export interface TrainOptions {
  model: SpanModel;
  config: Config;
  data: TrainData;
  record: TrainLog;
  /** Continue from the run directory's saved state (a fresh start when there is none). */
  resume?: boolean;
  /** Validation metrics of the model as it is; default: evaluateDocuments on data.validation. Null = no validation set. */
  evaluate?: (model: SpanModel) => Metrics | Validation | null | Promise<Metrics | Validation | null>;
  onProgress?: (info: StepInfo) => void;
  /** No progress bar. */
  quiet?: boolean;
  /** Mid-epoch state saves, whichever comes first; default every 600 s. Epoch ends always save. */
  checkpointEvery?: { steps?: number | null; seconds?: number | null };
  /**
   * Asked after every step and every epoch-end save; true stops the run at once, writing nothing
   * more, as a kill would (for tests, and for a CLI's Ctrl-C that stops at a clean point).
   */
  shouldStop?: (at: StopPoint) => boolean;
}

export type TrainStatus = 'ok' | 'diverged' | 'aborted';
export type StoppedBy = 'epochs' | 'maxSteps' | 'patience' | 'diverged' | 'aborted';

export interface TrainOutcome {
  status: TrainStatus;
  stoppedBy: StoppedBy;
  /** Why a run is not 'ok', in words. */
  reason: string | null;
  /** Epochs evaluated (a final partial epoch counts). */
  epochs: number;
  /** Optimizer steps done. */
  steps: number;
  totalSteps: number;
  /** 1-based epoch whose parameters best.ckpt holds (and the model holds after train returns). */
  bestEpoch: number | null;
  bestValidationF1: number | null;
  bestMetrics: Metrics | null;
  /** The decoding threshold of the best validation (the tuned one under eval.threshold: tuned); null without validation or threshold. */
  bestThreshold: number | null;
  /** The best eval.thresholdGrid value of that validation, used or not (models that tune); null otherwise. */
  bestTunedThreshold: number | null;
  /** Every validation, in order (one per epoch unless eval.every). */
  history: EpochRecord[];
  /** The training-loss curve: [step, mean loss of the window ending there]. */
  lossCurve: [number, number][];
  /** Mean wall time of a training step (warm-up and profiled steps left out); null when no step was timed. */
  msPerStep: number | null;
  /** Peak live tensor bytes of a profiled training step (weights and moments included). */
  peakBytesTrainStep: number | null;
  /** Largest wasm heap seen at a save (the heap never shrinks, so this is the training high-water mark); null off wasm. */
  wasmHeapBytes: number | null;
  /** Largest resident set seen at the profiled step or a save. */
  rssBytes: number | null;
  /** The step a resumed run continued from; null for a fresh start. */
  resumedFromStep: number | null;
  /** Wall seconds of training in earlier processes, up to the checkpoint resumed from; 0 for a fresh start. */
  priorWallSeconds: number;
}

const DEFAULT_CHECKPOINT_SECONDS = 600;
/** The loss curve keeps at most about this many points. */
const CURVE_POINTS = 200;
const SHUFFLE_TAG = 0x5348;
const STEP_TAG = 0x5354;

/** A 32-bit hash of a few integers (murmur3's finaliser per word), for seeding independent streams. */
export function deriveSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    // Integers beyond 32 bits (large step counts) contribute both halves.
    for (const word of [p >>> 0, Math.floor(p / 2 ** 32) >>> 0]) {
      h = Math.imul(h ^ word, 0x85ebca6b);
      h ^= h >>> 13;
      h = Math.imul(h, 0xc2b2ae35);
      h ^= h >>> 16;
    }
  }
  return h >>> 0;
}

/** The segments of 0-based `epoch` in training order. */
export function epochOrder<T>(items: readonly T[], seed: number, epoch: number): T[] {
  return shuffled(items, createRng(deriveSeed(seed, SHUFFLE_TAG, epoch)));
}

/** The rng handed to model.loss for the update with 0-based index `step`. */
export function stepRng(seed: number, step: number): Rng {
  return createRng(deriveSeed(seed, STEP_TAG, step));
}

export interface StepResult {
  loss: number;
  gradNorm: number;
  /** Non-finite loss or gradient norm: nothing was updated. */
  diverged: boolean;
}

/**
 * One optimizer step: loss and gradients of the optimizer's parameters, divergence check, clipping,
 * AdamW update. Every tensor it makes is disposed. Takes a loss function rather than a model so
 * that other loops (MLM pretraining) can use it too.
 */
export function trainStep(lossFn: () => tf.Scalar, optimizer: AdamW, lr: Readonly<Record<string, number>>, clip: number | null): StepResult {
  const vars = optimizer.params.map((p) => p.variable);
  const { value, grads } = tf.variableGrads(lossFn, vars);
  try {
    const loss = value.dataSync()[0]!;
    if (!Number.isFinite(loss)) return { loss, gradNorm: NaN, diverged: true };
    const clipped = clipByGlobalNorm(grads, clip);
    try {
      if (!Number.isFinite(clipped.norm)) return { loss, gradNorm: clipped.norm, diverged: true };
      optimizer.step(clipped.grads, lr);
    } finally {
      if (clipped.clipped) tf.dispose(Object.values(clipped.grads));
    }
    return { loss, gradNorm: clipped.norm, diverged: false };
  } finally {
    value.dispose();
    tf.dispose(Object.values(grads));
  }
}

function freshState(config: Config, total: number): TrainerStateBody {
  return {
    configHash: configHash(config),
    seed: config.train.seed,
    epoch: 0,
    batchInEpoch: 0,
    step: 0,
    totalSteps: total,
    epochLoss: { sum: 0, count: 0 },
    best: { f1: null, epoch: null, metrics: null, step: null, threshold: null, tunedThreshold: null },
    curve: { every: Math.max(1, Math.ceil(total / CURVE_POINTS)), points: [], window: { sum: 0, count: 0 } },
    badEpochs: 0,
    history: [],
    optimizer: { steps: {} },
    measured: { msPerStep: null, peakBytesTrainStep: null, wasmHeapBytes: null, rssBytes: null },
    finished: null,
  };
}

function bodyOf(state: TrainerState): TrainerStateBody {
  const { files: _files, format: _format, ...body } = state;
  return body;
}

function defaultEvaluate(data: TrainData, config: Config): (model: SpanModel) => Promise<Validation | null> {
  const byDoc = groupSegments(data.validationSegments);
  return async (model) => {
    if (data.validation.length === 0) return null;
    const ev = await evaluateDocuments(model, data.validation, byDoc, config.eval.batchSize, { profile: false, sweep: config.eval.thresholdGrid });
    return { metrics: ev.metrics, threshold: ev.threshold, sweep: ev.sweep, diagnostics: ev.diagnostics };
  };
}

function asValidation(v: Metrics | Validation | null): Validation | null {
  if (v === null || 'metrics' in v) return v;
  return { metrics: v, threshold: null, sweep: [], diagnostics: null };
}

/** The F1 a validation counts with, and its threshold: the best of the sweep when tuning, else the model's own. */
function headline(v: Validation, tuned: boolean): { f1: number; precision: number; recall: number; threshold: number | null } {
  const best = tuned ? bestThreshold(v.sweep) : null;
  const o = best?.overall ?? v.metrics.overall;
  return { f1: o.f1, precision: o.precision, recall: o.recall, threshold: best?.threshold ?? v.threshold };
}

/** F1 at the reference threshold 0.5: from the sweep, or the validation's own when it was decoded there. */
function referenceF1(v: Validation): number | null {
  return v.sweep.find((x) => x.threshold === 0.5)?.overall.f1 ?? (v.threshold === 0.5 ? v.metrics.overall.f1 : null);
}

function mean(xs: readonly number[]): number | null {
  return xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length;
}

export async function train(opts: TrainOptions): Promise<TrainOutcome> {
  if (activeBackend() === undefined) throw new Error('train: no backend initialised; call initBackend first');
  const { model, config, data, record } = opts;
  const tc = config.train;
  if (data.train.length === 0) throw new LongnerError('no training segments: the training split is empty');
  const perEpoch = stepsPerEpoch(data.train.length, tc.batchSize);
  const total = totalSteps(data.train.length, tc.batchSize, tc.epochs, tc.maxSteps);
  const schedule = linearSchedule(total, tc.warmup);
  const evaluate = opts.evaluate ?? defaultEvaluate(data, config);
  const dir = record.dir;
  const bestPath = join(dir, BEST_CKPT);

  const optimizer = AdamW.forModel(model, { weightDecay: tc.weightDecay });
  try {
    if (optimizer.params.length === 0) throw new Error(`${model.method}: no trainable parameters`);

    let state: TrainerStateBody | null = null;
    let resumedFromStep: number | null = null;
    if (opts.resume) {
      const saved = loadCheckpoint(dir);
      if (saved !== null) {
        if (saved.configHash !== configHash(config) || saved.seed !== tc.seed || saved.totalSteps !== total) {
          throw new LongnerError(
            `${join(dir, 'trainer-state.json')} was written for another config, seed or data (config hash ${saved.configHash}, seed ${saved.seed}, ${saved.totalSteps} steps); start without --resume`,
          );
        }
        restoreCheckpoint(dir, saved, model.params, optimizer);
        state = bodyOf(saved);
        resumedFromStep = state.step;
      }
    }
    // A fresh start must not pick up an earlier attempt's best.ckpt.
    if (state === null) clearCheckpoints(dir);
    state ??= freshState(config, total);
    // States written before the loss curve start one at the resume point.
    state.curve ??= freshState(config, total).curve;
    const s = state;
    const startedAt = performance.now();
    const priorWallSeconds = s.wallSeconds ?? 0;

    const outcome = (status: TrainStatus, stoppedBy: StoppedBy, reason: string | null): TrainOutcome => ({
      status,
      stoppedBy,
      reason,
      epochs: s.history.length,
      steps: s.step,
      totalSteps: total,
      bestEpoch: s.best.epoch,
      bestValidationF1: s.best.f1,
      bestMetrics: s.best.metrics,
      bestThreshold: s.best.threshold ?? null,
      bestTunedThreshold: s.best.tunedThreshold ?? null,
      history: [...s.history],
      lossCurve: s.curve?.points.map(([step, loss]) => [step, loss]) ?? [],
      msPerStep: s.measured.msPerStep,
      peakBytesTrainStep: s.measured.peakBytesTrainStep,
      wasmHeapBytes: s.measured.wasmHeapBytes,
      rssBytes: s.measured.rssBytes,
      resumedFromStep,
      priorWallSeconds,
    });
    const finish = (): TrainOutcome => {
      const f = s.finished!;
      // The caller evaluates the best epoch, not the last.
      if (s.best.epoch !== null) {
        if (!existsSync(bestPath))
          throw new LongnerError(`${bestPath} is missing (the state says epoch ${s.best.epoch} was best); train again without --resume`);
        model.params.load(bestPath);
      }
      record.log({
        event: 'train-end',
        status: f.status,
        stoppedBy: f.stoppedBy,
        reason: f.reason,
        step: s.step,
        bestEpoch: s.best.epoch,
        bestValidationF1: s.best.f1,
      });
      return outcome(f.status, f.stoppedBy, f.reason);
    };
    if (s.finished !== null) return finish();

    record.log({
      event: 'train-start',
      resume: resumedFromStep !== null,
      fromStep: s.step,
      totalSteps: total,
      stepsPerEpoch: perEpoch,
      warmupSteps: schedule.warmupSteps,
      trainSegments: data.train.length,
      validationDocuments: data.validation.length,
      trainableParams: model.params.count({ trainableOnly: true }),
    });

    // Timing and probing: the run's second step (or its only one) is profiled for memory, after a
    // warm-up step (kernels, heap growth); the rest are timed. Peak bytes depend on the batch, so a
    // resumed run keeps the probe of the process that made it, or profiles that same step if it has
    // not run yet, so that a record does not depend on where the run was killed. Older states
    // resumed past that step without a probe profile this process's second step.
    const remaining = total - s.step;
    const probeStep = total >= 2 ? 1 : 0;
    let probeAt = -1; // this process's step to profile; -1: none
    if (s.measured.peakBytesTrainStep === null) probeAt = s.step <= probeStep ? probeStep - s.step : remaining >= 2 ? 1 : 0;
    const timings: number[] = [];
    let probeMs: number | null = null;
    let local = 0;
    const every = opts.checkpointEvery ?? { seconds: DEFAULT_CHECKPOINT_SECONDS };
    let lastSave = { time: performance.now(), step: s.step };
    const save = (): void => {
      const ms = mean(timings.length > 1 ? timings.slice(1) : timings) ?? probeMs;
      if (ms !== null) s.measured.msPerStep = ms;
      // The wasm heap only grows, so its size now is the run's high-water mark; RSS is kept as a maximum too.
      const heap = backendMemory().wasmHeapBytes;
      if (heap !== undefined) s.measured.wasmHeapBytes = Math.max(s.measured.wasmHeapBytes ?? 0, heap);
      s.measured.rssBytes = Math.max(s.measured.rssBytes ?? 0, process.memoryUsage().rss);
      s.optimizer = optimizer.stepCounts();
      s.wallSeconds = priorWallSeconds + (performance.now() - startedAt) / 1000;
      saveCheckpoint(dir, model.params, optimizer, s);
      lastSave = { time: performance.now(), step: s.step };
    };
    const progress = opts.quiet ? null : new Progress({ label: 'train', total: remaining, unit: ' steps' });
    const stop = (at: StopPoint): boolean => opts.shouldStop?.(at) === true;
    const lrAt = (step: number): Record<string, number> => {
      const f = schedule.factor(step);
      return { head: tc.lr * f, encoder: tc.encoderLr * f };
    };

    const tuned = config.eval.threshold === 'tuned' && model.tunesThreshold === true;
    /** Validates the model as it is, keeps it as best.ckpt when it is the best so far, counts patience. */
    const validate = async (midEpoch: boolean): Promise<EpochRecord> => {
      const v = asValidation(await evaluate(model));
      const h = v === null ? null : headline(v, tuned);
      const f1 = h === null ? null : h.f1;
      // Without validation every epoch counts as the best so far: the last one is kept.
      const improved = f1 === null || s.best.f1 === null || f1 > s.best.f1;
      // While no validation has found a single correct span (F1 still 0), the latest replaces the best:
      // keeping the untrained first one over later ones would make every early-phase run useless.
      // Patience still counts such a validation as one without a gain.
      const keep = improved || (f1 === 0 && s.best.f1 === 0);
      const sweepBest = v === null ? null : bestThreshold(v.sweep);
      const entry: EpochRecord = {
        epoch: s.epoch + 1,
        step: s.step,
        loss: s.epochLoss.count === 0 ? null : s.epochLoss.sum / s.epochLoss.count,
        validationF1: f1,
        precision: h === null ? null : h.precision,
        recall: h === null ? null : h.recall,
        best: keep,
        partial: !midEpoch && s.batchInEpoch < perEpoch,
        midEpoch,
        threshold: h?.threshold ?? null,
        referenceF1: v === null ? null : referenceF1(v),
        tunedThreshold: sweepBest?.threshold ?? null,
        tunedF1: sweepBest?.overall.f1 ?? null,
        predicted: v?.diagnostics?.predicted ?? null,
        goldScoreMedian: v?.diagnostics?.goldScores?.p50 ?? null,
      };
      if (keep) {
        model.params.save(bestPath);
        s.best = {
          f1,
          epoch: s.epoch + 1,
          metrics: v?.metrics ?? null,
          step: s.step,
          threshold: h?.threshold ?? null,
          tunedThreshold: sweepBest?.threshold ?? null,
        };
      }
      s.badEpochs = improved ? 0 : s.badEpochs + 1;
      s.history.push(entry);
      if (v !== null) {
        record.log({
          event: 'validation',
          ...entry,
          metrics: v.metrics.overall,
          sweep: v.sweep.map((x) => ({ threshold: x.threshold, f1: x.overall.f1, predicted: x.predicted })),
          diagnostics: v.diagnostics,
        });
      }
      return entry;
    };

    while (s.epoch < tc.epochs && s.step < total) {
      const order = epochOrder(data.train, tc.seed, s.epoch);
      while (s.batchInEpoch < perEpoch && s.step < total) {
        const from = s.batchInEpoch * tc.batchSize;
        const batch: Batch = { segments: order.slice(from, from + tc.batchSize) };
        const lr = lrAt(s.step);
        const rng = stepRng(tc.seed, s.step);
        const run = (): StepResult => trainStep(() => model.loss(batch, { rng }), optimizer, lr, tc.clip);
        let result: StepResult;
        if (local === probeAt) {
          const m = await measureStep(run);
          result = m.value;
          probeMs = m.ms;
          s.measured.peakBytesTrainStep = m.peakBytes;
          s.measured.wasmHeapBytes = m.wasmHeapBytes;
          s.measured.rssBytes = m.rssBytes;
          record.log({
            event: 'probe',
            step: s.step + 1,
            ms: m.ms,
            peakBytes: m.peakBytes,
            baselineBytes: m.baselineBytes,
            wasmHeapBytes: m.wasmHeapBytes,
            rssBytes: m.rssBytes,
          });
        } else {
          const m = timeStep(run);
          result = m.value;
          timings.push(m.ms);
        }
        local++;

        if (result.diverged) {
          const what = Number.isFinite(result.loss) ? `gradient norm ${result.gradNorm}` : `loss ${result.loss}`;
          const reason = `non-finite ${what} at step ${s.step + 1} (epoch ${s.epoch + 1}); weights left as after step ${s.step}`;
          record.log({ event: 'diverged', step: s.step + 1, epoch: s.epoch + 1, loss: String(result.loss), gradNorm: String(result.gradNorm) });
          s.finished = { status: 'diverged', stoppedBy: 'diverged', reason };
          save();
          progress?.finish(`diverged at step ${s.step + 1}`);
          return finish();
        }

        s.step++;
        s.batchInEpoch++;
        s.epochLoss.sum += result.loss;
        s.epochLoss.count++;
        record.log({ event: 'step', step: s.step, epoch: s.epoch + 1, loss: result.loss, gradNorm: result.gradNorm, lr });
        const curve = s.curve!;
        curve.window.sum += result.loss;
        curve.window.count++;
        if (s.step % curve.every === 0 || s.step === total) {
          curve.points.push([s.step, curve.window.sum / curve.window.count]);
          curve.window = { sum: 0, count: 0 };
        }
        opts.onProgress?.({ epoch: s.epoch + 1, step: s.step, totalSteps: total, loss: result.loss, gradNorm: result.gradNorm, lr });
        progress?.tick(1, `epoch ${s.epoch + 1}/${tc.epochs} step ${s.step}/${total} loss ${(s.epochLoss.sum / s.epochLoss.count).toFixed(4)}`);

        const epochEnds = s.batchInEpoch === perEpoch || s.step === total;
        if (!epochEnds && config.eval.every !== null && s.step % config.eval.every === 0) {
          await validate(true);
          if (tc.patience !== null && s.badEpochs >= tc.patience) {
            // Patience ran out inside the epoch: end the run here, at a validated point.
            s.finished = { status: 'ok', stoppedBy: 'patience', reason: null };
            save();
            break;
          }
          save();
        } else if (!epochEnds) {
          const bySteps = every.steps != null && s.step - lastSave.step >= every.steps;
          const bySeconds = every.seconds != null && performance.now() - lastSave.time >= every.seconds * 1000;
          if (bySteps || bySeconds) save();
        }
        if (stop({ epoch: s.epoch + 1, step: s.step, epochEnd: false })) {
          progress?.finish('stopped');
          return outcome('aborted', 'aborted', `stopped after step ${s.step}`);
        }
      }

      if (s.finished !== null) break;
      // Epoch end (or a partial epoch cut by maxSteps): validate, keep the best, decide whether to go on.
      const epochRecord = await validate(false);
      record.log({ event: 'epoch', ...epochRecord, lr: lrAt(Math.max(0, s.step - 1)), badEpochs: s.badEpochs });
      s.epoch++;
      s.batchInEpoch = 0;
      s.epochLoss = { sum: 0, count: 0 };
      if (tc.patience !== null && s.badEpochs >= tc.patience) {
        s.finished = { status: 'ok', stoppedBy: 'patience', reason: null };
      } else if (s.step >= total && total < perEpoch * tc.epochs) {
        s.finished = { status: 'ok', stoppedBy: 'maxSteps', reason: null };
      } else if (s.epoch >= tc.epochs) {
        s.finished = { status: 'ok', stoppedBy: 'epochs', reason: null };
      }
      save();
      // s.epoch already counts the epoch that just ended, i.e. it is that epoch's 1-based number.
      if (stop({ epoch: s.epoch, step: s.step, epochEnd: true })) {
        progress?.finish('stopped');
        return outcome('aborted', 'aborted', `stopped after epoch ${s.epoch}`);
      }
      if (s.finished !== null) break;
    }
    progress?.finish();
    if (s.finished === null) {
      s.finished = { status: 'ok', stoppedBy: 'epochs', reason: null };
      save();
    }
    return finish();
  } finally {
    optimizer.dispose();
  }
}
