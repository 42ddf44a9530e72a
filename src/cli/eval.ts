import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandModule } from 'yargs';
import { loadConfig } from '../config/load.js';
import { segmentDocuments, loadProtocolFor } from '../data/pipeline.js';
import { evaluateDocuments } from '../eval/evaluate.js';
import { executeEnsembleRun } from '../runs/el4ner.js';
import { runDir } from '../runs/id.js';
import { DATASET_FILE, readRunDataset, runRegistry } from '../runs/run-dataset.js';
import { stableStringify } from '../util/hash.js';
import { locateRunFolder } from '../runs/locate.js';
import { runsRoot } from '../util/paths.js';
import { loadTrainedRun } from '../runs/load.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { withRunsDir, type RunsDirArgs } from './config.js';
import { metricsTable, printResult } from './show.js';
import { dataFingerprints } from '../data/config-hash.js';

interface EvalArgs extends RunsDirArgs {
  target: string;
  split: 'test' | 'validation';
  preset?: string;
  set?: string[];
}

/** A trained run's best checkpoint on a split; writes eval-<split>.json in the run folder. */
async function evalRun(dir: string, split: 'test' | 'validation'): Promise<void> {
  const run = await loadTrainedRun(dir);
  const registry = runRegistry(run.record.dir, run.config);
  const recorded = readRunDataset(run.record.dir)?.fingerprints;
  if (recorded !== undefined && stableStringify(recorded) !== stableStringify(dataFingerprints(run.config, registry))) {
    console.error(
      `longner: warning: the data files changed since ${run.record.dir} was trained (their sha256 differ from its ${DATASET_FILE}); scoring the files as they are now`,
    );
  }
  const protocol = await loadProtocolFor(run.config, registry);
  const docs = protocol[split];
  const segments = await segmentDocuments(docs, run.tokenizer, run.config);
  const ev = await evaluateDocuments(run.model, docs, segments.byDoc, run.config.eval.batchSize, { threshold: run.threshold ?? undefined });
  const out = join(run.record.dir, `eval-${split}.json`);
  writeJsonAtomic(out, {
    split,
    backend: run.backend.name,
    threshold: ev.threshold,
    metrics: ev.metrics,
    diagnostics: ev.diagnostics,
    msPerDocument: ev.msPerDocument,
    peakBytesInference: ev.peakBytesInference,
    createdAt: new Date().toISOString(),
  });
  console.log(`${run.config.method} on ${run.config.dataset.name} ${split} (${docs.length} docs)`);
  console.log(metricsTable(ev.metrics));
  console.log(`written: ${out}`);
}

export const evalCommand: CommandModule<object, EvalArgs> = {
  command: 'eval <target>',
  describe:
    'evaluate: TARGET is a run folder or run id (its best checkpoint on --split), or a config file: the run that config names, ' +
    'or, for method el4ner (which does not train), the LLM ensemble on the test split, written as a run record',
  builder: (y) =>
    withRunsDir(y)
      .positional('target', { type: 'string', demandOption: true, describe: '<runs>/<experiment>/<run id>, a run id, or a YAML config' })
      .option('split', { choices: ['test', 'validation'] as const, default: 'test' as const, describe: 'which protocol split' })
      .option('preset', { type: 'string', describe: 'with a config file: scale preset (quick | cpu | paper)' })
      .option('set', { type: 'string', array: true, describe: 'with a config file: override options, e.g. --set dataset.maxDocs.test=5' }) as never,
  handler: async (args) => {
    const root = runsRoot(args['runs-dir']);
    if (!statSync(args.target, { throwIfNoEntry: false })?.isFile()) return evalRun(locateRunFolder(args.target, root), args.split);
    const { config } = loadConfig(args.target, { preset: args.preset, set: args.set });
    if (config.method !== 'el4ner') return evalRun(runDir(config, root), args.split);
    const result = await executeEnsembleRun(config, { root });
    printResult(result, runDir(config, root));
    if (result.status !== 'ok' && result.status !== 'not-run') process.exitCode = 1;
  },
};
