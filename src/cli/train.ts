import type { CommandModule } from 'yargs';
import { loadConfig } from '../config/load.js';
import { executeRun } from '../runs/execute.js';
import { runDir } from '../runs/id.js';
import { runsRoot } from '../util/paths.js';
import { withConfigOptions, withRunsDir, type ConfigArgs, type RunsDirArgs } from './config.js';
import { printResult } from './show.js';

interface TrainArgs extends ConfigArgs, RunsDirArgs {
  resume: boolean;
}

export const trainCommand: CommandModule<object, TrainArgs> = {
  command: 'train <file>',
  describe:
    'train one config (pretraining its encoder first when encoder.pretrained is mlm), evaluate the best epoch on the test split, ' +
    'and write <runs>/<experiment>/<run id>/result.json',
  builder: (y) =>
    withRunsDir(withConfigOptions(y)).option('resume', {
      type: 'boolean',
      default: false,
      describe: 'continue a killed run from its last checkpoint (same config and seed); the result equals an uninterrupted run',
    }),
  handler: async (args) => {
    const { config } = loadConfig(args.file, { preset: args.preset, set: args.set });
    const root = runsRoot(args['runs-dir']);
    console.error(`longner: run ${runDir(config, root)}`);
    const result = await executeRun(config, { resume: args.resume, root });
    printResult(result, runDir(config, root));
    if (result.status !== 'ok') process.exitCode = 1;
  },
};
