/**
 * A report from what is on disk: the experiment's tables and charts in the order its `report` block
 * lists them (each chart right after the table it illustrates), a run index at the end, and the files:
 * `<out>/index.md` (PNGs beside it), `<out>/index.html` (the same, PNGs embedded), `<out>/*.png`, and
 * `<out>/summary.json` (every group's numbers, for scripts).
 */
import { join } from 'node:path';
import type { ChartKind, Experiment, TableKind } from '../runs/experiment.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { metricStat, seedSummary, type Group } from './aggregate.js';
import { allGroups, type Collected } from './collect.js';
import { datasetOrder, type ReportContext } from './context.js';
import { documentImages, renderHtml, renderMarkdown, type Block, type ReportDocument } from './document.js';
import { readPaperNumbers, type PaperNumbers } from './paper.js';
import { ablationTables } from './sections/ablation.js';
import { datasetTables } from './sections/datasets.js';
import { diagnosticsTables, learningCurves } from './sections/diagnostics.js';
import { efficiencyTables, inferenceBars, latencyChart, memoryChart } from './sections/efficiency.js';
import { f1Bars, mainTables } from './sections/main.js';
import { perTypeRadar, perTypeTable } from './sections/per-type.js';
import { rowLabel } from './sections/util.js';
import { windowChart, windowTables } from './sections/window.js';
import { displayPath } from '../util/paths.js';

/** Which charts illustrate which table (a chart is placed after the first of its tables that the report shows). */
const CHARTS_OF: Record<TableKind, ChartKind[]> = {
  datasets: [],
  main: ['f1-bars'],
  ablation: ['f1-bars'],
  window: ['window-lines'],
  'per-type': ['per-type-radar'],
  efficiency: ['memory-vs-length', 'latency-vs-length', 'inference-bars'],
  diagnostics: ['learning-curves'],
};

async function tableBlocks(kind: TableKind, ctx: ReportContext): Promise<Block[]> {
  switch (kind) {
    case 'datasets':
      return datasetTables(ctx);
    case 'main':
      return mainTables(ctx);
    case 'ablation':
      return ablationTables(ctx);
    case 'window':
      return windowTables(ctx);
    case 'per-type':
      return perTypeTable(ctx);
    case 'efficiency':
      return efficiencyTables(ctx);
    case 'diagnostics':
      return diagnosticsTables(ctx);
  }
}

function chartBlocks(kind: ChartKind, ctx: ReportContext): Block[] {
  const { experiment, groups } = ctx.collected;
  switch (kind) {
    case 'f1-bars':
      return f1Bars(
        ctx,
        groups,
        `F1 per ${experiment.report.tables.includes('ablation') ? 'ablation row' : 'method'} and dataset (ours, preset ${experiment.preset ?? 'none'})`,
        'f1-bars.png',
      );
    case 'window-lines':
      return windowChart(ctx);
    case 'per-type-radar':
      return perTypeRadar(ctx);
    case 'memory-vs-length':
      return memoryChart(ctx);
    case 'latency-vs-length':
      return latencyChart(ctx);
    case 'inference-bars':
      return inferenceBars(ctx);
    case 'learning-curves':
      return learningCurves(ctx);
  }
}

function runIndex(collected: Collected): Block[] {
  const groups = allGroups(collected);
  const rows = groups.flatMap((g) =>
    g.seeds.map((s) => [
      s.runId,
      rowLabel(g),
      g.dataset,
      s.status === 'not-configured' ? '–' : String(s.seed),
      s.status === 'not-configured' ? 'not run' : s.status,
      s.experiment === null ? '–' : `${s.experiment}/`,
      s.result?.timing.wallSeconds === null || s.result === null ? '–' : `${Math.round(s.result.timing.wallSeconds)} s`,
      String(s.result?.backendThreads ?? '–'),
      s.reason === null ? '' : s.reason.slice(0, 120),
    ]),
  );
  return [
    { kind: 'heading', level: 1, text: 'Run index' },
    {
      kind: 'table',
      caption: `Every cell of the grid${collected.used.size > 0 ? ` (and of ${[...collected.used.keys()].join(', ')})` : ''} and what is on disk for it. Runs are found by run id in any experiment folder of the runs root.`,
      header: ['run id', 'row', 'dataset', 'seed', 'status', 'found in', 'wall', 'threads', 'reason'],
      align: ['left', 'left', 'left', 'right', 'left', 'left', 'right', 'right', 'left'],
      rows,
    },
  ];
}

/**
 * The native engine's thread count changes the order in which products and reductions add, so a run
 * reproduces bit for bit only at the thread count it was made with; the report says which it was.
 */
function threadsLine(collected: Collected): string | null {
  const seeds = allGroups(collected).flatMap((g) => g.seeds);
  const counts = new Map<number, number>();
  for (const s of seeds) {
    const n = s.result?.backendThreads;
    if (n !== undefined && n !== null) counts.set(n, (counts.get(n) ?? 0) + 1);
  }
  if (counts.size === 0) return null;
  const runs = (n: number): string => `${n} run${n === 1 ? '' : 's'}`;
  const why = 'results depend on the thread count, so a rerun matches a record bit for bit only at the same count (`--threads`)';
  if (counts.size === 1) {
    const [threads, n] = [...counts.entries()][0]!;
    return `Threads per run: ${threads} (all ${runs(n)} that name one); ${why}.`;
  }
  const mixed = [...counts.entries()]
    .sort(([a], [b]) => a - b)
    .map(([threads, n]) => `${threads} (${runs(n)})`)
    .join(', ');
  return `Threads per run: **mixed**, ${mixed}; ${why}: the run index says which run used which.`;
}

function overview(collected: Collected): Block[] {
  const e = collected.experiment;
  const all = collected.groups.flatMap((g) => g.seeds);
  const counts = new Map<string, number>();
  for (const s of all) counts.set(s.status, (counts.get(s.status) ?? 0) + 1);
  const tally = [...counts.entries()].map(([k, n]) => `${n} ${k}`).join(', ');
  const blocks: Block[] = [];
  const threads = threadsLine(collected);
  if (e.description !== '') blocks.push({ kind: 'paragraph', text: e.description });
  const made = `Made by \`longner report ${e.name}\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC from what is on disk; nothing is run by the report.`;
  if (e.grid.length === 0 && e.uses.length === 0) {
    blocks.push({ kind: 'list', items: [made, ...e.report.notes] });
    return blocks;
  }
  blocks.push({
    kind: 'list',
    items: [
      made,
      `Preset: **${e.preset ?? 'none'}** (config preset ${e.configPreset ?? 'none'}${presetBlockText(e)}); ` +
        `--set: ${collected.set.length === 0 ? 'none' : collected.set.join(' ')} (${collected.settingsSource}).`,
      `Runs root: ${displayPath(collected.root)}. Grid: ${collected.groups.length} rows, ${all.length} cells${all.length > 0 ? `: ${tally}` : ''}.`,
      ...(threads === null ? [] : [threads]),
      ...(collected.strays.length === 0
        ? []
        : [
            `${collected.strays.length} finished run folder(s) in ${e.name}/ of the runs root belong to no cell of this grid: made with another preset or --set, ` +
              'or with an older config or code version (a new option changes every config hash). They are not shown.',
          ]),
      ...e.report.notes,
    ],
  });
  return blocks;
}

export async function buildReport(collected: Collected, paper: PaperNumbers = readPaperNumbers()): Promise<ReportDocument> {
  const ctx: ReportContext = {
    collected,
    paper,
    datasets: datasetOrder(collected.experiment, allGroups(collected)),
  };
  const blocks: Block[] = [...overview(collected)];
  const placed = new Set<ChartKind>();
  for (const table of collected.experiment.report.tables) {
    blocks.push(...(await tableBlocks(table, ctx)));
    for (const chart of CHARTS_OF[table]) {
      if (!collected.experiment.report.charts.includes(chart) || placed.has(chart)) continue;
      placed.add(chart);
      blocks.push(...chartBlocks(chart, ctx));
    }
  }
  const rest = collected.experiment.report.charts.filter((c) => !placed.has(c));
  if (rest.length > 0) {
    blocks.push({ kind: 'heading', level: 1, text: 'Charts' });
    for (const chart of rest) blocks.push(...chartBlocks(chart, ctx));
  }
  if (collected.groups.length > 0 || collected.used.size > 0) blocks.push(...runIndex(collected));
  return { title: `${collected.experiment.name}: report`, blocks };
}

/** The numbers of every group, for scripts (fractions, not percent). */
export function summaryJson(collected: Collected): unknown {
  const describe = (g: Group) => ({
    label: g.label,
    row: g.row,
    method: g.method,
    dataset: g.dataset,
    axes: g.axes,
    seeds: g.seeds.map((s) => ({ seed: s.seed, runId: s.runId, status: s.status, reason: s.reason, foundIn: s.experiment })),
    summary: seedSummary(g),
    f1: metricStat(g, (r) => r.metrics.overall?.f1),
    precision: metricStat(g, (r) => r.metrics.overall?.precision),
    recall: metricStat(g, (r) => r.metrics.overall?.recall),
    referenceF1: metricStat(g, (r) => r.thresholds?.reference?.f1),
    tunedF1: metricStat(g, (r) => r.thresholds?.tuned?.overall.f1),
    tunedThreshold: metricStat(g, (r) => r.thresholds?.tuned?.threshold),
    predicted: metricStat(g, (r) => r.diagnostics?.predicted),
    oracleF1: metricStat(g, (r) => r.diagnostics?.oracle.f1),
    msPerDocument: metricStat(g, (r) => r.timing.msPerDocument),
    peakBytesTrainStep: metricStat(g, (r) => r.memory.peakBytesTrainStep),
  });
  return {
    experiment: collected.experiment.name,
    preset: collected.experiment.preset,
    set: collected.set,
    createdAt: new Date().toISOString(),
    groups: collected.groups.map(describe),
    used: Object.fromEntries([...collected.used.entries()].map(([name, u]) => [name, u.groups.map(describe)])),
  };
}

export interface WrittenReport {
  dir: string;
  markdown: string;
  html: string;
  images: string[];
}

export function writeReport(dir: string, doc: ReportDocument, summary: unknown): WrittenReport {
  const images = documentImages(doc);
  for (const [file, png] of images) writeFileAtomic(join(dir, file), png);
  const markdown = join(dir, 'index.md');
  const html = join(dir, 'index.html');
  writeFileAtomic(markdown, renderMarkdown(doc));
  writeFileAtomic(html, renderHtml(doc));
  writeJsonAtomic(join(dir, 'summary.json'), summary);
  return { dir, markdown, html, images: [...images.keys()].map((f) => join(dir, f)) };
}

/** What the experiment's own presets.<name> block changes: its sets, its datasets, its axis values. */
function presetBlockText(e: Experiment): string {
  const parts = [
    ...Object.entries(e.presetSet).map(([k, v]) => `${k}=${JSON.stringify(v)}`),
    ...(e.presetDatasets === null ? [] : [`datasets ${e.presetDatasets.join(', ')} only`]),
    ...Object.entries(e.presetAxes).map(([name, values]) => `axis ${name} = ${values.join(', ')}`),
  ];
  return parts.length === 0 ? '' : ` plus the experiment's presets.${e.preset} block: ${parts.join('; ')}`;
}
