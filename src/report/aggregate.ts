/**
 * Grouping a grid's runs over seeds, and the mean and standard deviation of a metric over the seeds
 * that finished. A seed that did not finish (missing, partial, oom, failed, not run) contributes no
 * number: it is counted and named, never averaged in as a zero.
 */
import { mean, std } from 'mathjs';
import type { AxisValue } from '../runs/experiment.js';
import { groupKey, type GridCell } from '../runs/grid.js';
import type { DiskStatus, FoundRun } from '../runs/locate.js';
import type { RunResult } from '../runs/result.js';

/** What one seed of a group has on disk; `not-configured` when the cell has no config. */
export type SeedStatus = DiskStatus | 'not-configured';

export interface SeedRun {
  seed: number;
  runId: string;
  status: SeedStatus;
  reason: string | null;
  result: RunResult | null;
  /** Where the run was found (experiment folder), null when missing. */
  experiment: string | null;
}

export interface Group {
  key: string;
  entry: number;
  label: string;
  row: string;
  method: string;
  dataset: string;
  axes: Record<string, AxisValue>;
  /** The config's data protocol name (local | paper); null for a not-configured cell. */
  protocol: string | null;
  seeds: SeedRun[];
}

export interface Stat {
  /** Seeds with a value. */
  n: number;
  mean: number;
  /** Sample standard deviation (n - 1); null below two values. */
  std: number | null;
}

/** Groups cells (one per seed) into rows, in grid order. */
export function groupRuns(cells: readonly GridCell[], found: ReadonlyMap<string, FoundRun>): Group[] {
  const groups = new Map<string, Group>();
  for (const cell of cells) {
    const key = groupKey(cell);
    let group = groups.get(key);
    if (group === undefined) {
      group = {
        key,
        entry: cell.entry,
        label: cell.label,
        row: cell.row,
        method: cell.method,
        dataset: cell.dataset,
        axes: cell.axes,
        protocol: cell.config?.dataset.protocol ?? null,
        seeds: [],
      };
      groups.set(key, group);
    }
    if (cell.config === null) {
      group.seeds.push({ seed: cell.seed, runId: cell.runId, status: 'not-configured', reason: cell.notConfigured, result: null, experiment: null });
      continue;
    }
    const f = found.get(cell.runId);
    group.seeds.push({
      seed: cell.seed,
      runId: cell.runId,
      status: f?.status ?? 'missing',
      reason: f?.result?.reason ?? f?.problem ?? null,
      result: f?.result ?? null,
      experiment: f?.experiment ?? null,
    });
  }
  return [...groups.values()];
}

export function stat(values: readonly number[]): Stat | null {
  const xs = values.filter((v) => Number.isFinite(v));
  if (xs.length === 0) return null;
  const m = Number(mean(xs));
  return { n: xs.length, mean: m, std: xs.length >= 2 ? Number(std(xs)) : null };
}

export function okResults(group: Group): RunResult[] {
  return group.seeds.filter((s) => s.status === 'ok' && s.result !== null).map((s) => s.result!);
}

/** A metric over the group's finished seeds; `pick` returns null when a run lacks the value. */
export function metricStat(group: Group, pick: (r: RunResult) => number | null | undefined): Stat | null {
  const values = okResults(group)
    .map(pick)
    .filter((v): v is number => typeof v === 'number');
  return stat(values);
}

const STATUS_WORDS: Record<SeedStatus, string> = {
  ok: 'ok',
  oom: 'OOM',
  diverged: 'diverged',
  failed: 'failed',
  'not-run': 'not run',
  partial: 'unfinished',
  missing: 'missing',
  'not-configured': 'not run',
};

/** "3 ok", "2 ok, 1 OOM", "3 missing". */
export function seedSummary(group: Group): string {
  const counts = new Map<string, number>();
  for (const s of group.seeds) counts.set(STATUS_WORDS[s.status], (counts.get(STATUS_WORDS[s.status]) ?? 0) + 1);
  return [...counts.entries()].map(([word, n]) => `${n} ${word}`).join(', ');
}

/**
 * What a metric cell shows when no seed has a number: the status, with the reason for "not run".
 * Missing is an en dash plus the word, so it can never be read as a zero.
 */
export function noValueText(group: Group): string {
  const statuses = new Set(group.seeds.map((s) => s.status));
  if (statuses.size === 1) {
    const only = group.seeds[0]!;
    switch (only.status) {
      case 'missing':
        return '– (missing)';
      case 'partial':
        return '– (unfinished)';
      case 'not-configured':
      case 'not-run':
        return `not run${only.reason ? `: ${shortReason(only.reason)}` : ''}`;
      default:
        return STATUS_WORDS[only.status];
    }
  }
  return `– (${seedSummary(group)})`;
}

function shortReason(reason: string): string {
  // A runner's reason may already say "not run: ..."; the cell adds that prefix itself.
  const first = reason
    .replace(/^not run:\s*/i, '')
    .split(/[(;]/)[0]!
    .trim();
  return first.length > 60 ? `${first.slice(0, 57)}...` : first;
}

/** `41.20 ± 1.30` (percent of a fraction when scale is 100); a single seed has no ± part. */
export function formatStat(s: Stat, opts: { scale?: number; digits?: number } = {}): string {
  const scale = opts.scale ?? 1;
  const digits = opts.digits ?? 2;
  const m = (s.mean * scale).toFixed(digits);
  return s.std === null ? m : `${m} ± ${(s.std * scale).toFixed(digits)}`;
}

/**
 * A metric cell: the statistic when any seed has it, else the status text; with `terse`, a bare en
 * dash (for a secondary column beside one that carries the status).
 */
export function metricCell(
  group: Group,
  pick: (r: RunResult) => number | null | undefined,
  opts: { scale?: number; digits?: number; terse?: boolean } = {},
): string {
  const s = metricStat(group, pick);
  if (s !== null) return formatStat(s, opts);
  // Finished runs without this number (a type absent from the test documents, a measurement the backend lacks).
  if (okResults(group).length > 0) return '–';
  return opts.terse === true ? '–' : noValueText(group);
}

/** Percent difference ours - paper, signed; en dash when either side is missing. */
export function diffText(oursFraction: Stat | null, paperPercent: number | null | undefined): string {
  if (oursFraction === null || paperPercent === null || paperPercent === undefined) return '–';
  return signed(oursFraction.mean * 100 - paperPercent);
}

/** `+1.25` / `-1.25`: percent points with their sign. */
function signed(points: number): string {
  return `${points >= 0 ? '+' : ''}${points.toFixed(2)}`;
}

/**
 * An ablation row against its reference row: the difference of the means in percent points, ± the
 * standard error of that difference (Welch: sqrt(s1^2/n1 + s2^2/n2)), marked "≈ noise" when it is
 * under two standard errors. With a single seed on either side there is no standard error, so only
 * the difference is shown.
 */
export function contrastText(ours: Stat | null, reference: Stat | null): string {
  if (ours === null || reference === null) return '–';
  const d = (ours.mean - reference.mean) * 100;
  if (ours.std === null || reference.std === null) return signed(d);
  const se = Math.sqrt(ours.std ** 2 / ours.n + reference.std ** 2 / reference.n) * 100;
  return `${signed(d)} ± ${se.toFixed(2)}${Math.abs(d) < 2 * se ? ' (≈ noise)' : ''}`;
}
