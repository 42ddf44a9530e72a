/**
 * One run's directory: the resolved config (config.yaml to read, config.json to load), an
 * append-only log.jsonl, and result.json, written once at the end. Files are written atomically so a
 * killed run never leaves a half-written config or result behind.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { z } from 'zod';
import { LongnerError } from '../errors.js';
import { resolveConfigFromObject } from '../config/load.js';
import { formatConfig } from '../config/print.js';
import type { Config } from '../config/schema.js';
import { appendJsonl, writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { runDir, runId } from './id.js';
import { RunResultSchema, type RunResult } from './result.js';
import { configHash } from '../data/config-hash.js';

export const CONFIG_YAML = 'config.yaml';
export const CONFIG_JSON = 'config.json';
export const LOG_FILE = 'log.jsonl';
export const RESULT_FILE = 'result.json';
/** Held while a process runs the run (util/lock.ts): its pid, host, boot id and start. */
export const RUN_LOCK = 'run.lock';

export class RunRecord {
  private constructor(readonly dir: string) {}

  /** Creates (or reuses: same config and seed, same directory) the run directory and writes the resolved config. */
  static create(config: Config, root?: string): RunRecord {
    const dir = runDir(config, root);
    mkdirSync(dir, { recursive: true });
    const header = `# run ${runId(config)} (config hash ${configHash(config)}): the resolved config, every option.\n`;
    writeFileAtomic(join(dir, CONFIG_YAML), header + formatConfig(config));
    writeJsonAtomic(join(dir, CONFIG_JSON), config);
    return new RunRecord(dir);
  }

  static open(dir: string): RunRecord {
    const absolute = resolve(dir);
    if (!existsSync(join(absolute, CONFIG_JSON))) {
      throw new LongnerError(`${dir}: not a run directory (no ${CONFIG_JSON})`);
    }
    return new RunRecord(absolute);
  }

  /** The config the run was made with, validated against the current schema. */
  readConfig(): Config {
    const file = join(this.dir, CONFIG_JSON);
    return resolveConfigFromObject(readJson(file), file);
  }

  /** Appends one event to log.jsonl, stamped with the time (the record's stamp wins over an event's own `time`). */
  log(event: Record<string, unknown>): void {
    const { time: _ignored, ...rest } = event;
    appendJsonl(join(this.dir, LOG_FILE), { time: new Date().toISOString(), ...rest });
  }

  /** Validates and writes result.json. An invalid result is a bug in the caller, so it throws a plain Error. */
  writeResult(result: RunResult): void {
    const parsed = RunResultSchema.safeParse(result);
    if (!parsed.success) {
      throw new Error(`invalid run result for ${this.dir}:\n${issueLines(RESULT_FILE, parsed.error.issues).join('\n')}`);
    }
    writeJsonAtomic(join(this.dir, RESULT_FILE), parsed.data);
  }

  /** The stored result, or null when the run has none yet. A result.json that does not validate is an error naming the key. */
  readResult(): RunResult | null {
    const file = join(this.dir, RESULT_FILE);
    if (!existsSync(file)) return null;
    const parsed = RunResultSchema.safeParse(readJson(file));
    if (!parsed.success) throw new LongnerError(issueLines(file, parsed.error.issues).join('\n'));
    return parsed.data;
  }

  /** True when a valid result.json exists, whatever its status; callers decide whether to retry a failed run. */
  isFinished(): boolean {
    return this.readResult() !== null;
  }
}

function readJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new LongnerError(`${file}: cannot read: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new LongnerError(`${file}: invalid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function issueLines(file: string, issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.flatMap((issue) => {
    const where = issue.path.length === 0 ? '(top level)' : issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => `${file}: unknown key "${[...issue.path, key].map(String).join('.')}"`);
    }
    return [`${file}: ${where}: ${issue.message}`];
  });
}
