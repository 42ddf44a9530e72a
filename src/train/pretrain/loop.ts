/** The masked-LM loop: the encoder as pretraining runs it, and pretrain() (see index.ts for the procedure). */
import * as tf from '@tensorflow/tfjs-core';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
// Taking gradients needs the gradient registrations and kernel shims that come with the backend module.
import { activeBackend, backendMemory } from '../../backend/index.js';
import type { Config } from '../../config/schema.js';
import { loadOrTrainTokenizer, wordsOf } from '../../data/pipeline.js';
import type { Registry } from '../../data/registry.js';
import { MASK_ID } from '../../data/tokenizer.js';
import { wholeWordMask, type WwmResult } from '../../data/wwm.js';
import { LongnerError } from '../../errors.js';
import { Encoder, type EncoderConfig } from '../../nn/encoder.js';
import { createMlmHead, mlmLoss } from '../../nn/mlm.js';
import { ParamStore } from '../../nn/params.js';
import { collectEnv } from '../../util/env.js';
import { appendJsonl, writeJsonAtomic } from '../../util/atomic.js';
import { Progress } from '../../util/progress.js';
import { createRng } from '../../util/rng.js';
import { AdamW, decaysWeight, type AdamWParam } from '../adamw.js';
import { linearSchedule } from '../schedule.js';
import { deriveSeed, stepRng, trainStep } from '../trainer.js';
import { acquireLock } from '../../util/lock.js';
import {
  CLIP_NORM,
  LOCK_FILE,
  CURVE_POINTS,
  DEFAULT_CHECKPOINT_SECONDS,
  ENCODER_CKPT,
  ENCODER_PREFIX,
  KEY_FILE,
  LAST_CKPT,
  LAST_OPTIM,
  LOG_FILE,
  MASK_TAG,
  OPTIMIZER_GROUP,
  pretrainHash,
  pretrainKey,
  pretrainRunDir,
  pretrainTokenizerKey,
  SPECIAL_IDS,
  STATE_FILE,
  SUMMARY_FILE,
  TOKENIZER_FILE,
} from './files.js';
import { batchAt, corpusPieces, pretrainCorpus } from './corpus.js';
import { clearRun, loadState, type PretrainStatus, type PretrainSummary, readSummary, saveState, type State, type StateBody } from './state.js';

/** The encoder as pretraining runs it: full attention over pieces of seqLen tokens, no LoRA. */
export function pretrainEncoderConfig(config: Config, vocabSize: number): EncoderConfig {
  const e = config.encoder;
  return {
    vocabSize,
    layers: e.layers,
    hidden: e.hidden,
    heads: e.heads,
    ffn: e.ffn,
    dropout: e.dropout,
    attention: 'full',
    window: e.window,
    logN: 'off',
    lora: null,
  };
}

// ---------------------------------------------------------------------------------------------
// The loop

export interface PretrainOptions {
  /** Runs root (default runsRoot(): $LONGNER_RUNS_DIR or `<project>/runs`); the run folder is pretrainRunDir(config, root). */
  root?: string;
  /** Continue from the folder's checkpoint, or return its finished result; false starts afresh. */
  resume?: boolean;
  /** No progress bar. */
  quiet?: boolean;
  /** Where the corpus datasets are read from (default: the project's registry); tests inject a fixture. */
  registry?: Registry;
  /** State saves, whichever comes first; default every 300 s. The end (and a divergence) always saves. */
  checkpointEvery?: { steps?: number | null; seconds?: number | null };
  /** Asked after every step (and its save, if any): true stops at once, writing nothing more, as a kill would. */
  shouldStop?: (step: number) => boolean;
}

export interface PretrainResult {
  dir: string;
  /** 'aborted' when shouldStop ended the run early (no summary then). */
  status: PretrainStatus | 'aborted';
  summary: PretrainSummary | null;
  tokenizerPath: string;
  encoderCheckpoint: string;
}

export function mean(xs: readonly number[]): number | null {
  return xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length;
}

export async function pretrain(config: Config, opts: PretrainOptions = {}): Promise<PretrainResult> {
  const backend = activeBackend();
  if (backend === undefined) throw new Error('pretrain: no backend initialised; call initBackend first');
  const started = performance.now();
  const pc = config.pretrain;
  const dir = pretrainRunDir(config, opts.root, opts.registry);
  const hash = pretrainHash(config, opts.registry);
  const tokenizerPath = join(dir, TOKENIZER_FILE);
  const encoderCheckpoint = join(dir, ENCODER_CKPT);
  const result = (status: PretrainResult['status'], summary: PretrainSummary | null): PretrainResult => ({
    dir,
    status,
    summary,
    tokenizerPath,
    encoderCheckpoint,
  });
  mkdirSync(dir, { recursive: true });
  const release = acquireLock(dir, LOCK_FILE, 'pretrained');
  try {
    let saved: State | null = null;
    if (opts.resume) {
      const done = readSummary(dir);
      if (done !== null) return result(done.status, done);
      saved = loadState(dir);
      if (saved !== null && saved.key !== hash) {
        throw new LongnerError(
          `${join(dir, STATE_FILE)} was written for another pretraining key (${saved.key}, expected ${hash}); pretrain again without --resume`,
        );
      }
    }
    if (saved === null) clearRun(dir);
    writeJsonAtomic(join(dir, KEY_FILE), { hash, key: pretrainKey(config, opts.registry) });

    const corpus = await pretrainCorpus(config, opts.registry);
    const documents = corpus.flatMap((c) => c.documents);
    if (documents.length === 0) {
      throw new LongnerError(`pretraining corpus is empty: the training split of ${corpus.map((c) => c.name).join(', ')} has no documents`);
    }
    const tokenizer = await loadOrTrainTokenizer(tokenizerPath, () => wordsOf(documents), config, pretrainTokenizerKey(config, opts.registry));
    const pieces = await corpusPieces(documents, tokenizer, pc.seqLen);
    const corpusTokens = pieces.reduce((a, p) => a + p.tokenIds.length, 0);
    const corpusInfo: PretrainSummary['corpus'] = {
      datasets: corpus.map((c) => c.name),
      documents: documents.length,
      pieces: pieces.length,
      tokens: corpusTokens,
      descriptions: corpus.map((c) => `${c.name}: ${c.description}`),
    };

    const params = new ParamStore(pc.seed);
    const encoder = new Encoder(pretrainEncoderConfig(config, tokenizer.vocabSize), params, ENCODER_PREFIX);
    createMlmHead(params, config.encoder.hidden, tokenizer.vocabSize);
    const adamParams = params.trainable().map((variable): AdamWParam => {
      const name = params.nameOf(variable);
      return { name, variable, group: OPTIMIZER_GROUP, decay: decaysWeight(name) };
    });
    const optimizer = new AdamW(adamParams, { weightDecay: pc.weightDecay });
    try {
      const s: StateBody = saved ?? {
        key: hash,
        step: 0,
        tokens: 0,
        optimizer: { steps: {} },
        lossCurve: [],
        window: { sum: 0, count: 0 },
        recent: [],
        timing: { ms: 0, tokens: 0, steps: 0 },
        wallSeconds: 0,
        wasmHeapBytes: null,
        diverged: null,
      };
      if (saved !== null) {
        params.load(join(dir, LAST_CKPT));
        optimizer.load(join(dir, LAST_OPTIM), saved.optimizer);
      }
      const wallBefore = s.wallSeconds;
      const log = (event: Record<string, unknown>): void => appendJsonl(join(dir, LOG_FILE), { time: new Date().toISOString(), ...event });
      const save = (): void => {
        s.optimizer = optimizer.stepCounts();
        s.wallSeconds = wallBefore + (performance.now() - started) / 1000;
        const heap = backendMemory().wasmHeapBytes;
        if (heap !== undefined) s.wasmHeapBytes = Math.max(s.wasmHeapBytes ?? 0, heap);
        saveState(dir, params, optimizer, s);
      };

      const total = pc.steps;
      const schedule = linearSchedule(total, pc.warmup);
      const logEvery = Math.max(1, Math.floor(total / CURVE_POINTS));
      const recentSize = Math.max(1, Math.ceil(total / 20));
      const every = opts.checkpointEvery ?? { seconds: DEFAULT_CHECKPOINT_SECONDS };
      let lastSave = { time: performance.now(), step: s.step };
      const orders = new Map<number, number[]>();
      const dropoutFree = config.encoder.dropout === 0;

      log({
        event: 'pretrain-start',
        resume: saved !== null,
        fromStep: s.step,
        steps: total,
        warmupSteps: schedule.warmupSteps,
        backend: backend.detail,
        vocabSize: tokenizer.vocabSize,
        encoderParams: params.count({ filter: `${ENCODER_PREFIX}.` }),
        trainableParams: params.count({ trainableOnly: true }),
        corpus: corpusInfo,
      });

      const progress = opts.quiet || s.diverged !== null ? null : new Progress({ label: 'pretrain', total: total - s.step, unit: ' steps' });
      let local = 0;
      while (s.diverged === null && s.step < total) {
        const step = s.step;
        const batch = batchAt(pieces, pc.seed, step, pc.batchSize, orders);
        const masked: WwmResult[] = batch.map((p, i) =>
          wholeWordMask(p.tokenIds, p.tokenWord, {
            rate: pc.maskRate,
            maskId: MASK_ID,
            vocabSize: tokenizer.vocabSize,
            specialIds: SPECIAL_IDS,
            rng: createRng(deriveSeed(pc.seed, MASK_TAG, step, i)),
          }),
        );
        const batchTokens = batch.reduce((a, p) => a + p.tokenIds.length, 0);
        const lr = pc.lr * schedule.factor(step);
        // One dropout stream per step, consumed by the pieces in batch order.
        const rng = dropoutFree ? undefined : stepRng(pc.seed, step);
        const lossFn = (): tf.Scalar =>
          tf.tidy(() => {
            const losses = masked.map((m) => mlmLoss(encoder.forward(m.input, { training: true, rng }), m.targets, params));
            return tf.div(losses.length === 1 ? losses[0]! : tf.addN(losses), losses.length) as tf.Scalar;
          });
        const t0 = performance.now();
        const r = trainStep(lossFn, optimizer, { [OPTIMIZER_GROUP]: lr }, CLIP_NORM);
        const ms = performance.now() - t0;
        // The first step of a process compiles kernels and grows the heap: a warm-up, not timed.
        if (local > 0) {
          s.timing.ms += ms;
          s.timing.tokens += batchTokens;
          s.timing.steps++;
        }
        local++;

        if (r.diverged) {
          const what = Number.isFinite(r.loss) ? `gradient norm ${r.gradNorm}` : `loss ${r.loss}`;
          const reason = `non-finite ${what} at step ${step + 1}; lower pretrain.lr`;
          s.diverged = { step: step + 1, reason };
          log({ event: 'diverged', step: step + 1, loss: String(r.loss), gradNorm: String(r.gradNorm), lr });
          save();
          progress?.finish(`diverged at step ${step + 1}`);
          break;
        }

        s.step++;
        s.tokens += batchTokens;
        s.window.sum += r.loss;
        s.window.count++;
        s.recent.push(r.loss);
        if (s.recent.length > recentSize) s.recent.shift();
        if (s.step % logEvery === 0 || s.step === total) {
          const loss = s.window.sum / s.window.count;
          s.lossCurve.push([s.step, loss]);
          s.window = { sum: 0, count: 0 };
          log({ event: 'step', step: s.step, loss, lr });
        }
        progress?.tick(1, `step ${s.step}/${total} loss ${r.loss.toFixed(4)}`);

        const bySteps = every.steps != null && s.step - lastSave.step >= every.steps;
        const bySeconds = every.seconds != null && performance.now() - lastSave.time >= every.seconds * 1000;
        if (s.step === total || bySteps || bySeconds) {
          save();
          lastSave = { time: performance.now(), step: s.step };
        }
        if (opts.shouldStop?.(s.step) === true) {
          progress?.finish('stopped');
          return result('aborted', null);
        }
      }
      if (s.diverged === null) progress?.finish();

      // Finished (or diverged): the outputs, the summary last.
      const status: PretrainStatus = s.diverged === null ? 'ok' : 'diverged';
      if (status === 'ok') params.save(encoderCheckpoint, `${ENCODER_PREFIX}.`);
      const msPerStep = s.timing.steps > 0 ? s.timing.ms / s.timing.steps : null;
      const summary: PretrainSummary = {
        status,
        reason: s.diverged?.reason ?? null,
        steps: s.step,
        tokens: s.tokens,
        finalLoss: mean(s.recent),
        lossCurve: s.lossCurve,
        msPerStep,
        tokensPerSecond: s.timing.ms > 0 ? (s.timing.tokens / s.timing.ms) * 1000 : null,
        wallSeconds: wallBefore + (performance.now() - started) / 1000,
        backend: backend.name,
        wasmHeapBytes: s.wasmHeapBytes,
        encoderParams: params.count({ filter: `${ENCODER_PREFIX}.` }),
        corpus: corpusInfo,
        key: hash,
        config,
        env: collectEnv(),
      };
      writeJsonAtomic(join(dir, SUMMARY_FILE), summary);
      // Resuming a finished run returns pretrain.json, so the moments and the state are no longer needed.
      rmSync(join(dir, LAST_OPTIM), { force: true });
      rmSync(join(dir, STATE_FILE), { force: true });
      log({ event: 'pretrain-end', status, steps: s.step, finalLoss: summary.finalLoss, msPerStep, tokensPerSecond: summary.tokensPerSecond });
      return result(status, summary);
    } finally {
      optimizer.dispose();
      params.dispose();
    }
  } finally {
    release();
  }
}
