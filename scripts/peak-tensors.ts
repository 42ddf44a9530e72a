/**
 * Which tensors are alive at the peak of a training step: the tool behind the low-memory work of the
 * memory frontier (docs/memory.md). Runs the memory experiment's probe (method config, shared
 * encoder, synthetic document in one segment) once to warm up, then once more while tracking every
 * tensor buffer, and prints the buffers alive at the step's high-water mark, grouped by the kernel
 * that made them, their shape, the code that asked for them, and whether they were made in the
 * forward or the backward pass.
 *
 *   node dist/scripts/peak-tensors.js --method sener --words 1024 [--set sener.lowMemory=true --set train.recompute=all] [--top 25] [--depth 2]
 *
 * Buffers are counted once per data id (a reshaped view shares its buffer), at 4 bytes per element
 * (bool tensors are overstated). Tracking patches tfjs's engine for this process only.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/index.js';
import { buildProbeTask, loadMemorySettings, planMethods } from '../src/measure/memory-settings.js';
import { buildProbeStep, parseProbeTask, probeConfig } from '../src/measure/task.js';
import { fromRoot } from '../src/util/paths.js';
import { textTable } from '../src/util/table.js';

interface Args {
  method: string;
  words: number;
  set: string[];
  top: number;
  depth: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { method: 'sener', words: 1024, set: [], top: 25, depth: 2 };
  for (let i = 0; i < argv.length; i += 2) {
    const [key, value] = [argv[i], argv[i + 1] ?? ''];
    if (key === '--method') args.method = value;
    else if (key === '--words') args.words = Number(value);
    else if (key === '--set') args.set.push(value);
    else if (key === '--top') args.top = Number(value);
    else if (key === '--depth') args.depth = Number(value);
    else throw new Error(`peak-tensors: unknown argument ${key} (expected --method, --words, --set k=v, --top, --depth)`);
  }
  return args;
}

/** The engine methods patched here (tfjs-core's engine.ts). */
interface EngineInternals {
  state: { tensorInfo: WeakMap<object, unknown> };
  runKernelFunc(params: { kernelName?: string }): unknown;
  trackTensor(t: tf.Tensor, backend: unknown): void;
  disposeTensor(t: tf.Tensor): void;
  gradients(...args: unknown[]): unknown;
}

/** Where in our code a tensor was asked for: the innermost `depth` frames under dist/src (backend/ left out). */
function origin(depth: number): string {
  const frames = (new Error().stack ?? '')
    .split('\n')
    .slice(2)
    .map((l) => l.trim());
  return frames
    .filter((l) => l.includes('/dist/src/') && !l.includes('/dist/src/backend/'))
    .slice(0, depth)
    .map((l) => l.replace(/.*dist\/src\//, '').replace(/\)$/, ''))
    .join(' < ');
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  Error.stackTraceLimit = 200;
  const settings = loadMemorySettings(fromRoot('experiments', 'memory-frontier.yaml'));
  const [plan] = planMethods(settings, [args.method]);
  const task = parseProbeTask({ ...buildProbeTask(settings, plan!, args.words, 'train', { set: { backend: 'native' } }), set: args.set });
  await initBackend('native', { quiet: true });
  const built = buildProbeStep(probeConfig(task), task);
  built.step();

  // The engine methods patched here are internal to tfjs-core (not in its typings).
  const engine = tf.engine() as unknown as EngineInternals;
  const live = new Map<object, { bytes: number; label: string }>();
  let total = 0;
  let peak = 0;
  let atPeak: Map<string, number> | null = null;
  let peakPending = false;
  let phase = 'forward';
  const kernels: string[] = [];
  const snapshot = (): Map<string, number> => {
    const groups = new Map<string, number>();
    for (const v of live.values()) groups.set(v.label, (groups.get(v.label) ?? 0) + v.bytes);
    return groups;
  };

  const runKernelFunc = engine.runKernelFunc.bind(engine);
  engine.runKernelFunc = (params) => {
    kernels.push(params.kernelName ?? 'custom op');
    try {
      return runKernelFunc(params);
    } finally {
      kernels.pop();
    }
  };
  const trackTensor = engine.trackTensor.bind(engine);
  engine.trackTensor = (t, backend) => {
    if (!live.has(t.dataId)) {
      live.set(t.dataId, { bytes: t.size * 4, label: `${phase.padEnd(8)} ${kernels[kernels.length - 1] ?? '-'} [${t.shape}] ${origin(args.depth)}` });
      total += t.size * 4;
      if (total > peak) [peak, peakPending] = [total, true];
    }
    trackTensor(t, backend);
  };
  const disposeTensor = engine.disposeTensor.bind(engine);
  engine.disposeTensor = (t) => {
    // The peak stands until the first buffer is freed after it.
    if (peakPending) [atPeak, peakPending] = [snapshot(), false];
    disposeTensor(t);
    if (!engine.state.tensorInfo.has(t.dataId) && live.has(t.dataId)) {
      total -= live.get(t.dataId)!.bytes;
      live.delete(t.dataId);
    }
  };
  const gradients = engine.gradients.bind(engine);
  engine.gradients = (f: unknown, ...rest: unknown[]) =>
    gradients(
      () => {
        const y = (f as () => tf.Tensor)();
        phase = 'backward';
        return y;
      },
      ...rest,
    );

  built.step();
  if (peakPending) atPeak = snapshot();
  const MiB = 2 ** 20;
  const rows = [...(atPeak ?? new Map<string, number>()).entries()].sort((a, b) => b[1] - a[1]);
  process.stdout.write(
    `${args.method}, ${args.words} words${args.set.length > 0 ? `, ${args.set.join(' ')}` : ''}: peak ${(peak / MiB).toFixed(0)} MiB of tensor buffers ` +
      `(${(peak / MiB / args.words).toFixed(2)} MiB per word)\n\n`,
  );
  process.stdout.write(
    `${textTable(
      ['MiB', 'pass / kernel / shape / made by'],
      rows.slice(0, args.top).map(([label, bytes]) => [(bytes / MiB).toFixed(1), label]),
    )}\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`peak-tensors: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
