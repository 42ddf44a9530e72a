/**
 * The memory sweep of `longner memory`: each probe (one method, length and mode) in its own child
 * process (src/measure/child.ts: running out of memory must end only that probe, and the wasm heap
 * never shrinks), stored as a run record so a rerun can reuse it; then per method the out-of-memory
 * frontier search and the quadratic fit that predicts the longest input under each budget.
 *
 * Run records: runs/<experiment>-train/<run-id>/ and runs/<experiment>-infer/<run-id>/ (the run id
 * already encodes method and length, through the config hash, and the mode is in the folder name),
 * with the probe's full figures in probe.json beside result.json. A probe that already has a stored
 * result (ok or oom) is reused unless `fresh`; failed ones rerun.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { mergeConfigObjects, parseSetArgument } from '../config/load.js';
import { defaultBudgetBytes, shareMemoryBudget } from '../backend/native/register.js';
import { BACKENDS, type Config, type Method } from '../config/schema.js';
import { runDir } from './id.js';
import { RunRecord } from './record.js';
import { emptyMetrics, type RunResult } from './result.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { formatBytes, parseByteSize } from '../util/bytes.js';
import { pool } from '../util/pool.js';
import { Progress } from '../util/progress.js';
import { runProbeInChild } from '../measure/child.js';
import { fitPeak, searchFrontier, solveBudget, type PeakFit, type SearchResult } from '../measure/frontier.js';
import { buildProbeTask, loadMemorySettings, planMethods, type MemorySettings, type MethodPlan } from '../measure/memory-settings.js';
import { parseProbeTask, probeConfig, type ProbeMode, type ProbeResult, type ProbeTaskInput } from '../measure/task.js';
import { displayPath } from '../util/paths.js';
import { configHash } from '../data/config-hash.js';
import { collectEnv } from '../util/env.js';

type Mapping = Record<string, unknown>;

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
    backendDetail: r.backendDetail,
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
  /** The native engine's memory budget of each probe (the limit a native frontier is measured under). */
  budgetBytes: number;
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

export async function runMemoryExperiment(file: string, opts: MemoryOptions = {}): Promise<MemoryOutcome> {
  const started = Date.now();
  const settings = loadMemorySettings(file, opts.preset);
  // The frontier runs its probes `concurrency` at a time: every probe of the experiment gets the
  // same share of the machine's memory, so the report states one budget.
  const concurrency = settings.frontier.enabled ? settings.frontier.concurrency : 1;
  if (settings.memoryBudget !== null && (process.env.LONGNER_MEMORY_BUDGET ?? '') === '') process.env.LONGNER_MEMORY_BUDGET = settings.memoryBudget;
  shareMemoryBudget(concurrency);
  const budgetBytes = parseByteSize(process.env.LONGNER_MEMORY_BUDGET ?? '') ?? defaultBudgetBytes(1);
  if (opts.backend !== undefined) settings.backend = z.enum(BACKENDS).parse(opts.backend);
  const plans = planMethods(settings, opts.methods);
  const set = mergeConfigObjects(
    ...(opts.set ?? []).map((a) => {
      const { keyPath, value } = parseSetArgument(a);
      return nested(keyPath, value);
    }),
  );
  const runner = new ProbeRunner(settings, new Map(plans.map((p) => [p.method, p])), { set, fresh: opts.fresh === true, runsRoot: opts.runsRoot });
  const say = (line: string): void => {
    if (opts.quiet !== true) process.stderr.write(`${line}\n`);
  };
  for (const p of plans) {
    // Validate every config before the first child starts: a typo should not cost an hour of probes.
    runner.config(runner.task(p.method, settings.lengths[0]!, 'train', 'curve'));
    if (p.configFile === null)
      say(`longner: memory: ${p.configShown} not found; ${p.method} uses the schema defaults with fallback ${JSON.stringify(settings.fallback)}`);
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
      .filter(
        (e) => e.method === mf.method && e.mode === 'train' && (e.family === family || sameConfig) && e.result.status === 'ok' && e.result.peakBytes !== null,
      )
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
    budgetBytes,
    wallSeconds: (Date.now() - started) / 1000,
  };
}

function describe(r: ProbeResult): string {
  if (r.status === 'ok') return `ok, peak ${r.peakBytes === null ? '?' : formatBytes(r.peakBytes)}, ${r.ms === null ? '?' : Math.round(r.ms)} ms`;
  return `${r.status}${r.reason === null ? '' : ` (${r.reason.slice(0, 80)})`}`;
}
