import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { LongnerError } from '../errors.js';
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
  .command(memoryCommand)
  .command(llmCommand)
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
