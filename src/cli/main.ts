import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { LongnerError } from '../errors.js';
import { archiveCommand } from './archive.js';
import { parseByteSize } from '../util/bytes.js';
import { datasetsCommand } from './datasets.js';
import { configCommand } from './config.js';
import { evalCommand } from './eval.js';
import { llmCommand } from './llm.js';
import { memoryCommand } from './memory.js';
import { predictCommand } from './predict.js';
import { pretrainCommand } from './pretrain.js';
import { reportCommand } from './report.js';
import { runCommand } from './run.js';
import { trainCommand } from './train.js';

const cli = yargs(hideBin(process.argv))
  .scriptName('longner')
  .usage('$0 <command> [options]\n\nLong-text NER: SeNER and its baselines, trained, evaluated and measured side by side.')
  .command(datasetsCommand)
  .command(configCommand)
  .command(pretrainCommand)
  .command(trainCommand)
  .command(evalCommand)
  .command(predictCommand)
  .command(runCommand)
  .command(reportCommand)
  .command(archiveCommand)
  .command(memoryCommand)
  .command(llmCommand)
  .option('threads', {
    type: 'number',
    global: true,
    describe: 'compute threads of the native engine (default: the number of cores; LONGNER_THREADS)',
  })
  .option('memory-budget', {
    type: 'string',
    global: true,
    describe: 'native engine: live tensor memory past which a run or probe ends as `oom`, e.g. 16GiB (default 3/4 of RAM; LONGNER_MEMORY_BUDGET)',
  })
  .option('strict', {
    type: 'boolean',
    global: true,
    describe:
      'data files: entity words that disagree with text[start:end] and bytes that are not UTF-8 are errors (exit 2) instead of warnings (LONGNER_STRICT=1)',
  })
  // Through the environment, so that the runs and probes started in child processes get them too.
  .middleware((argv) => {
    if (argv.strict === true) process.env.LONGNER_STRICT = '1';
    const threads = argv.threads;
    if (typeof threads === 'number') {
      if (!Number.isInteger(threads) || threads < 1) throw new LongnerError(`--threads must be a positive integer, got ${threads}`);
      process.env.LONGNER_THREADS = String(threads);
    }
    const budget = argv['memory-budget'];
    if (typeof budget === 'string') {
      if (parseByteSize(budget) === null) throw new LongnerError(`--memory-budget must be a size such as 16GiB or 12000MB, got '${budget}'`);
      process.env.LONGNER_MEMORY_BUDGET = budget;
    }
  })
  .demandCommand(1, 'Name a command; `longner --help` lists them.')
  .strict()
  .recommendCommands()
  .help()
  .alias('h', 'help')
  .version()
  .wrap(Math.min(110, process.stdout.columns ?? 110))
  .fail((msg, err, y) => {
    if (err) throw err;
    console.error(y.help().toString());
    console.error(`\nlongner: ${msg}`);
    process.exit(1);
  });

try {
  await cli.parseAsync();
} catch (err) {
  if (err instanceof LongnerError) {
    console.error(`longner: ${err.message}`);
    process.exit(2);
  }
  throw err;
}
