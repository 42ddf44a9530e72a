/**
 * Learning-rate schedule: linear warm-up, then linear decay to zero (research/sener.md section 3:
 * `--warmup 0.1`, linear decay), with the semantics of HF transformers'
 * get_linear_schedule_with_warmup, which the PyTorch reference's LambdaLR follows:
 *
 *   W = floor(warmup * T) warm-up steps, T total steps, t = 0-based index of the optimizer update
 *   factor(t) = t / max(1, W)                     for t < W
 *             = max(0, (T - t) / max(1, T - W))   otherwise
 *   lr(t) = group base lr * factor(t)
 *
 * So with warm-up the first update has lr 0 (as in PyTorch, where the scheduler is stepped after
 * the optimizer), the peak lr is reached at t = W, and the last update (t = T - 1) has lr / (T - W).
 *
 * Total steps: ceil(segments / batchSize) per epoch (the last batch may be short) times epochs,
 * capped by maxSteps. The reference counts (floor(n / batch) + 1) x epochs with a batch size that
 * is not its real one (sener.md 3); we count the steps the trainer actually takes, so the decay
 * ends at zero on the last step.
 */

export function stepsPerEpoch(segments: number, batchSize: number): number {
  if (!Number.isInteger(segments) || segments < 0) throw new RangeError(`segment count must be a non-negative integer, got ${segments}`);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batch size must be a positive integer, got ${batchSize}`);
  return Math.ceil(segments / batchSize);
}

export function totalSteps(segments: number, batchSize: number, epochs: number, maxSteps: number | null): number {
  const full = stepsPerEpoch(segments, batchSize) * epochs;
  return maxSteps === null ? full : Math.min(full, maxSteps);
}

export interface LinearSchedule {
  total: number;
  warmupSteps: number;
  /** Multiplier of the base learning rates for the update with 0-based index `step`. */
  factor(step: number): number;
}

export function linearSchedule(total: number, warmup: number): LinearSchedule {
  if (!Number.isInteger(total) || total < 0) throw new RangeError(`total steps must be a non-negative integer, got ${total}`);
  if (!(warmup >= 0 && warmup < 1)) throw new RangeError(`warmup must be a fraction in [0, 1), got ${warmup}`);
  const warmupSteps = Math.floor(warmup * total);
  return {
    total,
    warmupSteps,
    factor(step: number): number {
      if (step < warmupSteps) return step / Math.max(1, warmupSteps);
      return Math.max(0, (total - step) / Math.max(1, total - warmupSteps));
    },
  };
}
