/**
 * Where a training step's (or inference pass's) time goes, per tfjs kernel, on one backend: the
 * tool that decides which kernels the native engine must make native (issue: "make native whatever
 * stays above a few percent").
 *
 *   node dist/scripts/profile.js --method sener --words 510 [--backend native] [--mode train] [--top 20] [--set k=v ...] [--steps 3]
 *
 * Runs the memory experiment's probe (experiments/memory-frontier.yaml: method config, synthetic
 * SciREX-like document, one segment) with the bench's encoder, one warm-up step, then one step under
 * tf.profile, and prints each kernel's total time, its share of the summed kernel time, and calls;
 * before that, the times of `--steps` unprofiled steps (default 3) and their median.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/index.js';
import { BACKENDS } from '../src/config/schema.js';
import { buildProbeTask, loadMemorySettings, planMethods } from '../src/measure/memory-settings.js';
import { buildProbeStep, parseProbeTask, probeConfig } from '../src/measure/task.js';
import { fromRoot } from '../src/util/paths.js';
import { textTable } from '../src/util/table.js';
import { BENCH_ENCODER } from './bench-encoder.js';

interface Args {
  method: string;
  words: number;
  backend: string;
  mode: 'train' | 'infer';
  top: number;
  /** `key.path=value` config overrides, as on the command line */
  set: string[];
  /** Unprofiled steps timed after the warm-up (the first steps still fill the pool and fault pages in). */
  steps: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { method: 'sener', words: 510, backend: 'native', mode: 'train', top: 20, set: [], steps: 3 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i],
      value = argv[i + 1] ?? '';
    if (key === '--method') args.method = value;
    else if (key === '--words') args.words = Number(value);
    else if (key === '--backend') args.backend = value;
    else if (key === '--mode' && (value === 'train' || value === 'infer')) args.mode = value;
    else if (key === '--top') args.top = Number(value);
    else if (key === '--set') args.set.push(value);
    else if (key === '--steps') args.steps = Number(value);
    else throw new Error(`profile: unknown argument ${key} (expected --method, --words, --backend, --mode train|infer, --top, --set k=v, --steps)`);
  }
  if (!Number.isInteger(args.steps) || args.steps < 1) throw new Error('profile: --steps must be a positive integer');
  if (!(BACKENDS as readonly string[]).includes(args.backend)) throw new Error(`profile: --backend must be one of ${BACKENDS.join(', ')}`);
  return args;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const settings = loadMemorySettings(fromRoot('experiments', 'memory-frontier.yaml'));
  const [plan] = planMethods(settings, [args.method]);
  if (plan === undefined) throw new Error(`profile: unknown method ${args.method}`);
  const task = parseProbeTask({
    ...buildProbeTask(settings, plan, args.words, args.mode, { encoder: BENCH_ENCODER, set: { backend: args.backend } }),
    set: args.set,
  });
  const config = probeConfig(task);
  const backend = await initBackend(config.backend);
  const probe = buildProbeStep(config, task);
  probe.step(); // warm-up: first-call costs (pool fill, page faults, JIT) are not the steady state
  const times: number[] = [];
  for (let i = 0; i < args.steps; i++) {
    const t0 = performance.now();
    probe.step();
    times.push(performance.now() - t0);
  }
  const wallMs = [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
  const info = await tf.profile(() => {
    probe.step();
  });
  const byKernel = new Map<string, { ms: number; calls: number }>();
  for (const k of info.kernels) {
    const entry = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
    entry.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    entry.calls++;
    byKernel.set(k.name, entry);
  }
  const total = [...byKernel.values()].reduce((s, e) => s + e.ms, 0);
  const rows = [...byKernel.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, args.top);
  process.stdout.write(`${args.method} ${args.mode}, ${probe.tokens} tokens, ${backend.detail}\n`);
  process.stdout.write(
    `unprofiled steps after a warm-up: ${times.map((t) => t.toFixed(0)).join(', ')} ms (median ${wallMs.toFixed(1)}); ` +
      `kernels sum to ${total.toFixed(1)} ms under tf.profile; peak ${(info.peakBytes / 2 ** 20).toFixed(1)} MiB\n\n`,
  );
  process.stdout.write(
    `${textTable(
      ['kernel', 'ms', 'share', 'calls'],
      rows.map(([name, e]) => [name, e.ms.toFixed(1), `${((100 * e.ms) / total).toFixed(1)}%`, e.calls]),
    )}\n`,
  );
}

await main();
