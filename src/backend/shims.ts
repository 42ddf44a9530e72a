import { registerBatchMatMulOverride } from './batch-matmul.js';
import { registerSegmentSum } from './segment-sum.js';

/** Human-readable names of what `installShims` changes, per backend (shown in the backend detail line). */
export const SHIMS = {
  wasm: ['BatchMatMul override', 'UnsortedSegmentSum'],
  cpu: ['UnsortedSegmentSum'],
} as const;

let installed = false;

/**
 * Registers the kernel shims once per process. The wasm and cpu backend packages must already be
 * imported (they register their stock kernels at import time, and the override wraps the stock one).
 */
export function installShims(): void {
  if (installed) return;
  registerSegmentSum('wasm');
  registerSegmentSum('cpu');
  registerBatchMatMulOverride();
  installed = true;
}
