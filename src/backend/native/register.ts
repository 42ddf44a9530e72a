/*
 * Registers the `native` backend with tfjs once per process: every stock cpu kernel under the new
 * name, with the native kernels (kernels-*.ts) in front of the hot ones, plus the fused kernels.
 * tfjs-backend-cpu and the cpu shims must be registered first, since their kernels are copied here.
 */
import * as tf from '@tensorflow/tfjs-core';
import { availableParallelism, totalmem } from 'node:os';
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
  /** Bytes the output pool may keep free; default LONGNER_POOL_MB or an eighth of RAM (at most 4 GiB). */
  poolCapBytes?: number;
}

function positiveEnv(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got '${raw}'`);
  return n;
}

export function resolveNativeOptions(opts: NativeOptions = {}): Required<NativeOptions> {
  const threads = opts.threads ?? positiveEnv('LONGNER_THREADS') ?? availableParallelism();
  const poolMb = positiveEnv('LONGNER_POOL_MB');
  const poolCapBytes = opts.poolCapBytes ?? (poolMb !== undefined ? poolMb * 2 ** 20 : Math.min(4 * 2 ** 30, totalmem() / 8));
  return { threads: Math.max(1, Math.floor(threads)), poolCapBytes };
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
