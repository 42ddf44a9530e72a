/**
 * Why a cell scores what it scores: F1 at the reference threshold 0.5 and at the validation-tuned one,
 * how many spans were predicted, where the gold entities' probabilities lie, and the oracle ceiling
 * (the F1 of a perfect model of that method under the same segmentation and span limits); one table
 * per dataset with mean ± std over seeds, one with every seed; and the learning curves.
 */
import { metricCell, okResults, type Group } from '../aggregate.js';
import { lineChart, type Series } from '../charts.js';
import type { ReportContext } from '../context.js';
import type { Block } from '../document.js';
import type { RunResult } from '../../runs/result.js';
import { rowLabel, safeFile } from './util.js';

const pct = (x: number | null | undefined): string => (x === null || x === undefined ? '–' : (x * 100).toFixed(2));
const num = (x: number | null | undefined, digits = 3): string => (x === null || x === undefined ? '–' : x.toFixed(digits));

const usedF1 = (r: RunResult) => r.metrics.overall?.f1;
const referenceF1 = (r: RunResult) => r.thresholds?.reference?.f1;
const tunedF1 = (r: RunResult) => r.thresholds?.tuned?.overall.f1;
const tunedAt = (r: RunResult) => r.thresholds?.tuned?.threshold;
const predicted = (r: RunResult) => r.diagnostics?.predicted;
const goldMedian = (r: RunResult) => r.diagnostics?.goldScores?.p50;
const oracleF1 = (r: RunResult) => r.diagnostics?.oracle.f1;
const oracleRecall = (r: RunResult) => r.diagnostics?.oracle.recall;

function thresholdMode(rows: readonly Group[]): string {
  const modes = new Set(rows.flatMap((g) => okResults(g).map((r) => r.thresholds?.mode ?? 'fixed')));
  return [...modes].join(' / ') || '–';
}

export function diagnosticsTables(ctx: ReportContext): Block[] {
  const { groups } = ctx.collected;
  const blocks: Block[] = [
    { kind: 'heading', level: 1, text: 'Diagnostics: thresholds, predictions, oracle ceiling' },
    {
      kind: 'list',
      items: [
        "F1: the run's headline F1 (eval.threshold: the reference 0.5, or the value tuned on validation). F1@0.5 and F1@tuned: the same checkpoint on test at the reference threshold and at its best validation threshold (BCE heads; Global Pointer decodes at 0.5, span enumeration by argmax).",
        'predicted: spans predicted on test at the headline threshold; gold p50: the median probability the model gives the gold entities it can reach; a model that "predicts nothing" has few predictions and a low median, one that "predicts wrong" has many.',
        'oracle: the F1 (and recall) of predicting exactly the gold entities that some segment holds whole and that the method can represent (SeNER: spans of at most w + 1 words; span enumeration and Global Pointer: their span limits); no run of that method can score above it.',
      ],
    },
  ];
  for (const dataset of ctx.datasets) {
    const rows = groups.filter((g) => g.dataset === dataset);
    if (rows.length === 0) continue;
    blocks.push({
      kind: 'table',
      caption: `**${dataset}**, test split, mean ± std over finished seeds (threshold mode: ${thresholdMode(rows)}). F1 and oracle in %.`,
      header: ['method', 'F1', 'F1@0.5', 'tuned t', 'F1@tuned', 'predicted', 'gold p50', 'oracle F1', 'oracle R'],
      align: ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
      rows: rows.map((g) => [
        rowLabel(g),
        metricCell(g, usedF1, { scale: 100 }),
        metricCell(g, referenceF1, { scale: 100, terse: true }),
        metricCell(g, tunedAt, { digits: 2, terse: true }),
        metricCell(g, tunedF1, { scale: 100, terse: true }),
        metricCell(g, predicted, { digits: 0, terse: true }),
        metricCell(g, goldMedian, { digits: 3, terse: true }),
        metricCell(g, oracleF1, { scale: 100, terse: true }),
        metricCell(g, oracleRecall, { scale: 100, terse: true }),
      ]),
    });
    blocks.push({
      kind: 'table',
      caption: `**${dataset}**, every seed.`,
      header: ['method', 'seed', 'status', 'F1', 'P', 'R', 'F1@0.5', 'tuned t', 'F1@tuned', 'predicted', 'gold p50', 'oracle F1', 'steps', 'wall'],
      align: ['left', 'right', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
      rows: rows.flatMap((g) =>
        g.seeds.map((s) => {
          const r = s.status === 'ok' ? s.result : null;
          const steps = r?.curves?.trainLoss.at(-1)?.[0];
          return [
            rowLabel(g),
            String(s.seed),
            s.status,
            pct(r?.metrics.overall?.f1),
            pct(r?.metrics.overall?.precision),
            pct(r?.metrics.overall?.recall),
            pct(r === null ? null : referenceF1(r)),
            num(r === null ? null : tunedAt(r), 2),
            pct(r === null ? null : tunedF1(r)),
            r?.diagnostics === undefined ? '–' : String(r.diagnostics.predicted),
            num(r === null ? null : goldMedian(r)),
            pct(r === null ? null : oracleF1(r)),
            steps === undefined ? '–' : String(steps),
            r?.timing.wallSeconds === null || r === null ? '–' : `${Math.round(r.timing.wallSeconds)} s`,
          ];
        }),
      ),
    });
  }
  return blocks;
}

/** The mean over seeds of [step, value] curves, at the steps every seed has. */
function meanCurve(curves: readonly [number, number][][]): [number, number][] {
  if (curves.length === 0) return [];
  const byStep = new Map<number, number[]>();
  for (const c of curves) for (const [x, y] of c) byStep.set(x, [...(byStep.get(x) ?? []), y]);
  return [...byStep.entries()]
    .filter(([, ys]) => ys.length === curves.length)
    .map(([x, ys]): [number, number] => [x, ys.reduce((a, b) => a + b, 0) / ys.length])
    .sort((a, b) => a[0] - b[0]);
}

/** Per dataset: the training loss and the validation F1 against steps, one line per method (mean over seeds). */
export function learningCurves(ctx: ReportContext): Block[] {
  const blocks: Block[] = [];
  for (const dataset of ctx.datasets) {
    const rows = ctx.collected.groups.filter((g) => g.dataset === dataset && okResults(g).some((r) => r.curves !== undefined));
    if (rows.length === 0) continue;
    const series = (pick: (r: RunResult) => [number, number][] | undefined): Series[] =>
      rows
        .map((g) => ({
          label: rowLabel(g),
          points: meanCurve(
            okResults(g)
              .map(pick)
              .filter((c): c is [number, number][] => c !== undefined && c.length > 0),
          ),
        }))
        .filter((s) => s.points.length > 0);
    const loss = series((r) => r.curves?.trainLoss);
    const f1 = series((r) => r.curves?.validation.filter((v) => v.f1 !== null).map((v): [number, number] => [v.step, (v.f1 ?? 0) * 100]));
    blocks.push(
      {
        kind: 'image',
        file: safeFile(`learning-loss-${dataset}.png`),
        alt: `Training loss against optimizer steps on ${dataset} (mean over seeds of each window's mean loss; log scale). Losses of different methods are on different scales (BCE summed over cells, ZLPR, cross-entropy).`,
        png: lineChart({ title: `Training loss, ${dataset}`, xLabel: 'step', yLabel: 'loss', series: loss, logY: true }),
      },
      {
        kind: 'image',
        file: safeFile(`learning-f1-${dataset}.png`),
        alt: `Validation F1 (%) against optimizer steps on ${dataset}, mean over seeds, at each validation's threshold (tuned when eval.threshold is tuned).`,
        png: lineChart({ title: `Validation F1, ${dataset}`, xLabel: 'step', yLabel: 'F1 (%)', series: f1 }),
      },
    );
  }
  return blocks;
}
