/** Table 3: SeNER and its ablations per dataset, F1 and peak training memory, the paper's row beside ours. */
import { contrastText, diffText, metricCell, metricStat, seedSummary } from '../aggregate.js';
import type { Block } from '../document.js';
import { PAPER_TABLE3_ROWS, paperAblation } from '../paper.js';
import { protocolCaveat, settingsCaption, type ReportContext } from '../context.js';
import { rowLabel } from './util.js';

const f1 = (r: { metrics: { overall: { f1: number } | null } }) => r.metrics.overall?.f1;

export function ablationTables(ctx: ReportContext): Block[] {
  const { experiment, groups } = ctx.collected;
  const blocks: Block[] = [
    { kind: 'heading', level: 1, text: 'Ablation (paper Table 3)' },
    { kind: 'paragraph', text: protocolCaveat(groups.map((g) => g.protocol)) },
    {
      kind: 'paragraph',
      text:
        "Memory: ours is the peak of live tensor bytes in a training step (MiB) at this preset's sizes: on the native engine the high-water mark of live tensor buffers, each buffer once; " +
        "elsewhere tf.profile's peak, which counts a reshaped view again. The paper's is GPU memory in GB " +
        'for DeBERTa-v3-large on an A100. Only the paper\'s SeNER row is legible (reports/paper/README.md); its "OOM" entries come from its text.',
    },
  ];
  for (const dataset of ctx.datasets) {
    const rows = groups.filter((g) => g.dataset === dataset);
    if (rows.length === 0) continue;
    // The grid's first row is the full model; each ablation is read against it on the same data,
    // because under the local protocol the difference to the paper's absolute numbers says little.
    const reference = rows[0]!;
    const referenceF1 = metricStat(reference, f1);
    blocks.push({
      kind: 'table',
      caption:
        `**${dataset}**, test split, F1 in %. ${settingsCaption(experiment, rows)} ` +
        `Δ vs ${rowLabel(reference)}: this row's mean F1 minus ours for ${rowLabel(reference)}, ± the standard error of that difference ` +
        '(√(s₁²/n₁ + s₂²/n₂)); "≈ noise" marks a difference under two standard errors, which these seeds cannot tell from seed noise. ' +
        'Δ vs paper = ours − paper.',
      header: ['row', 'seeds', 'F1', `Δ vs ${rowLabel(reference)}`, 'peak train MiB', 'paper F1', 'paper Mem GB', 'Δ vs paper', 'paper note'],
      align: ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'left'],
      rows: rows.map((g) => {
        const p = paperAblation(ctx.paper, g.row, dataset);
        const ours = metricStat(g, f1);
        return [
          rowLabel(g),
          seedSummary(g),
          metricCell(g, f1, { scale: 100 }),
          g === reference ? '(reference)' : contrastText(ours, referenceF1),
          metricCell(g, (r) => r.memory.peakBytesTrainStep, { scale: 1 / 2 ** 20, digits: 1, terse: true }),
          p?.f1 === null || p === null ? '–' : p.f1.toFixed(2),
          p?.memoryGb === null || p === null ? '–' : p.memoryGb.toFixed(2),
          diffText(ours, p?.f1),
          p !== null ? p.note : PAPER_TABLE3_ROWS.includes(g.row) ? 'not legible in the paper' : 'not a row of the paper',
        ];
      }),
    });
  }
  return blocks;
}
