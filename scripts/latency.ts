/**
 * Inference latency per document against input length, every span method side by side in one
 * process (the paper, section 5.4: SeNER's inference about as fast as CNN-NER's and about 20% faster
 * than UTC-IE's). One process and interleaved rounds: the methods share whatever else the machine is
 * doing, so the ratios hold even when the absolute times drift.
 *
 *   node dist/scripts/latency.js [--lengths 512,2048,8192] [--rounds 5] [--methods a,b] [--out reports/memory-frontier]
 *
 * Per length: the probe model of each method (experiments/memory-frontier.yaml: method config, the
 * shared encoder, a synthetic SciREX-like document in one segment, random weights), plus the
 * low-memory attention forms of SeNER and UTC-IE; one warm-up pass each, then `rounds` rounds of one
 * pass per method in turn; the median is the figure. A method whose pass runs out of the memory
 * budget is marked OOM at that length. Writes <out>/latency.md and latency.json.
 */
import { join } from 'node:path';
import { initBackend } from '../src/backend/index.js';
import { isOutOfMemory } from '../src/measure/oom.js';
import { buildProbeTask, loadMemorySettings, planMethods } from '../src/measure/memory-settings.js';
import { buildProbeStep, parseProbeTask, probeConfig, type ProbeStep } from '../src/measure/task.js';
import { writeFileAtomic, writeJsonAtomic } from '../src/util/atomic.js';
import { fromRoot } from '../src/util/paths.js';
import { markdownTable, textTable, type Cell } from '../src/util/table.js';
import { formatBytes } from '../src/util/bytes.js';

interface Args {
  lengths: number[];
  rounds: number;
  methods: string[] | undefined;
  out: string;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { lengths: [512, 2048, 8192], rounds: 5, methods: undefined, out: fromRoot('reports', 'memory-frontier') };
  for (let i = 0; i < argv.length; i += 2) {
    const [key, value] = [argv[i], argv[i + 1] ?? ''];
    if (key === '--lengths') args.lengths = value.split(',').map(Number);
    else if (key === '--rounds') args.rounds = Number(value);
    else if (key === '--methods') args.methods = value.split(',').filter((m) => m !== '');
    else if (key === '--out') args.out = value;
    else throw new Error(`latency: unknown argument ${key} (expected --lengths, --rounds, --methods, --out)`);
  }
  if (args.lengths.some((L) => !Number.isInteger(L) || L < 1)) throw new Error('latency: --lengths must be positive integers');
  if (!Number.isInteger(args.rounds) || args.rounds < 1) throw new Error('latency: --rounds must be a positive integer');
  return args;
}

/** A row of the table: a method, or a method with its low-memory attention switch. */
interface Variant {
  label: string;
  method: string;
  set: Record<string, unknown>;
}

function variantsOf(methods: readonly string[]): Variant[] {
  return methods.flatMap((method): Variant[] => {
    const plain = { label: method, method, set: {} };
    if (method === 'sener') return [plain, { label: 'sener (lowMemory)', method, set: { sener: { lowMemory: true } } }];
    if (method === 'utc-ie') return [plain, { label: 'utc-ie (lowMemory)', method, set: { utcIe: { lowMemory: true } } }];
    return [plain];
  });
}

interface Cellv {
  status: 'ok' | 'oom' | 'failed';
  reason: string | null;
  times: number[];
  median: number | null;
}

function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const settings = loadMemorySettings(fromRoot('experiments', 'memory-frontier.yaml'));
  const plans = planMethods(settings, args.methods);
  const backend = await initBackend('native', { quiet: true });
  const variants = variantsOf(plans.map((p) => p.method));
  const results = new Map<string, Cellv>();
  const key = (v: Variant, L: number): string => `${v.label}@${L}`;
  for (const L of args.lengths) {
    const steps = new Map<string, ProbeStep>();
    for (const v of variants) {
      const plan = plans.find((p) => p.method === v.method)!;
      const task = parseProbeTask(buildProbeTask(settings, plan, L, 'infer', { set: { ...v.set, backend: 'native' } }));
      const cell: Cellv = { status: 'ok', reason: null, times: [], median: null };
      results.set(key(v, L), cell);
      try {
        const step = buildProbeStep(probeConfig(task), task);
        step.step(); // warm-up: fills the buffer pool, faults pages in
        steps.set(v.label, step);
      } catch (err) {
        cell.status = isOutOfMemory(err) ? 'oom' : 'failed';
        cell.reason = err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err);
      }
      process.stderr.write(`latency: ${v.label} ${L} words: ${cell.status}\n`);
    }
    for (let r = 0; r < args.rounds; r++) {
      for (const v of variants) {
        const step = steps.get(v.label);
        if (step === undefined) continue;
        const started = performance.now();
        step.step();
        results.get(key(v, L))!.times.push(performance.now() - started);
      }
    }
    for (const [label, step] of steps) {
      step.model.params.dispose();
      results.get(`${label}@${L}`)!.median = median(results.get(`${label}@${L}`)!.times);
    }
  }

  const header = ['method', ...args.lengths.map((L) => `${L} words (ms)`), ...args.lengths.map((L) => `SeNER / method, ${L}`)];
  const ms = (label: string, L: number): number | null => results.get(`${label}@${L}`)?.median ?? null;
  const cells = variants.map((v): Cell[] => [
    v.label,
    ...args.lengths.map((L): Cell => {
      const c = results.get(key(v, L))!;
      return c.status === 'ok' ? Math.round(c.median!) : c.status === 'oom' ? 'OOM' : 'failed';
    }),
    ...args.lengths.map((L): Cell => {
      const ref = ms('sener', L);
      const mine = ms(v.label, L);
      return ref === null || mine === null || mine <= 0 ? '-' : (ref / mine).toFixed(2);
    }),
  ]);
  const md = [
    '# Inference latency per document against input length',
    '',
    `Made by \`node dist/scripts/latency.js --lengths ${args.lengths.join(',')} --rounds ${args.rounds}\` on ${new Date().toISOString().slice(0, 10)}; backend ${backend.detail}.`,
    '',
    "One process: per length, every method's probe model (experiments/memory-frontier.yaml: the method's SciREX config at the `cpu-long` preset, " +
      `the shared encoder ${JSON.stringify(settings.encoder)}, a synthetic SciREX-like document in one segment, random weights) gets one warm-up pass, ` +
      `then ${args.rounds} rounds of one inference pass (forward and decoding) per method in turn; the table gives the median. ` +
      '"lowMemory": the same method with its fused low-memory attention kernel. OOM: the pass did not fit the memory budget.',
    '',
    markdownTable(header, cells),
    '',
    'SeNER / method below 1: SeNER is faster. The paper (SciREX, A100): SeNER about as fast as CNN-NER and about 20% faster than UTC-IE (ratio about 0.8).',
    '',
  ].join('\n');
  writeFileAtomic(join(args.out, 'latency.md'), md);
  writeJsonAtomic(join(args.out, 'latency.json'), {
    createdAt: new Date().toISOString(),
    backend: backend.detail,
    lengths: args.lengths,
    rounds: args.rounds,
    encoder: settings.encoder,
    results: Object.fromEntries(results),
  });
  process.stdout.write(
    `${textTable(header, cells)}\n\nReport: ${join(args.out, 'latency.md')} (${formatBytes(process.memoryUsage().rss)} resident at the end)\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`latency: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
