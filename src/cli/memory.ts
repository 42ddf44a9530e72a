/**
 * `longner memory EXPERIMENT.yaml`: memory, latency and the out-of-memory frontier of every span
 * method, measured side by side (experiments/memory-frontier.yaml describes the file).
 *
 * 1. Curves: for each method and length, one training-step probe and one inference probe, each in
 *    its own child process (src/measure/child.ts), each stored as a run record
 *    (runs/<experiment>-train/<run-id>/ and runs/<experiment>-infer/<run-id>/: the run id already
 *    encodes method and length, through the config hash, and the mode is in the folder name) with
 *    the probe's full figures in probe.json beside result.json.
 * 2. Frontier: per method, the longest input that trains under the backend's real memory limit
 *    (searchFrontier, src/measure/frontier.ts), and for each configured budget the longest input
 *    predicted by a quadratic fit of the measured peaks (labelled a prediction everywhere).
 * 3. Report: a table on stdout and reports/<experiment>[/<preset>]/{frontier.md, frontier.json,
 *    memory.png, latency-train.png, latency-infer.png}.
 * A probe that already has a stored result (ok or oom) is reused unless --fresh; failed ones rerun.
 */
import { existsSync, readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { isAbsolute, join, relative } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Argv, CommandModule } from 'yargs';
import { z } from 'zod';
import { mergeConfigObjects, parseSetArgument } from '../config/load.js';
import { MethodSchema, type Config, type Method } from '../config/schema.js';
import { LongnerError } from '../errors.js';
import { DEFAULT_TIMEOUT_MS, runProbeInChild } from '../measure/child.js';
import { fitPeak, searchFrontier, solveBudget, type PeakFit, type SearchResult } from '../measure/frontier.js';
import { DocumentShapeSchema, parseProbeTask, probeConfig, SCHOLAR_XL_LIKE, type ProbeMode, type ProbeResult, type ProbeTaskInput } from '../measure/task.js';
import { SPAN_METHODS } from '../models/index.js';
import { formatBytes, lineChart, powerTicks, type Series } from '../report/charts.js';
import { collectEnv } from '../runs/env.js';
import { configHash, runDir } from '../runs/id.js';
import { RunRecord } from '../runs/record.js';
import { emptyMetrics, type RunResult } from '../runs/result.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { fromRoot } from '../util/paths.js';
import { formatSeconds, Progress } from '../util/progress.js';
import { markdownTable, textTable, type Cell } from '../util/table.js';

// ---------------------------------------------------------------------------------------------
// The experiment file

const Fragment = z.record(z.string(), z.unknown());
const posInt = () => z.number().int().min(1);

const FrontierSettings = z.strictObject({
  enabled: z.boolean().default(true),
  start: posInt().default(512),
  tolerance: z.number().gt(0).lt(1).default(0.05),
  maxLength: posInt().default(65_536),
  minLength: posInt().default(16),
  /** Encoder for the frontier search; null = the shared encoder (then curve probes are reused). */
  encoder: Fragment.nullable().default(null),
  /** Unprofiled steps after the profiled one: a length "trains" only if a second step fits too. */
  repeats: z.number().int().min(0).default(1),
  /** Methods searched at once (each probe is single-threaded); latency curves always run one at a time. */
  concurrency: posInt().default(1),
  /**
   * The budget fits use the lengths within this factor of the longest that trained: short inputs
   * sit in another regime (fixed costs; SeNER's band is as wide as the input until it passes 2w + 1
   * words), which would bend a fit meant to extrapolate upwards.
   */
  fitRange: z.number().min(1).default(4),
});

const BudgetSchema = z.strictObject({ name: z.string().min(1), bytes: z.number().positive() });

const SettingsSchema = z.strictObject({
  experiment: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/).default('memory-frontier'),
  /** null = every span method of src/models (SPAN_METHODS). */
  methods: z.array(MethodSchema).min(1).nullable().default(null),
  /** Config file per method; a method not listed uses `configPattern`. Relative paths start at the project root. */
  configs: z.record(z.string(), z.string().min(1)).default({}),
  configPattern: z.string().min(1).default('configs/{method}/scirex.yaml'),
  /** Config fragment for a method whose config file does not exist (yet). */
  fallback: Fragment.default({}),
  /** Config preset (configs/presets/) applied to every method config. */
  preset: z.string().min(1).nullable().default('cpu-long'),
  backend: z.enum(['auto', 'tensorflow', 'wasm', 'cpu']).default('auto'),
  /** The encoder shape shared by every method. */
  encoder: Fragment.default({}),
  /** Any other config keys shared by every method. */
  overrides: Fragment.default({}),
  document: DocumentShapeSchema.default(SCHOLAR_XL_LIKE),
  seed: z.number().int().default(2288),
  lengths: z.array(posInt()).min(1).default([256, 512, 1024, 2048, 4096]),
  repeats: z.number().int().min(0).default(1),
  timeoutSeconds: z.number().positive().default(DEFAULT_TIMEOUT_MS / 1000),
  /** After a length runs out of memory (or fails), longer ones of the same method and mode are not run. */
  skipAfterOom: z.boolean().default(true),
  frontier: FrontierSettings.prefault({}),
  budgets: z.array(BudgetSchema).default([{ name: 'A100 80GB', bytes: 80e9 }]),
});
export type MemorySettings = z.output<typeof SettingsSchema>;

type Mapping = Record<string, unknown>;

/** Reads the experiment file and applies `presets.<name>` over it (mappings merge, lists replace). */
export function loadMemorySettings(file: string, preset?: string): MemorySettings {
  if (!existsSync(file)) throw new LongnerError(`${file}: experiment file not found`);
  let data: unknown;
  try {
    data = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new LongnerError(`${file}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new LongnerError(`${file}: expected a mapping at the top level`);
  const { presets, ...base } = data as Mapping;
  const available = presets !== null && typeof presets === 'object' && !Array.isArray(presets) ? (presets as Mapping) : {};
  let merged: Mapping = base;
  if (preset !== undefined) {
    const layer = available[preset];
    if (layer === undefined || layer === null || typeof layer !== 'object' || Array.isArray(layer)) {
      throw new LongnerError(`${file}: no preset "${preset}" (presets in this file: ${Object.keys(available).join(', ') || 'none'})`);
    }
    merged = mergeConfigObjects(base, layer as Mapping);
  }
  const parsed = SettingsSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length === 0 ? '(top level)' : issue.path.map(String).join('.');
    throw new LongnerError(`${file}${preset === undefined ? '' : ` (preset ${preset})`}: ${where}: ${issue.message}`);
  }
  return parsed.data;
}

// ---------------------------------------------------------------------------------------------
// Probes, with their run records

export interface MethodPlan {
  method: Method;
  /** Absolute path, or null when the method has no config file and `fallback` stands in. */
  configFile: string | null;
  configShown: string;
}

export function planMethods(settings: MemorySettings, only?: string[]): MethodPlan[] {
  const requested = only ?? settings.methods ?? SPAN_METHODS;
  return requested.map((name): MethodPlan => {
    if (!(SPAN_METHODS as readonly string[]).includes(name)) {
      throw new LongnerError(`memory: '${name}' is not a span method (span methods: ${SPAN_METHODS.join(', ')})`);
    }
    const method = name as Method;
    const shown = settings.configs[method] ?? settings.configPattern.replaceAll('{method}', method);
    const file = isAbsolute(shown) ? shown : fromRoot(shown);
    return { method, configFile: existsSync(file) ? file : null, configShown: shown };
  });
}

/**
 * The probe task of one method, length and mode under the experiment's settings. Config layers, last
 * wins: the method's config file (or the schema defaults and `fallback` when it has none), the
 * config preset, the shared `overrides`, the backend and encoder, then `set`.
 */
export function buildProbeTask(
  s: MemorySettings,
  plan: MethodPlan,
  words: number,
  mode: ProbeMode,
  opts: { encoder?: Mapping; repeats?: number; set?: Mapping } = {},
): ProbeTaskInput {
  const overrides = mergeConfigObjects(plan.configFile === null ? s.fallback : {}, s.overrides, { backend: s.backend, encoder: opts.encoder ?? s.encoder }, opts.set ?? {});
  return {
    method: plan.method,
    configFile: plan.configFile,
    preset: s.preset,
    overrides,
    words,
    mode,
    seed: s.seed,
    experiment: `${s.experiment}-${mode}`,
    document: s.document,
    repeats: opts.repeats ?? s.repeats,
  };
}

type Family = 'curve' | 'frontier';

interface ProbeEntry {
  method: Method;
  family: Family;
  mode: ProbeMode;
  words: number;
  result: ProbeResult;
  /** Reused from an earlier invocation. */
  reused: boolean;
  runDir: string;
}

interface SkippedEntry {
  method: Method;
  mode: ProbeMode;
  words: number;
  /** The probe that made this one pointless, e.g. "oom at 1024". */
  because: string;
}

function nested(keyPath: readonly string[], value: unknown): Mapping {
  return keyPath.reduceRight<Mapping>((inner, key, i) => (i === keyPath.length - 1 ? { [key]: value } : { [key]: inner }), {});
}

class ProbeRunner {
  readonly entries: ProbeEntry[] = [];
  private readonly memo = new Map<string, ProbeEntry>();

  constructor(
    private readonly settings: MemorySettings,
    private readonly plans: Map<Method, MethodPlan>,
    private readonly extra: { set: Mapping; fresh: boolean; runsRoot?: string },
  ) {}

  task(method: Method, words: number, mode: ProbeMode, family: Family): ProbeTaskInput {
    const s = this.settings;
    return buildProbeTask(s, this.plans.get(method)!, words, mode, {
      encoder: family === 'frontier' && s.frontier.encoder !== null ? s.frontier.encoder : s.encoder,
      repeats: family === 'frontier' ? s.frontier.repeats : s.repeats,
      set: this.extra.set,
    });
  }

  config(task: ProbeTaskInput): Config {
    return probeConfig(parseProbeTask(task));
  }

  /** Runs (or reuses) one probe and records it; identical configs (a curve point the frontier search needs again) run once. */
  async run(method: Method, words: number, mode: ProbeMode, family: Family): Promise<ProbeEntry> {
    const task = this.task(method, words, mode, family);
    const config = this.config(task);
    const dir = runDir(config, this.extra.runsRoot);
    const known = this.memo.get(dir);
    if (known !== undefined) {
      const entry = { ...known, family };
      this.entries.push(entry);
      return entry;
    }
    let result = this.extra.fresh ? null : storedProbe(dir, words, mode);
    const reused = result !== null;
    if (result === null) {
      result = await runProbeInChild(task, { timeoutMs: this.settings.timeoutSeconds * 1000 });
      writeProbeRecord(config, task, result, this.extra.runsRoot);
    }
    const entry: ProbeEntry = { method, family, mode, words, result, reused, runDir: dir };
    this.memo.set(dir, entry);
    this.entries.push(entry);
    return entry;
  }
}

const PROBE_FILE = 'probe.json';

/** A stored ok/oom probe of this length and mode, or null (failed probes are always rerun). */
function storedProbe(dir: string, words: number, mode: ProbeMode): ProbeResult | null {
  const file = join(dir, PROBE_FILE);
  if (!existsSync(file)) return null;
  try {
    const data = JSON.parse(readFileSync(file, 'utf8')) as { result?: Partial<ProbeResult> };
    const r = data.result;
    if (r === undefined || r.words !== words || r.mode !== mode || (r.status !== 'ok' && r.status !== 'oom')) return null;
    return r as ProbeResult;
  } catch {
    return null;
  }
}

function writeProbeRecord(config: Config, task: ProbeTaskInput, result: ProbeResult, runsRoot?: string): void {
  const record = RunRecord.create(config, runsRoot);
  record.log({ event: 'probe', task, result });
  writeJsonAtomic(join(record.dir, PROBE_FILE), { task, result });
  record.writeResult(probeRunResult(config, result));
}

/** A probe as a RunResult: no metrics; memory and timing in the train or the inference slots. */
export function probeRunResult(config: Config, r: ProbeResult): RunResult {
  const train = r.mode === 'train';
  const seconds = r.ms === null ? null : r.ms / 1000;
  return {
    method: config.method,
    dataset: `synthetic:${config.dataset.name}`,
    split: train ? 'train' : 'test',
    seed: config.train.seed,
    configHash: configHash(config),
    preset: config.preset,
    backend: r.backend,
    status: r.status,
    ...(r.reason === null ? {} : { reason: r.reason }),
    metrics: emptyMetrics(),
    memory: {
      peakBytesTrainStep: train ? r.peakBytes : null,
      peakBytesInference: train ? null : r.peakBytes,
      wasmHeapBytes: r.wasmHeapBytes,
      rssBytes: r.rssBytes,
    },
    timing: {
      msPerTrainStep: train ? r.ms : null,
      msPerDocument: train ? null : r.ms,
      tokensPerSecond: seconds !== null && seconds > 0 && r.tokens !== null ? r.tokens / seconds : null,
      wallSeconds: r.wallMs / 1000,
    },
    env: collectEnv(),
    dataProtocol:
      `memory probe: one synthetic document of ${r.words} words, one token per word (${r.tokens ?? '?'} tokens with [CLS] and [SEP]), ` +
      `${r.entities ?? '?'} entities with the types of ${config.dataset.name}; ${train ? 'one training step (loss, gradients, clipping, AdamW), batch 1' : 'one inference pass'}`,
    dedup: {},
    createdAt: new Date().toISOString(),
  };
}

// ---------------------------------------------------------------------------------------------
// The sweep

export interface MethodFrontier {
  method: Method;
  config: string;
  attention: string;
  search: SearchResult | null;
  fit: PeakFit | null;
  /** Per budget: the predicted longest input (words); null when even an empty input does not fit. */
  predictions: { name: string; bytes: number; maxLength: number | null }[];
}

export interface MemoryOutcome {
  settings: MemorySettings;
  preset: string | null;
  plans: MethodPlan[];
  entries: ProbeEntry[];
  skipped: SkippedEntry[];
  frontiers: MethodFrontier[];
  backend: string | null;
  backendDetail: string | null;
  wallSeconds: number;
}

export interface MemoryOptions {
  preset?: string;
  methods?: string[];
  set?: string[];
  backend?: string;
  fresh?: boolean;
  quiet?: boolean;
  /** Folder holding runs/<experiment>-train/...; default the project's runs/. */
  runsRoot?: string;
}

async function pool<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

export async function runMemoryExperiment(file: string, opts: MemoryOptions = {}): Promise<MemoryOutcome> {
  const started = Date.now();
  const settings = loadMemorySettings(file, opts.preset);
  if (opts.backend !== undefined) settings.backend = z.enum(['auto', 'tensorflow', 'wasm', 'cpu']).parse(opts.backend);
  const plans = planMethods(settings, opts.methods);
  const set = mergeConfigObjects(...(opts.set ?? []).map((a) => {
    const { keyPath, value } = parseSetArgument(a);
    return nested(keyPath, value);
  }));
  const runner = new ProbeRunner(settings, new Map(plans.map((p) => [p.method, p])), { set, fresh: opts.fresh === true, runsRoot: opts.runsRoot });
  const say = (line: string): void => {
    if (opts.quiet !== true) process.stderr.write(line + '\n');
  };
  for (const p of plans) {
    // Validate every config before the first child starts: a typo should not cost an hour of probes.
    runner.config(runner.task(p.method, settings.lengths[0]!, 'train', 'curve'));
    if (p.configFile === null) say(`longner: memory: ${p.configShown} not found; ${p.method} uses the schema defaults with fallback ${JSON.stringify(settings.fallback)}`);
  }

  const lengths = [...new Set(settings.lengths)].sort((a, b) => a - b);
  const skipped: SkippedEntry[] = [];
  const curves = new Progress({ label: 'memory: curves', total: plans.length * lengths.length * 2, unit: ' probes' });
  for (const p of plans) {
    const stop: Partial<Record<ProbeMode, string>> = {};
    for (const words of lengths) {
      for (const mode of ['train', 'infer'] as const) {
        const because = stop[mode];
        if (because !== undefined) {
          skipped.push({ method: p.method, mode, words, because });
          curves.tick(1);
          continue;
        }
        const e = await runner.run(p.method, words, mode, 'curve');
        curves.tick(1, `${p.method} ${mode} ${words}: ${describe(e.result)}${e.reused ? ' (stored)' : ''}`);
        if (e.result.status !== 'ok' && settings.skipAfterOom) stop[mode] = `${e.result.status} at ${words}`;
      }
    }
  }
  curves.finish();

  const frontiers: MethodFrontier[] = plans.map((p) => ({
    method: p.method,
    config: p.configFile === null ? `${p.configShown} (missing: defaults + fallback)` : displayPath(p.configFile),
    attention: runner.config(runner.task(p.method, lengths[0]!, 'train', 'curve')).encoder.attention,
    search: null,
    fit: null,
    predictions: [],
  }));
  if (settings.frontier.enabled) {
    const f = settings.frontier;
    const bar = new Progress({ label: 'memory: frontier', unit: ' probes' });
    await pool(frontiers, f.concurrency, async (mf) => {
      mf.search = await searchFrontier(
        async (words) => {
          const e = await runner.run(mf.method, words, 'train', 'frontier');
          bar.tick(1, `${mf.method} ${words}: ${describe(e.result)}${e.reused ? ' (stored)' : ''}`);
          return { status: e.result.status, reason: e.result.reason };
        },
        { start: f.start, tolerance: f.tolerance, maxLength: f.maxLength, minLength: f.minLength },
      );
    });
    bar.finish();
  }
  for (const mf of frontiers) {
    // The fit uses every training probe made with the frontier's config that trained.
    const family: Family = settings.frontier.enabled ? 'frontier' : 'curve';
    const sameConfig = settings.frontier.encoder === null || !settings.frontier.enabled;
    const points = runner.entries
      .filter((e) => e.method === mf.method && e.mode === 'train' && (e.family === family || sameConfig) && e.result.status === 'ok' && e.result.peakBytes !== null)
      .map((e) => [e.words, e.result.peakBytes!] as [number, number]);
    const unique = [...new Map(points.map(([L, y]) => [L, y])).entries()];
    // The lengths within fitRange of the longest, and at least the three longest (a quadratic needs three).
    const byLength = unique.sort((p, q) => q[0] - p[0]);
    const longest = byLength[0]?.[0] ?? 0;
    mf.fit = fitPeak(byLength.filter(([L], i) => i < 3 || L * settings.frontier.fitRange > longest));
    const fit = mf.fit;
    mf.predictions = settings.budgets.map((b) => ({ name: b.name, bytes: b.bytes, maxLength: fit === null ? null : solveBudget(fit, b.bytes) }));
  }
  const firstOk = runner.entries.find((e) => e.result.backend !== null);
  return {
    settings,
    preset: opts.preset ?? null,
    plans,
    entries: runner.entries,
    skipped,
    frontiers,
    backend: firstOk?.result.backend ?? null,
    backendDetail: firstOk?.result.backendDetail ?? null,
    wallSeconds: (Date.now() - started) / 1000,
  };
}

function describe(r: ProbeResult): string {
  if (r.status === 'ok') return `ok, peak ${r.peakBytes === null ? '?' : formatBytes(r.peakBytes)}, ${r.ms === null ? '?' : Math.round(r.ms)} ms`;
  return `${r.status}${r.reason === null ? '' : ` (${r.reason.slice(0, 80)})`}`;
}

/** `+ 1.234 unit` / `- 1.234 unit` (the first term without a plus sign). */
function signed(value: number, unit: string, first = false): string {
  const magnitude = `${Math.abs(value).toFixed(3)} ${unit}`;
  if (value < 0) return first ? `-${magnitude}` : `- ${magnitude}`;
  return first ? magnitude : `+ ${magnitude}`;
}

function short(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 3)}...`;
}

function displayPath(file: string): string {
  const rel = relative(fromRoot(), file);
  return rel.startsWith('..') || isAbsolute(rel) ? file : rel;
}

// ---------------------------------------------------------------------------------------------
// Reporting

/** SeNER ÷ method, from the paper (Fig. 7 and section 5.4 of research/sener.md: SciREX, one A100 80 GB, batch 1). */
export const PAPER_LENGTH_RATIO: Partial<Record<Method, number>> = { 'cnn-ner': 3, 'utc-ie': 6 };
const REFERENCE: Method = 'sener';

function measuredCell(s: SearchResult | null, cap: number): string {
  if (s === null) return 'not searched';
  switch (s.end) {
    case 'converged':
      return String(s.maxOk);
    case 'maxLength':
      return `>= ${s.maxOk ?? cap} (cap)`;
    case 'minLength':
      return `< ${s.firstOom}`;
    case 'failed': {
      const last = s.steps[s.steps.length - 1];
      const why = short(last?.reason ?? 'failed', 60);
      return s.maxOk === null ? `? (${why})` : `>= ${s.maxOk} (stopped: ${why} at ${last?.length})`;
    }
  }
}

/** A frontier as a number for ratios, with whether it is a lower (>=) or upper (<) bound. */
function frontierValue(s: SearchResult | null): { value: number; bound: '=' | '>=' | '<' } | null {
  if (s === null) return null;
  if (s.end === 'converged' && s.maxOk !== null) return { value: s.maxOk, bound: '=' };
  if ((s.end === 'maxLength' || s.end === 'failed') && s.maxOk !== null) return { value: s.maxOk, bound: '>=' };
  if (s.end === 'minLength' && s.firstOom !== null) return { value: s.firstOom, bound: '<' };
  return null;
}

function ratioCell(ref: { value: number; bound: string } | null, of: { value: number; bound: string } | null): string {
  if (ref === null || of === null) return '-';
  const ratio = ref.value / of.value;
  // ref >= x over an exact value is a lower bound of the ratio; over a lower bound it is unknown.
  const refLow = ref.bound === '>=';
  const ofLow = of.bound === '>=';
  const refHigh = ref.bound === '<';
  const ofHigh = of.bound === '<';
  if ((refLow && ofLow) || (refHigh && ofHigh)) return `? (${ratio.toFixed(2)}x, both bounds)`;
  if (refLow || ofHigh) return `>= ${ratio.toFixed(2)}x`;
  if (ofLow || refHigh) return `<= ${ratio.toFixed(2)}x`;
  return `${ratio.toFixed(2)}x`;
}

function lengthCell(L: number | null): string {
  if (L === null) return 'none fits';
  if (!Number.isFinite(L)) return 'unbounded';
  return Math.floor(L).toLocaleString('en-US');
}

export interface FrontierRow {
  method: Method;
  attention: string;
  measured: string;
  firstOom: string;
  probes: number;
  predictions: Record<string, number | null>;
  ratioMeasured: string;
  ratioPredicted: Record<string, string>;
  paper: string;
}

export function frontierRows(o: Pick<MemoryOutcome, 'frontiers' | 'settings'>): FrontierRow[] {
  const ref = o.frontiers.find((f) => f.method === REFERENCE) ?? null;
  const refMeasured = frontierValue(ref?.search ?? null);
  return o.frontiers.map((f) => {
    const predictions: Record<string, number | null> = {};
    const ratioPredicted: Record<string, string> = {};
    for (const p of f.predictions) {
      predictions[p.name] = p.maxLength;
      const refP = ref?.predictions.find((q) => q.name === p.name)?.maxLength ?? null;
      ratioPredicted[p.name] =
        refP === null || p.maxLength === null || !Number.isFinite(refP) || !Number.isFinite(p.maxLength) || p.maxLength <= 0
          ? '-'
          : `${(refP / p.maxLength).toFixed(2)}x`;
    }
    const claim = PAPER_LENGTH_RATIO[f.method];
    return {
      method: f.method,
      attention: f.attention,
      measured: measuredCell(f.search, o.settings.frontier.maxLength),
      firstOom: f.search?.firstOom == null ? '-' : String(f.search.firstOom),
      probes: f.search?.steps.length ?? 0,
      predictions,
      ratioMeasured: ratioCell(refMeasured, frontierValue(f.search)),
      ratioPredicted,
      paper: f.method === REFERENCE ? '1x' : claim === undefined ? '-' : `${claim}x`,
    };
  });
}

function limitName(backend: string | null): string {
  if (backend === 'wasm') return 'wasm 4 GiB heap';
  if (backend === 'tensorflow') return 'device memory';
  if (backend === 'cpu') return 'process memory';
  return 'backend limit';
}

function frontierTable(o: MemoryOutcome, rows: FrontierRow[]): { header: string[]; cells: Cell[][] } {
  const budgets = o.settings.budgets.map((b) => b.name);
  const header = [
    'method',
    'attention',
    `max train length, measured (${limitName(o.backend)})`,
    'first OOM',
    ...budgets.map((b) => `max length, ${b} (prediction)`),
    'SeNER / method, measured',
    ...budgets.map((b) => `SeNER / method, ${b} (prediction)`),
    'paper: SeNER / method',
  ];
  const cells = rows.map((r): Cell[] => [
    r.method,
    r.attention,
    r.measured,
    r.firstOom,
    ...budgets.map((b) => lengthCell(r.predictions[b] ?? null)),
    r.ratioMeasured,
    ...budgets.map((b) => r.ratioPredicted[b] ?? '-'),
    r.paper,
  ]);
  return { header, cells };
}

type Metric = (r: ProbeResult) => number | null;

function curveTable(o: MemoryOutcome, mode: ProbeMode, metric: Metric, format: (v: number) => Cell): { header: string[]; cells: Cell[][] } {
  const lengths = [...new Set(o.settings.lengths)].sort((a, b) => a - b);
  const header = ['method', ...lengths.map((L) => `${L} words`)];
  const cells = o.plans.map((p): Cell[] => [
    p.method,
    ...lengths.map((L): Cell => {
      const e = o.entries.find((x) => x.family === 'curve' && x.method === p.method && x.mode === mode && x.words === L);
      if (e === undefined) return o.skipped.some((s) => s.method === p.method && s.mode === mode && s.words === L) ? 'OOM*' : '-';
      if (e.result.status === 'oom') return 'OOM';
      if (e.result.status === 'failed') return e.result.reason?.startsWith('timeout') === true ? 'timeout' : 'failed';
      const v = metric(e.result);
      return v === null ? '-' : format(v);
    }),
  ]);
  return { header, cells };
}

/** SeNER's inference time per document over each method's (paper, section 5.4: about 1 against CNN-NER, about 0.8 against UTC-IE). */
export const PAPER_INFERENCE_RATIO: Partial<Record<Method, string>> = { 'cnn-ner': 'about 1', 'utc-ie': 'about 0.8' };

function inferenceRatioTable(o: MemoryOutcome): { header: string[]; cells: Cell[][] } | null {
  const lengths = [...new Set(o.settings.lengths)].sort((a, b) => a - b);
  const msOf = (method: Method, L: number): number | null => {
    const e = o.entries.find((x) => x.family === 'curve' && x.method === method && x.mode === 'infer' && x.words === L);
    return e !== undefined && e.result.status === 'ok' ? e.result.ms : null;
  };
  if (!o.plans.some((p) => p.method === REFERENCE)) return null;
  const header = ['method', ...lengths.map((L) => `${L} words`), 'paper'];
  const cells = o.plans
    .filter((p) => p.method !== REFERENCE)
    .map((p): Cell[] => [
      p.method,
      ...lengths.map((L): Cell => {
        const ref = msOf(REFERENCE, L);
        const mine = msOf(p.method, L);
        return ref === null || mine === null || mine <= 0 ? '-' : (ref / mine).toFixed(2);
      }),
      PAPER_INFERENCE_RATIO[p.method] ?? '-',
    ]);
  return { header, cells };
}

const mib = (v: number): Cell => Math.round(v / 2 ** 20);
const ms = (v: number): Cell => Math.round(v);

/**
 * One series per method. `withFrontier`: the frontier search's probes join the curve when they used
 * the same config (frontier.encoder null), so the memory chart runs up to each method's OOM.
 */
function curveSeries(o: MemoryOutcome, mode: ProbeMode, metric: Metric, withFrontier = false): Series[] {
  const sameConfig = withFrontier && o.settings.frontier.encoder === null;
  return o.plans.map((p) => {
    const mine = o.entries.filter((e) => (e.family === 'curve' || sameConfig) && e.method === p.method && e.mode === mode);
    const byLength = new Map<number, [number, number]>();
    for (const e of mine) {
      const v = e.result.status === 'ok' ? metric(e.result) : null;
      if (v !== null) byLength.set(e.words, [e.words, v]);
    }
    const oom = mine.filter((e) => e.result.status === 'oom').map((e) => e.words);
    return { label: p.method, points: [...byLength.values()], oomAt: oom.length > 0 ? [Math.min(...oom)] : [] };
  });
}

/** All x and y values of some series, for tick ranges. */
function spans(series: Series[]): { xs: number[]; ys: number[] } {
  const xs = series.flatMap((s) => [...s.points.map(([x]) => x), ...(s.oomAt ?? [])]);
  const ys = series.flatMap((s) => s.points.map(([, y]) => y)).filter((y) => y > 0);
  return { xs, ys };
}

export interface MemoryReport {
  dir: string;
  text: string;
}

export function writeMemoryReport(o: MemoryOutcome, reportsRoot = fromRoot('reports')): MemoryReport {
  const dir = o.preset === null ? join(reportsRoot, o.settings.experiment) : join(reportsRoot, o.settings.experiment, o.preset);
  const rows = frontierRows(o);
  const ft = frontierTable(o, rows);
  const trainMs = curveTable(o, 'train', (r) => r.ms, ms);
  const inferMs = curveTable(o, 'infer', (r) => r.ms, ms);
  const trainPeak = curveTable(o, 'train', (r) => r.peakBytes, mib);
  const inferPeak = curveTable(o, 'infer', (r) => r.peakBytes, mib);
  const ratios = inferenceRatioTable(o);
  const lengths = [...new Set(o.settings.lengths)].sort((a, b) => a - b);
  const machine = `${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown cpu'}), ${formatBytes(totalmem())} RAM, Node ${process.version}`;
  const s = o.settings;
  const frontierEncoder = s.frontier.encoder ?? s.encoder;

  const xTicks = powerTicks(lengths[0]!, lengths[lengths.length - 1]!);
  const refLines = o.backend === 'wasm' ? [{ y: 2 ** 32, label: 'wasm heap cap (4 GiB)' }] : [];
  const memorySeries = curveSeries(o, 'train', (r) => r.peakBytes, true);
  const memorySpan = spans(memorySeries);
  const charts: Record<string, Buffer> = {
    'memory.png': lineChart({
      title: 'Peak tensor memory of one training step (batch 1) vs input length',
      xLabel: 'input length (words = tokens); x = first length that ran out of memory',
      yLabel: 'peak bytes (tf.profile)',
      logX: true,
      logY: true,
      series: memorySeries,
      refLines,
      formatY: formatBytes,
      formatX: (v) => String(v),
      xTicks: powerTicks(Math.min(...memorySpan.xs), Math.max(...memorySpan.xs)),
      // Powers of 4 bytes keep the labels round (16 MiB, 64 MiB, ...) and few.
      yTicks: powerTicks(Math.min(...memorySpan.ys), Math.max(...memorySpan.ys, ...refLines.map((l) => l.y)), 4),
    }),
    'latency-train.png': lineChart({
      title: 'Training step time (batch 1) vs input length',
      xLabel: 'input length (words = tokens)',
      yLabel: 'ms per training step',
      logX: true,
      logY: true,
      series: curveSeries(o, 'train', (r) => r.ms),
      formatX: (v) => String(v),
      xTicks,
    }),
    'latency-infer.png': lineChart({
      title: 'Inference time per document vs input length',
      xLabel: 'input length (words = tokens)',
      yLabel: 'ms per document',
      logX: true,
      logY: true,
      series: curveSeries(o, 'infer', (r) => r.ms),
      formatX: (v) => String(v),
      xTicks,
    }),
  };
  for (const [name, png] of Object.entries(charts)) writeFileAtomic(join(dir, name), png);

  const fitLines = o.frontiers.map((f) => {
    if (f.fit === null) return `- ${f.method}: no fit (fewer than two lengths trained)`;
    const q = f.fit;
    return (
      `- ${f.method}: peak(L) = ${signed(q.a / 2 ** 20, 'MiB', true)} ${signed(q.b / 2 ** 20, 'MiB x L')} ${signed(q.c / 2 ** 10, 'KiB x L^2')} ` +
      `(${q.degree === 2 ? 'quadratic' : 'linear, through the longer lengths: the quadratic term came out negative, or only two lengths trained'}; ${q.points} points, L ${q.minLength}-${q.maxLength}, rms residual ${formatBytes(q.rmse)})`
    );
  });
  const searchLines = o.frontiers
    .filter((f) => f.search !== null)
    .map((f) => `- ${f.method}: ${f.search!.steps.map((st) => `${st.length} ${st.status}`).join(', ')} -> ${f.search!.end}`);

  const md = [
    `# Memory, latency and the out-of-memory frontier${o.preset === null ? '' : ` (preset ${o.preset})`}`,
    '',
    `Made by \`longner memory\` on ${new Date().toISOString().slice(0, 10)}; backend ${o.backendDetail ?? 'unknown'}; ${machine}. ${timeNote(o).replace(/^w/, 'W')}.`,
    '',
    `Every probe ran in its own process: one synthetic document (${describeDocument(s)}), one token per word, one segment, batch 1, random weights. ` +
      `"Train" is one full training step (loss, gradients, clipping, AdamW update; a second, unprofiled step gives the time); "infer" is one inference pass (forward and decoding). ` +
      `Peak bytes are tf.profile's peak of live tensor bytes, weights and optimizer moments included (tfjs counts a reshaped view of a tensor again, so this can exceed the real heap). ` +
      `Encoder shared by all methods: ${JSON.stringify(s.encoder)}; config preset ${s.preset ?? 'none'}; attention pattern as each method's config says.`,
    '',
    '## Longest trainable input',
    '',
    markdownTable(ft.header, ft.cells),
    '',
    `- **measured**: the longest input (words, one token each) for which a training step and a second one ran under the ${limitName(o.backend)}, ` +
      `by doubling from ${s.frontier.start} until an OOM, then bisection to within ${Math.round(s.frontier.tolerance * 100)}%; frontier encoder ${JSON.stringify(frontierEncoder)}; searches capped at ${s.frontier.maxLength}.`,
    `- **prediction**: the largest L with a + bL + cL^2 <= budget, fitted by least squares to the measured peaks of the training probes that ran (same encoder), ` +
      `at the lengths within a factor ${s.frontier.fitRange} of the longest that trained (and at least the three longest; short inputs sit in another regime). ` +
      'It extrapolates a small encoder far beyond the lengths measured; it is not a measurement.',
    '- **paper**: SeNER trains on inputs 3x longer than CNN-NER and 6x longer than UTC-IE (Fig. 7, SciREX, one A100 80 GB, batch 1; exact bar values unpublished).',
    '',
    '### Fits (peak bytes of a training step vs length L in words)',
    '',
    ...fitLines,
    '',
    '### Search steps',
    '',
    ...(searchLines.length > 0 ? searchLines : ['- (frontier search disabled)']),
    '',
    '## Training step time (ms, batch 1)',
    '',
    markdownTable(trainMs.header, trainMs.cells),
    '',
    '## Inference time per document (ms)',
    '',
    markdownTable(inferMs.header, inferMs.cells),
    '',
    ...(ratios === null
      ? []
      : [
          '### SeNER\'s inference time over each method\'s (below 1: SeNER is faster)',
          '',
          markdownTable(ratios.header, ratios.cells),
          '',
          'The paper (SciREX, A100): about the same as CNN-NER, about 20% less than UTC-IE. "-": one of the two did not run at that length.',
          '',
        ]),
    '## Peak memory of a training step (MiB, tf.profile)',
    '',
    markdownTable(trainPeak.header, trainPeak.cells),
    '',
    '## Peak memory of inference (MiB, tf.profile)',
    '',
    markdownTable(inferPeak.header, inferPeak.cells),
    '',
    'OOM: ran out of memory. OOM*: not run, because a shorter input of the same method and mode already ran out of memory (or failed).',
    '',
    '![peak memory](memory.png)',
    '',
    '![training step time](latency-train.png)',
    '',
    '![inference time](latency-infer.png)',
    '',
  ].join('\n');
  writeFileAtomic(join(dir, 'frontier.md'), md);

  writeJsonAtomic(join(dir, 'frontier.json'), {
    experiment: s.experiment,
    preset: o.preset,
    createdAt: new Date().toISOString(),
    backend: o.backend,
    backendDetail: o.backendDetail,
    machine: { cores: cpus().length, cpu: cpus()[0]?.model.trim() ?? null, memoryBytes: totalmem(), node: process.version, platform: `${process.platform}-${process.arch}` },
    wallSeconds: o.wallSeconds,
    probeSeconds: probeSeconds(o),
    settings: s,
    paperLengthRatio: PAPER_LENGTH_RATIO,
    methods: o.frontiers.map((f, i) => ({
      method: f.method,
      config: f.config,
      attention: f.attention,
      measured: f.search === null ? null : { limit: limitName(o.backend), maxOk: f.search.maxOk, firstOom: f.search.firstOom, end: f.search.end, steps: f.search.steps },
      fit: f.fit,
      predictions: f.predictions.map((p) => ({ ...p, kind: 'prediction' })),
      ratioToSener: { measured: rows[i]!.ratioMeasured, predicted: rows[i]!.ratioPredicted },
    })),
    probes: o.entries
      .filter((e) => e.family === 'curve')
      .map((e) => ({ method: e.method, mode: e.mode, words: e.words, reused: e.reused, runDir: displayPath(e.runDir), ...pick(e.result) })),
    frontierProbes: o.entries
      .filter((e) => e.family === 'frontier')
      .map((e) => ({ method: e.method, words: e.words, status: e.result.status, reason: e.result.reason, peakBytes: e.result.peakBytes })),
    skipped: o.skipped,
  });

  const text = [
    `Longest trainable input (measured under the ${limitName(o.backend)}; budget columns are predictions):`,
    textTable(ft.header, ft.cells),
    '',
    'Training step (ms):',
    textTable(trainMs.header, trainMs.cells),
    '',
    'Inference per document (ms):',
    textTable(inferMs.header, inferMs.cells),
    '',
    'Peak memory of a training step (MiB):',
    textTable(trainPeak.header, trainPeak.cells),
    '',
    `Report: ${displayPath(join(dir, 'frontier.md'))} (${timeNote(o)})`,
  ].join('\n');
  return { dir, text };
}

/** Seconds spent in probe processes, each distinct probe once (reused ones count their original time). */
function probeSeconds(o: MemoryOutcome): number {
  const byDir = new Map(o.entries.map((e) => [e.runDir, e.result.wallMs]));
  return [...byDir.values()].reduce((a, b) => a + b, 0) / 1000;
}

function timeNote(o: MemoryOutcome): string {
  const distinct = new Map(o.entries.map((e) => [e.runDir, e.reused]));
  const reused = [...distinct.values()].filter(Boolean).length;
  return (
    `wall time ${formatSeconds(o.wallSeconds)}; ${distinct.size} probes taking ${formatSeconds(probeSeconds(o))} in their processes` +
    (reused > 0 ? ` (${reused} of them stored by an earlier run and reused)` : '')
  );
}

function pick(r: ProbeResult): Partial<ProbeResult> {
  const { status, reason, tokens, peakBytes, wasmHeapBytes, rssBytes, ms: time, msProfiled, wallMs, backend } = r;
  return { status, reason, tokens, peakBytes, wasmHeapBytes, rssBytes, ms: time, msProfiled, wallMs, backend };
}

function describeDocument(s: MemorySettings): string {
  const d = s.document;
  const len = d.entityLength;
  const lengthText = len.dist === 'geometric' ? `geometric mean ${len.mean}, max ${len.max}` : len.dist === 'uniform' ? `uniform ${len.min}-${len.max}` : `fixed ${len.length}`;
  return `${d.entityDensity} entities per 100 words, entity length ${lengthText} words, nesting ${d.nested}`;
}

// ---------------------------------------------------------------------------------------------
// The command

interface MemoryArgs {
  file: string;
  preset?: string;
  methods?: string;
  set?: string[];
  backend?: string;
  fresh: boolean;
}

export const memoryCommand: CommandModule<object, MemoryArgs> = {
  command: 'memory <file>',
  describe:
    'measure peak memory and latency of every span method against input length, and the longest input each can train on ' +
    '(each probe in its own process; reports/<experiment>/frontier.md)',
  builder: (y) =>
    y
      .positional('file', { type: 'string', demandOption: true, describe: 'experiment YAML, e.g. experiments/memory-frontier.yaml' })
      .option('preset', { type: 'string', describe: 'a section under `presets:` in the experiment file, e.g. quick' })
      .option('methods', { type: 'string', describe: 'comma-separated methods (default: the file\'s list, else every span method)' })
      .option('set', { type: 'string', array: true, describe: 'config override for every probe, e.g. --set sener.window=64' })
      .option('backend', { type: 'string', choices: ['auto', 'tensorflow', 'wasm', 'cpu'], describe: 'compute backend of the probes (default: the file\'s)' })
      .option('fresh', { type: 'boolean', default: false, describe: 're-measure probes that already have a stored result' }) as unknown as Argv<MemoryArgs>,
  handler: async (args) => {
    const outcome = await runMemoryExperiment(args.file, {
      preset: args.preset,
      methods: args.methods?.split(',').map((m) => m.trim()).filter((m) => m !== ''),
      set: args.set,
      backend: args.backend,
      fresh: args.fresh,
    });
    const report = writeMemoryReport(outcome);
    process.stdout.write(report.text + '\n');
  },
};
