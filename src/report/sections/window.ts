/**
 * Window-size sensitivity: F1 (and cost) per value of the swept axis on each dataset, and one line
 * per dataset in a chart. The paper gives no sweep numbers; its setting (w = 128) is Table 2's SeNER
 * row, shown beside our w = 128 cell.
 */
import { lineChart, type Series } from '../charts.js';
import { metricCell, metricStat, seedSummary, type Group } from '../aggregate.js';
import type { Block } from '../document.js';
import { paperMain } from '../paper.js';
import { protocolCaveat, settingsCaption, type ReportContext } from '../context.js';

const f1 = (r: { metrics: { overall: { f1: number } | null } }) => r.metrics.overall?.f1;
/** The reference window of the paper and its code (research/sener.md). */
const PAPER_WINDOW = 128;

/** The first axis of the experiment's groups: the swept one. */
export function sweptAxis(groups: readonly Group[]): string | null {
  for (const g of groups) {
    const first = Object.keys(g.axes)[0];
    if (first !== undefined) return first;
  }
  return null;
}

export function windowTables(ctx: ReportContext): Block[] {
  const { experiment, groups } = ctx.collected;
  const axis = sweptAxis(groups);
  const blocks: Block[] = [
    { kind: 'heading', level: 1, text: `Window-size sensitivity${axis === null ? '' : ` (${axis})`}` },
    { kind: 'paragraph', text: protocolCaveat(groups.map((g) => g.protocol)) },
  ];
  if (axis === null) return [...blocks, { kind: 'paragraph', text: 'The grid has no swept axis.' }];
  for (const dataset of ctx.datasets) {
    const rows = groups.filter((g) => g.dataset === dataset && g.axes[axis] !== undefined);
    if (rows.length === 0) continue;
    const paper = paperMain(ctx.paper, rows[0]!.row, dataset);
    // The paper's number goes beside our cell at its w; without such a cell (the cpu axis stops
    // at 64) the caption gives it instead of a column of dashes.
    const paperColumn = rows.some((g) => Number(g.axes[axis]) === PAPER_WINDOW) && paper !== null;
    const paperNote =
      paper === null
        ? `its setting w = ${PAPER_WINDOW} is Table 2's ${rows[0]!.row} row.`
        : `its setting w = ${PAPER_WINDOW} is Table 2's ${rows[0]!.row} row` +
          (paperColumn ? '.' : ` (F1 ${paper.f1.toFixed(2)}; no cell of this grid has w = ${PAPER_WINDOW}).`);
    const table = rows.map((g) => [
      String(g.axes[axis]),
      seedSummary(g),
      metricCell(g, f1, { scale: 100 }),
      metricCell(g, (r) => r.metrics.overall?.precision, { scale: 100, terse: true }),
      metricCell(g, (r) => r.metrics.overall?.recall, { scale: 100, terse: true }),
      metricCell(g, (r) => r.timing.msPerDocument, { digits: 0, terse: true }),
      metricCell(g, (r) => r.memory.peakBytesTrainStep, { scale: 1 / 2 ** 20, digits: 1, terse: true }),
      ...(paperColumn ? [Number(g.axes[axis]) === PAPER_WINDOW ? paper.f1.toFixed(2) : '–'] : []),
    ]);
    blocks.push({
      kind: 'table',
      caption: `**${dataset}**, test split. ${settingsCaption(experiment, rows)} Paper: no sweep published; ${paperNote}`,
      header: [axis, 'seeds', 'F1 %', 'P %', 'R %', 'ms / doc', 'peak train MiB', ...(paperColumn ? [`paper F1 (w = ${PAPER_WINDOW})`] : [])],
      align: ['right', 'left', 'right', 'right', 'right', 'right', 'right', ...(paperColumn ? (['right'] as const) : [])],
      rows: table,
    });
  }
  return blocks;
}

export function windowChart(ctx: ReportContext): Block[] {
  const groups = ctx.collected.groups;
  const axis = sweptAxis(groups);
  if (axis === null) return [];
  const series: Series[] = ctx.datasets
    .map((dataset) => {
      const rows = groups.filter((g) => g.dataset === dataset && typeof g.axes[axis] === 'number');
      const points: [number, number][] = [];
      const errors: number[] = [];
      const oomAt: number[] = [];
      for (const g of rows) {
        const x = g.axes[axis] as number;
        const s = metricStat(g, f1);
        if (s !== null) {
          points.push([x, s.mean * 100]);
          errors.push((s.std ?? 0) * 100);
        } else if (g.seeds.some((seed) => seed.status === 'oom')) oomAt.push(x);
      }
      return { label: dataset, points, errors, oomAt };
    })
    .filter((s) => s.points.length > 0 || (s.oomAt?.length ?? 0) > 0);
  const xs = groups.map((g) => g.axes[axis]).filter((v): v is number => typeof v === 'number');
  return [
    {
      kind: 'image',
      file: 'window-sensitivity.png',
      alt: `F1 (mean over finished seeds, whiskers ± their std) against ${axis} per dataset; crosses: out of memory; a value without a finished run has no point.`,
      png: lineChart({
        title: `Window-size sensitivity (preset ${ctx.collected.experiment.preset ?? 'none'})`,
        xLabel: axis,
        yLabel: 'F1 (%)',
        yMin: 0,
        logX: true,
        series,
        xTicks: [...new Set(xs)].sort((a, b) => a - b),
        formatX: (v) => String(v),
      }),
    },
  ];
}
