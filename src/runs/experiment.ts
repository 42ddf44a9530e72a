/**
 * An experiment file (experiments/*.yaml): a grid of configs x seeds, and what its report shows.
 *
 * ```yaml
 * name: window-sweep
 * description: SeNER with w in 16..256 on each dataset.
 * seeds: [2288, 3618, 4937]
 * grid:
 *   - methods: [sener]                       # configs/<method>/<dataset>.yaml
 *     datasets: [scholar-xl, scirex]
 *     axes:
 *       w: { keys: [sener.window, encoder.window], values: [16, 32, 64] }   # keys set together
 *       train.lr: [1.0e-3, 3.0e-3]                                         # shorthand: one key
 *   - configs: [configs/ablations/sener-no-arrow.yaml]
 *     row: no-arrow                          # joins the paper's table3.csv rows
 *     datasets: [scholar-xl, { name: scirex, set: { train.encoderLr: 3.0e-4 } }]
 * report: { tables: [ablation], charts: [f1-bars] }
 * presets:
 *   quick: { seeds: [2288], set: { train.maxSteps: 8 } }
 * ```
 *
 * What a cell's config is, in merge order (later wins): the config file (with its `extends:`), the
 * config preset (then its `datasets.<name>` block for the cell's dataset), the experiment's
 * `presets.<name>.set`, `dataset.name` and the dataset's own `set` (config entries), the entry's
 * `set`, the axis values, then the command line's `--set`. The
 * experiment's preset block comes before the cell's own keys, so a sweep axis or an ablation's switch
 * is never undone by a "make it small" setting.
 *
 * Paths (config files, `uses`, `frontier`) are relative to the project root, as in
 * experiments/memory-frontier.yaml, or to the experiment file's folder when the file is there;
 * `uses` names may also be bare experiment names.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { LongnerError } from '../errors.js';
import { METHODS, MethodSchema, type Method } from '../config/schema.js';
import { fromRoot } from '../util/paths.js';

/** Experiment names become folders under runs/ and reports/. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** `a.b.c`, as on the command line's --set. */
const KEY_PATH = /^[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*$/;

const Scalar = z.union([z.number(), z.string(), z.boolean(), z.null()]);
export type AxisValue = z.infer<typeof Scalar>;

/** `{ key.path: value }`: dotted keys; a mapping value replaces the whole section it names. */
const SetBlock = z.record(z.string().regex(KEY_PATH, 'a dotted key path such as train.maxSteps'), z.unknown());
export type SetBlock = z.infer<typeof SetBlock>;

const AxisSchema = z.union([
  z.array(Scalar).min(1),
  z.strictObject({
    keys: z.array(z.string().regex(KEY_PATH)).min(1),
    values: z.array(Scalar).min(1),
  }),
]);

const DatasetRef = z.union([z.string().min(1), z.strictObject({ name: z.string().min(1), set: SetBlock.default({}) })]);

const EntrySchema = z
  .strictObject({
    /**
     * Method names, or `all` (every method declared in src/config/methods/index.ts, in its order): each
     * cell reads configs/<method>/<dataset>.yaml; a missing file makes the cell "not run".
     */
    methods: z.union([z.literal('all').transform((): Method[] => [...METHODS]), z.array(MethodSchema).min(1)]).optional(),
    /** Config files (relative to the project root). */
    configs: z.array(z.string().min(1)).min(1).optional(),
    /** Datasets; required with `methods`; with `configs`, each sets dataset.name (absent: the file's own dataset). */
    datasets: z.array(DatasetRef).min(1).optional(),
    /** Row label in reports; default the method name or the config file's name. */
    label: z.string().min(1).optional(),
    /** Row key that joins the paper's reference numbers (table3.csv `row`); default the label. */
    row: z.string().min(1).optional(),
    set: SetBlock.default({}),
    /** Swept values: one cell per combination (cartesian product, in the order written). */
    axes: z.record(z.string().min(1), AxisSchema).default({}),
    /** Seeds of this entry; default the experiment's. */
    seeds: z.array(z.number().int()).min(1).optional(),
  })
  .superRefine((entry, ctx) => {
    if ((entry.methods === undefined) === (entry.configs === undefined)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'exactly one of `methods` or `configs`' });
    }
    if (entry.methods !== undefined && entry.datasets === undefined) {
      ctx.addIssue({ code: 'custom', path: ['datasets'], message: 'a list of datasets (required with `methods`)' });
    }
  });
export type GridEntry = z.output<typeof EntrySchema>;

export const TABLE_KINDS = ['datasets', 'main', 'ablation', 'window', 'per-type', 'efficiency', 'diagnostics'] as const;
export const CHART_KINDS = ['f1-bars', 'window-lines', 'memory-vs-length', 'latency-vs-length', 'per-type-radar', 'inference-bars', 'learning-curves'] as const;
export type TableKind = (typeof TABLE_KINDS)[number];
export type ChartKind = (typeof CHART_KINDS)[number];

const ReportSchema = z.strictObject({
  tables: z.array(z.enum(TABLE_KINDS)).default([]),
  charts: z.array(z.enum(CHART_KINDS)).default([]),
  /** Dataset order of the report (and of table1's statistics); default the order cells appear in. */
  datasets: z.array(z.string().min(1)).optional(),
  /** The dataset of the per-type table and radar (paper Fig. 6: Scholar-XL). */
  perTypeDataset: z.string().min(1).default('scholar-xl'),
  /** The memory frontier's output; the first file that exists is read; `{preset}` is the report's preset. */
  frontier: z.array(z.string().min(1)).default(['reports/memory-frontier/{preset}/frontier.json', 'reports/memory-frontier/frontier.json']),
  /**
   * The same frontier with every method at its most efficient (low-memory attention, recomputation:
   * memory-frontier.yaml's `efficient` preset), shown beside the reference-faithful one; first file that exists.
   */
  frontierEfficient: z.array(z.string().min(1)).default(['reports/memory-frontier/efficient/frontier.json']),
  /** Free text shown under the title. */
  notes: z.array(z.string()).default([]),
});

const PresetBlock = z.strictObject({
  /** The config preset (configs/presets/) applied to every cell; default the preset's own name. */
  preset: z.string().min(1).optional(),
  seeds: z.array(z.number().int()).min(1).optional(),
  set: SetBlock.default({}),
  /** Only these of the grid's datasets, for a preset at which the others cost too much (say why in a comment). */
  datasets: z.array(z.string().min(1)).min(1).optional(),
  /** New values of named axes of the grid, e.g. `{ w: [8, 16, 32, 64] }`: the keys they set stay the entry's. */
  axes: z.record(z.string().min(1), z.array(Scalar).min(1)).default({}),
});
export type PresetBlock = z.output<typeof PresetBlock>;

export const ExperimentSchema = z.strictObject({
  name: z.string().regex(NAME, 'a name of letters, digits, dot, dash or underscore'),
  description: z.string().default(''),
  seeds: z.array(z.number().int()).min(1).default([2288]),
  grid: z.array(EntrySchema).default([]),
  /** Other experiments whose cells this report reads too (their runs are found by run id). */
  uses: z.array(z.string().min(1)).default([]),
  report: ReportSchema.prefault({}),
  presets: z.record(z.string().regex(NAME), PresetBlock).default({}),
});
export type ExperimentFile = z.output<typeof ExperimentSchema>;

/** An experiment with one preset applied. */
export interface Experiment extends Omit<ExperimentFile, 'presets'> {
  /** The file it was read from (absolute). */
  file: string;
  /** The preset name given (--preset); null = none. */
  preset: string | null;
  /** The config preset (configs/presets/<name>.yaml) every cell gets; null = none. */
  configPreset: string | null;
  /** The experiment's own `set` for this preset, applied to every cell after the config preset. */
  presetSet: SetBlock;
  /** The datasets the preset block keeps (already applied to `grid` and `report.datasets`); null = all. */
  presetDatasets: string[] | null;
  /** The axis values the preset block replaced (already applied to `grid`). */
  presetAxes: Record<string, AxisValue[]>;
  /** Preset names this file defines a block for. */
  presetBlocks: string[];
}

/** `experiments/x.yaml`, `x.yaml` or bare `x` (then experiments/x.yaml under the project root). */
export function resolveExperimentPath(nameOrPath: string, relativeTo?: string): string {
  const looksLikeName = !nameOrPath.includes('/') && extname(nameOrPath) === '';
  if (looksLikeName) {
    const sibling = relativeTo === undefined ? null : resolve(relativeTo, `${nameOrPath}.yaml`);
    if (sibling !== null && existsSync(sibling)) return sibling;
    return fromRoot('experiments', `${nameOrPath}.yaml`);
  }
  if (isAbsolute(nameOrPath)) return nameOrPath;
  const local = resolve(nameOrPath);
  return existsSync(local) ? local : fromRoot(nameOrPath);
}

/**
 * Paths written in an experiment file start at the project root (absolute paths stay), except that a
 * file next to the experiment file wins: a user's experiment outside the repository names its own
 * configs beside it.
 */
export function projectPath(path: string, experimentFile?: string): string {
  if (isAbsolute(path)) return path;
  const beside = experimentFile === undefined ? null : resolve(dirname(experimentFile), path);
  return beside !== null && existsSync(beside) ? beside : fromRoot(path);
}

export function readExperimentFile(file: string): ExperimentFile {
  if (!existsSync(file)) throw new LongnerError(`${file}: experiment file not found`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new LongnerError(`${file}: cannot read: ${err instanceof Error ? err.message : String(err)}`);
  }
  const doc = parseDocument(text);
  const error = doc.errors[0];
  if (error !== undefined) {
    const pos = error.linePos?.[0];
    throw new LongnerError(`${pos === undefined ? file : `${file}:${pos.line}:${pos.col}`}: ${error.message.split('\n')[0]}`);
  }
  const parsed = ExperimentSchema.safeParse(doc.toJS() ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length === 0 ? '(top level)' : issue.path.map(String).join('.');
    const what = issue.code === 'unrecognized_keys' ? `unknown key(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}` : `expected ${issue.message}`;
    throw new LongnerError(`${file}: ${where}: ${what}`);
  }
  const stem = basename(file, extname(file));
  if (parsed.data.name !== stem) {
    // Reports and `uses:` find an experiment by its file name, so the two must agree.
    throw new LongnerError(`${file}: name: "${parsed.data.name}" must equal the file's name "${stem}"`);
  }
  return parsed.data;
}

/**
 * Reads an experiment and applies a preset: the config preset of that name (or the block's `preset`)
 * to every cell, plus the file's `presets.<name>` block (seeds, set) when it has one.
 */
export function loadExperiment(nameOrPath: string, opts: { preset?: string | null } = {}): Experiment {
  const file = resolveExperimentPath(nameOrPath);
  const data = readExperimentFile(file);
  const { presets, ...rest } = data;
  const preset = opts.preset ?? null;
  const block = preset === null ? undefined : presets[preset];
  const datasets = block?.datasets ?? null;
  const axes = block?.axes ?? {};
  return {
    ...rest,
    grid: narrowGrid(rest.grid, datasets, axes, `${file}: presets.${preset}`),
    report:
      datasets === null || rest.report.datasets === undefined
        ? rest.report
        : { ...rest.report, datasets: rest.report.datasets.filter((d) => datasets.includes(d)) },
    seeds: block?.seeds ?? rest.seeds,
    file,
    preset,
    configPreset: preset === null ? null : (block?.preset ?? preset),
    presetSet: block?.set ?? {},
    presetDatasets: datasets,
    presetAxes: axes,
    presetBlocks: Object.keys(presets),
  };
}

const datasetName = (d: z.infer<typeof DatasetRef>): string => (typeof d === 'string' ? d : d.name);

/**
 * The grid under a preset block's `datasets` and `axes`: entries keep only the named datasets (an
 * entry left with none is dropped), named axes get the new values. A name the grid does not have is
 * an error, so a typo cannot silently run the full grid.
 */
function narrowGrid(grid: GridEntry[], datasets: string[] | null, axes: Record<string, AxisValue[]>, where: string): GridEntry[] {
  const known = new Set(grid.flatMap((e) => (e.datasets ?? []).map(datasetName)));
  for (const d of datasets ?? [])
    if (!known.has(d)) throw new LongnerError(`${where}.datasets: "${d}" is not a dataset of the grid (${[...known].join(', ')})`);
  for (const name of Object.keys(axes)) {
    if (!grid.some((e) => name in e.axes)) throw new LongnerError(`${where}.axes: "${name}" is not an axis of the grid`);
  }
  return grid.flatMap((entry) => {
    const kept = datasets === null || entry.datasets === undefined ? entry.datasets : entry.datasets.filter((d) => datasets.includes(datasetName(d)));
    if (kept !== undefined && kept.length === 0) return [];
    const newAxes = Object.fromEntries(
      Object.entries(entry.axes).map(([name, axis]) => {
        const values = axes[name];
        if (values === undefined) return [name, axis];
        return [name, Array.isArray(axis) ? values : { keys: axis.keys, values }];
      }),
    );
    return [{ ...entry, datasets: kept, axes: newAxes }];
  });
}
