/**
 * `longner run EXPERIMENT`: expand the grid, keep this shard's cells, skip what is finished, pretrain
 * the shared encoders the remaining cells need (once per pretraining key, each in its own process),
 * then run every remaining cell in its own child process, past failures and OOMs.
 *
 * It also writes `<runs>/<experiment>/grid.json` (the preset and --set it was run with) so that
 * `longner report EXPERIMENT` finds the same run ids without repeating the flags.
 */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { pretrainRunDir, readSummary } from '../train/pretrain/index.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { pool } from '../util/pool.js';
import { formatSeconds, Progress } from '../util/progress.js';
import { loadExperiment, type Experiment } from './experiment.js';
import { expandGrid, runnableCells, type GridCell } from './grid.js';
import { findRuns, readResultFile, runsRoot } from './locate.js';
import { planCells, type PlanOptions, type PlannedCell } from './plan.js';
import { RESULT_FILE } from './record.js';
import { type Shard, shardItems } from './shard.js';
import { CHILD_LOG, runCellInChild, runChild, type CellOutcome } from './spawn.js';

export const GRID_FILE = 'grid.json';

export interface RunOptions {
  preset?: string | null;
  set?: string[];
  shard?: Shard | null;
  resume?: boolean;
  retryFailed?: boolean;
  dryRun?: boolean;
  /** Runs root; default runsRoot() ($LONGNER_RUNS_DIR or the project's runs/). */
  root?: string;
  /** Per child process; null = no limit. */
  timeoutMs?: number | null;
  /** Child processes at once (each is single-threaded on wasm); default 1. */
  jobs?: number;
  /** Where lines go (default console.log); the progress bar goes to stderr. */
  print?: (line: string) => void;
  quiet?: boolean;
  /** Called once the plan is known, before anything runs (the CLI prints its header). */
  onPlan?: (plan: Omit<RunSummary, 'outcomes' | 'wallSeconds'>) => void;
}

export interface PretrainNeed {
  dir: string;
  config: Config;
  cells: number;
}

export interface RunSummary {
  experiment: Experiment;
  root: string;
  /** The whole expanded grid (every shard, not-configured cells included). */
  cells: GridCell[];
  /** This shard's plan. */
  plan: PlannedCell[];
  pretrain: PretrainNeed[];
  outcomes: Array<{ planned: PlannedCell; outcome: CellOutcome }>;
  wallSeconds: number;
}

/** The experiment's grid with this shard's plan: what --dry-run prints. */
export function planExperiment(nameOrPath: string, opts: RunOptions = {}): Omit<RunSummary, 'outcomes' | 'wallSeconds'> {
  const experiment = loadExperiment(nameOrPath, { preset: opts.preset ?? null });
  const root = runsRoot(opts.root);
  const cells = expandGrid(experiment, { set: opts.set });
  const mine = shardItems(runnableCells(cells), opts.shard ?? null);
  const found = findRuns(
    root,
    experiment.name,
    mine.map((c) => c.runId),
  );
  const plan = planCells(mine, found, planOptionsOf(experiment, opts));
  return { experiment, root, cells, plan, pretrain: pretrainNeeds(plan, root) };
}

function planOptionsOf(experiment: Experiment, opts: RunOptions): PlanOptions {
  return { experiment: experiment.name, resume: opts.resume, retryFailed: opts.retryFailed };
}

function replan(p: PlannedCell, root: string, opts: PlanOptions): PlannedCell {
  return planCells([p.cell], findRuns(root, opts.experiment, [p.cell.runId]), opts)[0]!;
}

/** The shared pretraining runs the cells to run need and that have not finished yet, once each. */
export function pretrainNeeds(plan: readonly PlannedCell[], root: string): PretrainNeed[] {
  const needs = new Map<string, PretrainNeed>();
  for (const p of plan) {
    const config = p.cell.config;
    if (p.action === 'skip' || config === null || config.encoder.pretrained !== 'mlm') continue;
    const dir = pretrainRunDir(config, root);
    const known = needs.get(dir);
    if (known !== undefined) known.cells++;
    else if (readSummary(dir) === null) needs.set(dir, { dir, config, cells: 1 });
  }
  return [...needs.values()];
}

function percent(x: number | undefined): string {
  return x === undefined ? '' : ` F1 ${(x * 100).toFixed(2)}`;
}

export async function runExperiment(nameOrPath: string, opts: RunOptions = {}): Promise<RunSummary> {
  const started = Date.now();
  const print = opts.print ?? ((line: string) => console.log(line));
  const planned = planExperiment(nameOrPath, opts);
  const { experiment, root, plan, pretrain } = planned;
  const todo = plan.filter((p) => p.action !== 'skip');
  const planOptions = planOptionsOf(experiment, opts);
  const outcomes: RunSummary['outcomes'] = [];
  opts.onPlan?.(planned);
  if (opts.dryRun === true) return { ...planned, outcomes, wallSeconds: 0 };

  writeJsonAtomic(join(root, experiment.name, GRID_FILE), {
    experiment: experiment.name,
    preset: experiment.preset,
    set: opts.set ?? [],
    cells: planned.cells.length,
    updatedAt: new Date().toISOString(),
  });

  // A stopped `run` (Ctrl-C, scancel, a deleted pod) stops its children too; their runs stay partial and resumable.
  const active = new Set<ChildProcess>();
  const stop = (signal: NodeJS.Signals): void => {
    for (const child of active) child.kill('SIGTERM');
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const track = {
    onStart: (child: ChildProcess) => {
      active.add(child);
      child.once('close', () => active.delete(child));
    },
  };
  const jobs = opts.jobs ?? 1;
  const timeoutMs = opts.timeoutMs ?? null;
  try {
    await pool(pretrain, jobs, async (need) => {
      print(`pretraining ${need.dir} (shared by ${need.cells} run${need.cells === 1 ? '' : 's'} of this shard)`);
      const t0 = Date.now();
      const outcome = await runChild({ kind: 'pretrain', config: need.config, root }, { ...track, timeoutMs, logFile: join(need.dir, CHILD_LOG) });
      const took = formatSeconds((Date.now() - t0) / 1000);
      // A failed pretraining is not fatal here: each cell that needs it fails with the reason in its own result.
      print(outcome.status === 'ok' ? `pretraining done (${took})` : `pretraining ${outcome.status} (${took}): ${outcome.reason ?? ''}`);
    });

    const progress = new Progress({ label: `${experiment.name}`, total: todo.length, unit: ' runs' });
    const clear = (): void => {
      if (process.stderr.isTTY && opts.quiet !== true) process.stderr.write('\r\x1b[K');
    };
    let finished = 0;
    await pool(todo, jobs, async (planned) => {
      // Planned at the start, which may be hours ago: another process may have finished this run or be
      // running it now (two grids that share runs), so its plan is made again from the disk.
      const p = replan(planned, root, planOptions);
      const outcome: CellOutcome =
        p.action === 'skip'
          ? { status: 'skipped', reason: p.why, dir: p.found.dir ?? '', wallSeconds: 0, writtenByParent: false }
          : await runCellInChild(p.cell.config!, root, { ...track, timeoutMs, resume: p.action === 'resume' });
      outcomes.push({ planned: p, outcome });
      finished++;
      const f1 = outcome.status === 'ok' ? percent(readF1(outcome.dir)) : '';
      clear();
      print(
        `[${finished}/${todo.length}] ${outcome.status.padEnd(8)} ${p.cell.runId} (${formatSeconds(outcome.wallSeconds)})${f1}` +
          (outcome.status === 'ok' ? '' : `: ${outcome.reason ?? ''}${outcome.writtenByParent ? ' [recorded by the parent]' : ''}`),
      );
      if (opts.quiet !== true) progress.tick(1, `last: ${outcome.status}`);
    });
    if (opts.quiet !== true && todo.length > 0) progress.finish();
  } finally {
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
  }
  return { ...planned, outcomes, wallSeconds: (Date.now() - started) / 1000 };
}

function readF1(dir: string): number | undefined {
  try {
    return readResultFile(join(dir, RESULT_FILE)).metrics.overall?.f1;
  } catch {
    return undefined;
  }
}
