/**
 * What `longner run` does with each cell of its shard, given what is on disk. Pure.
 *
 * - ok anywhere (this experiment or another one, same run id)      -> skip: finished
 * - oom, diverged, failed, not-run                                 -> skip, or run again with retryFailed
 * - partial (a run folder without result.json) in this experiment -> resume with `resume`, else start over;
 *   skip while another process runs it (its run.lock)
 * - missing (or partial only in another experiment)                -> run
 * OOM and divergence are outcomes of a config and seed (the same run would end the same way), so
 * they are retried only on request, like failures (which may have been a killed machine).
 * The runner plans each cell again when its turn comes (runner.ts), with what is on disk then.
 */
import type { GridCell } from './grid.js';
import type { FoundRun } from './locate.js';

export type Action = 'skip' | 'run' | 'resume';

export interface PlannedCell {
  cell: GridCell;
  found: FoundRun;
  action: Action;
  /** Why, in a few words (for --dry-run and the log). */
  why: string;
}

export interface PlanOptions {
  experiment: string;
  resume?: boolean;
  retryFailed?: boolean;
}

export function planCell(cell: GridCell, found: FoundRun, opts: PlanOptions): PlannedCell {
  const where = found.experiment !== null && found.experiment !== opts.experiment ? ` in ${found.experiment}/` : '';
  const plan = (action: Action, why: string): PlannedCell => ({ cell, found, action, why });
  if (cell.config === null) return plan('skip', `not run: ${cell.notConfigured ?? 'no config'}`);
  switch (found.status) {
    case 'ok':
      return plan('skip', `finished${where}`);
    case 'oom':
    case 'diverged':
    case 'failed':
    case 'not-run':
      return opts.retryFailed === true
        ? plan('run', `retry (was ${found.status}${where})`)
        : plan('skip', `${found.status}${where} (--retry-failed runs it again)`);
    case 'partial':
      if (found.experiment !== opts.experiment) return plan('run', `new (a partial run exists${where})`);
      if (found.runningBy !== undefined) return plan('skip', `running: ${found.runningBy}`);
      return opts.resume === true ? plan('resume', 'resume partial run') : plan('run', 'start over (partial run; --resume continues it)');
    case 'missing':
      return plan('run', 'new');
  }
}

export function planCells(cells: readonly GridCell[], found: ReadonlyMap<string, FoundRun>, opts: PlanOptions): PlannedCell[] {
  return cells.map((cell) => planCell(cell, found.get(cell.runId) ?? { status: 'missing', dir: null, experiment: null, result: null }, opts));
}
