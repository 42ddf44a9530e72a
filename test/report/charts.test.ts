import test from 'ava';
import { createCanvas, loadImage } from '@napi-rs/canvas';
import { lineChart, pngSize, powerTicks } from '../../src/report/charts.js';
import { formatBytes } from '../../src/util/bytes.js';

test('lineChart renders a PNG of the requested size that decodes', async (t) => {
  const png = lineChart({
    title: 'Peak memory vs input length',
    xLabel: 'words',
    yLabel: 'peak bytes',
    logX: true,
    logY: true,
    width: 640,
    height: 400,
    series: [
      {
        label: 'sener',
        points: [
          [256, 1e8],
          [512, 2e8],
          [1024, 4e8],
        ],
      },
      {
        label: 'global-pointer',
        points: [
          [256, 1.2e8],
          [512, 4.5e8],
        ],
        oomAt: [1024],
      },
    ],
    refLines: [{ y: 2 ** 32, label: 'wasm heap cap' }],
    formatY: formatBytes,
    xTicks: powerTicks(256, 1024),
  });
  t.deepEqual(pngSize(png), { width: 640, height: 400 });
  const image = await loadImage(png);
  t.is(image.width, 640);
  t.is(image.height, 400);
});

test('a chart with no usable point (zeros on a log axis, NaN) still renders', (t) => {
  const png = lineChart({
    title: 't',
    xLabel: 'x',
    yLabel: 'y',
    logY: true,
    series: [
      {
        label: 'a',
        points: [
          [1, 0],
          [2, Number.NaN],
        ],
      },
    ],
  });
  t.deepEqual(pngSize(png), { width: 900, height: 560 });
});

test('pngSize rejects bytes that are not a PNG', (t) => {
  t.throws(() => pngSize(new Uint8Array(32)), { message: /not a PNG/ });
});

test('powerTicks and formatBytes', (t) => {
  t.deepEqual(powerTicks(256, 4096), [256, 512, 1024, 2048, 4096]);
  t.deepEqual(powerTicks(300, 1000), [256, 512, 1024]);
  t.deepEqual(powerTicks(0, 10), []);
  t.is(formatBytes(2 ** 32), '4 GiB');
  t.is(formatBytes(1536), '1.50 KiB');
  t.is(formatBytes(100), '100 B');
});

/** The RGBA pixels of a PNG, decoded. */
async function pixels(png: Buffer): Promise<Uint8ClampedArray> {
  const image = await loadImage(png);
  const canvas = createCanvas(image.width, image.height);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(image, 0, 0);
  return ctx.getImageData(0, 0, image.width, image.height).data;
}

test('lineChart draws a whisker for a positive error and none for 0', async (t) => {
  const chart = (errors?: number[]) =>
    lineChart({
      title: 'F1 against w',
      xLabel: 'w',
      yLabel: 'F1 (%)',
      yMin: 0,
      logX: true,
      width: 400,
      height: 300,
      series: [
        {
          label: 'a',
          points: [
            [8, 9],
            [16, 9.5],
          ],
          ...(errors === undefined ? {} : { errors }),
        },
      ],
    });
  const plain = await pixels(chart());
  const zero = await pixels(chart([0, 0]));
  const whiskered = await pixels(chart([0, 3]));
  t.deepEqual(zero, plain);
  let changed = 0;
  for (let i = 0; i < plain.length; i += 4) if (plain[i] !== whiskered[i] || plain[i + 2] !== whiskered[i + 2]) changed++;
  // A whisker of ± 3 on an axis from 0 to about 12 is a quarter of the plot's height, plus its caps.
  t.true(changed > 40, `${changed} pixels changed`);
});
