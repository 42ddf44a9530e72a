/**
 * Bar and radar charts as PNGs, drawn like charts.ts's line charts (Chart.js on an @napi-rs/canvas
 * canvas, no DOM, no animation, white background, the same palette).
 *
 * A missing value (null) draws no bar and no radar point (the radar line skips it): a missing run must
 * never look like a zero.
 * Bars may carry an error whisker (mean ± std), drawn by a small plugin after the bars.
 */
import type { ChartConfiguration, Plugin } from 'chart.js';
import { commonOptions, drawWhisker, FONT, PALETTE, renderChart as render } from './charts.js';

export interface BarSeries {
  label: string;
  /** One value per category; null = no bar. */
  values: (number | null)[];
  /** Half-width of the error whisker per category (e.g. the std); null = none. */
  errors?: (number | null)[];
}

export interface BarChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  categories: string[];
  series: BarSeries[];
  logY?: boolean;
  /** Lowest y shown; default 0 on a linear axis. */
  yMin?: number;
  width?: number;
  height?: number;
}

export interface RadarSeries {
  label: string;
  /** One value per axis label; null = no point. */
  values: (number | null)[];
}

export interface RadarChartSpec {
  title: string;
  labels: string[];
  series: RadarSeries[];
  /** Radial range; default 0 .. the largest value (rounded up to 10). */
  min?: number;
  max?: number;
  width?: number;
  height?: number;
}

/** Whiskers at mean ± error for every bar that has both. */
function errorBarPlugin(series: readonly BarSeries[], logY: boolean): Plugin<'bar'> {
  return {
    id: 'longnerErrorBars',
    afterDatasetsDraw(chart) {
      const ctx = chart.ctx;
      const yScale = chart.scales.y;
      if (yScale === undefined) return;
      ctx.save();
      ctx.strokeStyle = '#333333';
      ctx.lineWidth = 1.5;
      series.forEach((s, i) => {
        const meta = chart.getDatasetMeta(i);
        s.values.forEach((value, j) => {
          const error = s.errors?.[j];
          // chart.js types the elements generically; a bar element has the x and width the error bars need.
          const bar = meta.data[j] as unknown as { x: number; width: number } | undefined;
          if (value === null || error === null || error === undefined || !(error > 0) || bar === undefined) return;
          // The whisker stays inside the axis (F1, times and bytes are never negative).
          const low = logY ? Math.max(value - error, value / 10) : Math.max(value - error, yScale.min);
          const top = yScale.getPixelForValue(value + error);
          const bottom = yScale.getPixelForValue(low);
          const half = Math.min(6, bar.width / 4);
          drawWhisker(ctx, bar.x, top, bottom, half);
        });
      });
      ctx.restore();
    },
  };
}

/** Grouped bars: one group per category, one bar per series. */
export function barChart(spec: BarChartSpec): Buffer {
  const width = spec.width ?? 900;
  const height = spec.height ?? 520;
  const logY = spec.logY === true;
  // Room for the whiskers: Chart.js scales the axis to the bars alone.
  const tops = spec.series.flatMap((s) => s.values.map((v, j) => (v === null ? Number.NaN : v + (s.errors?.[j] ?? 0)))).filter(Number.isFinite);
  const suggestedMax = tops.length === 0 ? undefined : Math.max(...tops);
  const config: ChartConfiguration<'bar', (number | null)[], string> = {
    type: 'bar',
    data: {
      labels: spec.categories,
      datasets: spec.series.map((s, i) => ({
        label: s.label,
        data: s.values.map((v) => (v === null || !Number.isFinite(v) || (logY && v <= 0) ? null : v)),
        backgroundColor: PALETTE[i % PALETTE.length]!,
        borderColor: PALETTE[i % PALETTE.length]!,
        borderWidth: 1,
      })),
    },
    options: {
      ...commonOptions(spec.title),
      scales: {
        x: { title: { display: true, text: spec.xLabel, font: { family: FONT, size: 13 } }, ticks: { font: { family: FONT } } },
        y: {
          type: logY ? 'logarithmic' : 'linear',
          ...(logY ? {} : { min: spec.yMin ?? 0 }),
          ...(suggestedMax === undefined ? {} : { suggestedMax }),
          title: { display: true, text: spec.yLabel, font: { family: FONT, size: 13 } },
          ticks: { font: { family: FONT } },
        },
      },
    },
    plugins: [errorBarPlugin(spec.series, logY)],
  };
  // Built with narrower types than chart.js's ChartConfiguration, whose generic does not take them without a cast.
  return render(width, height, config as unknown as ChartConfiguration);
}

/** One polygon per series over the axis labels (e.g. F1 per entity type, paper Fig. 6). */
export function radarChart(spec: RadarChartSpec): Buffer {
  const width = spec.width ?? 760;
  const height = spec.height ?? 680;
  const values = spec.series.flatMap((s) => s.values).filter((v): v is number => v !== null && Number.isFinite(v));
  const top = spec.max ?? Math.max(10, Math.ceil((Math.max(0, ...values) + 1) / 10) * 10);
  const config: ChartConfiguration<'radar', (number | null)[], string> = {
    type: 'radar',
    data: {
      labels: spec.labels,
      datasets: spec.series.map((s, i) => {
        const colour = PALETTE[i % PALETTE.length]!;
        return {
          label: s.label,
          data: s.values.map((v) => (v === null || !Number.isFinite(v) ? null : v)),
          borderColor: colour,
          backgroundColor: `${colour}22`,
          pointBackgroundColor: colour,
          borderWidth: 2,
          pointRadius: 3,
          // A missing value is skipped (the line joins its neighbours) rather than drawn at the centre, which would read as 0.
          spanGaps: true,
        };
      }),
    },
    options: {
      ...commonOptions(spec.title),
      scales: {
        r: {
          min: spec.min ?? 0,
          max: top,
          pointLabels: { font: { family: FONT, size: 12 } },
          ticks: { font: { family: FONT }, backdropColor: 'rgba(255,255,255,0.8)' },
        },
      },
    },
  };
  // Built with narrower types than chart.js's ChartConfiguration, whose generic does not take them without a cast.
  return render(width, height, config as unknown as ChartConfiguration);
}
