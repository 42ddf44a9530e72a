/** Reopening a trained run: its config, tokenizer, types (dataset.json) and best checkpoint, for `eval` and `predict`. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend, type BackendInfo } from '../backend/index.js';
import type { Config } from '../config/schema.js';
import { defaultRegistry } from '../data/registry.js';
import { SubwordTokenizer } from '../data/tokenizer.js';
import { LongnerError } from '../errors.js';
import { createModel } from '../models/index.js';
import type { SpanModel } from '../models/span-model.js';
import { BEST_CKPT } from '../train/checkpoint.js';
import { TOKENIZER_FILE } from './execute.js';
import { RunRecord } from './record.js';
import { readRunDataset } from './run-dataset.js';

export interface TrainedRun {
  record: RunRecord;
  config: Config;
  tokenizer: SubwordTokenizer;
  model: SpanModel;
  backend: BackendInfo;
  /** The decoding threshold the run's test evaluation used (its tuned one under eval.threshold: tuned); null: the model's own. */
  threshold: number | null;
}

export async function loadTrainedRun(dir: string, opts: { quiet?: boolean } = {}): Promise<TrainedRun> {
  const record = RunRecord.open(dir);
  const config = record.readConfig();
  for (const file of [TOKENIZER_FILE, BEST_CKPT]) {
    if (!existsSync(join(record.dir, file))) {
      throw new LongnerError(`${dir}: no ${file}; the run has not finished training (continue it with \`longner train CONFIG --resume\`)`);
    }
  }
  const backend = await initBackend(config.backend, { quiet: opts.quiet });
  const tokenizer = SubwordTokenizer.load(join(record.dir, TOKENIZER_FILE));
  // Older runs have no dataset.json: their types come from the registry, as they did when they trained.
  const types = readRunDataset(record.dir)?.types ?? defaultRegistry().dataset(config.dataset.name).types;
  const model = createModel(config, { types, vocabSize: tokenizer.vocabSize });
  model.params.load(join(record.dir, BEST_CKPT));
  return { record, config, tokenizer, model, backend, threshold: record.readResult()?.thresholds?.used ?? null };
}
