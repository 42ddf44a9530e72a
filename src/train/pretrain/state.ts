/** The summary (pretrain.json) and the resume checkpoint: parameters, AdamW moments and counters written as one journaled unit, as the trainer's (journal.ts). */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { Config } from '../../config/schema.js';
import { LongnerError } from '../../errors.js';
import type { ParamStore } from '../../nn/params.js';
import type { Env } from '../../util/env.js';
import type { AdamW } from '../adamw.js';
import { hashFile, loadJournaled, recoverJournaled, saveJournaled } from '../journal.js';
import { ENCODER_CKPT, KEY_FILE, LAST_CKPT, LAST_OPTIM, LOG_FILE, STATE_FILE, STATE_FORMAT, SUMMARY_FILE, TOKENIZER_FILE } from './files.js';

export type PretrainStatus = 'ok' | 'diverged';

/** pretrain.json. */
export interface PretrainSummary {
  status: PretrainStatus;
  /** Why a run is not 'ok'. */
  reason: string | null;
  /** Optimizer steps done. */
  steps: number;
  /** Tokens fed to the encoder over all steps ([CLS] and [SEP] included). */
  tokens: number;
  /** Mean loss over the last 5% of the steps (at least one). */
  finalLoss: number | null;
  /** [step, mean loss over the steps since the previous point]. */
  lossCurve: [number, number][];
  /** Mean wall time of a step, the first step of each process (a warm-up) left out. */
  msPerStep: number | null;
  tokensPerSecond: number | null;
  /** Wall time of the attempts up to their last save, tokenizer and corpus preparation included. */
  wallSeconds: number;
  backend: string;
  /** Largest wasm heap seen (the heap never shrinks); null off wasm. */
  wasmHeapBytes: number | null;
  /** Scalar weights of the encoder (the MLM head not counted). */
  encoderParams: number;
  corpus: { datasets: string[]; documents: number; pieces: number; tokens: number; descriptions: string[] };
  /** pretrainHash of the config. */
  key: string;
  config: Config;
  env: Env;
}

const StateSchema = z.strictObject({
  format: z.literal(STATE_FORMAT),
  key: z.string(),
  step: z.number().int().min(0),
  tokens: z.number().int().min(0),
  optimizer: z.strictObject({ steps: z.record(z.string(), z.number().int().min(0)) }),
  lossCurve: z.array(z.tuple([z.number().int(), z.number()])),
  /** Loss sum and count of the steps since the last curve point. */
  window: z.strictObject({ sum: z.number(), count: z.number().int().min(0) }),
  /** Losses of the last steps, for finalLoss. */
  recent: z.array(z.number()),
  timing: z.strictObject({ ms: z.number().min(0), tokens: z.number().min(0), steps: z.number().int().min(0) }),
  wallSeconds: z.number().min(0),
  wasmHeapBytes: z.number().min(0).nullable(),
  diverged: z.strictObject({ step: z.number().int(), reason: z.string() }).nullable(),
  files: z.strictObject({ params: z.string(), optimizer: z.string(), tokenizer: z.string() }),
});
export type State = z.infer<typeof StateSchema>;
export type StateBody = Omit<State, 'format' | 'files'>;

export const JOURNAL = { params: LAST_CKPT, optimizer: LAST_OPTIM, state: STATE_FILE };

/** Saves parameters, moments and state as one unit (journal.ts); the state also pins the tokenizer. */
export function saveState(dir: string, params: ParamStore, optimizer: AdamW, body: StateBody): void {
  const tokenizer = hashFile(join(dir, TOKENIZER_FILE));
  saveJournaled(dir, JOURNAL, params, optimizer, (files): State => ({ format: STATE_FORMAT, ...body, files: { ...files, tokenizer } }));
}

function recoverState(dir: string): void {
  recoverJournaled(dir, JOURNAL, [TOKENIZER_FILE, ENCODER_CKPT, SUMMARY_FILE, KEY_FILE]);
}

export function loadState(dir: string): State | null {
  recoverState(dir);
  return loadJournaled(dir, JOURNAL, StateSchema, {
    what: 'a pretraining state',
    remedy: 'pretrain again without --resume',
    pinned: (state) => [[TOKENIZER_FILE, state.files.tokenizer]],
  });
}

/** A fresh start removes everything an earlier attempt wrote. */
export function clearRun(dir: string): void {
  recoverState(dir);
  for (const f of [LAST_CKPT, LAST_OPTIM, STATE_FILE, TOKENIZER_FILE, ENCODER_CKPT, SUMMARY_FILE, LOG_FILE, KEY_FILE]) rmSync(join(dir, f), { force: true });
}

export function readSummary(dir: string): PretrainSummary | null {
  const file = join(dir, SUMMARY_FILE);
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as PretrainSummary;
  } catch (err) {
    throw new LongnerError(`${file}: not valid JSON (${err instanceof Error ? err.message : String(err)}); remove it and pretrain again`);
  }
}
