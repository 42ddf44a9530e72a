/**
 * The out-of-memory frontier: the longest input a method can train on (batch 1).
 *
 * (a) Measured: `searchFrontier` asks a probe (in practice one child process per length, child.ts)
 *     whether a length trains, doubling from a start length until one runs out of memory, then
 *     bisecting between the last length that trained and the first that did not, until they are
 *     within `tolerance` (relative) of each other. It assumes memory grows with length (one OOM
 *     means every longer input runs out too).
 * (b) Predicted: for a memory budget we cannot test here (an 80 GB accelerator), `fitPeak` fits
 *     peak(L) = a + b L + c L^2 to the measured peaks by least squares and `solveBudget` returns the
 *     largest L with peak(L) <= budget. This extrapolates far beyond the measured lengths, so every
 *     place that shows it labels it a prediction.
 * Everything here is pure (the probe is a parameter), so it is tested with fake probes.
 */
import { lusolve, type Matrix } from 'mathjs';

export type SearchStatus = 'ok' | 'oom' | 'failed';

export interface SearchStep {
  length: number;
  status: SearchStatus;
  reason?: string | null;
}

export interface SearchOptions {
  /** First length probed. */
  start: number;
  /** Stop bisecting when (firstOom - maxOk) / maxOk <= tolerance, e.g. 0.05. */
  tolerance: number;
  /** Never probe beyond this; reaching it without an OOM ends the search ("at least maxLength"). */
  maxLength: number;
  /** When `start` already runs out, halve down to this before giving up; default 1. */
  minLength?: number;
}

export type SearchEnd =
  /** The frontier is bracketed within the tolerance. */
  | 'converged'
  /** maxLength trained: the frontier is at least maxLength. */
  | 'maxLength'
  /** Even minLength ran out of memory. */
  | 'minLength'
  /** A probe failed for another reason (timeout, bug): the bracket is what was known before it. */
  | 'failed';

export interface SearchResult {
  /** Longest length that trained; null when none did. */
  maxOk: number | null;
  /** Shortest length that ran out of memory; null when none did. */
  firstOom: number | null;
  end: SearchEnd;
  /** Every probe, in the order it ran. */
  steps: SearchStep[];
}

export type Probe = (length: number) => Promise<SearchStatus | { status: SearchStatus; reason?: string | null }>;

/** Doubling, then bisection; see the file comment. Each length is probed at most once. */
export async function searchFrontier(probe: Probe, opts: SearchOptions): Promise<SearchResult> {
  const minLength = Math.max(1, Math.floor(opts.minLength ?? 1));
  const maxLength = Math.floor(opts.maxLength);
  if (!(opts.tolerance > 0)) throw new RangeError(`tolerance must be > 0, got ${opts.tolerance}`);
  if (!(maxLength >= minLength)) throw new RangeError(`maxLength (${opts.maxLength}) must be >= minLength (${minLength})`);
  const steps: SearchStep[] = [];
  // One object, so the closure's updates are visible to the loops below (and to the type checker).
  const known: { maxOk: number | null; firstOom: number | null } = { maxOk: null, firstOom: null };
  const done = (end: SearchEnd): SearchResult => ({ ...known, end, steps });
  const run = async (length: number): Promise<SearchStatus> => {
    const answer = await probe(length);
    const step: SearchStep = typeof answer === 'string' ? { length, status: answer } : { length, ...answer };
    steps.push(step);
    if (step.status === 'ok') known.maxOk = known.maxOk === null ? length : Math.max(known.maxOk, length);
    if (step.status === 'oom') known.firstOom = known.firstOom === null ? length : Math.min(known.firstOom, length);
    return step.status;
  };

  let length = Math.min(Math.max(Math.floor(opts.start), minLength), maxLength);
  const first = await run(length);
  if (first === 'failed') return done('failed');
  if (first === 'ok') {
    // Double until a length runs out or the cap trains.
    while (known.firstOom === null) {
      if (length >= maxLength) return done('maxLength');
      length = Math.min(length * 2, maxLength);
      if ((await run(length)) === 'failed') return done('failed');
    }
  } else {
    // Halve until a length trains.
    while (known.maxOk === null) {
      if (length <= minLength) return done('minLength');
      length = Math.max(Math.floor(length / 2), minLength);
      if ((await run(length)) === 'failed') return done('failed');
    }
  }
  // Bisect the bracket [maxOk, firstOom).
  for (;;) {
    const { maxOk: lo, firstOom: hi } = known;
    if (lo === null || hi === null) return done('failed'); // unreachable: both loops above set them
    if ((hi - lo) / lo <= opts.tolerance) return done('converged');
    const mid = Math.floor((lo + hi) / 2);
    if (mid <= lo) return done('converged');
    if ((await run(mid)) === 'failed') return done('failed');
  }
}

/** peak(L) = a + b L + c L^2; `degree` 1 when c was fixed at 0. */
export interface PeakFit {
  a: number;
  b: number;
  c: number;
  degree: 1 | 2;
  /** Points the fit used (for a concave fallback line: the longer half) and the length range they span. */
  points: number;
  minLength: number;
  maxLength: number;
  /** Root-mean-square residual, bytes. */
  rmse: number;
}

export function evaluateFit(fit: Pick<PeakFit, 'a' | 'b' | 'c'>, length: number): number {
  return fit.a + fit.b * length + fit.c * length * length;
}

/** Least squares of y on the given basis columns, through the normal equations (X^T X) beta = X^T y. */
function leastSquares(columns: number[][], y: number[]): number[] | null {
  const k = columns.length;
  const gram: number[][] = Array.from({ length: k }, (_, i) => Array.from({ length: k }, (_, j) => dot(columns[i]!, columns[j]!)));
  const rhs = columns.map((col) => [dot(col, y)]);
  try {
    const solution = lusolve(gram, rhs) as number[][] | Matrix;
    const values = (Array.isArray(solution) ? solution : (solution.toArray() as number[][])).map((row) => Number(row[0]));
    return values.every(Number.isFinite) ? values : null;
  } catch {
    // A singular system: fewer distinct lengths than coefficients.
    return null;
  }
}

function dot(u: number[], v: number[]): number {
  let s = 0;
  for (let i = 0; i < u.length; i++) s += u[i]! * v[i]!;
  return s;
}

/**
 * Fits peak(L) = a + b L + c L^2 to (length, peak bytes) points. Lengths are scaled to [0, 1]
 * before solving, so the normal equations stay well conditioned. A fitted c < 0 would make memory
 * eventually shrink; it means the growth rate falls with length (noise on a linear method, or a
 * fixed-width structure that stops growing, like SeNER's band below 2w + 1 words), so the fit is
 * then a straight line through the longer half of the lengths, the slope that extrapolates.
 * With only two distinct lengths the fit is the line through them. Null below two distinct lengths.
 */
export function fitPeak(points: readonly (readonly [number, number])[]): PeakFit | null {
  const clean = points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && x > 0);
  const distinct = new Set(clean.map(([x]) => x)).size;
  if (distinct < 2) return null;
  const xs = clean.map(([x]) => x);
  const ys = clean.map(([, y]) => y);
  const scale = Math.max(...xs);
  const u = xs.map((x) => x / scale);
  const ones = u.map(() => 1);
  const finish = (a: number, b: number, c: number, degree: 1 | 2, used = clean): PeakFit => {
    const residuals = used.map(([x, y]) => y - (a + b * x + c * x * x));
    return {
      a,
      b,
      c,
      degree,
      points: used.length,
      minLength: Math.min(...used.map(([x]) => x)),
      maxLength: Math.max(...used.map(([x]) => x)),
      rmse: Math.sqrt(residuals.reduce((s, r) => s + r * r, 0) / residuals.length),
    };
  };
  if (distinct >= 3) {
    const beta = leastSquares([ones, u, u.map((v) => v * v)], ys);
    if (beta !== null && beta[2]! >= 0) return finish(beta[0]!, beta[1]! / scale, beta[2]! / (scale * scale), 2);
  }
  // The longer half of the distinct lengths (at least two), every point at those lengths.
  const lengths = [...new Set(xs)].sort((p, q) => p - q);
  const from = lengths[Math.min(Math.floor(lengths.length / 2), lengths.length - 2)]!;
  const keep = clean.map(([x]) => x >= from);
  const beta = leastSquares(
    [ones.filter((_, i) => keep[i]), u.filter((_, i) => keep[i])],
    ys.filter((_, i) => keep[i]),
  );
  if (beta === null) return null;
  return finish(
    beta[0]!,
    beta[1]! / scale,
    0,
    1,
    clean.filter((_, i) => keep[i]),
  );
}

/**
 * The largest L >= 0 with a + b L + c L^2 <= budget (c >= 0): the larger root of
 * c L^2 + b L + (a - budget) = 0, written as 2 (B - a) / (b + sqrt(b^2 + 4 c (B - a))), which stays
 * exact as c -> 0 (it becomes (B - a) / b). Infinity when peak never reaches the budget (no growth),
 * null when even L = 0 does not fit (the fixed cost exceeds the budget).
 */
export function solveBudget(fit: Pick<PeakFit, 'a' | 'b' | 'c'>, budget: number): number | null {
  const { a, b, c } = fit;
  const room = budget - a;
  if (room < 0) return null;
  if (c < 0) throw new RangeError('solveBudget: the fit must have c >= 0 (fitPeak guarantees it)');
  const denominator = b + Math.sqrt(b * b + 4 * c * room);
  if (!(denominator > 0)) return Number.POSITIVE_INFINITY;
  return (2 * room) / denominator;
}
