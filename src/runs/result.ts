/**
 * RunResult: the result.json of one run (one config, one seed, one evaluated split). Reports read
 * nothing else, so every number a table or chart shows is here. Objects are strict so that a
 * misspelt field is caught when the result is written, not when a report silently lacks it.
 */
import { z } from 'zod';
import type { BackendInfo } from '../backend/index.js';
import { MethodSchema, type Config } from '../config/schema.js';
import type { ProtocolData } from '../data/protocol.js';
import { PrfSchema } from '../eval/metrics.js';
import { DiagnosticsSchema } from '../eval/diagnostics.js';
import { LlmSummarySchema } from '../llm/ledger.js';
import { collectEnv, EnvSchema } from '../util/env.js';
import { configHash, dataFingerprints } from '../data/config-hash.js';

const count = () => z.number().int().min(0);
/** A measurement that may be unavailable (not run, not supported on the backend). */
const measured = () => z.number().min(0).nullable();

export const RunStatusSchema = z.enum(['ok', 'oom', 'diverged', 'failed', 'not-run']);
export type RunStatus = z.infer<typeof RunStatusSchema>;

export const RunResultSchema = z.strictObject({
  method: MethodSchema,
  dataset: z.string().min(1),
  split: z.enum(['train', 'validation', 'test']),
  seed: z.number().int(),
  configHash: z.string().regex(/^[0-9a-f]{10}$/),
  preset: z.string().nullable(),
  /** The backend actually used ('auto' resolved); null when nothing ran. */
  backend: z.enum(['tensorflow', 'native', 'wasm', 'cpu']).nullable(),
  /** The backend's one-line description: its matrix library, ISA, thread count (absent in older records). */
  backendDetail: z.string().nullable().optional(),
  backendLibrary: z.string().nullable().optional(),
  backendThreads: z.number().int().nullable().optional(),
  status: RunStatusSchema,
  /** Why a run is not 'ok' (the OOM message, the step that diverged, ...). */
  reason: z.string().optional(),
  metrics: z.strictObject({
    overall: PrfSchema.nullable(),
    /** Keyed by entity type. */
    perType: z.record(z.string(), PrfSchema).nullable(),
    /** Keyed by entity-length bucket label (words), e.g. "1", "2-3", ">100". */
    perLength: z.record(z.string(), PrfSchema).nullable(),
  }),
  memory: z.strictObject({
    peakBytesTrainStep: measured(),
    peakBytesInference: measured(),
    wasmHeapBytes: measured(),
    rssBytes: measured(),
  }),
  timing: z.strictObject({
    msPerTrainStep: measured(),
    msPerDocument: measured(),
    tokensPerSecond: measured(),
    wallSeconds: measured(),
  }),
  env: EnvSchema,
  /** LLM cost of an el4ner run (src/llm/ledger.ts); absent for every other method. */
  llm: LlmSummarySchema.optional(),
  /** Which files made the splits (the dataset protocol), in words. */
  dataProtocol: z.string(),
  /**
   * The data as read: entity types in label order (null when the run ended before loading them) and the
   * sha256 of each file, by dataset and raw split (null for a dataset the registry did not know).
   * Absent in records made before data fingerprints.
   */
  data: z
    .strictObject({
      types: z.array(z.string()).nullable(),
      fingerprints: z.record(z.string(), z.record(z.string(), z.string()).nullable()),
    })
    .optional(),
  /** Decoding thresholds of the test evaluation (absent in records made before threshold tuning). */
  thresholds: z
    .strictObject({
      /** eval.threshold: a fixed value, or 'tuned' on validation. */
      mode: z.enum(['fixed', 'tuned']),
      /** The threshold `metrics` were decoded at; null for a method that decodes without one. */
      used: z.number().nullable(),
      /** Test scores at the reference threshold 0.5 (methods whose decoding takes a threshold). */
      reference: PrfSchema.nullable(),
      /** The best validation threshold of the best checkpoint (eval.thresholdGrid) and the test scores there, used or not (BCE heads). */
      tuned: z.strictObject({ threshold: z.number(), overall: PrfSchema }).nullable(),
    })
    .optional(),
  /** Predicted spans, gold-score distribution and oracle ceiling of the test evaluation (src/eval/diagnostics.ts). */
  diagnostics: DiagnosticsSchema.optional(),
  /** Learning curves: the training loss ([step, mean loss of its window]) and every validation. */
  curves: z
    .strictObject({
      trainLoss: z.array(z.tuple([z.number().int().min(0), z.number()])),
      validation: z.array(
        z.strictObject({
          step: z.number().int().min(0),
          epoch: z.number().int().positive(),
          f1: z.number().nullable(),
          referenceF1: z.number().nullable(),
          tunedF1: z.number().nullable(),
          threshold: z.number().nullable(),
          predicted: z.number().int().min(0).nullable(),
          goldScoreMedian: z.number().nullable(),
        }),
      ),
    })
    .optional(),
  /** Documents or entities removed by deduplication, by kind. */
  dedup: z.record(z.string(), count()),
  createdAt: z.iso.datetime({ offset: true }),
});
export type RunResult = z.infer<typeof RunResultSchema>;

/** Metrics of a run that produced none (status other than 'ok'). */
export function emptyMetrics(): RunResult['metrics'] {
  return { overall: null, perType: null, perLength: null };
}

export function emptyMemory(): RunResult['memory'] {
  return { peakBytesTrainStep: null, peakBytesInference: null, wasmHeapBytes: null, rssBytes: null };
}

export function emptyTiming(): RunResult['timing'] {
  return { msPerTrainStep: null, msPerDocument: null, tokensPerSecond: null, wallSeconds: null };
}

/**
 * Everything of a result but its outcome: which run, on what, under which data protocol. `protocol`
 * is null when the run ended before its data was loaded; `unloaded` then says why.
 */
export function resultHeader(
  config: Config,
  protocol: ProtocolData | null,
  backend: Pick<BackendInfo, 'name' | 'detail' | 'library' | 'threads'> | null,
  unloaded = 'not loaded',
): Omit<RunResult, 'status' | 'metrics' | 'memory' | 'timing'> {
  const dedup = protocol?.dedup;
  return {
    method: config.method,
    dataset: config.dataset.name,
    split: 'test',
    seed: config.train.seed,
    configHash: configHash(config),
    preset: config.preset,
    backend: backend?.name ?? null,
    backendDetail: backend?.detail ?? null,
    backendLibrary: backend?.library ?? null,
    backendThreads: backend?.threads ?? null,
    env: collectEnv(),
    dataProtocol: protocol?.description ?? `${config.dataset.protocol} protocol (${unloaded})`,
    data: { types: protocol?.types ?? null, fingerprints: dataFingerprints(config) },
    dedup: dedup
      ? {
          trainDroppedAsTestOverlap: dedup.trainDroppedAsTestOverlap,
          trainDroppedAsRepeat: dedup.trainDroppedAsRepeat,
          triplesCollapsedTrain: dedup.triplesCollapsed.train,
          triplesCollapsedValidation: dedup.triplesCollapsed.validation,
          triplesCollapsedTest: dedup.triplesCollapsed.test,
          testRepeatsKept: dedup.testRepeatsKept,
        }
      : {},
    createdAt: new Date().toISOString(),
  };
}
