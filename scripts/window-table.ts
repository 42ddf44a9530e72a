/**
 * SeNER's window trade-off in one table, from the runs of experiments/window-memory.yaml (one report
 * per window: reports/window-memory/<preset>/frontier.json): per w, the longest input a training step
 * fits in under the budget, and the training-step and inference times at the curve lengths.
 *
 *   node dist/scripts/window-table.js [--presets w32,w64,w128,w256]
 *
 * Writes reports/window-memory/summary.md and prints it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../src/util/atomic.js';
import { formatBytes } from '../src/util/bytes.js';
import { fromRoot } from '../src/util/paths.js';
import { markdownTable, type Cell } from '../src/util/table.js';

interface Probe {
  method: string;
  mode: string;
  words: number;
  status: string;
  ms: number | null;
  peakBytes: number | null;
}
interface Frontier {
  backendDetail: string | null;
  budgetBytes: number | null;
  createdAt: string;
  settings: { lengths: number[]; overrides: { sener?: { window?: number } } };
  methods: { method: string; measured: { maxOk: number | null; firstOom: number | null; end: string } | null }[];
  probes: Probe[];
}

function main(): void {
  const argv = process.argv.slice(2);
  const presets = argv[0] === '--presets' && argv[1] !== undefined ? argv[1].split(',') : ['w32', 'w64', 'w128', 'w256'];
  const dir = fromRoot('reports', 'window-memory');
  const found = presets
    .map((p) => ({ preset: p, file: join(dir, p, 'frontier.json') }))
    .filter((x) => existsSync(x.file))
    .map((x) => ({ ...x, data: JSON.parse(readFileSync(x.file, 'utf8')) as Frontier }));
  if (found.length === 0) throw new Error(`window-table: no reports under ${dir} (run longner memory experiments/window-memory.yaml --preset w32 etc.)`);
  const lengths = found[0]!.data.settings.lengths;
  const cell = (probes: Probe[], mode: string, L: number): Cell => {
    const p = probes.find((x) => x.mode === mode && x.words === L);
    if (p === undefined) return '-';
    return p.status === 'ok' && p.ms !== null ? Math.round(p.ms) : p.status === 'oom' ? 'OOM' : p.status;
  };
  const header = [
    'w',
    'longest that trains (words)',
    'first OOM',
    ...lengths.map((L) => `train step, ${L} words (ms)`),
    ...lengths.map((L) => `inference, ${L} words (ms)`),
  ];
  const rows = found.map(({ preset, data }): Cell[] => {
    const m = data.methods.find((x) => x.method === 'sener')?.measured ?? null;
    const probes = data.probes.filter((p) => p.method === 'sener');
    return [
      String(data.settings.overrides.sener?.window ?? preset),
      m?.maxOk ?? '-',
      m?.firstOom ?? '-',
      ...lengths.map((L) => cell(probes, 'train', L)),
      ...lengths.map((L) => cell(probes, 'infer', L)),
    ];
  });
  const first = found[0]!.data;
  const md = [
    "# SeNER's window trade-off: longest trainable input and time against w",
    '',
    `From \`longner memory experiments/window-memory.yaml --preset <w>\` (one report per window: ${found.map((f) => `[${f.preset}](${f.preset}/frontier.md)`).join(', ')}), ` +
      `summed up by \`node dist/scripts/window-table.js\`. SeNER with the low-memory BiSPA and recomputation, the shared encoder, ` +
      `w = the arrow window (tokens) and the BiSPA band (words) together; backend ${first.backendDetail ?? 'unknown'}` +
      `${first.budgetBytes === null ? '' : `; every probe under a budget of ${formatBytes(first.budgetBytes)}`}; one probe per process. ` +
      'Spans longer than w + 1 words cannot be represented.',
    '',
    markdownTable(header, rows),
    '',
  ].join('\n');
  writeFileAtomic(join(dir, 'summary.md'), md);
  process.stdout.write(md);
}

main();
