/** What every report section gets, and the caption every table carries (preset, backend, protocol, seeds). */
import type { Experiment } from '../runs/experiment.js';
import type { Group } from './aggregate.js';
import type { Collected } from './collect.js';
import type { PaperNumbers } from './paper.js';

export interface ReportContext {
  collected: Collected;
  paper: PaperNumbers;
  /** Dataset order of the report. */
  datasets: string[];
}

/** Datasets in the order the experiment names them, else in the order its cells appear. */
export function datasetOrder(experiment: Experiment, groups: readonly Group[]): string[] {
  const seen = [...(experiment.report.datasets ?? [])];
  for (const g of groups) if (!seen.includes(g.dataset)) seen.push(g.dataset);
  return seen;
}

function list(values: Iterable<string>, none: string): string {
  const distinct = [...new Set(values)].sort();
  return distinct.length === 0 ? none : distinct.join(', ');
}

/** "preset quick; backend wasm; data protocol local; seeds 3 (2288, 3618, 4937)". */
export function settingsCaption(experiment: Experiment, groups: readonly Group[]): string {
  const backends = groups.flatMap((g) => g.seeds.map((s) => s.result?.backend).filter((b): b is NonNullable<typeof b> => b !== null && b !== undefined));
  const protocols = groups.map((g) => g.protocol).filter((p): p is string => p !== null);
  const seedCounts = [...new Set(groups.map((g) => g.seeds.filter((s) => s.status !== 'not-configured').length).filter((n) => n > 0))];
  const seeds =
    seedCounts.length === 1 && seedCounts[0] === experiment.seeds.length
      ? `${experiment.seeds.length} (${experiment.seeds.join(', ')})`
      : `${experiment.seeds.join(', ')} (per cell: ${seedCounts.join(' or ')})`;
  return (
    `Preset ${experiment.preset ?? 'none'}; backend ${list(backends, 'none recorded yet')}; data protocol ${list(protocols, 'n/a')}; ` +
    `seeds ${seeds}. Ours: mean ± sample standard deviation over the seeds that finished.`
  );
}

/** The standing caveat of the local data protocol (research/datasets.md). */
export function protocolCaveat(protocols: readonly (string | null)[]): string {
  const local = protocols.includes('local');
  return local
    ? 'Data protocol **local**: Scholar-XL and Profiling-07 train on their dev split (the train files are not available here) and ' +
        'SciREX tests on its dev split (no official test file), so our numbers compare methods with each other; they are not comparable ' +
        "to the paper's absolute numbers, which are shown beside them only for orientation (README, Datasets)."
    : "Data protocol **paper** (the official splits); the model sizes and training budget of the preset still differ from the paper's.";
}
