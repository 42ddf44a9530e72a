/**
 * `longner memory EXPERIMENT.yaml`: memory, latency and the out-of-memory frontier of every span
 * method, measured side by side (experiments/memory-frontier.yaml describes the file).
 *
 * 1. Curves: for each method and length, one training-step probe and one inference probe, each in
 *    its own child process and stored as a run record (src/measure/memory-run.ts).
 * 2. Frontier: per method, the longest input that trains under the backend's real memory limit
 *    (searchFrontier, src/measure/frontier.ts), and for each configured budget the longest input
 *    predicted by a quadratic fit of the measured peaks (labelled a prediction everywhere).
 * 3. Report: a table on stdout and reports/<experiment>[/<preset>]/{frontier.md, frontier.json,
 *    memory.png, latency-train.png, latency-infer.png} (src/report/memory-report.ts).
 * The experiment file's schema and presets live in src/measure/memory-settings.ts.
 * A probe that already has a stored result (ok or oom) is reused unless --fresh; failed ones rerun.
 */
import type { Argv, CommandModule } from 'yargs';
import { BACKENDS } from '../config/schema.js';
import { runMemoryExperiment } from '../runs/memory-run.js';
import { writeMemoryReport } from '../report/memory-report.js';

interface MemoryArgs {
  file: string;
  preset?: string;
  methods?: string;
  set?: string[];
  backend?: string;
  fresh: boolean;
}

export const memoryCommand: CommandModule<object, MemoryArgs> = {
  command: 'memory <file>',
  describe:
    'measure peak memory and latency of every span method against input length, and the longest input each can train on ' +
    '(each probe in its own process; reports/<experiment>/frontier.md)',
  // yargs infers each option's type; the cast at the end names them as the handler's argument interface.
  builder: (y) =>
    y
      .positional('file', { type: 'string', demandOption: true, describe: 'experiment YAML, e.g. experiments/memory-frontier.yaml' })
      .option('preset', { type: 'string', describe: 'a section under `presets:` in the experiment file, e.g. quick' })
      .option('methods', { type: 'string', describe: "comma-separated methods (default: the file's list, else every span method)" })
      .option('set', { type: 'string', array: true, describe: 'config override for every probe, e.g. --set sener.window=64' })
      .option('backend', { type: 'string', choices: BACKENDS, describe: "compute backend of the probes (default: the file's)" })
      .option('fresh', { type: 'boolean', default: false, describe: 're-measure probes that already have a stored result' }) as unknown as Argv<MemoryArgs>,
  handler: async (args) => {
    const outcome = await runMemoryExperiment(args.file, {
      preset: args.preset,
      methods: args.methods
        ?.split(',')
        .map((m) => m.trim())
        .filter((m) => m !== ''),
      set: args.set,
      backend: args.backend,
      fresh: args.fresh,
    });
    const report = writeMemoryReport(outcome);
    process.stdout.write(`${report.text}\n`);
  },
};
