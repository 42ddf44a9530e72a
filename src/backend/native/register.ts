/*
 * Registers the `native` backend with tfjs once per process: every stock cpu kernel under the new
 * name, with the native kernels (kernels-*.ts) in front of the hot ones, plus the fused kernels.
 * tfjs-backend-cpu and the cpu shims must be registered first, since their kernels are copied here.
 */
import * as tf from '@tensorflow/tfjs-core';
import { availableParallelism, totalmem } from 'node:os';
import { LongnerError } from '../../errors.js';
import { parseByteSize } from '../../util/bytes.js';
import type { NativeAddon } from './addon.js';
import { asNative, NATIVE_BACKEND, NativeBackend } from './backend.js';
import { FUSED_KERNELS } from './kernels-fused.js';
import { LAYOUT_KERNELS } from './kernels-layout.js';
import { MATH_KERNELS } from './kernels-math.js';
import { withFallback, type NativeKernel } from './kernel-util.js';

export const NATIVE_KERNELS: Readonly<Record<string, NativeKernel>> = { ...MATH_KERNELS, ...LAYOUT_KERNELS };

export interface NativeOptions {
  /** OpenMP threads for oneDNN and the kernels; default LONGNER_THREADS or the number of cores. */
  threads?: number;
  /** Bytes the output pool may keep free; default LONGNER_POOL_MB or a quarter of RAM. The pool also keeps at most twice the most bytes ever in use at once (pool.ts). */
  poolCapBytes?: number;
  /**
   * Live tensor bytes past which a kernel fails as out of memory (recorded as `oom`); default
   * LONGNER_MEMORY_BUDGET (e.g. `16GiB`, set by `--memory-budget`) or 3/4 of RAM, so that a run
   * that would swap or meet the kernel's OOM killer ends as a clean `oom` instead.
   */
  budgetBytes?: number;
}

/** The default budget: a share of RAM that leaves room for the OS and V8's heap. */
export const DEFAULT_BUDGET_SHARE = 0.75;

/** The default budget of one of `processes` runs or probes sharing the machine. */
export function defaultBudgetBytes(processes = 1): number {
  return Math.floor((DEFAULT_BUDGET_SHARE * totalmem()) / processes);
}

/**
 * Before starting `processes` runs or probes at once: unless the user set a budget, each gets an
 * equal share of the default (two probes with 3/4 of RAM each met the kernel's OOM killer).
 */
export function shareMemoryBudget(processes: number): void {
  if (processes > 1 && (process.env.LONGNER_MEMORY_BUDGET ?? '') === '') {
    process.env.LONGNER_MEMORY_BUDGET = String(defaultBudgetBytes(processes));
  }
}

function positiveEnv(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new LongnerError(`${name} must be a positive number, got '${raw}'`);
  return n;
}

function budgetEnv(): number | undefined {
  const raw = process.env.LONGNER_MEMORY_BUDGET;
  if (raw === undefined || raw === '') return undefined;
  const bytes = parseByteSize(raw);
  if (bytes === null) throw new LongnerError(`LONGNER_MEMORY_BUDGET (--memory-budget) must be a size such as 16GiB or 12000MB, got '${raw}'`);
  return bytes;
}

export function resolveNativeOptions(opts: NativeOptions = {}): Required<NativeOptions> {
  const threads = opts.threads ?? positiveEnv('LONGNER_THREADS') ?? availableParallelism();
  const poolMb = positiveEnv('LONGNER_POOL_MB');
  const budgetBytes = opts.budgetBytes ?? budgetEnv() ?? defaultBudgetBytes();
  const poolCapBytes = Math.min(budgetBytes, opts.poolCapBytes ?? (poolMb !== undefined ? poolMb * 2 ** 20 : totalmem() / 4));
  return { threads: Math.max(1, Math.floor(threads)), poolCapBytes, budgetBytes };
}

/** The options of the last registration; a backend instance made later (after removeBackend) uses them. */
let current: Required<NativeOptions> | undefined;

export function registerNativeBackend(addon: NativeAddon, opts: NativeOptions = {}): Required<NativeOptions> {
  const resolved = resolveNativeOptions(opts);
  addon.setThreads(resolved.threads);
  const first = current === undefined;
  current = resolved;
  if (!first) return resolved;
  tf.registerBackend(NATIVE_BACKEND, () => new NativeBackend(addon, current?.poolCapBytes ?? resolved.poolCapBytes), 0);
  for (const config of tf.getKernelsForBackend('cpu')) {
    const kernel = NATIVE_KERNELS[config.kernelName];
    tf.registerKernel({ ...config, backendName: NATIVE_BACKEND, kernelFunc: kernel ? withFallback(config.kernelName, kernel) : config.kernelFunc });
  }
  for (const [kernelName, kernel] of Object.entries(FUSED_KERNELS)) {
    tf.registerKernel({ kernelName, backendName: NATIVE_BACKEND, kernelFunc: (args) => kernel(args, asNative(args.backend)) });
  }
  return resolved;
}
