/**
 * A probe task: one measured training step or inference pass of one method on one synthetic input
 * of a given length, and what it reports. `executeProbe` runs it in the current process; callers run
 * it in a fresh child (child.ts), because the wasm heap never shrinks (research/backends.md 3) and
 * an out-of-memory crash must not take the sweep down with it.
 *
 * What a probe computes (the same as a real run, minus the data pipeline):
 * - the resolved config: the method's config file (or the schema defaults), the preset, `set`, the
 *   task's overrides, then what a probe has to fix: one segment holding the whole input
 *   (segment.maxLen = words + 2 for [CLS] and [SEP]), batch 1, random weights
 *   (encoder.pretrained = null: pretrained values would not change a byte or a millisecond);
 * - one synthetic document of `words` words (data/synthetic.ts) with the entity shape the task gives,
 *   "tokenized" one token per word (ids from a hash of the word, so no tokenizer has to be trained);
 * - train: AdamW.forModel + trainStep (loss, gradients, clipping, update) exactly as the trainer
 *   runs it; infer: model.predict on the segment.
 * The first step runs under tf.profile (peak bytes); `repeats` further unprofiled steps give the
 * time figure, since a profiled step also pays for the profiler's bookkeeping.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { backendMemory, initBackend, type BackendInfo } from '../backend/index.js';
import { isWasmBackend } from '../backend/kernel-backend.js';
import { loadConfig, mergeConfigObjects, presetPath, resolveConfigFromObject } from '../config/load.js';
import { MethodSchema, type Config } from '../config/schema.js';
import { defaultRegistry } from '../data/registry.js';
import { segmentDocument, type Segment } from '../data/segmenter.js';
import { generateDocuments } from '../data/synthetic.js';
import { CLS_ID, SEP_ID, SPECIAL_TOKENS, type TokenizedWords } from '../data/tokenizer.js';
import type { Document } from '../data/types.js';
import { LongnerError } from '../errors.js';
import { createModel } from '../models/index.js';
import type { SpanModel } from '../models/span-model.js';
import { AdamW } from '../train/adamw.js';
import { stepRng, trainStep } from '../train/trainer.js';
import { errorReason, isOutOfMemory } from './oom.js';
import { configHash } from '../data/config-hash.js';
import { measureStep, timeStep } from '../backend/step.js';

export const PROBE_MODES = ['train', 'infer'] as const;
export type ProbeMode = (typeof PROBE_MODES)[number];

const EntityLengthSchema = z.discriminatedUnion('dist', [
  z.strictObject({ dist: z.literal('geometric'), mean: z.number().min(1), max: z.number().int().min(1) }),
  z.strictObject({ dist: z.literal('uniform'), min: z.number().int().min(1), max: z.number().int().min(1) }),
  z.strictObject({ dist: z.literal('fixed'), length: z.number().int().min(1) }),
]);

/** The entity shape of a probe document (labels are part of the loss, so of the memory). */
export const DocumentShapeSchema = z.strictObject({
  entityDensity: z.number().min(0).max(100).describe('Entities per 100 words.'),
  entityLength: EntityLengthSchema,
  nested: z.number().min(0).max(1).describe('Probability that an entity is placed inside an earlier one.'),
});
export type DocumentShape = z.infer<typeof DocumentShapeSchema>;

/** Scholar-XL-like (research/datasets.md): about 2 entities per 100 words, mean length about 8, some nesting. */
export const SCHOLAR_XL_LIKE: DocumentShape = {
  entityDensity: 2,
  entityLength: { dist: 'geometric', mean: 8, max: 64 },
  nested: 0.1,
};

/**
 * Deliberate failures, for tests of the parent's bookkeeping only (probe-main.ts applies them just
 * before the measured step): an exception with a given message, an exit with a code, a signal to
 * itself, or a hang.
 */
export const ProbeFaultSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('throw'), message: z.string() }),
  z.strictObject({ kind: z.literal('exit'), code: z.number().int() }),
  z.strictObject({ kind: z.literal('signal'), signal: z.enum(['SIGKILL', 'SIGABRT', 'SIGSEGV', 'SIGTERM']) }),
  z.strictObject({ kind: z.literal('hang') }),
]);
export type ProbeFault = z.infer<typeof ProbeFaultSchema>;

export const ProbeTaskSchema = z.strictObject({
  method: MethodSchema,
  /** The method's config file; null = the schema defaults with `method` set. */
  configFile: z.string().min(1).nullable().default(null),
  /** A preset of configs/presets/, applied after the config file. */
  preset: z.string().min(1).nullable().default(null),
  /** `key.path=value` overrides, as on the command line, applied after the preset. */
  set: z.array(z.string()).default([]),
  /** A config fragment deep-merged last (before the probe's own fixed keys). */
  overrides: z.record(z.string(), z.unknown()).default({}),
  /** Input length in words; one token per word, so also the tokens besides [CLS] and [SEP]. */
  words: z.number().int().min(1),
  mode: z.enum(PROBE_MODES),
  seed: z.number().int().default(2288),
  /** The experiment name written into the resolved config (the run record's folder). */
  experiment: z.string().min(1).nullable().default(null),
  document: DocumentShapeSchema.default(SCHOLAR_XL_LIKE),
  /** Unprofiled repetitions after the profiled step; their mean is the time figure. */
  repeats: z.number().int().min(0).default(1),
  /**
   * An artificial memory budget in bytes: a profiled peak above it is recorded as 'oom' (what a
   * smaller device would do); null = only the real limit of the backend.
   */
  budgetBytes: z.number().positive().nullable().default(null),
  /** Test-only: see ProbeFaultSchema. */
  fault: ProbeFaultSchema.nullable().default(null),
});
/** A task as written by callers (defaults may be left out). */
export type ProbeTaskInput = z.input<typeof ProbeTaskSchema>;
export type ProbeTask = z.output<typeof ProbeTaskSchema>;

export function parseProbeTask(input: unknown): ProbeTask {
  const parsed = ProbeTaskSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw new LongnerError(`probe task: ${issue.path.map(String).join('.') || '(top level)'}: ${issue.message}`);
}

export type ProbeStatus = 'ok' | 'oom' | 'failed';

export interface ProbeResult {
  status: ProbeStatus;
  /** Why the probe is not 'ok': the error's first line, the exit code or signal, 'timeout ...'. */
  reason: string | null;
  method: string;
  mode: ProbeMode;
  words: number;
  /** Tokens of the segment, [CLS] and [SEP] included; null when the probe died before building it. */
  tokens: number | null;
  entities: number | null;
  backend: BackendInfo['name'] | null;
  backendDetail: string | null;
  configHash: string | null;
  params: number | null;
  trainableParams: number | null;
  /** tf.profile peak of live tensor bytes in the profiled step (weights and optimizer moments included). */
  peakBytes: number | null;
  /** Live tensor bytes before the step. */
  baselineBytes: number | null;
  /** Wasm heap after the probe (or when it failed): the process's high-water mark; null off wasm. */
  wasmHeapBytes: number | null;
  /** Peak resident set of the probe process (getrusage maxrss). */
  rssBytes: number | null;
  /** Wall time of the profiled step (profiler overhead included). */
  msProfiled: number | null;
  /** Mean wall time of the unprofiled repetitions: the latency figure. Null when repeats = 0. */
  ms: number | null;
  /** Wall time of the whole probe, process start to result, as seen by whoever ran it. */
  wallMs: number;
}

/** A result for a probe that produced nothing but a status (the parent uses it for a dead child). */
export function emptyProbeResult(task: Pick<ProbeTask, 'method' | 'mode' | 'words'>, status: ProbeStatus, reason: string | null, wallMs: number): ProbeResult {
  return {
    status,
    reason,
    method: task.method,
    mode: task.mode,
    words: task.words,
    tokens: null,
    entities: null,
    backend: null,
    backendDetail: null,
    configHash: null,
    params: null,
    trainableParams: null,
    peakBytes: null,
    baselineBytes: null,
    wasmHeapBytes: null,
    rssBytes: null,
    msProfiled: null,
    ms: null,
    wallMs,
  };
}

type Mapping = Record<string, unknown>;

/** The resolved config of a probe (see the file comment); the parent and the child both call it, so they agree on the run id. */
export function probeConfig(task: ProbeTask): Config {
  let base: Mapping;
  if (task.configFile !== null) {
    // A resolved Config is a plain nested object; as a Mapping it merges with the task's overrides.
    base = loadConfig(task.configFile, { preset: task.preset ?? undefined, set: task.set }).config as unknown as Mapping;
  } else {
    const layers: Mapping[] = [{ method: task.method }];
    if (task.preset !== null) layers.push(readPreset(task.preset), { preset: task.preset });
    // As above: a plain nested object, merged as a Mapping.
    base = resolveConfigFromObject(mergeConfigObjects(...layers), `probe of ${task.method}`) as unknown as Mapping;
    if (task.set.length > 0) throw new LongnerError('probe task: `set` needs a configFile (use `overrides` instead)');
  }
  if (base.method !== task.method) {
    throw new LongnerError(`probe task: ${task.configFile ?? 'config'} is for method '${String(base.method)}', not '${task.method}'`);
  }
  const fixed: Mapping = {
    segment: { maxLen: task.words + 2, overlap: 0 },
    encoder: { pretrained: null },
    train: { seed: task.seed, batchSize: 1 },
    eval: { batchSize: 1 },
  };
  if (task.experiment !== null) fixed.experiment = task.experiment;
  return resolveConfigFromObject(mergeConfigObjects(base, task.overrides, fixed), `probe of ${task.method} (${task.configFile ?? 'defaults'} + overrides)`);
}

function readPreset(name: string): Mapping {
  const data: unknown = parseYaml(readFileSync(presetPath(name), 'utf8'));
  return data !== null && typeof data === 'object' && !Array.isArray(data) ? (data as Mapping) : {};
}

/** Entity types of the config's dataset, from the registry's manifest (no data file is read). */
export function probeTypes(config: Config): string[] {
  return defaultRegistry().dataset(config.dataset.name).types.slice();
}

/** The synthetic document of a probe. */
export function probeDocument(words: number, types: string[], shape: DocumentShape, seed: number): Document {
  return generateDocuments({
    docs: 1,
    words,
    entityDensity: shape.entityDensity,
    entityLength: shape.entityLength,
    nested: shape.nested,
    types,
    seed,
  })[0]!;
}

/** FNV-1a, 32 bits: a stable hash of a word. */
function hashWord(word: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < word.length; i++) {
    h ^= word.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * One token per word, id = 5 + hash(word) mod (vocabSize - 5), so the special ids are never used.
 * The ids only index the embedding table; what they mean does not change memory or time.
 */
export function fakeTokenize(doc: Document, vocabSize: number): TokenizedWords {
  const specials = SPECIAL_TOKENS.length;
  if (vocabSize <= specials) throw new LongnerError(`tokenizer.vocabSize must be > ${specials}, got ${vocabSize}`);
  const n = doc.words.length;
  const ids = new Int32Array(n);
  const wordIndex = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    ids[i] = specials + (hashWord(doc.words[i]!) % (vocabSize - specials));
    wordIndex[i] = i;
  }
  return { ids, wordIndex };
}

/** The single segment of a probe's document. */
export function probeSegment(config: Config, task: Pick<ProbeTask, 'words' | 'document' | 'seed'>): { segment: Segment; doc: Document } {
  const doc = probeDocument(task.words, probeTypes(config), task.document, task.seed);
  const segments = segmentDocument(doc, fakeTokenize(doc, config.tokenizer.vocabSize), { maxLen: config.segment.maxLen, overlap: 0, cls: CLS_ID, sep: SEP_ID });
  if (segments.length !== 1) throw new Error(`probe: expected one segment, got ${segments.length} (segment.maxLen ${config.segment.maxLen})`);
  return { segment: segments[0]!, doc };
}

export interface ExecuteHooks {
  /** Called once the backend is up (probe-main.ts then takes over the process's crash handling). */
  afterBackend?: () => void;
  /** Called right before the profiled step (probe-main.ts injects test faults here). */
  beforeStep?: () => void;
}

/**
 * Runs one probe in this process, on the config's backend. Never throws for a failure of the probe
 * itself: an exception that looks like memory exhaustion is status 'oom', any other is 'failed'.
 * (A crash that kills the process is the caller's to classify, see child.ts.)
 */
export interface ProbeStep {
  model: SpanModel;
  /** Only for train probes. */
  optimizer: AdamW | null;
  tokens: number;
  entities: number;
  /** One training step (loss, gradients, clipping, AdamW) or one inference pass. */
  step: () => unknown;
}

/** The model and the measured step of a probe, on the active backend (shared with scripts/profile.ts). */
export function buildProbeStep(config: Config, task: ProbeTask): ProbeStep {
  const { segment, doc } = probeSegment(config, task);
  const model = createModel(config, { types: probeTypes(config), vocabSize: config.tokenizer.vocabSize });
  const batch = { segments: [segment] };
  const base = { model, tokens: segment.tokenIds.length, entities: doc.entities.length };
  if (task.mode === 'infer') return { ...base, optimizer: null, step: () => model.predict(batch) };
  const tc = config.train;
  const optimizer = AdamW.forModel(model, { weightDecay: tc.weightDecay });
  const lr = { head: tc.lr, encoder: tc.encoderLr };
  let n = 0;
  const step = (): unknown => {
    const rng = stepRng(task.seed, n++);
    const out = trainStep(() => model.loss(batch, { rng }), optimizer, lr, tc.clip);
    // A diverged step skips the update, which would understate time and memory.
    if (out.diverged) throw new Error(`probe: non-finite loss or gradient (loss ${out.loss})`);
    return out;
  };
  return { ...base, optimizer, step };
}

export async function executeProbe(task: ProbeTask, hooks: ExecuteHooks = {}): Promise<ProbeResult> {
  const started = performance.now();
  const result = emptyProbeResult(task, 'failed', null, 0);
  let model: SpanModel | null = null;
  let optimizer: AdamW | null = null;
  // Under tf.profile the wasm backend runs each kernel inside an async timer, so a kernel's own error
  // (e.g. "memory access out of bounds") becomes an unhandled rejection, and what reaches us is a
  // consequence ("Cannot read properties of undefined"). Collect those rejections to explain the failure.
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown): void => {
    rejections.push(reason);
  };
  const finish = (): ProbeResult => {
    process.off('unhandledRejection', onRejection);
    result.wasmHeapBytes = currentWasmHeap();
    // maxRSS is in kilobytes; it is the high-water mark of the whole process.
    result.rssBytes = process.resourceUsage().maxRSS * 1024;
    result.wallMs = performance.now() - started;
    return result;
  };
  try {
    const config = probeConfig(task);
    result.configHash = configHash(config);
    const backend = await initBackend(config.backend, { quiet: true });
    result.backend = backend.name;
    result.backendDetail = backend.detail;
    watchWasmAborts();
    hooks.afterBackend?.();
    // After the hook, which may clear the backend's own rejection handlers.
    process.on('unhandledRejection', onRejection);
    const built = buildProbeStep(config, task);
    model = built.model;
    optimizer = built.optimizer;
    result.tokens = built.tokens;
    result.entities = built.entities;
    result.params = model.params.count();
    result.trainableParams = model.params.count({ trainableOnly: true });
    const step = built.step;
    hooks.beforeStep?.();
    const measured = await measureStep(step);
    result.peakBytes = measured.peakBytes;
    result.baselineBytes = measured.baselineBytes;
    result.msProfiled = measured.ms;
    if (task.budgetBytes !== null && measured.peakBytes !== null && measured.peakBytes > task.budgetBytes) {
      result.status = 'oom';
      result.reason = `peak ${measured.peakBytes} bytes exceeds the budget of ${task.budgetBytes} bytes`;
      return finish();
    }
    if (task.repeats > 0) {
      let total = 0;
      for (let r = 0; r < task.repeats; r++) total += timeStep(step).ms;
      result.ms = total / task.repeats;
    }
    result.status = 'ok';
    return finish();
  } catch (err) {
    // Let pending rejections of the failed step arrive (they are reported after the microtasks run).
    await new Promise((resolve) => setImmediate(resolve));
    const cause = rejections.find((r) => isOutOfMemory(r)) ?? rejections[0] ?? err;
    const verdict = classifyProbeError(cause, currentWasmHeap(), lastWasmAbort());
    result.status = verdict.status;
    const surfaced = errorReason(err);
    result.reason = cause === err || errorReason(cause) === surfaced ? verdict.reason : `${verdict.reason} (surfaced as: ${surfaced})`;
    return finish();
  } finally {
    // The process ends right after a probe; disposing still matters when a caller runs several in one process (tests).
    try {
      optimizer?.dispose();
      model?.params.dispose();
    } catch {
      // A heap that just ran out can fail to free; the process is about to exit anyway.
    }
  }
}

/** The wasm32 heap cannot grow past 4 GiB (65536 pages of 64 KiB; emscripten stops one page short). */
export const WASM_HEAP_CAP = 2 ** 32;
/**
 * A failing heap this close to the cap ran out of room, whatever the error says: a failed request
 * leaves the heap where it was, so the bigger the request, the further below the cap it stops
 * (measured: failures at 3.7-4.0 GiB, with "table index is out of bounds" and "memory access out of
 * bounds" from code that went on with a null allocation).
 */
const CAP_SLACK = 512 * 2 ** 20;

/**
 * 'oom' or 'failed' for an exception of a probe. Besides the messages isOutOfMemory knows, a wasm
 * allocation failure often surfaces as something else: the allocator aborts the wasm runtime
 * ("Aborted()", seen through watchWasmAborts; tfjs-backend-wasm is built without C++ exceptions, so
 * a failed `new` aborts too), and tfjs then fails on the missing kernel output ("Cannot read
 * properties of undefined (reading 'map')"), or code goes on with a null allocation ("table index is out
 * of bounds"). So an error after a wasm abort, or raised while the heap stands within CAP_SLACK of its
 * 4 GiB cap, counts as out of memory; the reason keeps the original message.
 */
export function classifyProbeError(err: unknown, wasmHeapBytes: number | null, wasmAbort: string | null = null): { status: ProbeStatus; reason: string } {
  const reason = errorReason(err);
  if (isOutOfMemory(err)) return { status: 'oom', reason };
  if (wasmAbort !== null) return { status: 'oom', reason: `${reason} (the wasm runtime aborted, ${wasmAbort}: an allocation failed)` };
  if (wasmHeapBytes !== null && wasmHeapBytes >= WASM_HEAP_CAP - CAP_SLACK) {
    return { status: 'oom', reason: `${reason} (wasm heap near its 4 GiB cap: an allocation failed)` };
  }
  return { status: 'failed', reason };
}

let wasmAbort: string | null = null;

/** What the wasm runtime said when it aborted, if it did since watchWasmAborts. */
export function lastWasmAbort(): string | null {
  return wasmAbort;
}

/**
 * Hooks the emscripten module's onAbort (called before it throws), so that an abort is known even
 * when the error that reaches us is a consequence of it. No-op off wasm.
 */
export function watchWasmAborts(): void {
  let backend: unknown;
  try {
    backend = tf.backend();
  } catch {
    return;
  }
  if (!isWasmBackend(backend)) return;
  // The emscripten module's onAbort is not in tfjs-backend-wasm's typings.
  const module = backend.wasm as unknown as { onAbort?: (what: unknown) => void };
  const previous = module.onAbort;
  module.onAbort = (what: unknown) => {
    wasmAbort = `Aborted(${what === undefined ? '' : String(what)})`;
    previous?.(what);
  };
}

/** The wasm heap size now, or null off wasm (or when a backend broken by an allocation failure does not answer). */
export function currentWasmHeap(): number | null {
  try {
    return backendMemory().wasmHeapBytes ?? null;
  } catch {
    return null;
  }
}
