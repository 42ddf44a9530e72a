/**
 * Per-type F1 on one dataset (paper Fig. 6: Scholar-XL), one column per method, and the radar chart.
 * The paper's per-type values are not legible in the available text (research/sener.md 5.5), so only
 * its claims are quoted beside ours.
 */
import { radarChart } from '../charts-more.js';
import { metricCell, metricStat, okResults, type Group } from '../aggregate.js';
import type { Block } from '../document.js';
import { protocolCaveat, settingsCaption, type ReportContext } from '../context.js';
import { distinctLabels, rowLabel } from './util.js';

const PAPER_CLAIMS = [
  'The LLM-based methods win on gender and birth place; span-based methods win on the other types.',
  'SeNER beats CNN-NER and UTC-IE on most types; on "Social Service" (take_office?) by +6.38 and +4.14 F1.',
  'SeNER trails slightly on the longest types, education and work experience (work_record).',
];

/** Entity types present in the results, most frequent gold type first (ties by name). */
export function typeOrder(groups: readonly Group[]): string[] {
  const gold = new Map<string, number>();
  for (const g of groups) {
    for (const r of okResults(g)) {
      for (const [type, prf] of Object.entries(r.metrics.perType ?? {})) gold.set(type, Math.max(gold.get(type) ?? 0, prf.tp + prf.fn));
    }
  }
  return [...gold.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([t]) => t);
}

function perTypeGroups(ctx: ReportContext): { dataset: string; groups: Group[] } {
  const dataset = ctx.collected.experiment.report.perTypeDataset;
  return { dataset, groups: ctx.collected.groups.filter((g) => g.dataset === dataset) };
}

export function perTypeTable(ctx: ReportContext): Block[] {
  const { dataset, groups } = perTypeGroups(ctx);
  const types = typeOrder(groups);
  const labels = distinctLabels(groups);
  const blocks: Block[] = [
    { kind: 'heading', level: 1, text: `Per-type F1 on ${dataset} (paper Fig. 6)` },
    { kind: 'paragraph', text: protocolCaveat(groups.map((g) => g.protocol)) },
  ];
  if (groups.length === 0) return [...blocks, { kind: 'paragraph', text: `The grid has no cell on ${dataset}.` }];
  const gold = (type: string): string => {
    for (const g of groups)
      for (const r of okResults(g)) if (r.metrics.perType?.[type]) return String(r.metrics.perType[type]!.tp + r.metrics.perType[type]!.fn);
    return '–';
  };
  blocks.push({
    kind: 'table',
    caption:
      `F1 % per entity type, test split. ${settingsCaption(ctx.collected.experiment, groups)} ` +
      "Paper: Fig. 6's values are not legible in the available text (UNVERIFIED), so no number is put beside ours; its claims are listed below.",
    header: ['type', 'gold', ...labels],
    align: ['left', 'right', ...labels.map((): 'right' => 'right')],
    rows: [
      ...types.map((type) => [
        type,
        gold(type),
        ...labels.map((label) => {
          const g = groups.find((x) => rowLabel(x) === label)!;
          return metricCell(g, (r) => r.metrics.perType?.[type]?.f1, { scale: 100 });
        }),
      ]),
      ['**overall**', '', ...labels.map((label) => metricCell(groups.find((x) => rowLabel(x) === label)!, (r) => r.metrics.overall?.f1, { scale: 100 }))],
    ],
  });
  blocks.push({ kind: 'paragraph', text: "The paper's claims (its Fig. 6 text; the radar's values are not legible):" }, { kind: 'list', items: PAPER_CLAIMS });
  return blocks;
}

export function perTypeRadar(ctx: ReportContext): Block[] {
  const { dataset, groups } = perTypeGroups(ctx);
  const types = typeOrder(groups);
  if (types.length < 3) return [{ kind: 'paragraph', text: `No radar chart: fewer than three entity types have results on ${dataset}.` }];
  const labels = distinctLabels(groups).filter((label) => okResults(groups.find((g) => rowLabel(g) === label)!).length > 0);
  return [
    {
      kind: 'image',
      file: `per-type-${dataset}.png`,
      alt: `F1 per entity type on ${dataset} (mean over finished seeds); methods without a finished run are left out, a type without a value is skipped.`,
      png: radarChart({
        title: `F1 per entity type, ${dataset} (preset ${ctx.collected.experiment.preset ?? 'none'})`,
        labels: types,
        series: labels.map((label) => {
          const g = groups.find((x) => rowLabel(x) === label)!;
          return { label, values: types.map((t) => metricStat(g, (r) => r.metrics.perType?.[t]?.f1)?.mean ?? null).map((v) => (v === null ? null : v * 100)) };
        }),
      }),
    },
  ];
}
