import { join } from 'node:path';
import type { CommandModule } from 'yargs';
import { segmentDocuments, loadProtocolFor } from '../data/pipeline.js';
import { evaluateDocuments } from '../eval/evaluate.js';
import { loadTrainedRun } from '../runs/load.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { metricsTable } from './show.js';

interface EvalArgs {
  run: string;
  split: 'test' | 'validation';
}

export const evalCommand: CommandModule<object, EvalArgs> = {
  command: 'eval <run>',
  describe: "score a trained run's best checkpoint on a split of its dataset (writes eval-<split>.json in the run folder)",
  builder: (y) =>
    y
      .positional('run', { type: 'string', demandOption: true, describe: 'run folder, runs/<experiment>/<run id>' })
      .option('split', { choices: ['test', 'validation'] as const, default: 'test' as const, describe: 'which protocol split' }) as never,
  handler: async (args) => {
    const run = await loadTrainedRun(args.run);
    const protocol = await loadProtocolFor(run.config);
    const docs = protocol[args.split];
    const split = await segmentDocuments(docs, run.tokenizer, run.config);
    const ev = await evaluateDocuments(run.model, docs, split.byDoc, run.config.eval.batchSize);
    const out = join(run.record.dir, `eval-${args.split}.json`);
    writeJsonAtomic(out, {
      split: args.split,
      backend: run.backend.name,
      metrics: ev.metrics,
      msPerDocument: ev.msPerDocument,
      peakBytesInference: ev.peakBytesInference,
      createdAt: new Date().toISOString(),
    });
    console.log(`${run.config.method} on ${run.config.dataset.name} ${args.split} (${docs.length} docs)`);
    console.log(metricsTable(ev.metrics));
    console.log(`written: ${out}`);
  },
};
