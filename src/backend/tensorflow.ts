/*
 * The native TensorFlow backend comes from optional dependencies that download libtensorflow at
 * install time, so on an offline machine they are simply absent (research/backends.md §2). This module
 * only finds out which one, if any, loads; registering it with tfjs happens as a side effect of the import.
 */

/** Tried in this order: the GPU build first, since whoever installed it wants it. */
export const TENSORFLOW_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

export type Importer = (specifier: string) => Promise<unknown>;

// A specifier held in a variable keeps tsc from resolving the packages, whose types are absent too.
const nodeImport: Importer = (specifier) => import(specifier);

export type TensorflowLoad =
  | { ok: true; packageName: string }
  /** `broken` lists packages that are installed but threw while loading (e.g. a missing libtensorflow). */
  | { ok: false; broken: string[] };

function errorCode(err: unknown): unknown {
  return err !== null && typeof err === 'object' ? (err as { code?: unknown }).code : undefined;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err);
}

/** True when the import failed because the package itself is not installed (not one of its dependencies). */
export function isMissingPackage(err: unknown, packageName: string): boolean {
  const code = errorCode(err);
  if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') return false;
  return errorMessage(err).includes(`'${packageName}'`);
}

export async function loadTensorflowPackage(importer: Importer = nodeImport): Promise<TensorflowLoad> {
  const broken: string[] = [];
  for (const packageName of TENSORFLOW_PACKAGES) {
    try {
      await importer(packageName);
      return { ok: true, packageName };
    } catch (err) {
      if (!isMissingPackage(err, packageName)) broken.push(`${packageName} is installed but failed to load: ${errorMessage(err)}`);
    }
  }
  return { ok: false, broken };
}

/** The one-line reason why the tensorflow backend is unavailable, with what to do about it. */
export function tensorflowUnavailableMessage(load: { broken: string[] }): string {
  if (load.broken.length > 0) {
    return `backend 'tensorflow' requested but ${load.broken.join('; ')} (reinstall it with \`npm install @tensorflow/tfjs-node\` on a machine with internet, or choose --backend wasm)`;
  }
  return (
    "backend 'tensorflow' requested but neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed " +
    '(they download libtensorflow at install time; run `npm install @tensorflow/tfjs-node` on a machine with internet)'
  );
}
