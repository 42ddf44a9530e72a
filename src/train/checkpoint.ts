/**
 * The trainer's files in a run directory, and how they are written so that a run killed at any
 * moment resumes from a consistent state:
 *
 *   best.ckpt           model parameters of the best validation epoch (ParamStore format)
 *   last.ckpt           model parameters at the last save
 *   last.optim.ckpt     AdamW moments at the last save (ParamStore format, adamw.ts)
 *   trainer-state.json  counters, optimizer step counts, best F1, patience, epoch history, and the
 *                       sha256 of last.ckpt and last.optim.ckpt it belongs with
 *
 * Each file is written atomically (temp file + rename), and the three `last` files change together
 * (journal.ts); the state holds the sha256 of the two parameter files it belongs with.
 *
 * best.ckpt is written on its own; that is safe because training is a pure function of (seed,
 * epoch, step): after a kill, the epochs after the last saved state are recomputed identically and
 * best.ckpt rewritten with the same values.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { LENGTH_BUCKETS, type Metrics, PrfSchema } from '../eval/metrics.js';
import type { ParamStore } from '../nn/params.js';
import type { AdamW } from './adamw.js';
import { loadJournaled, recoverJournaled, saveJournaled } from './journal.js';

export const BEST_CKPT = 'best.ckpt';
export const LAST_CKPT = 'last.ckpt';
export const LAST_OPTIM = 'last.optim.ckpt';
export const STATE_FILE = 'trainer-state.json';

const STATE_FORMAT = 'longner-trainer-state/1';
const JOURNAL = { params: LAST_CKPT, optimizer: LAST_OPTIM, state: STATE_FILE };

const MetricsSchema = z.strictObject({
  overall: PrfSchema,
  perType: z.record(z.string(), PrfSchema),
  perLength: z.record(z.enum(LENGTH_BUCKETS), PrfSchema),
});

export const EpochRecordSchema = z.strictObject({
  /** 1-based. */
  epoch: z.number().int().positive(),
  /** Optimizer steps done when the epoch ended. */
  step: z.number().int().min(0),
  /** Mean training loss over the epoch's steps. */
  loss: z.number().nullable(),
  /** Strict micro F1 on validation; null when there is no validation set. */
  validationF1: z.number().nullable(),
  precision: z.number().nullable(),
  recall: z.number().nullable(),
  /** This epoch improved the best validation F1 (and was saved as best.ckpt). */
  best: z.boolean(),
  /** Cut short by train.maxSteps. */
  partial: z.boolean(),
  /** A validation inside the epoch (eval.every), not at its end; its loss is the running mean so far. */
  midEpoch: z.boolean().optional(),
  /** The threshold validationF1 was scored at (tuned or fixed); null for a method without one. */
  threshold: z.number().nullable().optional(),
  /** Validation F1 at the reference threshold 0.5 (equal to validationF1 unless tuned). */
  referenceF1: z.number().nullable().optional(),
  /** The eval.thresholdGrid value with the best validation F1, and that F1, whether or not it is used (models that tune). */
  tunedThreshold: z.number().nullable().optional(),
  tunedF1: z.number().nullable().optional(),
  /** Spans predicted on validation at that threshold. */
  predicted: z.number().int().min(0).nullable().optional(),
  /** Median probability of the reachable gold entities on validation. */
  goldScoreMedian: z.number().nullable().optional(),
});
export type EpochRecord = z.infer<typeof EpochRecordSchema>;

const nullableCount = () => z.number().min(0).nullable();

export const TrainerStateSchema = z.strictObject({
  format: z.literal(STATE_FORMAT),
  configHash: z.string(),
  seed: z.number().int(),
  /** 0-based epoch in progress (equal to the number of finished epochs). */
  epoch: z.number().int().min(0),
  /** Batches of that epoch already done. */
  batchInEpoch: z.number().int().min(0),
  /** Optimizer steps done in total. */
  step: z.number().int().min(0),
  totalSteps: z.number().int().min(0),
  /** Running training-loss sum of the epoch in progress (a resumed epoch reports the same mean). */
  epochLoss: z.strictObject({ sum: z.number(), count: z.number().int().min(0) }),
  best: z.strictObject({
    f1: z.number().nullable(),
    /** 1-based epoch of best.ckpt; null before the first evaluation. */
    epoch: z.number().int().positive().nullable(),
    metrics: MetricsSchema.nullable(),
    /** The step of that validation (absent in states written before eval.every). */
    step: z.number().int().min(0).nullable().optional(),
    /** Its decoding threshold: the tuned one under eval.threshold: tuned. */
    threshold: z.number().nullable().optional(),
    /** Its best eval.thresholdGrid value, used or not (models that tune). */
    tunedThreshold: z.number().nullable().optional(),
  }),
  /**
   * The training-loss curve: the mean loss of each window of curveEvery steps (at most about 200
   * points), and the window in progress.
   */
  curve: z
    .strictObject({
      every: z.number().int().positive(),
      points: z.array(z.tuple([z.number().int().min(0), z.number()])),
      window: z.strictObject({ sum: z.number(), count: z.number().int().min(0) }),
    })
    .optional(),
  /** Validations in a row without a validation-F1 gain (the patience counter; one per epoch unless eval.every). */
  badEpochs: z.number().int().min(0),
  history: z.array(EpochRecordSchema),
  optimizer: z.strictObject({ steps: z.record(z.string(), z.number().int().min(0)) }),
  /**
   * Wall seconds of training up to this save, summed over every process that worked on the run, so
   * that a resumed run's record reports the whole run (absent in states written before it).
   */
  wallSeconds: z.number().min(0).optional(),
  measured: z.strictObject({
    msPerStep: nullableCount(),
    peakBytesTrainStep: nullableCount(),
    wasmHeapBytes: nullableCount(),
    rssBytes: nullableCount(),
  }),
  finished: z
    .strictObject({
      status: z.enum(['ok', 'diverged']),
      stoppedBy: z.enum(['epochs', 'maxSteps', 'patience', 'diverged']),
      reason: z.string().nullable(),
    })
    .nullable(),
  files: z.strictObject({ params: z.string(), optimizer: z.string() }),
});
export type TrainerState = z.infer<typeof TrainerStateSchema>;
/** The state as the trainer keeps it; `files` is filled in when it is saved. */
export type TrainerStateBody = Omit<TrainerState, 'files' | 'format'>;

/** Metrics as stored in the state (validated); the type is the evaluator's. */
export function parseMetrics(value: unknown): Metrics {
  return MetricsSchema.parse(value);
}

/** Saves parameters, optimizer moments and state as one unit (see the file comment). */
export function saveCheckpoint(dir: string, params: ParamStore, optimizer: AdamW, body: TrainerStateBody): void {
  saveJournaled(dir, JOURNAL, params, optimizer, (files): TrainerState => ({ format: STATE_FORMAT, ...body, files }));
}

/** Finishes an interrupted commit or drops an unfinished save; removes temp files of killed writes. */
export function recoverCheckpoint(dir: string): void {
  recoverJournaled(dir, JOURNAL, [BEST_CKPT]);
}

/** Removes every trainer file: a fresh (not resumed) run must not pick up an earlier attempt's best.ckpt. */
export function clearCheckpoints(dir: string): void {
  recoverCheckpoint(dir);
  for (const f of [BEST_CKPT, LAST_CKPT, LAST_OPTIM, STATE_FILE]) rmSync(join(dir, f), { force: true });
}

/**
 * The saved state after recovery, with its files verified, or null when the directory holds none.
 * Loading the files into a model and optimizer is restoreCheckpoint.
 */
export function loadCheckpoint(dir: string): TrainerState | null {
  recoverCheckpoint(dir);
  return loadJournaled(dir, JOURNAL, TrainerStateSchema, { what: 'a trainer state', remedy: 'start without --resume' });
}

/** Loads last.ckpt into the model's parameters and last.optim.ckpt into the optimizer. */
export function restoreCheckpoint(dir: string, state: TrainerState, params: ParamStore, optimizer: AdamW): void {
  params.load(join(dir, LAST_CKPT));
  optimizer.load(join(dir, LAST_OPTIM), state.optimizer);
}
