/**
 * Out-of-memory recognition. On wasm the 4 GiB heap is a hard limit (research/backends.md 1c, 3) and
 * shows up as one of several messages depending on where the allocation failed; on the native
 * backends and in plain JS it is an allocation failure. Each is reported as status 'oom', never
 * as a crash.
 */
const OOM_PATTERNS: RegExp[] = [
  /memory access out of bounds/i,
  /out of memory/i,
  /\bOOM\b/,
  /Array buffer allocation failed/i,
  /Cannot allocate Wasm memory/i,
  /Maximum memory size exceeded/i,
  /WebAssembly\.Memory/i,
  /Invalid typed array length/i,
  /Invalid array length/i,
  /allocation failed/i,
  /heap out of memory/i,
];

/** The wasm32 heap cap; past about 7/8 of it an allocation can fail anywhere. */
export const WASM_HEAP_CAP = 4 * 2 ** 30;

/**
 * True for an out-of-memory failure. `wasmHeapBytes` (the heap size when the error was caught)
 * lets a wasm RuntimeError that names no allocation (e.g. "null function or function signature
 * mismatch", seen when a SeNER step filled the heap) count as OOM when the heap was near its cap.
 */
export function isOutOfMemory(err: unknown, wasmHeapBytes?: number): boolean {
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  if (OOM_PATTERNS.some((p) => p.test(text))) return true;
  const wasmRuntimeError = err instanceof WebAssembly.RuntimeError || (err instanceof Error && err.name === 'RuntimeError');
  return wasmRuntimeError && wasmHeapBytes !== undefined && wasmHeapBytes >= 0.875 * WASM_HEAP_CAP;
}

export function errorReason(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n')[0]!.slice(0, 300);
}
