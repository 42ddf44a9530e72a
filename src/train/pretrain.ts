/**
 * Masked-LM pretraining of the framework's small encoder, and how fine-tuning runs find and load it.
 *
 * No pretrained encoder can be downloaded here (DESIGN.md, "Small language model"), so instead of
 * SeNER's DeBERTa the framework pretrains its own encoder, BERT-style, on the unlabeled words of the
 * training splits, and fine-tuning starts from it (`encoder.pretrained: mlm` or a run folder path).
 *
 * One pretraining run is defined by `pretrainKey(config)`: the pretrain and tokenizer sections, the
 * encoder's architecture and the corpus (datasets and the protocol options that decide their
 * training split). It lives in `<runs>/pretrain/<short name>-<hash of the key>/`, so every
 * fine-tuning run of an experiment whose config gives the same key shares one pretraining run.
 * Attention pattern, window and LogN are not in the key: RoPE makes the same weights serve full,
 * window and arrow attention, so those stay fine-tuning-time choices.
 *
 * The loop: the corpus's documents are tokenized and cut into pieces of at most seqLen - 2 tokens
 * wrapped in [CLS] ... [SEP]; step t takes pieces t*B .. t*B+B-1 of the endless sequence made of
 * seeded permutations of the pieces (epochOrder by (seed, epoch)), masks each by whole words (rng
 * from (seed, t, i)), and takes one AdamW step on the mean MLM loss (trainer.ts trainStep). Every
 * random choice is a pure function of (seed, step), and a checkpoint restores parameters, moments
 * and counters bit for bit, so a killed run that resumes ends with the weights of an uninterrupted one.
 *
 * Files in the run folder:
 *   key.json            the key (what defines the run) and its hash
 *   tokenizer.json      the tokenizer trained on the corpus (fine-tuning uses it)
 *   log.jsonl           events: pretrain-start, step {step, loss, lr} (the loss curve), diverged, pretrain-end
 *   last.ckpt, last.optim.ckpt, pretrain-state.json
 *                       the resume checkpoint (encoder + MLM head, AdamW moments, counters), written
 *                       as one journaled unit like the trainer's (checkpoint.ts); the moments and the
 *                       state are removed once the run has finished, last.ckpt is kept
 *   encoder.ckpt        only the encoder.* parameters, written at the end
 *   pretrain.json       the summary (PretrainSummary), written last: its presence means "finished"
 *   pretrain.lock       held while a process pretrains in the folder
 */
import * as tf from '@tensorflow/tfjs-core';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { z } from 'zod';
// Taking gradients needs the gradient registrations and kernel shims that come with the backend module.
import { activeBackend, backendMemory } from '../backend/index.js';
import type { Config } from '../config/schema.js';
import { loadOrTrainTokenizer, wordsOf } from '../data/pipeline.js';
import { loadProtocol } from '../data/protocol.js';
import { corpusIdentity, tokenizerKey, type CorpusIdentity } from '../data/fingerprint.js';
import { registryFor, type Registry } from '../data/registry.js';
import { MASK_ID, SPECIAL_TOKENS, type SubwordTokenizer, type TokenizedWords } from '../data/tokenizer.js';
import type { Document } from '../data/types.js';
import { wholeWordMask, type WwmResult } from '../data/wwm.js';
import { LongnerError } from '../errors.js';
import { Encoder, type EncoderConfig } from '../nn/encoder.js';
import { createMlmHead, mlmLoss } from '../nn/mlm.js';
import { ParamStore } from '../nn/params.js';
import { collectEnv, type Env } from '../util/env.js';
import { appendJsonl, writeJsonAtomic } from '../util/atomic.js';
import { sha256, stableStringify } from '../util/hash.js';
import { runsRoot } from '../util/paths.js';
import { Progress } from '../util/progress.js';
import { createRng } from '../util/rng.js';
import { AdamW, decaysWeight, type AdamWParam } from './adamw.js';
import { hashFile, recoverJournaled, saveJournaled } from './journal.js';
import { linearSchedule } from './schedule.js';
import { deriveSeed, epochOrder, stepRng, trainStep } from './trainer.js';

export const KEY_FILE = 'key.json';
export const TOKENIZER_FILE = 'tokenizer.json';
export const ENCODER_CKPT = 'encoder.ckpt';
export const SUMMARY_FILE = 'pretrain.json';
export const LOG_FILE = 'log.jsonl';
export const LAST_CKPT = 'last.ckpt';
export const LAST_OPTIM = 'last.optim.ckpt';
export const STATE_FILE = 'pretrain-state.json';
export const LOCK_FILE = 'pretrain.lock';

/** Bumped when the pretraining procedure changes what it computes, so old runs are not reused. */
const PROCEDURE_VERSION = 1;
const STATE_FORMAT = 'longner-pretrain-state/1';
const ENCODER_PREFIX = 'encoder';
const OPTIMIZER_GROUP = 'all';
const CLIP_NORM = 1.0;
const MASK_TAG = 0x4d4c;
const DEFAULT_CHECKPOINT_SECONDS = 300;
/** The loss curve keeps at most about this many points (one per logged window). */
const CURVE_POINTS = 200;
const SPECIAL_IDS = SPECIAL_TOKENS.map((_, id) => id);

// ---------------------------------------------------------------------------------------------
// Identity

/** Everything that defines a pretraining run, and nothing else. */
export interface PretrainKey {
  version: number;
  pretrain: Omit<Config['pretrain'], 'datasets'>;
  tokenizer: Config['tokenizer'];
  encoder: Pick<Config['encoder'], 'layers' | 'hidden' | 'heads' | 'ffn' | 'dropout'>;
  /** pretrain.datasets ?? [dataset.name], their protocol options and their files' sha256. */
  corpus: CorpusIdentity;
}

/** `registry` (tests inject fixtures) defaults to the config's own (registryFor). */
export function pretrainKey(config: Config, registry: Registry = registryFor(config)): PretrainKey {
  const { datasets, ...pretrain } = config.pretrain;
  const { layers, hidden, heads, ffn, dropout } = config.encoder;
  return {
    version: PROCEDURE_VERSION,
    pretrain,
    tokenizer: config.tokenizer,
    encoder: { layers, hidden, heads, ffn, dropout },
    // Resolved, so `datasets: null` and `datasets: [<dataset.name>]` are the same run.
    corpus: corpusIdentity(config, datasets ?? [config.dataset.name], registry),
  };
}

/** First 10 hex digits of the SHA-256 of the key. */
export function pretrainHash(config: Config, registry?: Registry): string {
  return sha256(stableStringify(pretrainKey(config, registry))).slice(0, 10);
}

/** The key of the tokenizer a pretraining run trains (and the fine-tuning runs that start from it copy). */
export function pretrainTokenizerKey(config: Config, registry?: Registry): string {
  return tokenizerKey(config, pretrainKey(config, registry).corpus);
}

/** `<root>/pretrain/<datasets>-l<layers>h<hidden>-<hash>`. */
export function pretrainRunDir(config: Config, root: string = runsRoot(), registry?: Registry): string {
  const key = pretrainKey(config, registry);
  const short = `${key.corpus.datasets.map(safeName).join('+')}-l${key.encoder.layers}h${key.encoder.hidden}`;
  return join(root, 'pretrain', `${short}-${sha256(stableStringify(key)).slice(0, 10)}`);
}

function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '_');
}

// ---------------------------------------------------------------------------------------------
// Corpus

export interface CorpusDataset {
  name: string;
  /** The protocol's training split of the dataset, and only that. */
  documents: Document[];
  /** Where the split comes from (the protocol's description). */
  description: string;
}

/**
 * The pretraining text: the training split of each corpus dataset under the config's protocol.
 * Validation and test documents are never part of it: pretraining on them would let the encoder see
 * the evaluation text before fine-tuning is scored on it. (The protocol also drops training
 * documents that repeat test documents, dedup.ts.)
 */
export async function pretrainCorpus(config: Config, registry?: Registry): Promise<CorpusDataset[]> {
  const reg = registry ?? registryFor(config);
  const c = pretrainKey(config, reg).corpus;
  const out: CorpusDataset[] = [];
  for (const name of c.datasets) {
    const data = await loadProtocol(name, {
      protocol: c.protocol,
      validationFraction: c.validationFraction,
      validationDocs: c.validationDocs,
      splitSeed: c.splitSeed,
      maxDocs: { train: c.maxTrainDocs },
      registry: reg,
    });
    out.push({ name, documents: data.train, description: data.description });
  }
  return out;
}

/** One pretraining sequence: [CLS] tokens [SEP], with each token's word (-1 for the specials). */
export interface Piece {
  tokenIds: Int32Array;
  tokenWord: Int32Array;
}

/**
 * Cuts one document's tokens into consecutive pieces of at most `contentLen` tokens, each wrapped in
 * [CLS] ... [SEP]. A piece ends at a word boundary when it can (a word longer than a whole piece is
 * cut), so whole-word masking sees whole words; word indices stay the document's.
 */
export function cutPieces(tok: TokenizedWords, contentLen: number, cls: number, sep: number): Piece[] {
  if (!Number.isInteger(contentLen) || contentLen < 1) throw new LongnerError(`pretrain.seqLen must leave room for at least one token besides [CLS] and [SEP]`);
  const n = tok.ids.length;
  const pieces: Piece[] = [];
  let start = 0;
  while (start < n) {
    let end = Math.min(n, start + contentLen);
    if (end < n) {
      // Back off to the first token of the word that the cut would split.
      let b = end;
      while (b > start && tok.wordIndex[b - 1] === tok.wordIndex[end]) b--;
      if (b > start) end = b;
    }
    const len = end - start;
    const tokenIds = new Int32Array(len + 2);
    const tokenWord = new Int32Array(len + 2);
    tokenIds[0] = cls;
    tokenWord[0] = -1;
    tokenIds.set(tok.ids.subarray(start, end), 1);
    tokenWord.set(tok.wordIndex.subarray(start, end), 1);
    tokenIds[len + 1] = sep;
    tokenWord[len + 1] = -1;
    pieces.push({ tokenIds, tokenWord });
    start = end;
  }
  return pieces;
}

export async function corpusPieces(documents: readonly Document[], tokenizer: SubwordTokenizer, seqLen: number): Promise<Piece[]> {
  const pieces: Piece[] = [];
  for (const doc of documents) {
    if (doc.words.length === 0) continue;
    pieces.push(...cutPieces(await tokenizer.encodeWords(doc.words), seqLen - 2, tokenizer.cls, tokenizer.sep));
  }
  return pieces;
}

/**
 * The pieces of step `step`: positions step*B .. step*B+B-1 of the concatenation of per-epoch
 * permutations. `orders` caches permutations of piece indices by epoch.
 */
function batchAt(pieces: readonly Piece[], seed: number, step: number, batchSize: number, orders: Map<number, number[]>): Piece[] {
  const n = pieces.length;
  const out: Piece[] = [];
  for (let i = 0; i < batchSize; i++) {
    const p = step * batchSize + i;
    const epoch = Math.floor(p / n);
    let order = orders.get(epoch);
    if (order === undefined) {
      // Only the current and next epoch are ever needed: drop older permutations.
      for (const e of orders.keys()) if (e < epoch) orders.delete(e);
      order = epochOrder(
        pieces.map((_, k) => k),
        seed,
        epoch,
      );
      orders.set(epoch, order);
    }
    out.push(pieces[order[p % n]!]!);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Summary and resume state

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
type State = z.infer<typeof StateSchema>;
type StateBody = Omit<State, 'format' | 'files'>;

const JOURNAL = { params: LAST_CKPT, optimizer: LAST_OPTIM, state: STATE_FILE };

/** Saves parameters, moments and state as one unit (journal.ts); the state also pins the tokenizer. */
function saveState(dir: string, params: ParamStore, optimizer: AdamW, body: StateBody): void {
  const tokenizer = hashFile(join(dir, TOKENIZER_FILE));
  saveJournaled(dir, JOURNAL, params, optimizer, (files): State => ({ format: STATE_FORMAT, ...body, files: { ...files, tokenizer } }));
}

function recoverState(dir: string): void {
  recoverJournaled(dir, JOURNAL, [TOKENIZER_FILE, ENCODER_CKPT, SUMMARY_FILE, KEY_FILE]);
}

function loadState(dir: string): State | null {
  recoverState(dir);
  const file = join(dir, STATE_FILE);
  if (!existsSync(file)) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new LongnerError(`${file}: not valid JSON (${err instanceof Error ? err.message : String(err)}); pretrain again without --resume`);
  }
  const parsed = StateSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new LongnerError(
      `${file}: not a pretraining state of this version (${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'}); pretrain again without --resume`,
    );
  }
  const state = parsed.data;
  const files: [string, string][] = [
    [LAST_CKPT, state.files.params],
    [LAST_OPTIM, state.files.optimizer],
    [TOKENIZER_FILE, state.files.tokenizer],
  ];
  for (const [f, want] of files) {
    const path = join(dir, f);
    if (!existsSync(path)) throw new LongnerError(`${file} names ${f}, which is missing; pretrain again without --resume`);
    if (hashFile(path) !== want) throw new LongnerError(`${path} does not match ${STATE_FILE} (sha256 differs); pretrain again without --resume`);
  }
  return state;
}

/** A fresh start removes everything an earlier attempt wrote. */
function clearRun(dir: string): void {
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

// ---------------------------------------------------------------------------------------------
// Lock: one process pretrains in a folder at a time (shards of a grid may ask for the same run).

class PretrainBusyError extends LongnerError {}

interface LockOwner {
  pid: number;
  host: string;
  since: string;
}

const LOCK_WRITE_GRACE_MS = 10_000;

function mtimeOf(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the folder's lock, or throws PretrainBusyError naming its owner. A lock left by a dead process on this host is taken over. */
function acquireLock(dir: string): () => void {
  const file = join(dir, LOCK_FILE);
  const me: LockOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, 'wx');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let owner: LockOwner | null = null;
      try {
        owner = JSON.parse(readFileSync(file, 'utf8')) as LockOwner;
      } catch {
        // Unreadable: just being written by its owner, or left half-written by a process killed
        // right after creating it. Only the second lasts, so an old unreadable lock is stale.
      }
      const unreadableAndOld = owner === null && Date.now() - mtimeOf(file) > LOCK_WRITE_GRACE_MS;
      if (owner === null && !unreadableAndOld) throw new PretrainBusyError(`${dir} is being pretrained by another process (${LOCK_FILE} is being written)`);
      const stale = unreadableAndOld || (owner !== null && owner.host === me.host && !processAlive(owner.pid));
      if (stale) {
        rmSync(file, { force: true });
        continue;
      }
      throw new PretrainBusyError(
        `${dir} is being pretrained by process ${owner!.pid} on ${owner!.host} (since ${owner!.since}); wait for it, or remove ${LOCK_FILE} if that process is gone`,
      );
    }
    writeSync(fd, JSON.stringify(me));
    closeSync(fd);
    return () => {
      // Release only our own lock.
      try {
        const held = JSON.parse(readFileSync(file, 'utf8')) as LockOwner;
        if (held.pid === me.pid && held.host === me.host) rmSync(file, { force: true });
      } catch {
        // Already gone.
      }
    };
  }
  throw new PretrainBusyError(`${dir}: cannot take ${LOCK_FILE}`);
}

// ---------------------------------------------------------------------------------------------
// Model

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

function mean(xs: readonly number[]): number | null {
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
  const release = acquireLock(dir);
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

// ---------------------------------------------------------------------------------------------
// Fine-tuning side

export interface PretrainedEncoder {
  dir: string;
  tokenizerPath: string;
  encoderCheckpoint: string;
}

export interface EnsureOptions extends Omit<PretrainOptions, 'resume'> {
  /** How often to look again while another process holds the folder's lock (default 10 s). */
  pollSeconds?: number;
}

const ARCHITECTURE_KEYS = ['layers', 'hidden', 'heads', 'ffn'] as const;

/**
 * The pretrained encoder a fine-tuning config asks for. `encoder.pretrained: 'mlm'`: the shared run
 * folder of pretrainKey(config), pretrained first when its pretrain.json is missing (resuming a
 * killed attempt; waiting when another process is at it). A path (relative to the working
 * directory): a pretraining run folder, checked for encoder.ckpt and tokenizer.json.
 */
export async function ensurePretrained(config: Config, opts: EnsureOptions = {}): Promise<PretrainedEncoder> {
  const choice = config.encoder.pretrained;
  if (choice === null) throw new Error('ensurePretrained: encoder.pretrained is null (random initialisation)');
  if (choice !== 'mlm') return checkPretrainedFolder(resolve(choice), config);

  const dir = pretrainRunDir(config, opts.root, opts.registry);
  let told = false;
  for (;;) {
    let summary = readSummary(dir);
    if (summary === null) {
      try {
        summary = (await pretrain(config, { ...opts, resume: true })).summary;
      } catch (err) {
        if (!(err instanceof PretrainBusyError)) throw err;
        if (!opts.quiet && !told) process.stderr.write(`longner: ${err.message}; waiting\n`);
        told = true;
        await new Promise((r) => setTimeout(r, (opts.pollSeconds ?? 10) * 1000));
        continue;
      }
      if (summary === null) throw new LongnerError(`pretraining in ${dir} was stopped before it finished; run \`longner pretrain CONFIG --resume\``);
    }
    if (summary.status !== 'ok') {
      throw new LongnerError(
        `pretraining in ${dir} ${summary.status}${summary.reason ? ` (${summary.reason})` : ''}; change the pretrain section and run again`,
      );
    }
    return { dir, tokenizerPath: join(dir, TOKENIZER_FILE), encoderCheckpoint: join(dir, ENCODER_CKPT) };
  }
}

function checkPretrainedFolder(dir: string, config: Config): PretrainedEncoder {
  const how = 'make one with `longner pretrain CONFIG` and point encoder.pretrained at the folder it prints (or set encoder.pretrained: mlm)';
  if (!existsSync(dir)) throw new LongnerError(`encoder.pretrained: ${dir} does not exist; ${how}`);
  const missing = [ENCODER_CKPT, TOKENIZER_FILE].filter((f) => !existsSync(join(dir, f)));
  if (missing.length > 0) {
    throw new LongnerError(`encoder.pretrained: ${dir} has no ${missing.join(' and no ')}, so it is not a finished pretraining run; ${how}`);
  }
  // Heads do not show in the weights' shapes, so the run's own config is compared as well when it is there.
  const theirs = readSummary(dir)?.config?.encoder;
  if (theirs !== undefined) {
    const diffs = ARCHITECTURE_KEYS.filter((k) => theirs[k] !== config.encoder[k]).map(
      (k) => `encoder.${k} is ${config.encoder[k]} here but ${theirs[k]} in the pretraining run`,
    );
    if (diffs.length > 0) throw new LongnerError(`encoder.pretrained: ${dir} does not fit this config: ${diffs.join(', ')}; align them`);
  }
  return { dir, tokenizerPath: join(dir, TOKENIZER_FILE), encoderCheckpoint: join(dir, ENCODER_CKPT) };
}

function isLoraName(name: string): boolean {
  return name.endsWith('.lora_A') || name.endsWith('.lora_B');
}

/**
 * Loads a pretrained encoder checkpoint into a model's parameters: every `encoder.*` parameter
 * except LoRA pairs, which keep their initialisation (A random, B zero, so the model starts as the
 * pretrained encoder); head parameters are untouched. Returns the names loaded. A checkpoint of
 * another architecture is a LongnerError naming the config keys to align.
 */
export function loadPretrainedEncoder(params: ParamStore, checkpoint: string): string[] {
  const only = (name: string): boolean => name.startsWith(`${ENCODER_PREFIX}.`) && !isLoraName(name);
  if (!existsSync(checkpoint)) throw new LongnerError(`pretrained encoder ${checkpoint} does not exist; make one with \`longner pretrain CONFIG\``);
  try {
    return params.load(checkpoint, { only });
  } catch (err) {
    if (!(err instanceof LongnerError)) throw err;
    throw new LongnerError(
      `${err.message}. The pretrained encoder has another architecture: align encoder.layers, encoder.hidden, encoder.heads, encoder.ffn and tokenizer.vocabSize with the pretraining run${pretrainedShape(checkpoint)}, or pretrain one for this config with \`longner pretrain CONFIG\``,
    );
  }
}

/** ` (which used encoder.layers=..., ...)` from the run's pretrain.json, when the checkpoint sits in a run folder. */
function pretrainedShape(checkpoint: string): string {
  if (basename(checkpoint) !== ENCODER_CKPT) return '';
  try {
    const summary = readSummary(dirname(checkpoint));
    if (summary === null) return '';
    const e = summary.config.encoder;
    return ` (which used ${ARCHITECTURE_KEYS.map((k) => `encoder.${k}=${e[k]}`).join(', ')}, tokenizer.vocabSize=${summary.config.tokenizer.vocabSize})`;
  } catch {
    return '';
  }
}
