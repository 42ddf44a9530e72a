import { basename, join } from 'node:path';
import type { CommandModule } from 'yargs';
import { writeBrat } from '../data/brat.js';
import { readDocuments, writeGenericJsonl, writeSenerJsonl } from '../data/readers.js';
import type { Document } from '../data/types.js';
import { segmentDocuments } from '../data/pipeline.js';
import { predictDocuments } from '../eval/evaluate.js';
import { predictionDocuments } from '../runs/execute.js';
import { loadTrainedRun } from '../runs/load.js';
import { locateRunFolder } from '../runs/locate.js';
import { runsRoot } from '../util/paths.js';
import { withRunsDir, type RunsDirArgs } from './config.js';

const FORMATS = ['jsonl', 'sener', 'brat'] as const;

interface PredictArgs extends RunsDirArgs {
  run: string;
  file: string;
  out?: string;
  format: (typeof FORMATS)[number];
}

/** Writes predictions in the chosen layout. */
function writePredictions(out: string, format: PredictArgs['format'], docs: Document[]): void {
  if (format === 'sener') writeSenerJsonl(out, docs);
  else if (format === 'brat') writeBrat(out, docs);
  else writeGenericJsonl(out, docs);
}

export const predictCommand: CommandModule<object, PredictArgs> = {
  command: 'predict <run> <file>',
  describe:
    'predict entities for the documents in FILE (SeNER JSONL, SciREX JSONL, or {"id","words"} JSONL) with a trained run; ' +
    'writes JSONL {"id","words","entities":[{"start","end","type","score"}]}, SeNER JSONL or brat standoff (--format)',
  builder: (y) =>
    withRunsDir(y)
      .positional('run', { type: 'string', demandOption: true, describe: 'run folder (<runs>/<experiment>/<run id>) or run id' })
      .positional('file', { type: 'string', demandOption: true, describe: 'documents to tag (gold entities, if any, are ignored)' })
      .option('format', {
        choices: FORMATS,
        default: 'jsonl' as const,
        describe:
          'jsonl: {"id","words","entities":[{"start","end","type","score"}]}; sener: SeNER\'s {"doc_id","text","entity":[[start,end,words,type]]} ' +
          'for the reference tooling (no scores); brat: a folder of <id>.txt and <id>.ann standoff files for annotation tools (scores as AnnotatorNotes)',
      })
      .option('out', {
        type: 'string',
        describe: 'output file, or folder for brat (default: <run>/predictions/<file name>.jsonl, or <file name>.brat/)',
      }) as never,
  handler: async (args) => {
    const run = await loadTrainedRun(locateRunFolder(args.run, runsRoot(args['runs-dir'])));
    const docs = readDocuments(args.file, 'auto').map((d) => ({ ...d, entities: [] }));
    const split = await segmentDocuments(docs, run.tokenizer, run.config);
    const predictions = predictDocuments(run.model, docs, split.byDoc, run.config.eval.batchSize, run.threshold ?? undefined);
    const stem = basename(args.file).replace(/\.jsonl?$/, '');
    const out =
      args.out ?? join(run.record.dir, 'predictions', args.format === 'brat' ? `${stem}.brat` : `${stem}${args.format === 'sener' ? '.sener' : ''}.jsonl`);
    writePredictions(out, args.format, predictionDocuments(docs, predictions));
    const total = [...predictions.values()].reduce((n, p) => n + p.length, 0);
    console.log(`${total} entities in ${docs.length} documents: ${out}`);
  },
};
