/**
 * Charts as PNG files: Chart.js drawing on an @napi-rs/canvas canvas, no browser. Small functions
 * that take plain data, so every report draws the same way.
 *
 * Chart.js runs here without a DOM: `responsive: false` (no element to measure), `animation: false`
 * (the first frame is the final one, drawn synchronously in the constructor), and the canvas object
 * is handed over as if it were an HTMLCanvasElement (it has width, height and getContext('2d')).
 */
import { createCanvas } from '@napi-rs/canvas';
import { Chart, registerables, type ChartConfiguration, type ChartDataset, type ScatterDataPoint } from 'chart.js';

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
  /** Tick positions; default Chart.js's own (on a log axis: 1, 2, 3, ... x 10^n, crowded for bytes). */
  xTicks?: number[];
  yTicks?: number[];
  width?: number;
  height?: number;
}

type XY = ScatterDataPoint;
type Dataset = ChartDataset<'line', XY[]>;

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
    for (const [x, y] of s.points) {
      if (!usable(x, y, spec)) continue;
      xs.push(x);
      ys.push(y);
    }
    for (const x of s.oomAt ?? []) if (Number.isFinite(x)) xs.push(x);
  }
  for (const line of spec.refLines ?? []) ys.push(line.y);
  return {
    xMin: xs.length > 0 ? Math.min(...xs) : 1,
    xMax: xs.length > 0 ? Math.max(...xs) : 10,
    yMax: ys.length > 0 ? Math.max(...ys) : 1,
  };
}

function datasets(spec: LineChartSpec): Dataset[] {
  const { xMin, xMax, yMax } = extent(spec);
  // OOM crosses sit just above the highest value, so they never hide a measured point.
  const oomY = spec.logY === true ? yMax * 1.6 : yMax * 1.08;
  const out: Dataset[] = [];
  spec.series.forEach((s, i) => {
    const colour = PALETTE[i % PALETTE.length]!;
    const data = s.points
      .filter(([x, y]) => usable(x, y, spec))
      .sort((a, b) => a[0] - b[0])
      .map(([x, y]) => ({ x, y }));
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
  return out;
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
  const config: ChartConfiguration<'line', XY[]> = {
    type: 'line',
    data: { datasets: datasets(spec) },
    options: {
      ...commonOptions(spec.title, { usePointStyle: true }),
      parsing: false,
      scales: {
        x: {
          type: spec.logX === true ? 'logarithmic' : 'linear',
          title: { display: true, text: spec.xLabel, font: { family: FONT, size: 13 } },
          ticks: { font: { family: FONT }, ...tick(spec.formatX) },
          ...fixed(spec.xTicks),
        },
        y: {
          type: spec.logY === true ? 'logarithmic' : 'linear',
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
