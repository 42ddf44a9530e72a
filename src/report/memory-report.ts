/**
 * The report of `longner memory`: a table on stdout and reports/<experiment>[/<preset>]/{frontier.md,
 * frontier.json, memory.png, latency-train.png, latency-infer.png}, set against the paper's claims.
 * Budget columns are predictions from a fit and are labelled so everywhere; only the search is measured.
 */
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import type { Method } from '../config/schema.js';
import type { SearchResult } from '../measure/frontier.js';
import type { MemoryOutcome } from '../runs/memory-run.js';
import type { MemorySettings } from '../measure/memory-settings.js';
import type { ProbeMode, ProbeResult } from '../measure/task.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { displayPath, fromRoot } from '../util/paths.js';
import { formatSeconds } from '../util/progress.js';
import { markdownTable, textTable, type Cell } from '../util/table.js';
import { lineChart, powerTicks, type Series } from './charts.js';
import { formatBytes } from '../util/bytes.js';

/** SeNER ÷ method, from the paper (Fig. 7 and section 5.4 of research/sener.md: SciREX, one A100 80 GB, batch 1). */
export const PAPER_LENGTH_RATIO: Partial<Record<Method, number>> = { 'cnn-ner': 3, 'utc-ie': 6 };
const REFERENCE: Method = 'sener';

function measuredCell(s: SearchResult | null, cap: number): string {
  if (s === null) return 'not searched';
  switch (s.end) {
    case 'converged':
      return String(s.maxOk);
    case 'maxLength':
      return `>= ${s.maxOk ?? cap} (cap)`;
    case 'minLength':
      return `< ${s.firstOom}`;
    case 'failed': {
      const last = s.steps[s.steps.length - 1];
      const why = short(last?.reason ?? 'failed', 60);
      return s.maxOk === null ? `? (${why})` : `>= ${s.maxOk} (stopped: ${why} at ${last?.length})`;
    }
  }
}

/** A frontier as a number for ratios, with whether it is a lower (>=) or upper (<) bound. */
function frontierValue(s: SearchResult | null): { value: number; bound: '=' | '>=' | '<' } | null {
  if (s === null) return null;
  if (s.end === 'converged' && s.maxOk !== null) return { value: s.maxOk, bound: '=' };
  if ((s.end === 'maxLength' || s.end === 'failed') && s.maxOk !== null) return { value: s.maxOk, bound: '>=' };
  if (s.end === 'minLength' && s.firstOom !== null) return { value: s.firstOom, bound: '<' };
  return null;
}

function ratioCell(ref: { value: number; bound: string } | null, of: { value: number; bound: string } | null): string {
  if (ref === null || of === null) return '-';
  const ratio = ref.value / of.value;
  // ref >= x over an exact value is a lower bound of the ratio; over a lower bound it is unknown.
  const refLow = ref.bound === '>=';
  const ofLow = of.bound === '>=';
  const refHigh = ref.bound === '<';
  const ofHigh = of.bound === '<';
  if ((refLow && ofLow) || (refHigh && ofHigh)) return `? (${ratio.toFixed(2)}x, both bounds)`;
  if (refLow || ofHigh) return `>= ${ratio.toFixed(2)}x`;
  if (ofLow || refHigh) return `<= ${ratio.toFixed(2)}x`;
  return `${ratio.toFixed(2)}x`;
}

function lengthCell(L: number | null): string {
  if (L === null) return 'none fits';
  if (!Number.isFinite(L)) return 'unbounded';
  return Math.floor(L).toLocaleString('en-US');
}

export interface FrontierRow {
  method: Method;
  attention: string;
  measured: string;
  firstOom: string;
  probes: number;
  predictions: Record<string, number | null>;
  ratioMeasured: string;
  ratioPredicted: Record<string, string>;
  paper: string;
}

export function frontierRows(o: Pick<MemoryOutcome, 'frontiers' | 'settings'>): FrontierRow[] {
  const ref = o.frontiers.find((f) => f.method === REFERENCE) ?? null;
  const refMeasured = frontierValue(ref?.search ?? null);
  return o.frontiers.map((f) => {
    const predictions: Record<string, number | null> = {};
    const ratioPredicted: Record<string, string> = {};
    for (const p of f.predictions) {
      predictions[p.name] = p.maxLength;
      const refP = ref?.predictions.find((q) => q.name === p.name)?.maxLength ?? null;
      ratioPredicted[p.name] =
        refP === null || p.maxLength === null || !Number.isFinite(refP) || !Number.isFinite(p.maxLength) || p.maxLength <= 0
          ? '-'
          : `${(refP / p.maxLength).toFixed(2)}x`;
    }
    const claim = PAPER_LENGTH_RATIO[f.method];
    return {
      method: f.method,
      attention: f.attention,
      measured: measuredCell(f.search, o.settings.frontier.maxLength),
      firstOom: f.search?.firstOom == null ? '-' : String(f.search.firstOom),
      probes: f.search?.steps.length ?? 0,
      predictions,
      ratioMeasured: ratioCell(refMeasured, frontierValue(f.search)),
      ratioPredicted,
      paper: f.method === REFERENCE ? '1x' : claim === undefined ? '-' : `${claim}x`,
    };
  });
}

function limitName(backend: string | null, budgetBytes?: number): string {
  if (backend === 'wasm') return 'wasm 4 GiB heap';
  if (backend === 'native' && budgetBytes !== undefined) return `memory budget ${formatBytes(budgetBytes)}`;
  if (backend === 'tensorflow') return 'device memory';
  if (backend === 'cpu') return 'process memory';
  return 'backend limit';
}

function frontierTable(o: MemoryOutcome, rows: FrontierRow[]): { header: string[]; cells: Cell[][] } {
  const budgets = o.settings.budgets.map((b) => b.name);
  const header = [
    'method',
    'attention',
    `max train length, measured (${limitName(o.backend, o.budgetBytes)})`,
    'first OOM',
    ...budgets.map((b) => `max length, ${b} (prediction)`),
    'SeNER / method, measured',
    ...budgets.map((b) => `SeNER / method, ${b} (prediction)`),
    'paper: SeNER / method',
  ];
  const cells = rows.map((r): Cell[] => [
    r.method,
    r.attention,
    r.measured,
    r.firstOom,
    ...budgets.map((b) => lengthCell(r.predictions[b] ?? null)),
    r.ratioMeasured,
    ...budgets.map((b) => r.ratioPredicted[b] ?? '-'),
    r.paper,
  ]);
  return { header, cells };
}

type Metric = (r: ProbeResult) => number | null;

function curveTable(o: MemoryOutcome, mode: ProbeMode, metric: Metric, format: (v: number) => Cell): { header: string[]; cells: Cell[][] } {
  const lengths = [...new Set(o.settings.lengths)].sort((a, b) => a - b);
  const header = ['method', ...lengths.map((L) => `${L} words`)];
  const cells = o.plans.map((p): Cell[] => [
    p.method,
    ...lengths.map((L): Cell => {
      const e = o.entries.find((x) => x.family === 'curve' && x.method === p.method && x.mode === mode && x.words === L);
      if (e === undefined) return o.skipped.some((s) => s.method === p.method && s.mode === mode && s.words === L) ? 'OOM*' : '-';
      if (e.result.status === 'oom') return 'OOM';
      if (e.result.status === 'failed') return e.result.reason?.startsWith('timeout') === true ? 'timeout' : 'failed';
      const v = metric(e.result);
      return v === null ? '-' : format(v);
    }),
  ]);
  return { header, cells };
}

/** SeNER's inference time per document over each method's (paper, section 5.4: about 1 against CNN-NER, about 0.8 against UTC-IE). */
export const PAPER_INFERENCE_RATIO: Partial<Record<Method, string>> = { 'cnn-ner': 'about 1', 'utc-ie': 'about 0.8' };

function inferenceRatioTable(o: MemoryOutcome): { header: string[]; cells: Cell[][] } | null {
  const lengths = [...new Set(o.settings.lengths)].sort((a, b) => a - b);
  const msOf = (method: Method, L: number): number | null => {
    const e = o.entries.find((x) => x.family === 'curve' && x.method === method && x.mode === 'infer' && x.words === L);
    return e !== undefined && e.result.status === 'ok' ? e.result.ms : null;
  };
  if (!o.plans.some((p) => p.method === REFERENCE)) return null;
  const header = ['method', ...lengths.map((L) => `${L} words`), 'paper'];
  const cells = o.plans
    .filter((p) => p.method !== REFERENCE)
    .map((p): Cell[] => [
      p.method,
      ...lengths.map((L): Cell => {
        const ref = msOf(REFERENCE, L);
        const mine = msOf(p.method, L);
        return ref === null || mine === null || mine <= 0 ? '-' : (ref / mine).toFixed(2);
      }),
      PAPER_INFERENCE_RATIO[p.method] ?? '-',
    ]);
  return { header, cells };
}

const mib = (v: number): Cell => Math.round(v / 2 ** 20);
const ms = (v: number): Cell => Math.round(v);

/**
 * One series per method. `withFrontier`: the frontier search's probes join the curve when they used
 * the same config (frontier.encoder null), so the memory chart runs up to each method's OOM.
 */
function curveSeries(o: MemoryOutcome, mode: ProbeMode, metric: Metric, withFrontier = false): Series[] {
  const sameConfig = withFrontier && o.settings.frontier.encoder === null;
  return o.plans.map((p) => {
    const mine = o.entries.filter((e) => (e.family === 'curve' || sameConfig) && e.method === p.method && e.mode === mode);
    const byLength = new Map<number, [number, number]>();
    for (const e of mine) {
      const v = e.result.status === 'ok' ? metric(e.result) : null;
      if (v !== null) byLength.set(e.words, [e.words, v]);
    }
    const oom = mine.filter((e) => e.result.status === 'oom').map((e) => e.words);
    return { label: p.method, points: [...byLength.values()], oomAt: oom.length > 0 ? [Math.min(...oom)] : [] };
  });
}

/** All x and y values of some series, for tick ranges. */
function spans(series: Series[]): { xs: number[]; ys: number[] } {
  const xs = series.flatMap((s) => [...s.points.map(([x]) => x), ...(s.oomAt ?? [])]);
  const ys = series.flatMap((s) => s.points.map(([, y]) => y)).filter((y) => y > 0);
  return { xs, ys };
}

export interface MemoryReport {
  dir: string;
  text: string;
}

export function writeMemoryReport(o: MemoryOutcome, reportsRoot = fromRoot('reports')): MemoryReport {
  const dir = o.preset === null ? join(reportsRoot, o.settings.experiment) : join(reportsRoot, o.settings.experiment, o.preset);
  const rows = frontierRows(o);
  const ft = frontierTable(o, rows);
  const trainMs = curveTable(o, 'train', (r) => r.ms, ms);
  const inferMs = curveTable(o, 'infer', (r) => r.ms, ms);
  const trainPeak = curveTable(o, 'train', (r) => r.peakBytes, mib);
  const inferPeak = curveTable(o, 'infer', (r) => r.peakBytes, mib);
  const ratios = inferenceRatioTable(o);
  const lengths = [...new Set(o.settings.lengths)].sort((a, b) => a - b);
  const machine = `${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown cpu'}), ${formatBytes(totalmem())} RAM, Node ${process.version}`;
  const s = o.settings;
  const frontierEncoder = s.frontier.encoder ?? s.encoder;

  const xTicks = powerTicks(lengths[0]!, lengths[lengths.length - 1]!);
  const refLines =
    o.backend === 'wasm'
      ? [{ y: 2 ** 32, label: 'wasm heap cap (4 GiB)' }]
      : o.backend === 'native'
        ? [{ y: o.budgetBytes, label: `memory budget (${formatBytes(o.budgetBytes)})` }]
        : [];
  const memorySeries = curveSeries(o, 'train', (r) => r.peakBytes, true);
  const memorySpan = spans(memorySeries);
  const charts: Record<string, Buffer> = {
    'memory.png': lineChart({
      title: 'Peak tensor memory of one training step (batch 1) vs input length',
      xLabel: 'input length (words = tokens); x = first length that ran out of memory',
      yLabel: o.backend === 'native' ? 'peak bytes (live tensor buffers)' : 'peak bytes (tf.profile)',
      logX: true,
      logY: true,
      series: memorySeries,
      refLines,
      formatY: formatBytes,
      formatX: (v) => String(v),
      xTicks: powerTicks(Math.min(...memorySpan.xs), Math.max(...memorySpan.xs)),
      // Powers of 4 bytes keep the labels round (16 MiB, 64 MiB, ...) and few.
      yTicks: powerTicks(Math.min(...memorySpan.ys), Math.max(...memorySpan.ys, ...refLines.map((l) => l.y)), 4),
    }),
    'latency-train.png': lineChart({
      title: 'Training step time (batch 1) vs input length',
      xLabel: 'input length (words = tokens)',
      yLabel: 'ms per training step',
      logX: true,
      logY: true,
      series: curveSeries(o, 'train', (r) => r.ms),
      formatX: (v) => String(v),
      xTicks,
    }),
    'latency-infer.png': lineChart({
      title: 'Inference time per document vs input length',
      xLabel: 'input length (words = tokens)',
      yLabel: 'ms per document',
      logX: true,
      logY: true,
      series: curveSeries(o, 'infer', (r) => r.ms),
      formatX: (v) => String(v),
      xTicks,
    }),
  };
  for (const [name, png] of Object.entries(charts)) writeFileAtomic(join(dir, name), png);

  const fitLines = o.frontiers.map((f) => {
    if (f.fit === null) return `- ${f.method}: no fit (fewer than two lengths trained)`;
    const q = f.fit;
    return (
      `- ${f.method}: peak(L) = ${signed(q.a / 2 ** 20, 'MiB', true)} ${signed(q.b / 2 ** 20, 'MiB x L')} ${signed(q.c / 2 ** 10, 'KiB x L^2')} ` +
      `(${q.degree === 2 ? 'quadratic' : 'linear, through the longer lengths: the quadratic term came out negative, or only two lengths trained'}; ${q.points} points, L ${q.minLength}-${q.maxLength}, rms residual ${formatBytes(q.rmse)})`
    );
  });
  const searchLines = o.frontiers
    .filter((f) => f.search !== null)
    .map((f) => `- ${f.method}: ${f.search!.steps.map((st) => `${st.length} ${st.status}`).join(', ')} -> ${f.search!.end}`);

  const md = [
    `# Memory, latency and the out-of-memory frontier${o.preset === null ? '' : ` (preset ${o.preset})`}`,
    '',
    `Made by \`longner memory\` on ${new Date().toISOString().slice(0, 10)}; backend ${o.backendDetail ?? 'unknown'}; ${machine}. ${timeNote(o).replace(/^w/, 'W')}.`,
    '',
    `Every probe ran in its own process: one synthetic document (${describeDocument(s)}), one token per word, one segment, batch 1, random weights. ` +
      `"Train" is one full training step (loss, gradients, clipping, AdamW update; a second, unprofiled step gives the time); "infer" is one inference pass (forward and decoding). ` +
      `${peakNote(o.backend)} ` +
      `Encoder shared by all methods: ${JSON.stringify(s.encoder)}; config preset ${s.preset ?? 'none'}; attention pattern as each method's config says` +
      (Object.keys(s.overrides).length > 0 ? `; config overrides for every method: ${JSON.stringify(s.overrides)}.` : '.'),
    '',
    '## Longest trainable input',
    '',
    markdownTable(ft.header, ft.cells),
    '',
    `- **measured**: the longest input (words, one token each) for which a training step and a second one ran under the ${limitName(o.backend, o.budgetBytes)}, ` +
      `by doubling from ${s.frontier.start} until an OOM, then bisection to within ${Math.round(s.frontier.tolerance * 100)}%; frontier encoder ${JSON.stringify(frontierEncoder)}; searches capped at ${s.frontier.maxLength}.`,
    `- **prediction**: the largest L with a + bL + cL^2 <= budget, fitted by least squares to the measured peaks of the training probes that ran (same encoder), ` +
      `at the lengths within a factor ${s.frontier.fitRange} of the longest that trained (and at least the three longest; short inputs sit in another regime). ` +
      'It extrapolates a small encoder far beyond the lengths measured; it is not a measurement.',
    '- **paper**: SeNER trains on inputs 3x longer than CNN-NER and 6x longer than UTC-IE (Fig. 7, SciREX, one A100 80 GB, batch 1; exact bar values unpublished).',
    '',
    '### Fits (peak bytes of a training step vs length L in words)',
    '',
    ...fitLines,
    '',
    '### Search steps',
    '',
    ...(searchLines.length > 0 ? searchLines : ['- (frontier search disabled)']),
    '',
    '## Training step time (ms, batch 1)',
    '',
    markdownTable(trainMs.header, trainMs.cells),
    '',
    '## Inference time per document (ms)',
    '',
    markdownTable(inferMs.header, inferMs.cells),
    '',
    ...(ratios === null
      ? []
      : [
          "### SeNER's inference time over each method's (below 1: SeNER is faster)",
          '',
          markdownTable(ratios.header, ratios.cells),
          '',
          'The paper (SciREX, A100): about the same as CNN-NER, about 20% less than UTC-IE. "-": one of the two did not run at that length.',
          '',
        ]),
    `## Peak memory of a training step (MiB, ${peakUnit(o.backend)})`,
    '',
    markdownTable(trainPeak.header, trainPeak.cells),
    '',
    `## Peak memory of inference (MiB, ${peakUnit(o.backend)})`,
    '',
    markdownTable(inferPeak.header, inferPeak.cells),
    '',
    'OOM: ran out of memory. OOM*: not run, because a shorter input of the same method and mode already ran out of memory (or failed).',
    '',
    '![peak memory](memory.png)',
    '',
    '![training step time](latency-train.png)',
    '',
    '![inference time](latency-infer.png)',
    '',
  ].join('\n');
  writeFileAtomic(join(dir, 'frontier.md'), md);

  writeJsonAtomic(join(dir, 'frontier.json'), {
    experiment: s.experiment,
    preset: o.preset,
    createdAt: new Date().toISOString(),
    backend: o.backend,
    backendDetail: o.backendDetail,
    budgetBytes: o.backend === 'native' ? o.budgetBytes : null,
    machine: {
      cores: cpus().length,
      cpu: cpus()[0]?.model.trim() ?? null,
      memoryBytes: totalmem(),
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
    },
    wallSeconds: o.wallSeconds,
    probeSeconds: probeSeconds(o),
    settings: s,
    paperLengthRatio: PAPER_LENGTH_RATIO,
    methods: o.frontiers.map((f, i) => ({
      method: f.method,
      config: f.config,
      attention: f.attention,
      measured:
        f.search === null
          ? null
          : { limit: limitName(o.backend, o.budgetBytes), maxOk: f.search.maxOk, firstOom: f.search.firstOom, end: f.search.end, steps: f.search.steps },
      fit: f.fit,
      predictions: f.predictions.map((p) => ({ ...p, kind: 'prediction' })),
      ratioToSener: { measured: rows[i]!.ratioMeasured, predicted: rows[i]!.ratioPredicted },
    })),
    probes: o.entries
      .filter((e) => e.family === 'curve')
      .map((e) => ({ method: e.method, mode: e.mode, words: e.words, reused: e.reused, runDir: displayPath(e.runDir), ...pick(e.result) })),
    frontierProbes: o.entries
      .filter((e) => e.family === 'frontier')
      .map((e) => ({ method: e.method, words: e.words, status: e.result.status, reason: e.result.reason, peakBytes: e.result.peakBytes })),
    skipped: o.skipped,
  });

  const text = [
    `Longest trainable input (measured under the ${limitName(o.backend, o.budgetBytes)}; budget columns are predictions):`,
    textTable(ft.header, ft.cells),
    '',
    'Training step (ms):',
    textTable(trainMs.header, trainMs.cells),
    '',
    'Inference per document (ms):',
    textTable(inferMs.header, inferMs.cells),
    '',
    'Peak memory of a training step (MiB):',
    textTable(trainPeak.header, trainPeak.cells),
    '',
    `Report: ${displayPath(join(dir, 'frontier.md'))} (${timeNote(o)})`,
  ].join('\n');
  return { dir, text };
}

function peakUnit(backend: string | null): string {
  return backend === 'native' ? 'live tensor buffers' : 'tf.profile';
}

function peakNote(backend: string | null): string {
  return backend === 'native'
    ? "Peak bytes are the high-water mark of live tensor buffers during the step, each buffer once, weights and optimizer moments included: what the memory budget counts (the process's resident set adds V8 and the runtime)."
    : "Peak bytes are tf.profile's peak of live tensor bytes, weights and optimizer moments included (tfjs counts a reshaped view of a tensor again, so this can exceed the real heap).";
}

/** Seconds spent in probe processes, each distinct probe once (reused ones count their original time). */
function probeSeconds(o: MemoryOutcome): number {
  const byDir = new Map(o.entries.map((e) => [e.runDir, e.result.wallMs]));
  return [...byDir.values()].reduce((a, b) => a + b, 0) / 1000;
}

function timeNote(o: MemoryOutcome): string {
  const distinct = new Map(o.entries.map((e) => [e.runDir, e.reused]));
  const reused = [...distinct.values()].filter(Boolean).length;
  return (
    `wall time ${formatSeconds(o.wallSeconds)}; ${distinct.size} probes taking ${formatSeconds(probeSeconds(o))} in their processes` +
    (reused > 0 ? ` (${reused} of them stored by an earlier run and reused)` : '')
  );
}

function pick(r: ProbeResult): Partial<ProbeResult> {
  const { status, reason, tokens, peakBytes, wasmHeapBytes, rssBytes, ms: time, msProfiled, wallMs, backend } = r;
  return { status, reason, tokens, peakBytes, wasmHeapBytes, rssBytes, ms: time, msProfiled, wallMs, backend };
}

function describeDocument(s: MemorySettings): string {
  const d = s.document;
  const len = d.entityLength;
  const lengthText =
    len.dist === 'geometric' ? `geometric mean ${len.mean}, max ${len.max}` : len.dist === 'uniform' ? `uniform ${len.min}-${len.max}` : `fixed ${len.length}`;
  return `${d.entityDensity} entities per 100 words, entity length ${lengthText} words, nesting ${d.nested}`;
}

/** `+ 1.234 unit` / `- 1.234 unit` (the first term without a plus sign). */
function signed(value: number, unit: string, first = false): string {
  const magnitude = `${Math.abs(value).toFixed(3)} ${unit}`;
  if (value < 0) return first ? `-${magnitude}` : `- ${magnitude}`;
  return first ? magnitude : `+ ${magnitude}`;
}

function short(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 3)}...`;
}
