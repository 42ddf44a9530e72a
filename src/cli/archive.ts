/** `longner archive EXPERIMENT --to DIR`: the finished runs of a grid as small, committable records (runs/archive.ts). */
import { join, resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { collect } from '../report/collect.js';
import { archiveGridSettings, archiveRun, type ArchiveAction } from '../runs/archive.js';
import { displayPath } from '../util/paths.js';

interface ArchiveArgs {
  experiment: string;
  to: string;
  preset?: string;
  set?: string[];
  'runs-dir'?: string;
}

export const archiveCommand: CommandModule<object, ArchiveArgs> = {
  command: 'archive <experiment>',
  describe:
    "copy the finished runs of an experiment's grid (and of the experiments it uses) to DIR as result.json + config.yaml, " +
    'without checkpoints or absolute paths, to commit beside the reports; `report --runs-dir DIR` rebuilds the report from them',
  builder: (y) =>
    y
      .positional('experiment', { type: 'string', demandOption: true, describe: 'experiment file, or its name (experiments/<name>.yaml)' })
      .option('to', { type: 'string', demandOption: true, describe: 'archive folder, a runs root of its own (this repository: results/<preset>)' })
      .option('preset', { type: 'string', describe: 'the preset the grid was run with (default: the one the last `longner run` of it recorded)' })
      .option('set', { type: 'string', array: true, describe: 'the --set the grid was run with (default: the recorded one)' })
      .option('runs-dir', { type: 'string', describe: 'runs root to copy from (default $LONGNER_RUNS_DIR, else runs/ in the project)' }) as never,
  handler: (args) => {
    const collected = collect(args.experiment, { preset: args.preset, set: args.set, root: args['runs-dir'] });
    const to = resolve(args.to);
    const experiments = [{ experiment: collected.experiment, groups: collected.groups }, ...collected.used.values()];
    const counts: Record<ArchiveAction, number> = { added: 0, updated: 0, unchanged: 0 };
    let unfinished = 0;
    for (const { experiment, groups } of experiments) {
      if (groups.length > 0) archiveGridSettings(to, experiment.name, experiment.preset, collected.set);
      for (const run of groups.flatMap((g) => g.seeds)) {
        if (run.result === null || run.experiment === null) {
          if (run.status !== 'not-configured') unfinished += 1;
          continue;
        }
        counts[archiveRun(join(collected.root, run.experiment, run.runId), to, run.experiment, run.runId)] += 1;
      }
    }
    console.log(
      `${collected.experiment.name}: ${counts.added} added, ${counts.updated} updated, ${counts.unchanged} unchanged in ${displayPath(to)}; ` +
        `${unfinished} cell(s) without a finished run`,
    );
  },
};
