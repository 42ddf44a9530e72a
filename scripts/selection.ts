/**
 * Was a finished run held back by its selection (checkpoint and tuned threshold, both chosen on a few
 * validation documents) or by what it learned? For the run's best and last checkpoints this prints:
 * the eval.thresholdGrid value tuned on the first N validation documents (for each N given; N above the
 * split's size takes the whole split), the test F1 at that value, and the best test F1 over the grid in
 * hindsight, which no selection can beat.
 *
 *   node dist/scripts/selection.js RUN_FOLDER [N ...]    (default N: the run's own eval size, then all)
 *
 * Read-only: nothing is written to the run folder.
 */
import { join } from 'node:path';
import type { Config } from '../src/config/schema.js';
import type { Segment } from '../src/data/segmenter.js';
import type { Document } from '../src/data/types.js';
import { loadProtocolFor, segmentDocuments } from '../src/data/pipeline.js';
import { bestThreshold } from '../src/eval/diagnostics.js';
import { evaluateDocuments, type Evaluation } from '../src/eval/evaluate.js';
import { loadTrainedRun, type TrainedRun } from '../src/runs/load.js';
import { runRegistry } from '../src/runs/run-dataset.js';
import { BEST_CKPT, LAST_CKPT } from '../src/train/checkpoint.js';
import { markdownTable, type Cell } from '../src/util/table.js';

const pct = (x: number): string => (100 * x).toFixed(2);

interface Split {
  docs: Document[];
  byDoc: Map<string, Segment[]>;
}

/** A split's documents and segments, made once and scored for each checkpoint. */
async function split(run: TrainedRun, config: Config, name: 'validation' | 'test'): Promise<Split> {
  const docs = (await loadProtocolFor(config, runRegistry(run.record.dir, config)))[name];
  return { docs, byDoc: (await segmentDocuments(docs, run.tokenizer, config)).byDoc };
}

async function sweep(run: TrainedRun, { docs, byDoc }: Split): Promise<Evaluation['sweep']> {
  const ev = await evaluateDocuments(run.model, docs, byDoc, run.config.eval.batchSize, { sweep: run.config.eval.thresholdGrid, profile: false });
  return ev.sweep;
}

async function main(): Promise<void> {
  const [dir, ...sizes] = process.argv.slice(2);
  if (dir === undefined || dir.startsWith('-')) {
    throw new Error('usage: node dist/scripts/selection.js RUN_FOLDER [N ...]  (N: validation documents to tune on)');
  }
  const run = await loadTrainedRun(dir, { quiet: true });
  if (run.model.tunesThreshold !== true) throw new Error(`${dir}: method ${run.config.method} has no decoding threshold to tune`);
  const ns = sizes.length > 0 ? sizes.map(Number) : [run.config.dataset.maxDocs.validation ?? Infinity, Infinity];
  if (ns.some((n) => !(n > 0))) throw new Error(`selection: N must be positive numbers of documents, got ${sizes.join(' ')}`);
  const test = await split(run, run.config, 'test');
  const validations = await Promise.all(
    ns.map((n) =>
      split(
        run,
        { ...run.config, dataset: { ...run.config.dataset, maxDocs: { ...run.config.dataset.maxDocs, validation: Number.isFinite(n) ? n : null } } },
        'validation',
      ),
    ),
  );
  const rows: Cell[][] = [];
  for (const ckpt of [BEST_CKPT, LAST_CKPT]) {
    run.model.params.load(join(dir, ckpt));
    const atTest = await sweep(run, test);
    const hindsight = Math.max(...atTest.map((s) => s.overall.f1));
    for (const validation of validations) {
      // The trainer's own rule (ties nearest 0.5), so N = the run's size reproduces its tuned value.
      const tuned = bestThreshold(await sweep(run, validation))!;
      const scored = atTest.find((s) => s.threshold === tuned.threshold)!;
      const gold = validation.docs.reduce((sum, d) => sum + d.entities.length, 0);
      rows.push([
        ckpt,
        `${validation.docs.length} (${gold} gold)`,
        String(tuned.threshold),
        pct(tuned.overall.f1),
        pct(scored.overall.f1),
        scored.predicted,
        pct(hindsight),
      ]);
    }
  }
  console.log(`${run.config.method} on ${run.config.dataset.name}, seed ${run.config.train.seed} (${dir}); F1 in %`);
  console.log(
    markdownTable(['checkpoint', 'validation docs', 'tuned threshold', 'validation F1', 'test F1 at it', 'test predicted', 'best test F1 in hindsight'], rows),
  );
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
