import test from 'ava';
import { loadImage } from '@napi-rs/canvas';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { contrastText, diffText, formatStat, metricCell, stat } from '../../src/report/aggregate.js';
import { buildReport, summaryJson, writeReport } from '../../src/report/build.js';
import { pngSize } from '../../src/report/charts.js';
import { collect } from '../../src/report/collect.js';
import { renderMarkdown } from '../../src/report/document.js';
import { loadExperiment } from '../../src/runs/experiment.js';
import { expandGrid, type GridCell } from '../../src/runs/grid.js';
import { fromRoot } from '../../src/util/paths.js';
import { fixtureResult, prf, writeFixture } from '../fixtures/report/results.js';
import { tempDirs } from '../temp-dirs.js';

const temp = tempDirs();

/**
 * The fixture grid: sener and cnn-ner on scholar-xl and scirex, seeds 1 and 2.
 * - sener / scholar-xl: both seeds ok. Seed 1: tp 40, fp 40, fn 80 -> P 0.5, R 1/3, F1 0.4.
 *   Seed 2: tp 50, fp 50, fn 50 -> P = R = F1 = 0.5. Mean F1 45.00 %, sample std
 *   |0.5 - 0.4| / sqrt(2) = 0.0707 -> 7.07. Paper F1 51.56 -> Δ 45.00 - 51.56 = -6.56.
 *   Mean P (0.5 + 0.5) / 2 = 50.00 ± 0.00; mean R (1/3 + 1/2) / 2 = 41.67 ± 11.79 (|1/2 - 1/3| / sqrt 2 = 0.11785).
 * - cnn-ner / scholar-xl: both seeds out of memory -> "OOM".
 * - sener / scirex: nothing on disk -> "– (missing)", never 0.
 * - cnn-ner / scirex: seed 1 ok (tp 60, fp 40, fn 40: F1 0.6), seed 2 missing -> "60.00", "1 ok, 1 missing".
 */
const EXPERIMENT = `
seeds: [1, 2]
grid:
  - methods: [sener, cnn-ner]
    datasets: [scholar-xl, scirex]
report:
  datasets: [scholar-xl, scirex]
  tables: [main, per-type, efficiency]
  charts: [f1-bars, per-type-radar, memory-vs-length, latency-vs-length, inference-bars]
  frontier: [test/fixtures/report/frontier.json]
  frontierEfficient: []
`;

function setup(): { root: string; file: string; out: string } {
  const dir = temp('exp');
  const file = join(dir, 'fixture-report.yaml');
  writeFileSync(file, `name: fixture-report\n${EXPERIMENT}`);
  const root = temp('runs');
  const cells = expandGrid(loadExperiment(file));
  const cell = (method: string, dataset: string, seed: number): GridCell => cells.find((c) => c.method === method && c.dataset === dataset && c.seed === seed)!;
  const perType1 = { gender: prf(9, 1, 0), education: prf(2, 3, 5), awards: prf(5, 5, 5), title: prf(1, 1, 8) };
  const perType2 = { gender: prf(8, 2, 0), education: prf(3, 2, 5), awards: prf(6, 4, 4), title: prf(2, 1, 7) };
  writeFixture(
    root,
    'fixture-report',
    cell('sener', 'scholar-xl', 1),
    fixtureResult(cell('sener', 'scholar-xl', 1), { overall: prf(40, 40, 80), perType: perType1, msPerDocument: 200, peakBytesTrainStep: 2 ** 30 }),
  );
  // Found in another experiment's folder: same run id, same computation.
  writeFixture(
    root,
    'table2-main',
    cell('sener', 'scholar-xl', 2),
    fixtureResult(cell('sener', 'scholar-xl', 2), { overall: prf(50, 50, 50), perType: perType2, msPerDocument: 300 }),
  );
  for (const seed of [1, 2]) {
    const c = cell('cnn-ner', 'scholar-xl', seed);
    writeFixture(root, 'fixture-report', c, fixtureResult(c, { status: 'oom', reason: 'memory access out of bounds' }));
  }
  writeFixture(
    root,
    'fixture-report',
    cell('cnn-ner', 'scirex', 1),
    fixtureResult(cell('cnn-ner', 'scirex', 1), { overall: prf(60, 40, 40), msPerDocument: 250 }),
  );
  return { root, file, out: temp('report') };
}

/** The Markdown table row that starts with `| label |` in the table whose caption mentions `dataset`. */
function row(markdown: string, dataset: string, label: string, heading = 'Main results'): string {
  const section = markdown.slice(markdown.indexOf(heading));
  const table = section.slice(section.indexOf(`**${dataset}**`));
  const line = table.split('\n').find((l) => l.startsWith(`| ${label} |`));
  if (line === undefined) throw new Error(`no row ${label} for ${dataset}`);
  return line;
}

test('mean and sample standard deviation over seeds, percent formatting, differences', (t) => {
  const s = stat([0.4, 0.5])!;
  t.is(s.n, 2);
  t.is(formatStat(s, { scale: 100 }), '45.00 ± 7.07');
  t.is(formatStat(stat([0.6])!, { scale: 100 }), '60.00', 'one seed has no ± part');
  t.is(stat([]), null);
  t.is(diffText(s, 51.56), '-6.56');
  t.is(diffText(null, 51.56), '–');
});

test('an ablation row against the full model: difference of means ± its standard error, marked when under two', (t) => {
  // Means 60 and 43.33; SE = sqrt(0.1^2/3 + 0.0577^2/3) = sqrt(0.004444) = 6.67; 16.67 > 2 x 6.67.
  t.is(contrastText(stat([0.5, 0.6, 0.7]), stat([0.4, 0.4, 0.5])), '+16.67 ± 6.67');
  // Means 55 and 50; SE = sqrt(0.005/2 + 0.005/2) = 7.07; 5 < 14.14.
  t.is(contrastText(stat([0.55, 0.45]), stat([0.5, 0.6])), '-5.00 ± 7.07 (≈ noise)');
  t.is(contrastText(stat([0.3]), stat([0.5, 0.6])), '-25.00', 'one seed: no standard error');
  t.is(contrastText(null, stat([0.5])), '–');
});

test('a report from fixture run records: numbers, statuses, paper beside ours, charts that decode', async (t) => {
  const { root, file, out } = setup();
  const collected = collect(file, { root, preset: null, set: [] });
  const doc = await buildReport(collected);
  const written = writeReport(out, doc, summaryJson(collected));
  const md = readFileSync(written.markdown, 'utf8');
  const html = readFileSync(written.html, 'utf8');

  // Two seeds of one cell, one of them found in another experiment's folder.
  const sener = row(md, 'scholar-xl', 'sener');
  t.regex(sener, /\| 2 ok \| 50\.00 ± 0\.00 \| 41\.67 ± 11\.79 \| 45\.00 ± 7\.07 \| 57\.41 \| 46\.80 \| 51\.56 \| -6\.56 \|/);
  // OOM on every seed.
  t.regex(row(md, 'scholar-xl', 'cnn-ner'), /\| 2 OOM \| – \| – \| OOM \| 50\.92 \| 44\.72 \| 47\.59 \| – \|/);
  // Missing: shown as missing, never as zero.
  const missing = row(md, 'scirex', 'sener');
  t.regex(missing, /– \(missing\)/);
  t.notRegex(missing, /\b0\.00\b/);
  t.regex(missing, /74\.49/, "the paper's number is still shown beside the missing cell");
  // One seed of two finished.
  t.regex(row(md, 'scirex', 'cnn-ner'), /\| 1 ok, 1 missing \| 60\.00 \| 60\.00 \| 60\.00 \| 72\.13 \| 74\.56 \| 73\.32 \| -13\.32 \|/);
  // Every table says preset, backend, protocol and seeds; the local protocol caveat is there.
  t.regex(md, /Preset none; backend wasm; data protocol local; seeds 2 \(1, 2\)/);
  t.regex(md, /not comparable to the paper's absolute numbers/);

  // Per type: gender F1 seed 1 = 18/19 = 0.9474, seed 2 = 16/18 = 0.8889 -> 91.81 ± 4.14.
  t.regex(md, /\| gender \| 9 \| 91\.81 ± 4\.14 \| OOM \|/);
  // Efficiency: the frontier fixture (SeNER at least 4000 words, its search's cap, vs CNN-NER 1000 -> at least
  // 4.00x; paper 3x) and ms per document.
  t.regex(md, /\| cnn-ner \| full \| 1,000 \| 1,100 \| converged \| >= 4\.00x \| 3\.00x \|/);
  t.regex(md, /\| sener \| arrow \| >= 4,000 \(cap\) \|/);
  t.regex(row(md, 'scholar-xl', 'sener', 'Efficiency'), /\| 2 ok \| 250 ± 71 \|/);

  // The HTML page holds the same numbers and embeds every chart.
  t.regex(html, /45\.00 ± 7\.07/);
  t.regex(html, /– \(missing\)/);
  t.regex(html, /51\.56/);
  const embedded = html.match(/src="data:image\/png;base64,[A-Za-z0-9+/=]+"/g) ?? [];
  t.is(embedded.length, written.images.length);
  t.deepEqual(written.images.map((p) => p.slice(out.length + 1)).sort(), [
    'f1-bars.png',
    'inference-time.png',
    'latency-vs-length.png',
    'memory-vs-length.png',
    'per-type-scholar-xl.png',
  ]);
  for (const path of written.images) {
    const png = readFileSync(path);
    const size = pngSize(png);
    t.true(size.width > 100 && size.height > 100, path);
    const image = await loadImage(png);
    t.is(image.width, size.width);
    t.regex(md, new RegExp(`\\]\\(${path.slice(out.length + 1).replace('.', '\\.')}\\)`), 'the Markdown page links each PNG beside it');
  }
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { groups: { method: string; dataset: string; f1: { mean: number } | null }[] };
  const senerSummary = summary.groups.find((g) => g.method === 'sener' && g.dataset === 'scholar-xl')!;
  t.true(Math.abs(senerSummary.f1!.mean - 0.45) < 1e-9);
  t.is(summary.groups.find((g) => g.method === 'sener' && g.dataset === 'scirex')!.f1, null);
});

test('the report of a grid with nothing on disk shows every cell as missing and draws no bar', async (t) => {
  const dir = temp('exp');
  const file = join(dir, 'empty-report.yaml');
  writeFileSync(file, `name: empty-report\n${EXPERIMENT}`);
  const collected = collect(file, { root: temp('runs'), preset: null, set: [] });
  const md = renderMarkdown(await buildReport(collected));
  t.regex(row(md, 'scholar-xl', 'sener'), /\| 2 missing \| – \| – \| – \(missing\) \|/);
  t.notRegex(md.slice(md.indexOf('Main results'), md.indexOf('Per-type')), /\| 0\.00/);
  t.regex(md, /No bar \(no finished run\): sener on scholar-xl/);
});

test('the repository experiments render from an empty runs root (table1 from the data files)', async (t) => {
  const root = temp('runs');
  for (const name of ['table2-main', 'table3-ablation', 'window-sweep', 'per-type', 'fig7-efficiency', 'profiling-budget']) {
    const collected = collect(fromRoot('experiments', `${name}.yaml`), { root, preset: 'quick', set: [] });
    const md = renderMarkdown(await buildReport(collected));
    t.regex(md, /– \(missing\)/, name);
  }
  const table1 = renderMarkdown(await buildReport(collect(fromRoot('experiments', 'table1-datasets.yaml'), { root, preset: null, set: [] })));
  t.regex(table1, /\| scholar-xl \| paper Table 1 \(all splits\) \| 2,099 \| 433\.42 \|/);
});

test('without --preset, a report uses the preset the last run recorded (a report-only experiment: its used one)', (t) => {
  const root = temp('runs');
  mkdirSync(join(root, 'table2-main'), { recursive: true });
  writeFileSync(join(root, 'table2-main', 'grid.json'), JSON.stringify({ experiment: 'table2-main', preset: 'quick', set: ['train.epochs=2'] }));
  const collected = collect(fromRoot('experiments', 'fig7-efficiency.yaml'), { root });
  t.is(collected.experiment.preset, 'quick');
  t.deepEqual(collected.set, ['train.epochs=2']);
  t.regex(collected.settingsSource, /grid\.json/);
  const used = collected.used.get('table2-main')!;
  t.true(used.groups.length > 0);
  t.is(used.experiment.preset, 'quick');
  const explicit = collect(fromRoot('experiments', 'fig7-efficiency.yaml'), { root, preset: null });
  t.is(explicit.experiment.preset, null, 'an explicit choice wins');
});

test('a finished run without a number for a metric shows an en dash, not its status', async (t) => {
  const { root, file } = setup();
  const collected = collect(file, { root, preset: null, set: [] });
  const md = renderMarkdown(await buildReport(collected));
  // cnn-ner on scirex finished (seed 1), but the fixture has no inference memory for it.
  t.regex(row(md, 'scirex', 'cnn-ner', 'Efficiency'), /\| 1 ok, 1 missing \| 250 \| – \|/);
  const group = collected.groups.find((g) => g.method === 'sener' && g.dataset === 'scholar-xl')!;
  t.is(
    metricCell(group, (r) => r.metrics.perType?.['no-such-type']?.f1, { scale: 100 }),
    '–',
  );
});

test('the report names the thread count of its runs, and says so when a grid mixes them', async (t) => {
  const dir = temp('exp');
  const file = join(dir, 'threads.yaml');
  writeFileSync(file, 'name: threads\nseeds: [1, 2, 3]\ngrid:\n  - methods: [span-enum]\n    datasets: [scholar-xl]\nreport:\n  tables: [main]\n');
  const cells = expandGrid(loadExperiment(file));
  const render = async (threads: (number | null)[]): Promise<string> => {
    const root = temp('runs');
    for (const [i, c] of cells.entries()) writeFixture(root, 'threads', c, { ...fixtureResult(c), backendThreads: threads[i] ?? null });
    return renderMarkdown(await buildReport(collect(file, { root, preset: null, set: [] })));
  };
  const same = await render([1, 1, 1]);
  t.regex(same, /Threads per run: 1 \(all 3 runs that name one\)/);
  t.notRegex(same, /mixed/);
  const mixed = await render([1, 2, null]);
  t.regex(mixed, /Threads per run: \*\*mixed\*\*, 1 \(1 run\), 2 \(1 run\)/);
  // The run index: wall, then threads ('–' for a record that names none).
  const index = mixed.slice(mixed.indexOf('Run index'));
  const threadsOf = (seed: number): string | undefined =>
    index
      .split('\n')
      .find((l) => l.startsWith(`| ${cells[seed - 1]!.runId} |`))
      ?.split('|')
      .map((x) => x.trim())[8];
  t.deepEqual([1, 2, 3].map(threadsOf), ['1', '2', '–']);
  t.is(renderMarkdown(await buildReport(collect(file, { root: temp('runs'), preset: null, set: [] }))).includes('Threads per run'), false, 'no runs, no line');
});

test('the diagnostics table and learning curves: both thresholds, predictions, oracle, every seed, curves averaged over seeds', async (t) => {
  const dir = temp('exp');
  const file = join(dir, 'diag.yaml');
  writeFileSync(
    file,
    'name: diag\nseeds: [1, 2]\ngrid:\n  - methods: [sener]\n    datasets: [scholar-xl]\nreport:\n  tables: [diagnostics]\n  charts: [learning-curves]\n',
  );
  const root = temp('runs');
  const cells = expandGrid(loadExperiment(file));
  for (const [i, c] of cells.entries()) {
    const base = fixtureResult(c, { overall: prf(30 + 10 * i, 30, 30) });
    writeFixture(root, 'diag', c, {
      ...base,
      thresholds: { mode: 'tuned', used: 0.2, reference: prf(5, 5, 55), tuned: { threshold: 0.2, overall: base.metrics.overall! } },
      diagnostics: {
        predicted: 60 + 10 * i,
        goldScores: { count: 60, mean: 0.3, p10: 0.01, p25: 0.1, p50: 0.25 + 0.1 * i, p75: 0.5, p90: 0.7, max: 0.9, atThreshold: 0.4 },
        oracle: { gold: 60, reachable: 54, cutBySegments: 4, beyondSpanLimit: 2, recall: 0.9, f1: (2 * 0.9) / 1.9 },
      },
      curves: {
        trainLoss: [
          [100, 50 - i],
          [200, 20 - i],
        ],
        validation: [
          { step: 100, epoch: 1, f1: 0.1, referenceF1: 0, tunedF1: 0.1, threshold: 0.1, predicted: 10, goldScoreMedian: 0.05 },
          { step: 200, epoch: 1, f1: 0.3 + 0.1 * i, referenceF1: 0.1, tunedF1: 0.3, threshold: 0.2, predicted: 40, goldScoreMedian: 0.2 },
        ],
      },
    });
  }
  const doc = await buildReport(collect(file, { root, preset: null, set: [] }));
  const md = renderMarkdown(doc);
  // Mean ± std over the two seeds: predicted 60 and 70 -> 65 ± 7; oracle 2 * 0.9 / 1.9 = 94.74.
  const line = row(md, 'scholar-xl', 'sener', 'Diagnostics');
  const cellsOf = line.split('|').map((s) => s.trim());
  t.is(cellsOf[3], '14.29 ± 0.00', 'F1 at 0.5: tp 5, fp 5, fn 55 -> 10 / 70');
  t.is(cellsOf[4], '0.20 ± 0.00');
  t.is(cellsOf[6], '65 ± 7');
  t.is(cellsOf[8], '94.74 ± 0.00');
  t.regex(md, /\| sener \| 2 \| ok \|/, 'a row per seed');
  const images = doc.blocks.filter((b) => b.kind === 'image').map((b) => (b.kind === 'image' ? b.file : ''));
  t.deepEqual(images, ['learning-loss-scholar-xl.png', 'learning-f1-scholar-xl.png']);
  for (const b of doc.blocks) if (b.kind === 'image') t.true(pngSize(b.png).width > 0);
});
