/** `longner run EXPERIMENT`: run an experiment's grid (or one shard of it), each run in its own process. */
import { relative } from 'node:path';
import { availableParallelism } from 'node:os';
import type { CommandModule } from 'yargs';
import { shareMemoryBudget } from '../backend/native/register.js';
import { LongnerError } from '../errors.js';
import type { GridCell } from '../runs/grid.js';
import type { PlannedCell } from '../runs/plan.js';
import { runExperiment, type RunSummary } from '../runs/runner.js';
import { parseShard } from '../runs/shard.js';
import { formatSeconds } from '../util/progress.js';
import { textTable, type Cell } from '../util/table.js';

interface RunArgs {
  experiment: string;
  preset?: string;
  set?: string[];
  shard?: string;
  resume: boolean;
  'retry-failed': boolean;
  'dry-run': boolean;
  'runs-dir'?: string;
  jobs: number;
  timeout?: number;
}

function axesText(cell: GridCell): string {
  return Object.entries(cell.axes)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');
}

function where(p: PlannedCell, root: string): string {
  if (p.found.dir === null) return '';
  const rel = relative(root, p.found.dir);
  return rel.startsWith('..') ? p.found.dir : rel;
}

/** The plan as a table: one line per cell of the shard, plus the grid's not-configured cells. */
export function planTable(summary: Pick<RunSummary, 'plan' | 'cells' | 'root'>): string {
  const rows: Cell[][] = summary.plan.map((p) => [
    p.cell.runId,
    p.cell.label,
    p.cell.dataset,
    String(p.cell.seed),
    axesText(p.cell),
    p.found.status,
    p.action,
    p.why,
    where(p, summary.root),
  ]);
  for (const c of summary.cells.filter((cell) => cell.config === null)) {
    rows.push([c.runId, c.label, c.dataset, '-', '', 'not-run', 'skip', c.notConfigured ?? '', '']);
  }
  if (rows.length === 0) return '(no runs: this experiment only reports, from data files or from the experiments it uses)';
  return textTable(['run id', 'row', 'dataset', 'seed', 'axes', 'on disk', 'action', 'why', 'folder'], rows);
}

export const runCommand: CommandModule<object, RunArgs> = {
  command: 'run <experiment>',
  describe:
    'run an experiment grid (experiments/*.yaml): every config x seed in its own process, skipping finished runs; ' +
    '--shard i/n runs one deterministic slice (SLURM arrays, Kubernetes indexed Jobs)',
  builder: (y) =>
    y
      .positional('experiment', { type: 'string', demandOption: true, describe: 'experiment file, or its name (experiments/<name>.yaml)' })
      .option('preset', { type: 'string', describe: "scale preset (configs/presets/) plus the experiment's own presets.<name> block: quick | cpu | paper" })
      .option('set', { type: 'string', array: true, describe: 'override one option in every cell, e.g. --set backend=cpu (applied last)' })
      .option('shard', { type: 'string', describe: 'run shard i of n (0-based): runs sorted by run id, run k goes to shard k mod n' })
      .option('resume', {
        type: 'boolean',
        default: false,
        describe: 'continue partially trained runs from their last checkpoint instead of starting them over',
      })
      .option('retry-failed', { type: 'boolean', default: false, describe: 'run failed, oom and diverged runs again (default: keep their result)' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'print the expanded grid with what is on disk and what would run, and run nothing' })
      .option('runs-dir', { type: 'string', describe: 'runs root (default $LONGNER_RUNS_DIR, else runs/ in the project)' })
      .option('jobs', {
        type: 'number',
        default: 1,
        describe:
          'runs at once, each in its own process; on the native engine each gets cores / jobs threads and 1/jobs of the memory budget unless --threads or --memory-budget say otherwise',
      })
      .option('timeout', { type: 'number', describe: 'minutes after which a run is killed and recorded as failed (default: no limit)' }) as never,
  handler: async (args) => {
    if (!Number.isInteger(args.jobs) || args.jobs < 1) throw new LongnerError(`--jobs ${args.jobs}: expected a whole number >= 1`);
    if (args.timeout !== undefined && !(args.timeout > 0)) throw new LongnerError(`--timeout ${args.timeout}: expected minutes > 0`);
    // Two runs of two threads each on two cores would fight over them: share the cores and memory out.
    if (args.jobs > 1 && process.env.LONGNER_THREADS === undefined) {
      process.env.LONGNER_THREADS = String(Math.max(1, Math.floor(availableParallelism() / args.jobs)));
    }
    shareMemoryBudget(args.jobs);
    const shard = args.shard === undefined ? null : parseShard(args.shard);
    const headerOf = (s: Omit<RunSummary, 'outcomes' | 'wallSeconds'>): string => {
      const todo = s.plan.filter((p) => p.action !== 'skip').length;
      return (
        `${s.experiment.name}: ${s.cells.length} cells` +
        `${shard === null ? '' : `, shard ${shard.index}/${shard.count}: ${s.plan.length} runs`}, ${todo} to run; ` +
        `preset ${s.experiment.preset ?? 'none'}; runs root ${s.root}`
      );
    };
    const summary = await runExperiment(args.experiment, {
      onPlan: (s) => console.log(headerOf(s)),
      preset: args.preset ?? null,
      set: args.set,
      shard,
      resume: args.resume,
      retryFailed: args['retry-failed'],
      dryRun: args['dry-run'],
      root: args['runs-dir'],
      jobs: args.jobs,
      timeoutMs: args.timeout === undefined ? null : args.timeout * 60_000,
    });
    const { experiment, plan } = summary;
    const todo = plan.filter((p) => p.action !== 'skip').length;
    if (args['dry-run']) {
      console.log(planTable(summary));
      if (summary.pretrain.length > 0) console.log(`\nshared pretraining to run first: ${summary.pretrain.map((p) => p.dir).join(', ')}`);
      return;
    }
    const counts = new Map<string, number>();
    for (const { outcome } of summary.outcomes) counts.set(outcome.status, (counts.get(outcome.status) ?? 0) + 1);
    // A cell skipped when its turn came (another process had finished or taken it) counts with the planned skips.
    const skipped = plan.length - todo + (counts.get('skipped') ?? 0);
    counts.delete('skipped');
    const tally = [...counts.entries()].map(([s, n]) => `${n} ${s}`).join(', ') || 'nothing to run';
    console.log(
      `done in ${formatSeconds(summary.wallSeconds)}: ${tally}; skipped ${skipped}. Report: longner report ${experiment.name}${experiment.preset === null ? '' : ` --preset ${experiment.preset}`}`,
    );
    // OOM and divergence are results (Table 3 expects OOMs); a failed run is a problem to look at.
    if ((counts.get('failed') ?? 0) > 0) process.exitCode = 1;
  },
};
