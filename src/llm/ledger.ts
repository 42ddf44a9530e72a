/**
 * Token and latency accounting: one record per LLM call, summed into the `llm` field of the run record.
 * A cached answer counts with the tokens and latency stored with it (the method's cost); `msThisRun` sums
 * only the calls actually made in this run (concurrent calls overlap, so it can exceed wall time).
 */
import type { RunResult } from '../runs/result.js';

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

export type LlmSummary = NonNullable<RunResult['llm']>;

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
      stages: Object.fromEntries(
        STAGES.map((stage) => [stage, sum(this.records.filter((r) => r.stage === stage))] as const).filter(([, s]) => s.calls > 0),
      ),
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
