import { basename, join } from 'node:path';
import type { CommandModule } from 'yargs';
import { readDocuments, writeGenericJsonl } from '../data/readers.js';
import { segmentDocuments } from '../data/pipeline.js';
import { predictDocuments } from '../eval/evaluate.js';
import { predictionDocuments } from '../runs/execute.js';
import { loadTrainedRun } from '../runs/load.js';
import { locateRunFolder } from '../runs/locate.js';
import { runsRoot } from '../util/paths.js';
import { withRunsDir, type RunsDirArgs } from './config.js';

interface PredictArgs extends RunsDirArgs {
  run: string;
  file: string;
  out?: string;
}

export const predictCommand: CommandModule<object, PredictArgs> = {
  command: 'predict <run> <file>',
  describe:
    'predict entities for the documents in FILE (SeNER JSONL, SciREX JSONL, or {"id","words"} JSONL) with a trained run; ' +
    'writes JSONL {"id","words","entities":[{"start","end","type","score"}]}',
  builder: (y) =>
    withRunsDir(y)
      .positional('run', { type: 'string', demandOption: true, describe: 'run folder (<runs>/<experiment>/<run id>) or run id' })
      .positional('file', { type: 'string', demandOption: true, describe: 'documents to tag (gold entities, if any, are ignored)' })
      .option('out', { type: 'string', describe: 'output file (default: <run>/predictions/<file name>.jsonl)' }) as never,
  handler: async (args) => {
    const run = await loadTrainedRun(locateRunFolder(args.run, runsRoot(args['runs-dir'])));
    const docs = readDocuments(args.file, 'auto').map((d) => ({ ...d, entities: [] }));
    const split = await segmentDocuments(docs, run.tokenizer, run.config);
    const predictions = predictDocuments(run.model, docs, split.byDoc, run.config.eval.batchSize);
    const out = args.out ?? join(run.record.dir, 'predictions', `${basename(args.file).replace(/\.jsonl?$/, '')}.jsonl`);
    writeGenericJsonl(out, predictionDocuments(docs, predictions));
    const total = [...predictions.values()].reduce((n, p) => n + p.length, 0);
    console.log(`${total} entities in ${docs.length} documents: ${out}`);
  },
};
