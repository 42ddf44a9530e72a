/**
 * `npm run bench`: the compute backends side by side on this machine (native beside wasm by default),
 * in one run:
 * 1. the sgemm rate of oneDNN through the native addon (the ceiling the engine is judged against);
 * 2. one encoder layer's training step at 512 and 2,048 tokens (scripts/encoder-step.ts), per backend;
 * 3. every span method's training step and inference pass at 512 and 2,048 tokens with the `cpu-long`
 *    preset's encoder (4 layers, hidden 256, 4 heads, FFN 1024) and the method's reference head
 *    sizes (SeNER: w = 128 words, depth 2, cnnDim 32, biaffine 100), per backend.
 * Each step figure comes from its own child process (src/measure/child.ts), profiled once for the
 * peak, then timed unprofiled REPEATS times. An input that does not fit shows as OOM.
 *
 * Effective GFLOP/s: the encoder's training FLOPs, counted analytically (`encoderTrainFlops`), over
 * the whole training step's time. The step also runs the span head, embeddings, LayerNorms and the
 * optimizer, which are not counted, so this is a lower bound on the encoder's own throughput.
 *
 * Methods, their configs, the document shape and the seed come from experiments/memory-frontier.yaml,
 * so the bench measures what the memory experiment measures. Output: a table on stdout and
 * reports/bench/bench.md (plus bench.json).
 *
 *   node dist/scripts/bench.js [--backends native,wasm] [--lengths 512,2048] [--methods a,b] [--timeout 1800]
 */
import { spawnSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadNativeAddon } from '../src/backend/native/addon.js';
import { buildProbeTask, loadMemorySettings, planMethods, type MethodPlan } from '../src/measure/memory-settings.js';
import type { Config } from '../src/config/schema.js';
import { runProbeInChild } from '../src/measure/child.js';
import { parseProbeTask, probeConfig, type ProbeResult } from '../src/measure/task.js';
import { writeFileAtomic, writeJsonAtomic } from '../src/util/atomic.js';
import { fromRoot } from '../src/util/paths.js';
import { formatSeconds } from '../src/util/progress.js';
import { markdownTable, textTable, type Cell } from '../src/util/table.js';
import { BENCH_ENCODER } from './bench-encoder.js';
import { formatBytes } from '../src/util/bytes.js';

/** Timed (unprofiled) repetitions per probe, averaged: the machine may be shared, and one step is noisy. */
const REPEATS = 3;

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
  backends: string[];
  lengths: number[];
  methods?: string[];
  timeoutMs: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { backends: ['native', 'wasm'], lengths: [512, 2048], timeoutMs: 30 * 60 * 1000 };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    switch (argv[i]) {
      case '--backends':
        args.backends = (value ?? '').split(',').filter((b) => b !== '');
        i++;
        break;
      case '--lengths':
        args.lengths = (value ?? '')
          .split(',')
          .map(Number)
          .filter((n) => Number.isInteger(n) && n > 0);
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
        throw new Error(`bench: unknown argument ${argv[i]} (expected --backends, --lengths, --methods, --timeout)`);
    }
  }
  if (args.lengths.length === 0) throw new Error('bench: --lengths needs positive integers, e.g. 512,2048');
  if (args.backends.length === 0) throw new Error('bench: --backends needs at least one backend, e.g. native,wasm');
  return args;
}

interface GemmRow {
  shape: string;
  flops: number;
  medianGflops: number;
  bestGflops: number;
}

/** oneDNN sgemm through the addon, in this process: the rate the engine's products can reach here. */
function measureSgemm(): { threads: number; rows: GemmRow[] } | null {
  const load = loadNativeAddon();
  if (!load.ok) return null;
  const addon = load.addon;
  const shapes: [string, number, number, number, number, number][] = [
    ['[512x256] x [256x1024]', 512, 1024, 256, 0, 0],
    ['[512x1024] x [256x1024]^T (dX = dY W^T)', 512, 256, 1024, 0, 1],
    ['[512x256]^T x [512x1024] (dW = X^T dY)', 256, 1024, 512, 1, 0],
    ['[2048x256] x [256x1024]', 2048, 1024, 256, 0, 0],
  ];
  const rows = shapes.map(([shape, m, n, k, tA, tB]): GemmRow => {
    const a = new Float32Array(m * k).map((_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
    const b = new Float32Array(k * n).map((_, i) => ((i * 104729) % 1000) / 1000 - 0.5);
    const c = new Float32Array(m * n);
    const flops = 2 * m * n * k;
    for (let r = 0; r < 3; r++) addon.gemm(a, b, c, 1, 1, m, n, k, tA, tB);
    const rates: number[] = [];
    for (let r = 0; r < 30; r++) {
      const t0 = performance.now();
      addon.gemm(a, b, c, 1, 1, m, n, k, tA, tB);
      rates.push(flops / ((performance.now() - t0) / 1000) / 1e9);
    }
    rates.sort((x, y) => x - y);
    return { shape, flops, medianGflops: rates[Math.floor(rates.length / 2)]!, bestGflops: rates[rates.length - 1]! };
  });
  return { threads: addon.info().threads, rows };
}

interface LayerStep {
  backend: string;
  detail: string | null;
  tokens: number;
  medianMs: number | null;
  flops: number;
  error: string | null;
}

/** scripts/encoder-step.ts in a fresh process. */
function measureLayerStep(backend: string, tokens: number, timeoutMs: number): LayerStep {
  const script = fileURLToPath(new URL('./encoder-step.js', import.meta.url));
  const out = spawnSync(process.execPath, [script, '--backend', backend, '--tokens', String(tokens), '--repeats', '5'], {
    encoding: 'utf8',
    timeout: timeoutMs,
  });
  const line = out.stdout.trim().split('\n').pop() ?? '';
  try {
    const parsed = JSON.parse(line) as { detail: string; medianMs: number; flops: number };
    return { backend, detail: parsed.detail, tokens, medianMs: parsed.medianMs, flops: parsed.flops, error: null };
  } catch {
    const reason = (
      out.stderr
        .trim()
        .split('\n')
        .find((l) => /Error/.test(l)) ?? `exit ${out.status}`
    ).slice(0, 200);
    return { backend, detail: null, tokens, medianMs: null, flops: 0, error: reason };
  }
}

interface Row {
  backend: string;
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

function ratio(a: number | null | undefined, b: number | null | undefined): Cell {
  return a === null || a === undefined || b === null || b === undefined || a <= 0 ? '-' : `${(b / a).toFixed(1)}x`;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const settings = loadMemorySettings(fromRoot('experiments', 'memory-frontier.yaml'));
  const plans: MethodPlan[] = planMethods(settings, args.methods);
  const log = (line: string): void => void process.stderr.write(`bench: ${line}\n`);

  const sgemm = measureSgemm();
  if (sgemm === null) log('native addon not built: no sgemm rate (see the README on the native engine)');
  else for (const g of sgemm.rows) log(`sgemm ${g.shape}: ${g.medianGflops.toFixed(1)} GFLOP/s median`);
  const sgemmRate = sgemm?.rows[0]?.medianGflops ?? null;

  const layers: LayerStep[] = [];
  for (const tokens of args.lengths) {
    for (const backend of args.backends) {
      const r = measureLayerStep(backend, tokens, args.timeoutMs);
      log(`encoder layer ${backend} ${tokens}: ${r.medianMs === null ? r.error : `${r.medianMs.toFixed(1)} ms`}`);
      layers.push(r);
    }
  }

  const rows: Row[] = [];
  for (const plan of plans) {
    for (const words of args.lengths) {
      for (const backend of args.backends) {
        // `words` is the segment's content; the bench reports tokens with [CLS] and [SEP].
        const taskOf = (mode: 'train' | 'infer') =>
          buildProbeTask(settings, plan, words - 2, mode, { encoder: CPU_ENCODER, repeats: REPEATS, set: { backend } });
        const config = probeConfig(parseProbeTask(taskOf('train')));
        const train = await runProbeInChild(taskOf('train'), { timeoutMs: args.timeoutMs });
        log(`${backend} ${plan.method} ${words} train: ${train.status} ${train.ms === null ? (train.reason ?? '') : `${Math.round(train.ms)} ms`}`);
        const infer = await runProbeInChild(taskOf('infer'), { timeoutMs: args.timeoutMs });
        log(`${backend} ${plan.method} ${words} infer: ${infer.status} ${infer.ms === null ? (infer.reason ?? '') : `${Math.round(infer.ms)} ms`}`);
        rows.push({ backend, method: plan.method, attention: config.encoder.attention, tokens: words, train, infer, flops: encoderTrainFlops(config, words) });
      }
    }
  }

  const cpu = cpus()[0]?.model.trim() ?? 'unknown cpu';
  const machine = `${cpus().length} cores (${cpu}), ${formatBytes(totalmem())} RAM, Node ${process.version}, ${process.platform}-${process.arch}`;
  const details = [
    ...new Set([...layers.map((l) => l.detail), ...rows.map((r) => r.train.backendDetail ?? r.infer.backendDetail)].filter((d): d is string => d !== null)),
  ];
  const date = new Date().toISOString();
  const wall = (Date.now() - started) / 1000;

  const gemmHeader = ['product', 'GFLOP/s median', 'GFLOP/s best'];
  const gemmCells = (sgemm?.rows ?? []).map((g): Cell[] => [g.shape, g.medianGflops.toFixed(1), g.bestGflops.toFixed(1)]);

  const wasmLayer = (tokens: number): LayerStep | undefined => layers.find((l) => l.backend === 'wasm' && l.tokens === tokens);
  const layerHeader = ['backend', 'tokens', 'train step (ms)', 'vs wasm', 'layer GFLOP', 'effective GFLOP/s', 'share of sgemm rate'];
  const layerCells = layers.map((l): Cell[] => {
    const gflops = l.medianMs === null ? null : l.flops / (l.medianMs / 1000) / 1e9;
    return [
      l.backend,
      l.tokens,
      l.medianMs === null ? (l.error ?? 'failed') : l.medianMs.toFixed(1),
      l.backend === 'wasm' ? '1.0x' : ratio(l.medianMs, wasmLayer(l.tokens)?.medianMs),
      (l.flops / 1e9).toFixed(2),
      gflops === null ? '-' : gflops.toFixed(1),
      gflops === null || sgemmRate === null ? '-' : `${Math.round((100 * gflops) / sgemmRate)}%`,
    ];
  });

  const wasmRow = (r: Row): Row | undefined => rows.find((w) => w.backend === 'wasm' && w.method === r.method && w.tokens === r.tokens);
  const header = [
    'backend',
    'method',
    'attention',
    'tokens',
    'train step (ms)',
    'vs wasm',
    'inference (ms/doc)',
    'vs wasm',
    'peak train',
    'peak infer',
    'RSS train',
    'effective GFLOP/s',
  ];
  const cells = rows.map((r): Cell[] => [
    r.backend,
    r.method,
    r.attention,
    r.tokens,
    cellOf(r.train, r.train.ms, Math.round),
    r.backend === 'wasm' ? '' : ratio(r.train.ms, wasmRow(r)?.train.ms),
    cellOf(r.infer, r.infer.ms, Math.round),
    r.backend === 'wasm' ? '' : ratio(r.infer.ms, wasmRow(r)?.infer.ms),
    cellOf(r.train, r.train.peakBytes, formatBytes),
    cellOf(r.infer, r.infer.peakBytes, formatBytes),
    r.train.rssBytes === null ? '-' : formatBytes(r.train.rssBytes),
    cellOf(r.train, r.train.ms, (ms) => (r.flops.train / (ms / 1000) / 1e9).toFixed(2)),
  ]);
  process.stdout.write(
    `${textTable(gemmHeader, gemmCells)}\n\n${textTable(layerHeader, layerCells)}\n\n${textTable(header, cells)}\n\n` +
      `backends: ${details.join('; ')}\n${machine}; wall time ${formatSeconds(wall)}\n`,
  );

  const md = [
    '# Benchmark: the compute backends side by side',
    '',
    `Run ${date.slice(0, 16).replace('T', ' ')} UTC by \`npm run bench\` (scripts/bench.ts). Machine: ${machine}. Wall time ${formatSeconds(wall)}.`,
    '',
    'Backends:',
    '',
    ...details.map((d) => `- ${d}`),
    '',
    `## sgemm through the native addon (oneDNN, ${sgemm?.threads ?? '-'} threads)`,
    '',
    sgemm === null ? 'Not measured: the native addon is not built here.' : markdownTable(gemmHeader, gemmCells),
    '',
    `The sgemm rate below is the median of the first product (${sgemm?.rows[0]?.shape ?? '-'}): ${sgemmRate === null ? '-' : `${sgemmRate.toFixed(1)} GFLOP/s`}.`,
    '',
    "## One encoder layer's training step",
    '',
    'scripts/encoder-step.ts: token embedding 8,000 x 256, one pre-LN layer (hidden 256, 4 heads, FFN 1,024, full attention, RoPE, tanh GELU), ' +
      'masked-LM head on 15% of the positions, gradients, clipping and AdamW; the median of 5 steps after a warm-up, each backend in its own process. ' +
      "Layer GFLOP: the layer's products, 3 x (8TH^2 + 4THF + 4T^2H); embedding, head, norms and the optimizer are not counted, so the effective rate is a lower bound.",
    '',
    markdownTable(layerHeader, layerCells),
    '',
    '## Span methods',
    '',
    `Encoder: the cpu-long preset's (${CPU_ENCODER.layers} layers, hidden ${CPU_ENCODER.hidden}, ${CPU_ENCODER.heads} heads, FFN ${CPU_ENCODER.ffn}), random weights; ` +
      "attention pattern and span head from each method's config at its reference sizes (experiments/memory-frontier.yaml lists them). " +
      'One synthetic document per probe, one segment of the given number of tokens ([CLS] and [SEP] included), batch 1, each probe in its own process.',
    '',
    markdownTable(header, cells),
    '',
    `- train step: one training step (loss, gradients, global-norm clipping, AdamW update): the mean of ${REPEATS} unprofiled steps after the profiled one; "vs wasm" = wasm time / this time ("-" where wasm ran out of memory).`,
    `- inference: one forward pass and decoding of the document, the mean of ${REPEATS} passes after the profiled one.`,
    "- peak: tf.profile's peak of live tensor bytes in the step, weights and optimizer moments included. tfjs counts a buffer once for every tensor that views it (a reshape shares its input's buffer), so this can exceed both the resident set and the native memory budget, which counts each buffer once, without an OOM. RSS train: the peak resident set of the training probe's process.",
    '- effective GFLOP/s: encoder train FLOPs (per layer 8TH^2 + 4THF + 4PH over the P key-query pairs of the attention pattern, + 8THr for LoRA; ' +
      'training = 3x forward, 2x for frozen weights) / train step time. The step also runs the span head, embeddings, LayerNorms and AdamW, so it is a lower bound.',
    '- OOM: the step ran out of memory (wasm: the 4 GiB heap; native: the memory budget, 3/4 of RAM by default).',
    '',
  ].join('\n');
  const dir = fromRoot('reports', 'bench');
  writeFileAtomic(join(dir, 'bench.md'), md);
  writeJsonAtomic(join(dir, 'bench.json'), {
    date,
    backends: details,
    machine: { cores: cpus().length, cpu, memoryBytes: totalmem(), node: process.version, platform: `${process.platform}-${process.arch}` },
    encoder: CPU_ENCODER,
    wallSeconds: wall,
    sgemm,
    encoderLayer: layers,
    rows: rows.map((r) => ({ backend: r.backend, method: r.method, attention: r.attention, tokens: r.tokens, flops: r.flops, train: r.train, infer: r.infer })),
  });
  process.stdout.write(`wrote reports/bench/bench.md\n`);
}

await main();
