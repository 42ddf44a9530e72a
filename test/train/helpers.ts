/** Shared set-up of the trainer tests: a config, a run record in a temp folder, toy data. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveConfigFromObject } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { LENGTH_BUCKETS, prf, type Metrics } from '../../src/eval/metrics.js';
import { LOG_FILE, RunRecord } from '../../src/runs/record.js';
import type { TrainData } from '../../src/train/trainer.js';
import { setupBackend as setupNnBackend } from '../nn/helpers.js';
import { makeDocs, segmentToy } from './toy-model.js';
import { tempDirs } from '../temp-dirs.js';

const temp = tempDirs();

/** cpu by default; LONGNER_TEST_BACKEND=wasm or =native runs the same tests on that backend. */
export async function setupBackend(): Promise<void> {
  await setupNnBackend();
}

export function trainConfig(train: Record<string, unknown> = {}): Config {
  return resolveConfigFromObject({
    experiment: 'trainer-test',
    eval: { batchSize: 3 },
    train: { seed: 11, epochs: 3, batchSize: 2, lr: 0.05, encoderLr: 0.02, warmup: 0.2, clip: 1, patience: null, ...train },
  });
}

export function tempRecord(config: Config): RunRecord {
  return RunRecord.create(config, temp('train'));
}

/** 8 training segments (4 steps per epoch at batch 2), 4 validation documents, two of them cut in two segments. */
export function toyData(): TrainData {
  const train = makeDocs(8, 3, 't');
  const validation = makeDocs(4, 5, 'v');
  return {
    train: train.flatMap((d) => segmentToy(d)),
    validation,
    validationSegments: validation.flatMap((d) => segmentToy(d, 8)),
  };
}

/** Metrics whose overall F1 is `f1` (only the F1 matters to the trainer). */
export function metricsWithF1(f1: number): Metrics {
  const zero = prf(0, 0, 0);
  return {
    overall: { ...zero, precision: f1, recall: f1, f1 },
    perType: {},
    perLength: Object.fromEntries(LENGTH_BUCKETS.map((b) => [b, zero])) as Metrics['perLength'],
  };
}

export function readLog(record: RunRecord): Record<string, unknown>[] {
  return readFileSync(join(record.dir, LOG_FILE), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}
