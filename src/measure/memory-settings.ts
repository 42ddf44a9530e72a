/**
 * The memory experiment file (experiments/memory-frontier.yaml describes it): its schema, its
 * presets, and the probe task each method, length and mode turns into. Kept apart from the runner
 * so scripts/bench.ts can build the same probes without the sweep.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { mergeConfigObjects } from '../config/load.js';
import { BACKENDS, MethodSchema, type Method } from '../config/schema.js';
import { LongnerError } from '../errors.js';
import { SPAN_METHODS } from '../models/index.js';
import { parseByteSize } from '../util/bytes.js';
import { fromRoot } from '../util/paths.js';
import { DEFAULT_TIMEOUT_MS } from './child.js';
import { DocumentShapeSchema, SCHOLAR_XL_LIKE, type ProbeMode, type ProbeTaskInput } from './task.js';

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
  experiment: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/)
    .default('memory-frontier'),
  /** null = every span method of src/models (SPAN_METHODS). */
  methods: z.array(MethodSchema).min(1).nullable().default(null),
  /** Config file per method; a method not listed uses `configPattern`. Relative paths start at the project root. */
  configs: z.record(z.string(), z.string().min(1)).default({}),
  configPattern: z.string().min(1).default('configs/{method}/scirex.yaml'),
  /** Config fragment for a method whose config file does not exist (yet). */
  fallback: Fragment.default({}),
  /** Config preset (configs/presets/) applied to every method config. */
  preset: z.string().min(1).nullable().default('cpu-long'),
  backend: z.enum(BACKENDS).default('auto'),
  /**
   * The native engine's memory budget for every probe (e.g. 16GiB): past it a probe is oom. null =
   * the engine's default (3/4 of RAM, shared by the probes that run at once). --memory-budget wins.
   */
  memoryBudget: z
    .string()
    .nullable()
    .default(null)
    .refine((v) => v === null || parseByteSize(v) !== null, 'a size such as 16GiB or 12000MB'),
  /** The encoder shape shared by every method. */
  encoder: Fragment.default({}),
  /** Any other config keys shared by every method. */
  overrides: Fragment.default({}),
  document: DocumentShapeSchema.default(SCHOLAR_XL_LIKE),
  seed: z.number().int().default(2288),
  lengths: z.array(posInt()).min(1).default([256, 512, 1024, 2048, 4096]),
  repeats: z.number().int().min(0).default(1),
  timeoutSeconds: z
    .number()
    .positive()
    .default(DEFAULT_TIMEOUT_MS / 1000),
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
  const overrides = mergeConfigObjects(
    plan.configFile === null ? s.fallback : {},
    s.overrides,
    { backend: s.backend, encoder: opts.encoder ?? s.encoder },
    opts.set ?? {},
  );
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
