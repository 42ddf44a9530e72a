/** `longner report EXPERIMENT`: tables and charts from whatever run records exist for the experiment's grid. */
import type { CommandModule } from 'yargs';
import { buildReport, summaryJson, writeReport } from '../report/build.js';
import { collect } from '../report/collect.js';
import { displayPath, fromRoot } from '../util/paths.js';

interface ReportArgs {
  experiment: string;
  preset?: string;
  set?: string[];
  out?: string;
  'runs-dir'?: string;
}

export const reportCommand: CommandModule<object, ReportArgs> = {
  command: 'report <experiment>',
  describe:
    "render an experiment's report from the run records on disk (missing runs show as missing): " +
    "reports/<experiment>/<preset>/{index.md, index.html, *.png, summary.json}, the paper's numbers beside ours",
  builder: (y) =>
    y
      .positional('experiment', { type: 'string', demandOption: true, describe: 'experiment file, or its name (experiments/<name>.yaml)' })
      .option('preset', { type: 'string', describe: 'the preset the grid was run with (default: the one the last `longner run` of it recorded)' })
      .option('set', { type: 'string', array: true, describe: 'the --set the grid was run with (default: the recorded one)' })
      .option('out', { type: 'string', describe: 'output folder (default reports/<experiment>/<preset>, or reports/<experiment> without a preset)' })
      .option('runs-dir', { type: 'string', describe: 'runs root (default $LONGNER_RUNS_DIR, else runs/ in the project)' }) as never,
  handler: async (args) => {
    const collected = collect(args.experiment, { preset: args.preset, set: args.set, root: args['runs-dir'] });
    const doc = await buildReport(collected);
    // One folder per preset, so that a quick repro never overwrites the committed cpu-preset reports.
    const preset = collected.experiment.preset;
    const out = args.out ?? fromRoot('reports', collected.experiment.name, ...(preset === null ? [] : [preset]));
    const written = writeReport(out, doc, summaryJson(collected));
    const cells = collected.groups.flatMap((g) => g.seeds);
    const ok = cells.filter((s) => s.status === 'ok').length;
    const e = collected.experiment;
    const found = e.grid.length === 0 && e.uses.length === 0 ? '' : ` (preset ${e.preset ?? 'none'}): ${ok}/${cells.length} cells finished ok;`;
    console.log(
      `${e.name}${found} ` +
        `wrote ${displayPath(written.markdown)}, ${displayPath(written.html)} and ${written.images.length} chart${written.images.length === 1 ? '' : 's'}`,
    );
    if (collected.strays.length > 0) {
      console.log(
        `note: ${collected.strays.length} finished run(s) in ${collected.experiment.name}/ of the runs root match no cell of this grid ` +
          '(another --preset or --set, or an older config or code version); they are not in the report',
      );
    }
  },
};
