import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's Node bundle registers no gradients at all (tf.grads fails with "gradient function not
// found for Sum"); the @tensorflow/tfjs union bundle carries them and registers them on import.
import '@tensorflow/tfjs';
// Side-effect imports: each registers its backend and its stock kernels with tfjs-core.
import '@tensorflow/tfjs-backend-cpu';
// Under Node the wasm bundle finds its .wasm files next to itself (its own __dirname), so no setWasmPaths.
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { availableParallelism } from 'node:os';
import { LongnerError } from '../errors.js';
import { isWasmBackend } from './kernel-backend.js';
import { installShims, SHIMS } from './shims.js';
import { loadNativeAddon, NATIVE_INSTALL_HINT } from './native/addon.js';
import { NATIVE_BACKEND, NativeBackend } from './native/backend.js';
import { registerNativeBackend, resolveNativeOptions, type NativeOptions } from './native/register.js';
import { loadTensorflowPackage, tensorflowUnavailableMessage } from './tensorflow.js';
import { installGradientRelease } from './tape.js';

export type BackendName = 'tensorflow' | 'native' | 'wasm' | 'cpu';
export type BackendChoice = BackendName | 'auto';

/** Valid values of `--backend` and of the config key, `auto` first. */
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'tensorflow', 'native', 'wasm', 'cpu'];

export interface BackendInfo {
  name: BackendName;
  /** One line for logs and run records, e.g. `native (oneDNN 2.6.3, avx512_core_bf16, 2 threads, pool cap 3.00 GiB)`. */
  detail: string;
  /** The library doing the matrix products, e.g. `oneDNN 2.6.3` or `XNNPACK (wasm SIMD)`. */
  library: string;
  /** Compute threads of that library. */
  threads: number;
  /** Only for wasm. */
  simd?: boolean;
}

const AUTO_ORDER: readonly BackendName[] = ['tensorflow', 'native', 'wasm', 'cpu'];

let active: { choice: BackendChoice; info: BackendInfo } | undefined;
// initBackend calls run one after another: tfjs has a single global backend.
let queue: Promise<unknown> = Promise.resolve();

function isChoice(value: string): value is BackendChoice {
  return (BACKEND_CHOICES as readonly string[]).includes(value);
}

async function activateTensorflow(print: (line: string) => void, explicit: boolean): Promise<BackendInfo> {
  const load = await loadTensorflowPackage();
  if (!load.ok) {
    // In auto mode a missing package is the normal case here, but a broken install deserves a word.
    if (!explicit && load.broken.length > 0) print(`longner: warning: ${load.broken.join('; ')}; falling back`);
    throw new LongnerError(tensorflowUnavailableMessage(load));
  }
  if (tf.findBackendFactory('tensorflow') === null) {
    throw new LongnerError(
      `backend 'tensorflow' requested: ${load.packageName} loaded but did not register a 'tensorflow' backend with this @tensorflow/tfjs-core (run \`npm dedupe\` so that both use one copy)`,
    );
  }
  if (!(await tf.setBackend('tensorflow'))) {
    throw new LongnerError(`backend 'tensorflow' requested: ${load.packageName} is installed but failed to initialise (see the warning above)`);
  }
  return { name: 'tensorflow', detail: `tensorflow (${load.packageName})`, library: `libtensorflow (${load.packageName})`, threads: availableParallelism() };
}

async function activateNative(print: (line: string) => void, explicit: boolean, opts: NativeOptions): Promise<BackendInfo> {
  const load = loadNativeAddon();
  if (!load.ok) {
    if (!explicit) print(`longner: native engine unavailable (${load.reason}); using the next backend. To enable it, ${NATIVE_INSTALL_HINT}`);
    throw new LongnerError(`backend 'native' requested but ${load.reason}; ${NATIVE_INSTALL_HINT}`);
  }
  const resolved = registerNativeBackend(load.addon, opts);
  if (!(await tf.setBackend(NATIVE_BACKEND))) throw new LongnerError("backend 'native' failed to initialise (see the warning above)");
  const backend: unknown = tf.backend();
  if (backend instanceof NativeBackend) backend.setBudget(resolved.budgetBytes);
  const info = load.addon.info();
  const gib = (bytes: number): string => (bytes / 2 ** 30).toFixed(2);
  return {
    name: 'native',
    detail: `native (${info.library}, ${info.isa}, ${info.threads} thread${info.threads === 1 ? '' : 's'}, memory budget ${gib(resolved.budgetBytes)} GiB, pool cap ${gib(resolved.poolCapBytes)} GiB)`,
    library: info.library,
    threads: info.threads,
  };
}

async function activateWasm(): Promise<BackendInfo> {
  if (!(await tf.setBackend('wasm'))) {
    throw new LongnerError(
      "backend 'wasm' requested but it failed to initialise (see the warning above); reinstall @tensorflow/tfjs-backend-wasm or choose --backend cpu",
    );
  }
  const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
  const threads = getThreadsCount();
  const detail = `wasm (${simd ? 'SIMD' : 'no SIMD'}, ${threads} thread${threads === 1 ? '' : 's'}, shims: ${SHIMS.wasm.join(', ')})`;
  return { name: 'wasm', detail, simd, library: `XNNPACK (wasm${simd ? ' SIMD' : ''})`, threads };
}

async function activateCpu(): Promise<BackendInfo> {
  if (!(await tf.setBackend('cpu'))) throw new LongnerError("backend 'cpu' failed to initialise; reinstall @tensorflow/tfjs-backend-cpu");
  // The cpu backend prints a banner on its first tensor telling Node users to install tfjs-node. We have
  // already tried that, so the banner would only mislead; clearing its first-use flag skips it.
  const backend: unknown = tf.backend();
  if (backend !== null && typeof backend === 'object' && 'firstUse' in backend) (backend as { firstUse: boolean }).firstUse = false;
  return { name: 'cpu', detail: `cpu (pure JS reference, shims: ${SHIMS.cpu.join(', ')})`, library: 'JavaScript', threads: 1 };
}

function activate(name: BackendName, print: (line: string) => void, explicit: boolean, opts: NativeOptions): Promise<BackendInfo> {
  if (name === 'tensorflow') return activateTensorflow(print, explicit);
  if (name === 'native') return activateNative(print, explicit, opts);
  return name === 'wasm' ? activateWasm() : activateCpu();
}

async function select(choice: BackendChoice, quiet: boolean, opts: NativeOptions): Promise<BackendInfo> {
  if (active !== undefined && active.choice === choice && tf.getBackend() === active.info.name && opts.threads === undefined) return active.info;
  installShims();
  // Bad LONGNER_THREADS / LONGNER_MEMORY_BUDGET values are the user's error: raise them here, where
  // auto mode cannot mistake them for "the native engine is unavailable" and fall back.
  if (choice === 'auto' || choice === 'native') resolveNativeOptions(opts);
  const print = (line: string): void => {
    if (!quiet) process.stderr.write(`${line}\n`);
  };
  let info: BackendInfo | undefined;
  if (choice === 'auto') {
    for (const name of AUTO_ORDER) {
      try {
        info = await activate(name, print, false, opts);
        break;
      } catch (err) {
        if (!(err instanceof LongnerError)) throw err;
      }
    }
    if (info === undefined) throw new LongnerError(`no compute backend could be initialised (tried ${AUTO_ORDER.join(', ')})`);
  } else {
    info = await activate(choice, print, true, opts);
  }
  active = { choice, info };
  print(`longner: backend ${info.detail}`);
  return info;
}

/**
 * Chooses and initialises the TensorFlow.js backend, installing the kernel shims on first use.
 * `auto` tries tensorflow, then native, then wasm, then cpu; an explicit choice that cannot be met
 * throws a LongnerError that says what is missing. Repeating the current choice is a cheap no-op.
 * `threads` sets the native engine's threads (default LONGNER_THREADS or the number of cores).
 */
export async function initBackend(choice: BackendChoice = 'auto', opts: { quiet?: boolean; threads?: number } = {}): Promise<BackendInfo> {
  if (!isChoice(choice)) throw new LongnerError(`unknown backend '${String(choice)}' (expected one of ${BACKEND_CHOICES.join(', ')})`);
  const native: NativeOptions = opts.threads === undefined ? {} : { threads: opts.threads };
  installGradientRelease();
  const run = queue.then(() => select(choice, opts.quiet === true, native));
  queue = run.catch(() => undefined);
  return run;
}

/** The backend chosen by the last successful initBackend, if any. */
export function activeBackend(): BackendInfo | undefined {
  return active !== undefined && tf.getBackend() === active.info.name ? active.info : undefined;
}

export interface BackendMemory {
  /** Bytes held by live tensors (tf.memory().numBytes). */
  tfBytes: number;
  tfTensors: number;
  /** Size of the wasm heap: it grows to the peak and never shrinks, up to the 4 GiB wasm32 cap. */
  wasmHeapBytes?: number;
  /** Native engine: bytes kept free in its output pool. */
  poolFreeBytes?: number;
}

export function backendMemory(): BackendMemory {
  // tf.memory() would initialise a backend of tfjs's own choosing (without our shims) if none is set.
  if (!tf.getBackend()) return { tfBytes: 0, tfTensors: 0 };
  const { numBytes, numTensors } = tf.memory();
  const backend: unknown = tf.backend();
  if (isWasmBackend(backend)) return { tfBytes: numBytes, tfTensors: numTensors, wasmHeapBytes: backend.wasm.HEAPU8.length };
  if (backend instanceof NativeBackend) return { tfBytes: numBytes, tfTensors: numTensors, poolFreeBytes: backend.poolStats().freeBytes };
  return { tfBytes: numBytes, tfTensors: numTensors };
}

/**
 * On the native engine: starts a new high-water mark of live tensor buffers (at the bytes live now)
 * and returns a function that reads it. Each buffer counts once, views included, which is what the
 * memory budget counts. Null on other backends.
 */
export function watchBufferPeak(): (() => number) | null {
  const backend: unknown = tf.getBackend() ? tf.backend() : undefined;
  if (!(backend instanceof NativeBackend)) return null;
  backend.pool.resetPeak();
  return () => backend.poolStats().peakLiveBytes;
}

/**
 * Caps the bytes of live tensors on the native engine: past it a kernel fails with an
 * "out of memory" error, which runs and probes record as `oom`. null lifts the cap. Other backends
 * have their own limits (the wasm heap) and ignore it; returns whether a cap is now in force.
 */
export function setMemoryBudget(bytes: number | null): boolean {
  const backend: unknown = tf.getBackend() ? tf.backend() : undefined;
  if (!(backend instanceof NativeBackend)) return false;
  backend.setBudget(bytes);
  return bytes !== null;
}
