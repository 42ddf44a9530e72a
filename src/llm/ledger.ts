/**
 * Token and latency accounting: one record per LLM call, summed into the `llm` field of the run record.
 * A cached answer counts with the tokens and latency stored with it (the method's cost); `msThisRun` sums
 * only the calls actually made in this run (concurrent calls overlap, so it can exceed wall time).
 */
import { z } from 'zod';

export const STAGES = ['pre-extract', 'extract', 'type', 'verify'] as const;
export type Stage = (typeof STAGES)[number];

export interface CallRecord {
  model: string;
  stage: Stage;
  promptTokens: number | null;
  completionTokens: number | null;
  ms: number;
  cached: boolean;
  failed: boolean;
}

export interface LedgerModel {
  id: string;
  kind: 'gguf' | 'openai';
  /** The client's identity (endpoint and model name, or GGUF file and hash). */
  model: string;
}

export interface LedgerExtras {
  offsetRule: string;
  unalignedAnswers: number;
  unparseableAnswers: number;
  windows: number;
  documents: number;
}

const count = () => z.number().int().min(0);

/**
 * LLM cost of an el4ner run, as result.json records it (absent for every other method). Token and
 * latency sums cover every call the method made: a call answered from the disk cache counts with the
 * tokens and latency measured when it was first made, so a rerun reports the same cost; `msThisRun`
 * is the time actually spent waiting.
 */
export const LlmSummarySchema = z.strictObject({
  calls: count(),
  cachedCalls: count(),
  /** Calls that failed after their retries (timeouts, server errors); they count as empty answers. */
  failedCalls: count(),
  /** Calls whose endpoint reported no token usage (their tokens are not in the sums). */
  callsWithoutUsage: count(),
  promptTokens: count(),
  completionTokens: count(),
  msTotal: z.number().min(0),
  msThisRun: z.number().min(0),
  msPerDocument: z.number().min(0).nullable(),
  /** Name of the rule that maps answer strings to word offsets (src/llm/align.ts). */
  offsetRule: z.string().min(1),
  /** Answer strings (spans) that occur nowhere in their window: they produce no span. */
  unalignedAnswers: count(),
  /** Answers that were not JSON of the expected shape: they count as empty answers. */
  unparseableAnswers: count(),
  windows: count(),
  models: z.array(
    z.strictObject({
      id: z.string().min(1),
      kind: z.enum(['gguf', 'openai']),
      /** What answered: the endpoint's model name, or the GGUF file name and its sha256. Never a key. */
      model: z.string().min(1),
      calls: count(),
      promptTokens: count(),
      completionTokens: count(),
      msTotal: z.number().min(0),
    }),
  ),
  /** Sums per pipeline stage (pre-extract, extract, type, verify). */
  stages: z.record(z.string(), z.strictObject({ calls: count(), promptTokens: count(), completionTokens: count(), msTotal: z.number().min(0) })),
});
export type LlmSummary = z.infer<typeof LlmSummarySchema>;

interface Sums {
  calls: number;
  promptTokens: number;
  completionTokens: number;
  msTotal: number;
}

export class Ledger {
  readonly records: CallRecord[] = [];

  record(r: CallRecord): void {
    this.records.push(r);
  }

  summary(models: readonly LedgerModel[], extras: LedgerExtras): LlmSummary {
    const all = sum(this.records);
    const msTotal = all.msTotal;
    return {
      calls: all.calls,
      cachedCalls: this.records.filter((r) => r.cached).length,
      failedCalls: this.records.filter((r) => r.failed).length,
      callsWithoutUsage: this.records.filter((r) => !r.failed && (r.promptTokens === null || r.completionTokens === null)).length,
      promptTokens: all.promptTokens,
      completionTokens: all.completionTokens,
      msTotal,
      msThisRun: this.records.filter((r) => !r.cached).reduce((a, r) => a + r.ms, 0),
      msPerDocument: extras.documents > 0 ? msTotal / extras.documents : null,
      offsetRule: extras.offsetRule,
      unalignedAnswers: extras.unalignedAnswers,
      unparseableAnswers: extras.unparseableAnswers,
      windows: extras.windows,
      models: models.map((m) => ({ ...m, ...sum(this.records.filter((r) => r.model === m.id)) })),
      stages: Object.fromEntries(STAGES.map((stage) => [stage, sum(this.records.filter((r) => r.stage === stage))] as const).filter(([, s]) => s.calls > 0)),
    };
  }
}

function sum(records: readonly CallRecord[]): Sums {
  const out: Sums = { calls: 0, promptTokens: 0, completionTokens: 0, msTotal: 0 };
  for (const r of records) {
    out.calls++;
    out.promptTokens += r.promptTokens ?? 0;
    out.completionTokens += r.completionTokens ?? 0;
    out.msTotal += r.ms;
  }
  return out;
}
