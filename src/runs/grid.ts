/**
 * Expanding an experiment's grid into cells: one resolved config per (entry, config file, dataset,
 * axis combination, seed). Pure apart from reading the config files.
 *
 * A cell whose config cannot exist here (a method entry whose configs/<method>/<dataset>.yaml is
 * absent, e.g. el4ner before a model is configured) is kept as a `not-configured` cell without a
 * config, so reports show it as "not run" instead of leaving the row out.
 */
import { existsSync } from 'node:fs';
import { basename, extname, relative } from 'node:path';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { LongnerError } from '../errors.js';
import { fromRoot, projectRoot } from '../util/paths.js';
import { projectPath, type AxisValue, type Experiment, type GridEntry, type SetBlock } from './experiment.js';
import { runId } from './id.js';

export interface GridCell {
  /** Position in the expanded grid (file order). */
  index: number;
  /** Which grid entry of the file made it. */
  entry: number;
  /** Row label in reports (method name, config file name, or the entry's `label`). */
  label: string;
  /** Key that joins the paper's numbers (the entry's `row`, else the label). */
  row: string;
  method: string;
  dataset: string;
  seed: number;
  /** Axis name -> value of this cell, in the order the axes are written. */
  axes: Record<string, AxisValue>;
  /** The config file, relative to the project root when inside it. */
  configFile: string;
  /** Null for a not-configured cell. */
  config: Config | null;
  /** The run id (`<method>-<dataset>-<hash>-s<seed>`); for a not-configured cell `<method>-<dataset>-unconfigured`. */
  runId: string;
  notConfigured: string | null;
}

export interface ExpandOptions {
  /** Command-line overrides, applied last to every cell. */
  set?: string[];
}

/** A `key=value` argument for loadConfig's --set: JSON is YAML, so the value keeps its type. */
function setArgument(key: string, value: unknown): string {
  return `${key}=${JSON.stringify(value)}`;
}

function setArguments(block: SetBlock): string[] {
  return Object.entries(block).map(([key, value]) => setArgument(key, value));
}

/** Cartesian product of the axes, first axis outermost. */
export function axisCombinations(axes: GridEntry['axes']): Array<{ values: Record<string, AxisValue>; set: string[] }> {
  let combos: Array<{ values: Record<string, AxisValue>; set: string[] }> = [{ values: {}, set: [] }];
  for (const [name, axis] of Object.entries(axes)) {
    const keys = Array.isArray(axis) ? [name] : axis.keys;
    const values = Array.isArray(axis) ? axis : axis.values;
    combos = combos.flatMap((c) => values.map((v) => ({ values: { ...c.values, [name]: v }, set: [...c.set, ...keys.map((k) => setArgument(k, v))] })));
  }
  return combos;
}

function displayFile(file: string): string {
  const rel = relative(projectRoot(), file);
  return rel.startsWith('..') ? file : rel;
}

interface Source {
  file: string;
  method: string | null;
  dataset: string | null;
  datasetSet: SetBlock;
}

function entrySources(entry: GridEntry, experimentFile: string): Source[] {
  const datasets = (entry.datasets ?? [null]).map((d) => (d === null ? null : typeof d === 'string' ? { name: d, set: {} } : d));
  if (entry.methods !== undefined) {
    return entry.methods.flatMap((method) =>
      datasets.map((d) => ({ file: fromRoot('configs', method, `${d!.name}.yaml`), method, dataset: d!.name, datasetSet: d!.set })),
    );
  }
  return (entry.configs ?? []).flatMap((path) =>
    datasets.map((d) => ({ file: projectPath(path, experimentFile), method: null, dataset: d?.name ?? null, datasetSet: d?.set ?? {} })),
  );
}

export function expandGrid(experiment: Experiment, opts: ExpandOptions = {}): GridCell[] {
  const cells: GridCell[] = [];
  experiment.grid.forEach((entry, entryIndex) => {
    const seeds = entry.seeds ?? experiment.seeds;
    for (const source of entrySources(entry, experiment.file)) {
      const configFile = displayFile(source.file);
      const stem = basename(source.file, extname(source.file));
      const label = entry.label ?? source.method ?? stem;
      const row = entry.row ?? label;
      if (!existsSync(source.file)) {
        if (source.method === null) {
          throw new LongnerError(`${experiment.file}: grid.${entryIndex}.configs: ${configFile} does not exist`);
        }
        // One "not run" cell per (method, dataset): there is nothing to seed.
        cells.push({
          index: cells.length,
          entry: entryIndex,
          label,
          row,
          method: source.method,
          dataset: source.dataset!,
          seed: seeds[0]!,
          axes: {},
          configFile,
          config: null,
          runId: `${source.method}-${source.dataset}-unconfigured`,
          notConfigured: `no model configured (${configFile} does not exist)`,
        });
        continue;
      }
      for (const combo of axisCombinations(entry.axes)) {
        for (const seed of seeds) {
          const set = [
            setArgument('experiment', experiment.name),
            ...setArguments(experiment.presetSet),
            ...(source.dataset === null || source.method !== null ? [] : [setArgument('dataset.name', source.dataset)]),
            ...setArguments(source.datasetSet),
            ...setArguments(entry.set),
            ...combo.set,
            setArgument('train.seed', seed),
            ...(opts.set ?? []),
          ];
          let config: Config;
          try {
            config = loadConfig(source.file, { preset: experiment.configPreset ?? undefined, set }).config;
          } catch (err) {
            if (!(err instanceof LongnerError)) throw err;
            throw new LongnerError(
              `${experiment.file}: grid.${entryIndex} (${configFile}${source.dataset === null ? '' : `, ${source.dataset}`}): ${err.message}`,
            );
          }
          cells.push({
            index: cells.length,
            entry: entryIndex,
            label,
            row,
            method: config.method,
            dataset: config.dataset.name,
            seed: config.train.seed,
            axes: combo.values,
            configFile,
            config,
            runId: runId(config),
            notConfigured: null,
          });
        }
      }
    }
  });
  return cells;
}

/** Cells that can run (have a config), each run id once (two entries may resolve to the same config). */
export function runnableCells(cells: readonly GridCell[]): GridCell[] {
  const seen = new Set<string>();
  return cells.filter((c) => {
    if (c.config === null || seen.has(c.runId)) return false;
    seen.add(c.runId);
    return true;
  });
}

/** The seed-free identity of a cell: the group its seeds are aggregated over in reports. */
export function groupKey(cell: Pick<GridCell, 'entry' | 'label' | 'dataset' | 'axes'>): string {
  return JSON.stringify([cell.entry, cell.label, cell.dataset, cell.axes]);
}
