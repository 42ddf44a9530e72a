/**
 * `npm run bench`: speed and memory of every span method on this machine, at 512 and 2,048 tokens,
 * with the `cpu-long` preset's encoder (4 layers, hidden 256, 4 heads, FFN 1024), on the default backend.
 * Each figure comes from its own child process (src/measure/child.ts): a training step (loss,
 * gradients, clipping, AdamW) and an inference pass per method and length, each profiled once for
 * the peak, then timed unprofiled REPEATS times. An input that does not fit shows as OOM.
 *
 * Effective GFLOP/s: the encoder's training FLOPs, counted analytically (`encoderTrainFlops`), over
 * the whole training step's time. The step also runs the span head, embeddings, LayerNorms and the
 * optimizer, which are not counted, so this is a lower bound on the encoder's own throughput.
 *
 * Methods, their configs, the document shape and the seed come from experiments/memory-frontier.yaml,
 * so the bench measures what the memory experiment measures. Output: a table on stdout and
 * reports/bench/bench.md (plus bench.json).
 *
 *   node dist/scripts/bench.js [--lengths 512,2048] [--methods a,b] [--timeout 1800]
 */
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { buildProbeTask, loadMemorySettings, planMethods, type MethodPlan } from '../src/measure/memory-settings.js';
import type { Config } from '../src/config/schema.js';
import { runProbeInChild } from '../src/measure/child.js';
import { parseProbeTask, probeConfig, type ProbeResult } from '../src/measure/task.js';
import { formatBytes } from '../src/report/charts.js';
import { writeFileAtomic, writeJsonAtomic } from '../src/util/atomic.js';
import { fromRoot } from '../src/util/paths.js';
import { formatSeconds } from '../src/util/progress.js';
import { markdownTable, textTable, type Cell } from '../src/util/table.js';
import { BENCH_ENCODER } from './bench-encoder.js';

/** Timed (unprofiled) repetitions per probe, averaged: the machine may be shared, and one step is noisy. */
const REPEATS = 3;

/** The `cpu-long` preset's encoder (configs/presets/cpu-long.yaml, research/backends.md 1c). */
const CPU_ENCODER = BENCH_ENCODER;

/**
 * Key-query pairs an attention pattern scores for T tokens (position 0 is [CLS]):
 * full T^2; window: query i sees keys j with |i - j| <= w; arrow (SeNER): [CLS] sees all T keys,
 * every other query sees its window without position 0, plus the [CLS] key.
 */
export function attentionPairs(T: number, kind: 'full' | 'window' | 'arrow', w: number): number {
  if (kind === 'full') return T * T;
  let pairs = 0;
  for (let i = 0; i < T; i++) {
    const lo = Math.max(0, i - w);
    const hi = Math.min(T - 1, i + w);
    if (kind === 'window' || i === 0) {
      pairs += kind === 'arrow' ? T : hi - lo + 1;
    } else {
      // Window without [CLS], then the [CLS] key itself.
      pairs += hi - Math.max(1, lo) + 1 + 1;
    }
  }
  return pairs;
}

/**
 * FLOPs of one training step of the encoder on T tokens (a multiply-add counts as 2 FLOPs).
 * Per layer, forward:
 *   projections Q, K, V, O      4 x 2 T H^2
 *   attention   S = Q K^T, P V  2 x 2 P_att H      (P_att = attentionPairs; per head d = H / heads, summed over heads)
 *   feed-forward                2 x 2 T H F
 *   LoRA on Q and V (SeNER)     2 x (2 T H r + 2 T r H)
 * Training = forward + backward. The backward of a product takes two products of the same size
 * (input and weight gradients), so a trained weight costs 3x its forward; a frozen weight (SeNER's
 * encoder under LoRA) needs only the input gradient, 2x; the attention products have two activation
 * operands, 3x. Embedding lookups, LayerNorm, softmax, GELU and the optimizer are not counted.
 */
export function encoderTrainFlops(config: Config, T: number): { forward: number; train: number } {
  const { layers, hidden: H, ffn: F, attention, window } = config.encoder;
  const lora = config.method === 'sener' ? config.sener.lora : null;
  const r = lora?.rank ?? 0;
  const dense = 8 * T * H * H + 4 * T * H * F;
  const att = 4 * attentionPairs(T, attention, window) * H;
  const adapters = lora === null ? 0 : 8 * T * H * r;
  const forward = layers * (dense + att + adapters);
  const train = layers * ((lora === null ? 3 : 2) * dense + 3 * att + 3 * adapters);
  return { forward, train };
}

interface Args {
  lengths: number[];
  methods?: string[];
  timeoutMs: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { lengths: [512, 2048], timeoutMs: 30 * 60 * 1000 };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    switch (argv[i]) {
      case '--lengths':
        args.lengths = (value ?? '').split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0);
        i++;
        break;
      case '--methods':
        args.methods = (value ?? '').split(',').filter((m) => m !== '');
        i++;
        break;
      case '--timeout':
        args.timeoutMs = Number(value) * 1000;
        i++;
        break;
      default:
        throw new Error(`bench: unknown argument ${argv[i]} (expected --lengths, --methods, --timeout)`);
    }
  }
  if (args.lengths.length === 0) throw new Error('bench: --lengths needs positive integers, e.g. 512,2048');
  return args;
}

interface Row {
  method: string;
  attention: string;
  tokens: number;
  train: ProbeResult;
  infer: ProbeResult;
  flops: { forward: number; train: number };
}

function cellOf(r: ProbeResult, value: number | null, format: (v: number) => Cell): Cell {
  if (r.status === 'oom') return 'OOM';
  if (r.status === 'failed') return r.reason?.startsWith('timeout') === true ? 'timeout' : 'failed';
  return value === null ? '-' : format(value);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const settings = loadMemorySettings(fromRoot('experiments', 'memory-frontier.yaml'));
  const plans: MethodPlan[] = planMethods(settings, args.methods);
  const rows: Row[] = [];
  for (const plan of plans) {
    for (const words of args.lengths) {
      // `words` is the segment's content; the bench reports tokens with [CLS] and [SEP].
      const taskOf = (mode: 'train' | 'infer') => buildProbeTask(settings, plan, words - 2, mode, { encoder: CPU_ENCODER, repeats: REPEATS });
      const config = probeConfig(parseProbeTask(taskOf('train')));
      const train = await runProbeInChild(taskOf('train'), { timeoutMs: args.timeoutMs });
      process.stderr.write(`bench: ${plan.method} ${words} train: ${train.status} ${train.ms === null ? '' : `${Math.round(train.ms)} ms`}\n`);
      const infer = await runProbeInChild(taskOf('infer'), { timeoutMs: args.timeoutMs });
      process.stderr.write(`bench: ${plan.method} ${words} infer: ${infer.status} ${infer.ms === null ? '' : `${Math.round(infer.ms)} ms`}\n`);
      rows.push({ method: plan.method, attention: config.encoder.attention, tokens: words, train, infer, flops: encoderTrainFlops(config, words) });
    }
  }

  const backend = rows.map((r) => r.train.backendDetail ?? r.infer.backendDetail).find((d) => d !== null) ?? 'unknown';
  const header = ['method', 'attention', 'tokens', 'train step (ms)', 'inference (ms/doc)', 'peak train', 'peak infer', 'encoder train GFLOP', 'effective GFLOP/s'];
  const cells = rows.map((r): Cell[] => [
    r.method,
    r.attention,
    r.tokens,
    cellOf(r.train, r.train.ms, Math.round),
    cellOf(r.infer, r.infer.ms, Math.round),
    cellOf(r.train, r.train.peakBytes, formatBytes),
    cellOf(r.infer, r.infer.peakBytes, formatBytes),
    (r.flops.train / 1e9).toFixed(2),
    cellOf(r.train, r.train.ms, (ms) => (r.flops.train / (ms / 1000) / 1e9).toFixed(2)),
  ]);
  const cpu = cpus()[0]?.model.trim() ?? 'unknown cpu';
  const machine = `${cpus().length} cores (${cpu}), ${formatBytes(totalmem())} RAM, Node ${process.version}, ${process.platform}-${process.arch}`;
  const date = new Date().toISOString();
  const wall = (Date.now() - started) / 1000;
  process.stdout.write(`${textTable(header, cells)}\n\nbackend ${backend}; ${machine}; wall time ${formatSeconds(wall)}\n`);

  const md = [
    '# Benchmark: span methods at 512 and 2,048 tokens',
    '',
    `Run ${date.slice(0, 16).replace('T', ' ')} UTC by \`npm run bench\` (scripts/bench.ts). Backend: ${backend}. Machine: ${machine}. Wall time ${formatSeconds(wall)}.`,
    '',
    `Encoder: the cpu-long preset's (${CPU_ENCODER.layers} layers, hidden ${CPU_ENCODER.hidden}, ${CPU_ENCODER.heads} heads, FFN ${CPU_ENCODER.ffn}), random weights; ` +
      'attention pattern and span head from each method\'s config (experiments/memory-frontier.yaml lists them). ' +
      'One synthetic document per probe, one segment of the given number of tokens ([CLS] and [SEP] included), batch 1, each probe in its own process.',
    '',
    markdownTable(header, cells),
    '',
    `- train step: one training step (loss, gradients, global-norm clipping, AdamW update): the mean of ${REPEATS} unprofiled steps after the profiled one.`,
    `- inference: one forward pass and decoding of the document, the mean of ${REPEATS} passes after the profiled one.`,
    '- peak: tf.profile\'s peak of live tensor bytes in the step, weights and optimizer moments included.',
    '- encoder train GFLOP: per layer, forward = 8TH^2 (Q, K, V, O) + 4THF (FFN) + 4PH (scores and weighted sum over the P key-query pairs of the ' +
      'attention pattern: T^2 for full; window plus [CLS] for arrow) + 8THr (LoRA, SeNER); training = 3x forward for trained weights and for attention, ' +
      '2x for frozen weights (SeNER\'s encoder under LoRA needs only input gradients).',
    '- effective GFLOP/s: encoder train FLOPs / train step time. The step also runs the span head, embeddings, LayerNorms and AdamW, so it is a lower bound on the encoder\'s own rate.',
    '- OOM: the step ran out of memory (on wasm: the 4 GiB heap).',
    '',
  ].join('\n');
  const dir = fromRoot('reports', 'bench');
  writeFileAtomic(join(dir, 'bench.md'), md);
  writeJsonAtomic(join(dir, 'bench.json'), {
    date,
    backend,
    machine: { cores: cpus().length, cpu, memoryBytes: totalmem(), node: process.version, platform: `${process.platform}-${process.arch}` },
    encoder: CPU_ENCODER,
    wallSeconds: wall,
    rows: rows.map((r) => ({ method: r.method, attention: r.attention, tokens: r.tokens, flops: r.flops, train: r.train, infer: r.infer })),
  });
  process.stdout.write(`wrote reports/bench/bench.md\n`);
}

await main();
