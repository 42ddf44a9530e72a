/**
 * Charts as PNG files: Chart.js drawing on an @napi-rs/canvas canvas, no browser. Small functions
 * that take plain data, so every report draws the same way.
 *
 * Chart.js runs here without a DOM: `responsive: false` (no element to measure), `animation: false`
 * (the first frame is the final one, drawn synchronously in the constructor), and the canvas object
 * is handed over as if it were an HTMLCanvasElement (it has width, height and getContext('2d')).
 */
import { createCanvas } from '@napi-rs/canvas';
import { Chart, registerables, type ChartConfiguration, type ChartDataset, type Plugin, type ScatterDataPoint } from 'chart.js';

Chart.register(...registerables);

/** Colour-blind-safe palette (Okabe-Ito), one colour per series in order. */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#F0E442', '#000000'];
export const FONT = 'DejaVu Sans, sans-serif';

/** The options every chart shares: no DOM, no animation (see the file comment), title, legend below. */
export function commonOptions(title: string, legendLabels: Record<string, unknown> = {}) {
  return {
    responsive: false,
    animation: false,
    devicePixelRatio: 1,
    font: { family: FONT },
    plugins: {
      title: { display: true, text: title, font: { family: FONT, size: 16 } },
      legend: { position: 'bottom', labels: { font: { family: FONT, size: 12 }, ...legendLabels } },
    },
  } as const;
}

/** Draws `config` on a white canvas (Chart.js draws on a transparent one; dark viewers) and returns the PNG. */
export function renderChart(width: number, height: number, config: ChartConfiguration): Buffer {
  const canvas = createCanvas(width, height);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, width, height);
  // The napi canvas stands in for an HTMLCanvasElement (see the file comment).
  const chart = new Chart(canvas as unknown as ConstructorParameters<typeof Chart>[0], config);
  try {
    return canvas.toBuffer('image/png');
  } finally {
    chart.destroy();
  }
}

export interface Series {
  label: string;
  /** [x, y] points, drawn in x order; non-finite or (on a log axis) non-positive values are left out. */
  points: [number, number][];
  /**
   * Half-width of an error whisker per point (e.g. the std over seeds), in the order of `points`;
   * missing, 0 or non-finite = no whisker.
   */
  errors?: number[];
  /**
   * x values where the series ran out of memory: drawn as crosses in the series' colour along the
   * top of the plot (an OOM has no y value).
   */
  oomAt?: number[];
}

export interface ReferenceLine {
  y: number;
  label: string;
}

export interface LineChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  logX?: boolean;
  logY?: boolean;
  /** Dashed horizontal lines (e.g. a memory cap). */
  refLines?: ReferenceLine[];
  /** Tick labels of the y axis; default: the number as Chart.js formats it. */
  formatY?: (value: number) => string;
  formatX?: (value: number) => string;
  /** Lowest y shown (e.g. 0 for F1, so seed noise is not drawn as a trend); default Chart.js's fit. */
  yMin?: number;
  /** Tick positions; default Chart.js's own (on a log axis: 1, 2, 3, ... x 10^n, crowded for bytes). */
  xTicks?: number[];
  yTicks?: number[];
  width?: number;
  height?: number;
}

type XY = ScatterDataPoint;
type Dataset = ChartDataset<'line', XY[]>;
/** A drawn point's whisker half-width, by dataset index and point index. */
type Whiskers = Map<number, number[]>;

function usable(x: number, y: number, spec: LineChartSpec): boolean {
  if (!Number.isFinite(x) || !Number.isFinite(y)) return false;
  if (spec.logX === true && x <= 0) return false;
  if (spec.logY === true && y <= 0) return false;
  return true;
}

/** The range the data covers on each axis, to place OOM marks and reference lines. */
function extent(spec: LineChartSpec): { xMin: number; xMax: number; yMax: number } {
  const xs: number[] = [];
  const ys: number[] = [];
  for (const s of spec.series) {
    s.points.forEach(([x, y], j) => {
      if (!usable(x, y, spec)) return;
      xs.push(x);
      ys.push(y + whisker(s, j));
    });
    for (const x of s.oomAt ?? []) if (Number.isFinite(x)) xs.push(x);
  }
  for (const line of spec.refLines ?? []) ys.push(line.y);
  return {
    xMin: xs.length > 0 ? Math.min(...xs) : 1,
    xMax: xs.length > 0 ? Math.max(...xs) : 10,
    yMax: ys.length > 0 ? Math.max(...ys) : 1,
  };
}

function whisker(s: Series, j: number): number {
  const e = s.errors?.[j];
  return e !== undefined && Number.isFinite(e) && e > 0 ? e : 0;
}

function datasets(spec: LineChartSpec): { datasets: Dataset[]; whiskers: Whiskers } {
  const { xMin, xMax, yMax } = extent(spec);
  // OOM crosses sit just above the highest value, so they never hide a measured point.
  const oomY = spec.logY === true ? yMax * 1.6 : yMax * 1.08;
  const out: Dataset[] = [];
  const whiskers: Whiskers = new Map();
  spec.series.forEach((s, i) => {
    const colour = PALETTE[i % PALETTE.length]!;
    const kept = s.points
      .map(([x, y], j) => ({ x, y, e: whisker(s, j) }))
      .filter(({ x, y }) => usable(x, y, spec))
      .sort((a, b) => a.x - b.x);
    if (kept.some(({ e }) => e > 0))
      whiskers.set(
        out.length,
        kept.map(({ e }) => e),
      );
    const data = kept.map(({ x, y }) => ({ x, y }));
    out.push({ label: s.label, data, borderColor: colour, backgroundColor: colour, pointRadius: 3, borderWidth: 2, tension: 0 });
    const oom = (s.oomAt ?? []).filter((x) => Number.isFinite(x) && (spec.logX !== true || x > 0));
    if (oom.length > 0) {
      out.push({
        label: `${s.label}: OOM`,
        data: oom.map((x) => ({ x, y: oomY })),
        borderColor: colour,
        backgroundColor: colour,
        showLine: false,
        pointStyle: 'crossRot',
        pointRadius: 8,
        pointBorderWidth: 3,
      });
    }
  });
  for (const line of spec.refLines ?? []) {
    out.push({
      label: line.label,
      data: [
        { x: xMin, y: line.y },
        { x: xMax, y: line.y },
      ],
      borderColor: '#777777',
      backgroundColor: '#777777',
      borderDash: [6, 4],
      borderWidth: 1.5,
      pointRadius: 0,
    });
  }
  return { datasets: out, whiskers };
}

/** One error whisker: a vertical line from `top` to `bottom` (pixels) at `x`, capped `half` pixels each side. */
export function drawWhisker(ctx: Chart['ctx'], x: number, top: number, bottom: number, half: number): void {
  ctx.beginPath();
  ctx.moveTo(x, top);
  ctx.lineTo(x, bottom);
  ctx.moveTo(x - half, top);
  ctx.lineTo(x + half, top);
  ctx.moveTo(x - half, bottom);
  ctx.lineTo(x + half, bottom);
  ctx.stroke();
}

/** Vertical whiskers at y ± e in the series' colour, clipped to the y axis (see `Series.errors`). */
function whiskerPlugin(whiskers: Whiskers): Plugin<'line'> {
  return {
    id: 'longnerLineWhiskers',
    afterDatasetsDraw(chart) {
      const yScale = chart.scales.y;
      if (yScale === undefined || whiskers.size === 0) return;
      const ctx = chart.ctx;
      ctx.save();
      ctx.lineWidth = 1.5;
      for (const [index, errors] of whiskers) {
        const dataset = chart.data.datasets[index];
        const meta = chart.getDatasetMeta(index);
        if (dataset === undefined) continue;
        ctx.strokeStyle = String(dataset.borderColor);
        errors.forEach((e, j) => {
          // chart.js types the elements generically; a point element has its pixel x.
          const point = meta.data[j] as unknown as { x: number } | undefined;
          const value = (dataset.data[j] as XY | undefined)?.y;
          if (!(e > 0) || point === undefined || value === undefined || value === null) return;
          const low = Math.max(value - e, yScale.type === 'logarithmic' ? value / 10 : yScale.min);
          const top = yScale.getPixelForValue(Math.min(value + e, yScale.max));
          const bottom = yScale.getPixelForValue(low);
          drawWhisker(ctx, point.x, top, bottom, 5);
        });
      }
      ctx.restore();
    },
  };
}

/**
 * The x range: the fixed ticks and every drawn x (points, OOM crosses), so none falls outside, with
 * a small margin so the end points do not sit on the axes.
 */
function xRange(spec: LineChartSpec): { min?: number; max?: number } {
  if (spec.xTicks === undefined || spec.xTicks.length === 0) return {};
  const xs = [...spec.xTicks, ...spec.series.flatMap((s) => [...s.points.filter(([x, y]) => usable(x, y, spec)).map(([x]) => x), ...(s.oomAt ?? [])])].filter(
    (x) => Number.isFinite(x) && (spec.logX !== true || x > 0),
  );
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  if (spec.logX === true) return { min: lo / 1.08, max: hi * 1.08 };
  const margin = (hi - lo) * 0.02;
  return { min: lo - margin, max: hi + margin };
}

/** A line chart (x numeric, one line per series) rendered to a PNG buffer. */
export function lineChart(spec: LineChartSpec): Buffer {
  const width = spec.width ?? 900;
  const height = spec.height ?? 560;
  const tick = (format?: (v: number) => string) => (format === undefined ? {} : { callback: (value: number | string) => format(Number(value)) });
  // Fixed tick positions replace the generated ones after Chart.js has built them.
  const fixed = (values?: number[]) =>
    values === undefined || values.length === 0
      ? {}
      : {
          afterBuildTicks: (axis: { ticks: { value: number }[] }) => {
            axis.ticks = values.map((value) => ({ value }));
          },
        };
  const drawn = datasets(spec);
  const config: ChartConfiguration<'line', XY[]> = {
    type: 'line',
    data: { datasets: drawn.datasets },
    plugins: [whiskerPlugin(drawn.whiskers)],
    options: {
      ...commonOptions(spec.title, { usePointStyle: true }),
      parsing: false,
      // Room for the last x tick's label, which Chart.js centres on the plot's right edge.
      layout: { padding: { right: 24 } },
      scales: {
        x: {
          type: spec.logX === true ? 'logarithmic' : 'linear',
          title: { display: true, text: spec.xLabel, font: { family: FONT, size: 13 } },
          ticks: { font: { family: FONT }, ...tick(spec.formatX) },
          ...fixed(spec.xTicks),
          // The x range spans the fixed ticks, so a tick without data (a cell not yet run) keeps its place.
          ...xRange(spec),
        },
        y: {
          type: spec.logY === true ? 'logarithmic' : 'linear',
          ...(spec.yMin === undefined ? {} : { min: spec.yMin }),
          title: { display: true, text: spec.yLabel, font: { family: FONT, size: 13 } },
          ticks: { font: { family: FONT }, ...tick(spec.formatY) },
          ...fixed(spec.yTicks),
        },
      },
    },
  };
  // Built with narrower types than chart.js's ChartConfiguration, whose generic does not take them without a cast.
  return renderChart(width, height, config as unknown as ChartConfiguration);
}

/** Width and height from a PNG's IHDR chunk; throws when the bytes are not a PNG. */
export function pngSize(png: Uint8Array): { width: number; height: number } {
  const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (png.length < 24 || signature.some((b, i) => png[i] !== b)) throw new Error('not a PNG (bad signature)');
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  if (String.fromCharCode(...png.subarray(12, 16)) !== 'IHDR') throw new Error('not a PNG (no IHDR chunk first)');
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

/** Powers of `base` covering [min, max] (one step beyond each end), for ticks on a log axis. */
export function powerTicks(min: number, max: number, base = 2): number[] {
  if (!(min > 0) || !(max >= min)) return [];
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log(min) / Math.log(base)); ; e++) {
    const v = base ** e;
    ticks.push(v);
    if (v >= max) break;
  }
  return ticks;
}
