/**
 * Efficiency (paper Fig. 7): the longest trainable input per method from the memory frontier's output,
 * memory and latency against input length from its probes, and inference time per document from the
 * runs of the experiments this one uses (table2-main). The paper publishes only ratios (fig7.csv).
 */
import { barChart } from '../charts-more.js';
import { lineChart, powerTicks, type Series } from '../charts.js';
import { metricCell, metricStat, seedSummary, type Group } from '../aggregate.js';
import type { Block } from '../document.js';
import { allGroups } from '../collect.js';
import { settingsCaption, type ReportContext } from '../context.js';
import { frontierCandidates, readFrontier, type FoundFrontier } from '../frontier.js';
import { paperClaim } from '../paper.js';
import { distinctLabels, rowLabel } from './util.js';
import { formatBytes } from '../../util/bytes.js';
import { displayPath } from '../../util/paths.js';

const REFERENCE = 'sener';
const msPerDoc = (r: { timing: { msPerDocument: number | null } }) => r.timing.msPerDocument;

/** The groups whose runs give inference times: the experiment's own and those of the experiments it uses. */
export function timingGroups(ctx: ReportContext): Group[] {
  return allGroups(ctx.collected);
}

export function loadFrontier(ctx: ReportContext, variant: 'reference' | 'efficient' = 'reference'): { found: FoundFrontier | null; candidates: string[] } {
  const report = ctx.collected.experiment.report;
  const candidates = frontierCandidates(variant === 'reference' ? report.frontier : report.frontierEfficient, ctx.collected.experiment.preset);
  return { found: readFrontier(candidates), candidates };
}

/** The budget line of a native frontier (the limit its lengths were measured under), or the wasm heap cap. */
function limitLines(found: FoundFrontier): { y: number; label: string }[] {
  const { backend, budgetBytes } = found.data;
  if (backend === 'wasm') return [{ y: 2 ** 32, label: 'wasm heap cap (4 GiB)' }];
  if (backend === 'native' && typeof budgetBytes === 'number') return [{ y: budgetBytes, label: `memory budget (${formatBytes(budgetBytes)})` }];
  return [];
}

function ratioText(value: number | null): string {
  return value === null || !Number.isFinite(value) ? '–' : `${value.toFixed(2)}x`;
}

export function efficiencyTables(ctx: ReportContext): Block[] {
  const blocks: Block[] = [{ kind: 'heading', level: 1, text: 'Efficiency (paper Fig. 7)' }];
  const { found, candidates } = loadFrontier(ctx);
  if (found === null) {
    blocks.push({
      kind: 'paragraph',
      text: `No memory frontier output found (looked for ${candidates.map(displayPath).join(', ')}): run \`longner memory experiments/memory-frontier.yaml${ctx.collected.experiment.preset === null ? '' : ` --preset ${ctx.collected.experiment.preset}`}\` first. The longest-input table and the memory and latency curves are missing, not zero.`,
    });
  } else {
    const f = found.data;
    const efficient = loadFrontier(ctx, 'efficient').found;
    const measured = (data: FoundFrontier['data'] | undefined, method: string) => data?.methods.find((m) => m.method === method)?.measured ?? null;
    // A search that hit its cap or stopped early (a timeout) gives a lower bound; the first OOM bounds it from above.
    const isLowerBound = (end: string | undefined): boolean => end === 'maxLength' || end === 'failed';
    const lengthOf = (data: FoundFrontier['data'] | undefined, method: string): string => {
      const m = measured(data, method);
      if (m?.maxOk === null || m?.maxOk === undefined) return '– (none)';
      const n = m.maxOk.toLocaleString('en-US');
      if (m.end === 'maxLength') return `>= ${n} (cap)`;
      return m.end === 'failed' ? `>= ${n} (stopped${m.firstOom ? `; OOM at ${m.firstOom.toLocaleString('en-US')}` : ''})` : n;
    };
    const ratio = (data: FoundFrontier['data'] | undefined, method: string): string => {
      const ref = measured(data, REFERENCE);
      if (method === REFERENCE) return ref?.maxOk === null || ref?.maxOk === undefined ? '–' : '1.00x';
      const mine = measured(data, method);
      if (ref?.maxOk == null || mine?.maxOk == null || mine.maxOk <= 0) return '–';
      if (!isLowerBound(mine.end)) return `${isLowerBound(ref.end) ? '>= ' : ''}${ratioText(ref.maxOk / mine.maxOk)}`;
      // The method's own limit is only bounded: below its first OOM.
      return mine.firstOom == null ? '?' : `>= ${ratioText(ref.maxOk / mine.firstOom)}`;
    };
    blocks.push({
      kind: 'table',
      caption:
        `Longest input that trains (words = tokens, batch 1, synthetic SciREX-like document), measured by \`longner memory\` ` +
        `(preset ${f.preset ?? 'none'}, backend ${f.backendDetail ?? f.backend ?? 'unknown'}; ${displayPath(found.file)}). ` +
        (efficient === null
          ? ''
          : `"Most efficient": every method with the low-memory attention kernels and recomputation (${displayPath(efficient.file)}, backend ${efficient.data.backendDetail ?? efficient.data.backend ?? 'unknown'}). `) +
        'Paper: SeNER trains on inputs 3x longer than CNN-NER and 6x longer than UTC-IE (one A100 80 GB, SciREX; the bar values are unpublished).',
      header: [
        'method',
        'attention',
        'longest that trained',
        'first OOM',
        'search end',
        'SeNER / method (ours)',
        ...(efficient === null ? [] : ['longest, most efficient', 'SeNER / method, most efficient']),
        'SeNER / method (paper)',
      ],
      align: ['left', 'left', 'right', 'right', 'left', 'right', ...(efficient === null ? [] : (['right', 'right'] as const)), 'right'],
      rows: f.methods.map((m) => {
        const claim = paperClaim(ctx.paper, `max_train_length_ratio_sener_over_${m.method}`);
        return [
          m.method,
          m.attention ?? '',
          lengthOf(f, m.method),
          m.measured?.firstOom === null || m.measured?.firstOom === undefined ? '–' : m.measured.firstOom.toLocaleString('en-US'),
          m.measured?.end ?? '–',
          ratio(f, m.method),
          ...(efficient === null ? [] : [lengthOf(efficient.data, m.method), ratio(efficient.data, m.method)]),
          claim === null ? '–' : ratioText(claim.value),
        ];
      }),
    });
  }
  const groups = timingGroups(ctx);
  const source = [...ctx.collected.used.keys()].join(', ') || ctx.collected.experiment.name;
  const timingExperiment = [...ctx.collected.used.values()][0]?.experiment ?? ctx.collected.experiment;
  for (const dataset of ctx.datasets) {
    const rows = groups.filter((g) => g.dataset === dataset);
    if (rows.length === 0) continue;
    const refGroup = rows.find((g) => g.method === REFERENCE && Object.keys(g.axes).length === 0);
    const refMs = refGroup === undefined ? null : metricStat(refGroup, msPerDoc);
    blocks.push({
      kind: 'table',
      caption:
        `**${dataset}**: inference time per test document (ms) and peak inference memory, from the runs of ${source}. ` +
        `${settingsCaption(timingExperiment, rows)} ` +
        'Paper: SeNER about as fast as CNN-NER (1.0x) and about 20% faster than UTC-IE (0.8x).',
      header: ['method', 'seeds', 'ms / doc', 'peak inference MiB', 'SeNER / method (ours)', 'SeNER / method (paper)'],
      align: ['left', 'left', 'right', 'right', 'right', 'right'],
      rows: rows.map((g) => {
        const s = metricStat(g, msPerDoc);
        const claim = paperClaim(ctx.paper, `inference_time_ratio_sener_over_${g.method}`);
        return [
          rowLabel(g),
          seedSummary(g),
          metricCell(g, msPerDoc, { digits: 0 }),
          metricCell(g, (r) => r.memory.peakBytesInference, { scale: 1 / 2 ** 20, digits: 1, terse: true }),
          g === refGroup ? (refMs === null ? '–' : '1.00x') : refMs !== null && s !== null && s.mean > 0 ? ratioText(refMs.mean / s.mean) : '–',
          claim === null ? '–' : ratioText(claim.value),
        ];
      }),
    });
  }
  return blocks;
}

function curveSeries(found: FoundFrontier, mode: string, pick: (p: FoundFrontier['data']['probes'][number]) => number | null | undefined): Series[] {
  const methods = [...new Set(found.data.probes.filter((p) => p.mode === mode).map((p) => p.method))];
  return methods.map((method) => {
    const probes = found.data.probes.filter((p) => p.mode === mode && p.method === method);
    return {
      label: method,
      points: probes.filter((p) => p.status === 'ok' && typeof pick(p) === 'number').map((p): [number, number] => [p.words, pick(p)!]),
      oomAt: probes.filter((p) => p.status === 'oom').map((p) => p.words),
    };
  });
}

/** Powers of 4 over the values (a log axis of bytes gets crowded with Chart.js's own 1-2-5 ticks). */
function byteTicks(series: readonly Series[], extra: readonly number[]): number[] {
  const ys = [...series.flatMap((s) => s.points.map(([, y]) => y)), ...extra].filter((y) => y > 0);
  return ys.length === 0 ? [] : powerTicks(Math.min(...ys), Math.max(...ys), 4);
}

export function memoryChart(ctx: ReportContext): Block[] {
  const variants = [
    { variant: 'reference' as const, file: 'memory-vs-length.png', title: 'Peak memory of a training step vs input length', what: '' },
    {
      variant: 'efficient' as const,
      file: 'memory-vs-length-efficient.png',
      title: 'Peak memory of a training step, every method at its most efficient',
      what: ' (low-memory attention and recomputation)',
    },
  ];
  return variants.flatMap(({ variant, file, title, what }): Block[] => {
    const { found } = loadFrontier(ctx, variant);
    if (found === null) return [];
    const lengths = found.data.probes.map((p) => p.words);
    const series = curveSeries(found, 'train', (p) => p.peakBytes);
    const refLines = limitLines(found);
    return [
      {
        kind: 'image',
        file,
        alt: `Peak memory of one training step (batch 1) against input length${what}, from the memory frontier probes; crosses: out of memory; the line: the memory limit.`,
        png: lineChart({
          title,
          xLabel: 'input length (words = tokens)',
          yLabel: found.data.backend === 'native' ? 'peak bytes (live tensor buffers)' : 'peak bytes (tf.profile)',
          logX: true,
          logY: true,
          series,
          refLines,
          formatY: formatBytes,
          yTicks: byteTicks(
            series,
            refLines.map((l) => l.y),
          ),
          formatX: (v) => String(v),
          xTicks: lengths.length === 0 ? [] : powerTicks(Math.min(...lengths), Math.max(...lengths)),
        }),
      },
    ];
  });
}

export function latencyChart(ctx: ReportContext): Block[] {
  const { found } = loadFrontier(ctx);
  if (found === null) return [];
  const lengths = found.data.probes.map((p) => p.words);
  return [
    {
      kind: 'image',
      file: 'latency-vs-length.png',
      alt: 'Inference time per document against input length, from the memory frontier probes; crosses: out of memory.',
      png: lineChart({
        title: 'Inference time vs input length',
        xLabel: 'input length (words = tokens)',
        yLabel: 'ms per document',
        logX: true,
        logY: true,
        series: curveSeries(found, 'infer', (p) => p.ms),
        formatX: (v) => String(v),
        xTicks: lengths.length === 0 ? [] : powerTicks(Math.min(...lengths), Math.max(...lengths)),
      }),
    },
  ];
}

export function inferenceBars(ctx: ReportContext): Block[] {
  const groups = timingGroups(ctx).filter((g) => Object.keys(g.axes).length === 0);
  const datasets = ctx.datasets.filter((d) => groups.some((g) => g.dataset === d));
  const labels = distinctLabels(groups).filter((label) => groups.some((g) => rowLabel(g) === label && metricStat(g, msPerDoc) !== null));
  if (labels.length === 0) return [{ kind: 'paragraph', text: 'No inference-time chart: no run has finished yet.' }];
  return [
    {
      kind: 'image',
      file: 'inference-time.png',
      alt: 'Inference time per test document (ms, mean over finished seeds, log scale) per method and dataset; no bar: no finished run.',
      png: barChart({
        title: 'Inference time per document',
        xLabel: 'dataset',
        yLabel: 'ms per document (log)',
        logY: true,
        categories: datasets,
        series: labels.map((label) => {
          const stats = datasets.map((d) => {
            const g = groups.find((x) => rowLabel(x) === label && x.dataset === d);
            return g === undefined ? null : metricStat(g, msPerDoc);
          });
          return { label, values: stats.map((s) => s?.mean ?? null), errors: stats.map((s) => s?.std ?? null) };
        }),
      }),
    },
  ];
}
