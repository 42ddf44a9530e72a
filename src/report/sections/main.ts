/** Table 2: P/R/F1 per method on each dataset, the paper's numbers beside ours; the F1 bar chart. */
import { barChart } from '../charts-more.js';
import { diffText, metricCell, metricStat, seedSummary, type Group } from '../aggregate.js';
import type { Block } from '../document.js';
import { paperMain } from '../paper.js';
import { protocolCaveat, settingsCaption, type ReportContext } from '../context.js';
import { rowLabel, distinctLabels, safeFile } from './util.js';

const f1 = (r: { metrics: { overall: { f1: number } | null } }) => r.metrics.overall?.f1;
const precision = (r: { metrics: { overall: { precision: number } | null } }) => r.metrics.overall?.precision;
const recall = (r: { metrics: { overall: { recall: number } | null } }) => r.metrics.overall?.recall;

function paperCell(value: number | undefined): string {
  return value === undefined ? '–' : value.toFixed(2);
}

export function mainTables(ctx: ReportContext): Block[] {
  const { experiment, groups } = ctx.collected;
  const blocks: Block[] = [
    { kind: 'heading', level: 1, text: 'Main results (paper Table 2)' },
    { kind: 'paragraph', text: protocolCaveat(groups.map((g) => g.protocol)) },
  ];
  for (const dataset of ctx.datasets) {
    const rows = groups.filter((g) => g.dataset === dataset);
    if (rows.length === 0) continue;
    blocks.push({
      kind: 'table',
      caption: `**${dataset}**, test split, strict micro P/R/F1 in %. ${settingsCaption(experiment, rows)} Paper: Table 2 (mean of 3 seeds); Δ = ours − paper.`,
      header: ['method', 'seeds', 'P', 'R', 'F1', 'paper P', 'paper R', 'paper F1', 'Δ F1'],
      align: ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
      rows: rows.map((g) => {
        const p = paperMain(ctx.paper, g.row, dataset);
        return [
          rowLabel(g),
          seedSummary(g),
          metricCell(g, precision, { scale: 100, terse: true }),
          metricCell(g, recall, { scale: 100, terse: true }),
          metricCell(g, f1, { scale: 100 }),
          paperCell(p?.precision),
          paperCell(p?.recall),
          p === null ? 'not in paper' : paperCell(p.f1),
          diffText(metricStat(g, f1), p?.f1),
        ];
      }),
    });
  }
  const ours = new Set(groups.map((g) => g.row));
  const others = [...new Set(ctx.paper.table2.filter((r) => !ours.has(r.method)).map((r) => r.method))];
  if (others.length > 0) {
    blocks.push({
      kind: 'table',
      caption: "The paper's other Table 2 rows (generation-based and other methods, F1 %), which this framework does not reproduce; for orientation.",
      header: ['method', 'group', ...ctx.datasets],
      align: ['left', 'left', ...ctx.datasets.map((): 'right' => 'right')],
      rows: others.map((m) => {
        const rowsOf = ctx.paper.table2.filter((r) => r.method === m);
        return [m, rowsOf[0]?.group ?? '', ...ctx.datasets.map((d) => paperCell(rowsOf.find((r) => r.dataset === d)?.f1))];
      }),
    });
  }
  blocks.push({
    kind: 'list',
    items: [
      '"– (missing)": no run record on disk yet (`longner run` has not run that cell); never a zero.',
      '"not run": the cell cannot run here (e.g. no model configured for el4ner); "OOM": the run ran out of memory; "failed": see the run folder\'s log.jsonl and child.log.',
      'When some seeds of a cell did not finish, the mean is over those that did; the seeds column says how many.',
    ],
  });
  return blocks;
}

export function f1Bars(ctx: ReportContext, groups: readonly Group[], title: string, file: string): Block[] {
  const labels = distinctLabels(groups);
  const datasets = ctx.datasets.filter((d) => groups.some((g) => g.dataset === d));
  const series = labels.map((label) => {
    const stats = datasets.map((d) => {
      const g = groups.find((x) => rowLabel(x) === label && x.dataset === d);
      return g === undefined ? null : metricStat(g, f1);
    });
    return {
      label,
      values: stats.map((s) => (s === null ? null : s.mean * 100)),
      errors: stats.map((s) => (s?.std === null || s === null ? null : s.std * 100)),
    };
  });
  const missing = groups.filter((g) => metricStat(g, f1) === null).map((g) => `${rowLabel(g)} on ${g.dataset}`);
  // A method with no finished run anywhere gets no legend entry either; the caption names it.
  const drawn = series.filter((s) => s.values.some((v) => v !== null));
  return [
    {
      kind: 'image',
      file: safeFile(file),
      alt: `${title}. Bars: mean F1 over finished seeds; whiskers: ± one standard deviation.${missing.length > 0 ? ` No bar (no finished run): ${missing.join(', ')}.` : ''}`,
      png: barChart({ title, xLabel: 'dataset', yLabel: 'F1 (%)', categories: datasets, series: drawn }),
    },
  ];
}
