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

export function isOutOfMemory(err: unknown): boolean {
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return OOM_PATTERNS.some((p) => p.test(text));
}

export function errorReason(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n')[0]!.slice(0, 300);
}
