import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's Node bundle registers no gradients at all (tf.grads fails with "gradient function not
// found for Sum"); the @tensorflow/tfjs union bundle carries them and registers them on import.
import '@tensorflow/tfjs';
// Side-effect imports: each registers its backend and its stock kernels with tfjs-core.
import '@tensorflow/tfjs-backend-cpu';
// Under Node the wasm bundle finds its .wasm files next to itself (its own __dirname), so no setWasmPaths.
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { LongnerError } from '../errors.js';
import { isWasmBackend } from './kernel-backend.js';
import { installShims, SHIMS } from './shims.js';
import { loadTensorflowPackage, tensorflowUnavailableMessage } from './tensorflow.js';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
export type BackendChoice = BackendName | 'auto';

/** Valid values of `--backend` and of the config key, `auto` first. */
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'tensorflow', 'wasm', 'cpu'];

export interface BackendInfo {
  name: BackendName;
  /** One line for logs and run records, e.g. `wasm (SIMD, 1 thread, shims: BatchMatMul override, UnsortedSegmentSum)`. */
  detail: string;
  /** Only for wasm. */
  simd?: boolean;
}

const AUTO_ORDER: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

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
    throw new LongnerError(`backend 'tensorflow' requested: ${load.packageName} loaded but did not register a 'tensorflow' backend with this @tensorflow/tfjs-core (run \`npm dedupe\` so that both use one copy)`);
  }
  if (!(await tf.setBackend('tensorflow'))) {
    throw new LongnerError(`backend 'tensorflow' requested: ${load.packageName} is installed but failed to initialise (see the warning above)`);
  }
  return { name: 'tensorflow', detail: `tensorflow (${load.packageName})` };
}

async function activateWasm(): Promise<BackendInfo> {
  if (!(await tf.setBackend('wasm'))) {
    throw new LongnerError("backend 'wasm' requested but it failed to initialise (see the warning above); reinstall @tensorflow/tfjs-backend-wasm or choose --backend cpu");
  }
  const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
  const threads = getThreadsCount();
  const detail = `wasm (${simd ? 'SIMD' : 'no SIMD'}, ${threads} thread${threads === 1 ? '' : 's'}, shims: ${SHIMS.wasm.join(', ')})`;
  return { name: 'wasm', detail, simd };
}

async function activateCpu(): Promise<BackendInfo> {
  if (!(await tf.setBackend('cpu'))) throw new LongnerError("backend 'cpu' failed to initialise; reinstall @tensorflow/tfjs-backend-cpu");
  // The cpu backend prints a banner on its first tensor telling Node users to install tfjs-node. We have
  // already tried that, so the banner would only mislead; clearing its first-use flag skips it.
  const backend: unknown = tf.backend();
  if (backend !== null && typeof backend === 'object' && 'firstUse' in backend) (backend as { firstUse: boolean }).firstUse = false;
  return { name: 'cpu', detail: `cpu (pure JS reference, shims: ${SHIMS.cpu.join(', ')})` };
}

function activate(name: BackendName, print: (line: string) => void, explicit: boolean): Promise<BackendInfo> {
  if (name === 'tensorflow') return activateTensorflow(print, explicit);
  return name === 'wasm' ? activateWasm() : activateCpu();
}

async function select(choice: BackendChoice, quiet: boolean): Promise<BackendInfo> {
  if (active !== undefined && active.choice === choice && tf.getBackend() === active.info.name) return active.info;
  installShims();
  const print = (line: string): void => {
    if (!quiet) process.stderr.write(line + '\n');
  };
  let info: BackendInfo | undefined;
  if (choice === 'auto') {
    for (const name of AUTO_ORDER) {
      try {
        info = await activate(name, print, false);
        break;
      } catch (err) {
        if (!(err instanceof LongnerError)) throw err;
      }
    }
    if (info === undefined) throw new LongnerError('no compute backend could be initialised (tried tensorflow, wasm, cpu)');
  } else {
    info = await activate(choice, print, true);
  }
  active = { choice, info };
  print(`longner: backend ${info.detail}`);
  return info;
}

/**
 * Chooses and initialises the TensorFlow.js backend, installing the kernel shims on first use.
 * `auto` tries tensorflow, then wasm, then cpu; an explicit choice that cannot be met throws a
 * LongnerError that says what is missing. Repeating the current choice is a cheap no-op.
 */
export async function initBackend(choice: BackendChoice = 'auto', opts: { quiet?: boolean } = {}): Promise<BackendInfo> {
  if (!isChoice(choice)) throw new LongnerError(`unknown backend '${String(choice)}' (expected one of ${BACKEND_CHOICES.join(', ')})`);
  const run = queue.then(() => select(choice, opts.quiet === true));
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
}

export function backendMemory(): BackendMemory {
  // tf.memory() would initialise a backend of tfjs's own choosing (without our shims) if none is set.
  if (!tf.getBackend()) return { tfBytes: 0, tfTensors: 0 };
  const { numBytes, numTensors } = tf.memory();
  const backend: unknown = tf.backend();
  if (isWasmBackend(backend)) return { tfBytes: numBytes, tfTensors: numTensors, wasmHeapBytes: backend.wasm.HEAPU8.length };
  return { tfBytes: numBytes, tfTensors: numTensors };
}
