import type { Argv, CommandModule } from 'yargs';
import { loadConfig } from '../config/load.js';
import { formatConfig } from '../config/print.js';
import { runId } from '../runs/id.js';

/** Options every command that takes a config shares: a preset and `--set` overrides. */
export interface ConfigArgs {
  file: string;
  preset?: string;
  set?: string[];
}

/** (The casts below name yargs' inferred option types as the argument interfaces.) */
export function withConfigOptions<T>(y: Argv<T>): Argv<T & ConfigArgs> {
  return y
    .positional('file', { type: 'string', demandOption: true, describe: 'YAML config file (may `extends:` others)' })
    .option('preset', { type: 'string', describe: 'scale preset from configs/presets: quick | cpu | paper' })
    .option('set', {
      type: 'string',
      array: true,
      describe: 'override one option, e.g. --set train.seed=3618 --set dataset.maxDocs.train=null',
    }) as unknown as Argv<T & ConfigArgs>;
}

/** `--runs-dir`, on every command that reads or writes run folders. */
export interface RunsDirArgs {
  'runs-dir'?: string;
}

export function withRunsDir<T>(y: Argv<T>): Argv<T & RunsDirArgs> {
  return y.option('runs-dir', {
    type: 'string',
    describe: 'runs root (default $LONGNER_RUNS_DIR, else runs/ in the project)',
  }) as unknown as Argv<T & RunsDirArgs>;
}

interface PrintArgs extends ConfigArgs {
  explain?: boolean;
}

const print: CommandModule<object, PrintArgs> = {
  command: 'print <file>',
  describe: 'print the resolved config (defaults < extends < file < preset < --set) and its run id',
  builder: (y) => withConfigOptions(y).option('explain', { type: 'boolean', default: false, describe: 'describe each option in a comment' }),
  handler: (args) => {
    const { config, sources } = loadConfig(args.file, { preset: args.preset, set: args.set });
    process.stdout.write(`# sources: ${sources.join(' < ')}\n# run id: ${runId(config)}\n`);
    process.stdout.write(formatConfig(config, { comments: args.explain === true }));
  },
};

export const configCommand: CommandModule = {
  command: 'config <command>',
  describe: 'inspect configs',
  builder: (y) => y.command(print).demandCommand(1),
  handler: () => undefined,
};
