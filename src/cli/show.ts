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
  const th = r.thresholds;
  if (th !== undefined && th.used !== null) {
    const pct = (f1: number | undefined) => (f1 === undefined ? '-' : (100 * f1).toFixed(2));
    console.log(
      `threshold ${th.used} (${th.mode}); F1 at 0.5 ${pct(th.reference?.f1)}` +
        (th.tuned === null ? '' : `, at the validation-tuned ${th.tuned.threshold} ${pct(th.tuned.overall.f1)}`),
    );
  }
  const d = r.diagnostics;
  if (d !== undefined) {
    const g = d.goldScores;
    console.log(
      `predicted ${d.predicted} spans; gold probabilities${g === null ? ' -' : ` p10 ${g.p10.toPrecision(2)}, median ${g.p50.toPrecision(2)}, p90 ${g.p90.toPrecision(2)}`}; ` +
        `oracle ceiling F1 ${(100 * d.oracle.f1).toFixed(1)} (${d.oracle.reachable} of ${d.oracle.gold} gold reachable: ` +
        `${d.oracle.cutBySegments} cut by segments, ${d.oracle.beyondSpanLimit ?? '?'} beyond the span limit)`,
    );
  }
  if (r.llm) {
    const l = r.llm;
    console.log(
      `LLM calls ${l.calls} (${l.cachedCalls} cached, ${l.failedCalls} failed); tokens: prompt ${l.promptTokens}, ` +
        `completion ${l.completionTokens}; model time ${(l.msTotal / 1000).toFixed(1)} s; offsets: ${l.offsetRule}`,
    );
  }
  console.log(`record: ${dir}`);
}
