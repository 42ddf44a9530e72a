/** Printing run results on the terminal. */
import type { RunResult } from '../runs/result.js';
import type { Prf } from '../eval/metrics.js';
import { textTable, type Cell } from '../util/table.js';

const pct = (x: number): number => Math.round(x * 10000) / 100;
const mib = (b: number | null): string => (b === null ? '-' : `${(b / 2 ** 20).toFixed(1)} MiB`);

export function prfRows(label: string, entries: [string, Prf][]): Cell[][] {
  return entries.map(([k, p]) => [label, k, p.tp + p.fn, p.tp + p.fp, pct(p.precision), pct(p.recall), pct(p.f1)]);
}

export function metricsTable(metrics: { overall: Prf; perType: Record<string, Prf>; perLength: Record<string, Prf> }): string {
  const rows = [
    ...prfRows('overall', [['all', metrics.overall]]),
    ...prfRows('type', Object.entries(metrics.perType)),
    ...prfRows('length', Object.entries(metrics.perLength)),
  ];
  return textTable(['group', 'key', 'gold', 'pred', 'P %', 'R %', 'F1 %'], rows);
}

export function printResult(r: RunResult, dir: string): void {
  console.log(`${r.method} on ${r.dataset} (${r.split}), seed ${r.seed}, backend ${r.backend ?? '-'}: ${r.status}${r.reason ? ` (${r.reason})` : ''}`);
  const m = r.metrics;
  if (m.overall && m.perType && m.perLength) console.log(metricsTable({ overall: m.overall, perType: m.perType, perLength: m.perLength }));
  const t = r.timing;
  console.log(
    `peak bytes: train step ${mib(r.memory.peakBytesTrainStep)}, inference ${mib(r.memory.peakBytesInference)}; ` +
      `wasm heap ${mib(r.memory.wasmHeapBytes)}; ` +
      `ms/step ${t.msPerTrainStep?.toFixed(0) ?? '-'}, ms/doc ${t.msPerDocument?.toFixed(0) ?? '-'}, ` +
      `tokens/s ${t.tokensPerSecond?.toFixed(0) ?? '-'}, wall ${t.wallSeconds?.toFixed(0) ?? '-'} s`,
  );
  if (r.llm) {
    const l = r.llm;
    console.log(
      `LLM calls ${l.calls} (${l.cachedCalls} cached, ${l.failedCalls} failed); tokens: prompt ${l.promptTokens}, ` +
        `completion ${l.completionTokens}; model time ${(l.msTotal / 1000).toFixed(1)} s; offsets: ${l.offsetRule}`,
    );
  }
  console.log(`record: ${dir}`);
}
