/**
 * What a report reads: the experiment's grid expanded with the preset and --set it was run with, the
 * grids of the experiments it `uses`, and whatever run records exist for their run ids (in any
 * experiment folder of the runs root, runs/locate.ts). Nothing is run and nothing is required to
 * exist: a cell without a record is reported as missing.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { loadExperiment, resolveExperimentPath, type Experiment } from '../runs/experiment.js';
import { expandGrid, type GridCell } from '../runs/grid.js';
import { findRuns, runsRoot } from '../runs/locate.js';
import { RESULT_FILE } from '../runs/record.js';
import { GRID_FILE } from '../runs/runner.js';
import { groupRuns, type Group } from './aggregate.js';

export interface CollectOptions {
  /** Preset; undefined = the one recorded by the last `run` of this experiment (grid.json), else none. */
  preset?: string | null;
  /** --set; undefined = the recorded one. */
  set?: string[];
  root?: string;
}

export interface Collected {
  experiment: Experiment;
  root: string;
  set: string[];
  /** Where the preset and --set came from, in words. */
  settingsSource: string;
  /** The experiment's own groups. */
  groups: Group[];
  /** Groups of the experiments it uses, by experiment name. */
  used: Map<string, { experiment: Experiment; groups: Group[] }>;
  /** Run folders in runs/<experiment>/ that belong to no cell of the grid (another preset, an older config or code). */
  strays: string[];
}

/** The experiment's own groups, then those of the experiments it uses. */
export function allGroups(collected: Collected): Group[] {
  return [...collected.groups, ...[...collected.used.values()].flatMap((u) => u.groups)];
}

/** Run folders of an experiment folder whose id is not one of `ids`. */
function strayRuns(root: string, experiment: string, ids: ReadonlySet<string>): string[] {
  const dir = join(root, experiment);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((name) => !ids.has(name) && existsSync(join(dir, name, RESULT_FILE)));
}

const GridFileSchema = z.looseObject({ preset: z.string().nullable(), set: z.array(z.string()).default([]) });

/** The preset and --set the last `longner run` of this experiment used (runs/<experiment>/grid.json). */
export function recordedSettings(root: string, experiment: string): { preset: string | null; set: string[] } | null {
  const file = join(root, experiment, GRID_FILE);
  if (!existsSync(file)) return null;
  try {
    const parsed = GridFileSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
    return parsed.success ? { preset: parsed.data.preset, set: parsed.data.set } : null;
  } catch {
    return null;
  }
}

function groupsOf(experiment: Experiment, root: string, set: string[]): { cells: GridCell[]; groups: Group[] } {
  const cells = expandGrid(experiment, { set });
  const found = findRuns(
    root,
    experiment.name,
    cells.filter((c) => c.config !== null).map((c) => c.runId),
  );
  return { cells, groups: groupRuns(cells, found) };
}

export function collect(nameOrPath: string, opts: CollectOptions = {}): Collected {
  const root = runsRoot(opts.root);
  const file = resolveExperimentPath(nameOrPath);
  const probe = loadExperiment(file);
  // A report-only experiment (fig7) has no run of its own: the experiments it uses say how they were run.
  const usedNames = probe.uses.map((name) => loadExperiment(resolveExperimentPath(name, dirname(file))).name);
  const recorded = [probe.name, ...usedNames].map((name) => recordedSettings(root, name)).find((r) => r !== null) ?? null;
  const preset = opts.preset !== undefined ? opts.preset : (recorded?.preset ?? null);
  const set = opts.set ?? recorded?.set ?? [];
  const settingsSource =
    opts.preset !== undefined || opts.set !== undefined
      ? 'given on the command line'
      : recorded !== null
        ? `as recorded by the last \`longner run\` (${GRID_FILE})`
        : 'none given and no run recorded';
  const experiment = loadExperiment(file, { preset });
  const own = groupsOf(experiment, root, set);
  const used = new Map<string, { experiment: Experiment; groups: Group[] }>();
  // A used experiment is read with the same preset (and its own presets block), so its run ids are the ones run with it.
  for (const name of experiment.uses) {
    const other = loadExperiment(resolveExperimentPath(name, dirname(file)), { preset });
    used.set(other.name, { experiment: other, groups: groupsOf(other, root, set).groups });
  }
  const ids = new Set(own.cells.map((c) => c.runId));
  return { experiment, root, set, settingsSource, groups: own.groups, used, strays: strayRuns(root, experiment.name, ids) };
}
