/**
 * Running one grid cell (or one shared pretraining) in a fresh Node process, and making sure the
 * cell ends with a result.json whatever happens to the process.
 *
 * The child (run-child.ts) calls executeRun, which writes result.json itself for ok, oom, diverged
 * and caught failures. When the child dies without writing one (killed by the OOM killer, a wasm
 * abort, a timeout, a crash in native code), the parent writes it: the status and reason come from
 * the exit (measure/child.ts classifyExit: SIGKILL/137 or an OOM message -> oom, else failed with the
 * code or signal and the last telling line of output). The child's output goes to child.log in the run
 * folder, so a failure can be read afterwards.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/schema.js';
import { classifyExit, forkTask } from '../measure/child.js';
import { lockHolder } from '../util/lock.js';
import { runDir, runId } from './id.js';
import { readResultFile } from './locate.js';
import { RESULT_FILE, RUN_LOCK, RunRecord } from './record.js';
import { emptyMemory, emptyMetrics, emptyTiming, resultHeader, type RunResult, type RunStatus } from './result.js';
import type { ChildTask, DoneMessage } from './run-child.js';

export const CHILD_LOG = 'child.log';

export function runChildPath(): string {
  return fileURLToPath(new URL('./run-child.js', import.meta.url));
}

export interface ChildOutcome {
  status: RunStatus;
  reason: string | null;
  /** True when the child reported (its own status); false when the exit was classified. */
  reported: boolean;
}

export interface ChildOptions {
  /** Kill the child after this long (failed: timeout); null = no limit. */
  timeoutMs?: number | null;
  /** Where the child's stdout and stderr are appended. */
  logFile?: string;
  script?: string;
  execArgv?: string[];
  env?: NodeJS.ProcessEnv;
  /** Called with the child once it is started (so a signal handler can stop it). */
  onStart?: (child: ChildProcess) => void;
}

function isDone(message: unknown): message is DoneMessage {
  return message !== null && typeof message === 'object' && (message as { type?: unknown }).type === 'done';
}

const STATUSES: readonly RunStatus[] = ['ok', 'oom', 'diverged', 'failed', 'not-run'];

/** Runs one task in its own process; always resolves. */
export async function runChild(task: ChildTask, opts: ChildOptions = {}): Promise<ChildOutcome> {
  const timeoutMs = opts.timeoutMs ?? null;
  const exit = await forkTask(opts.script ?? runChildPath(), task, (m) => (isDone(m) ? m : null), { ...opts, timeoutMs });
  if (exit.reply !== null) {
    const done = exit.reply;
    return { status: STATUSES.find((s) => s === done.status) ?? 'failed', reason: done.reason, reported: true };
  }
  if (exit.startError !== null) return { status: 'failed', reason: `could not start the run process: ${exit.startError}`, reported: false };
  const verdict = classifyExit({ ...exit, timeoutMs: timeoutMs ?? undefined });
  return { status: verdict.status, reason: verdict.reason, reported: false };
}

/** The result.json a parent writes for a child that died without one. */
export function fallbackResult(config: Config, status: RunStatus, reason: string, wallSeconds: number): RunResult {
  return {
    ...resultHeader(config, null, null, 'the run process ended before it reported'),
    status,
    reason,
    metrics: emptyMetrics(),
    memory: emptyMemory(),
    timing: { ...emptyTiming(), wallSeconds },
  };
}

export interface CellOutcome {
  /** skipped: when its turn came another process held the run, or had finished it; nothing was written. */
  status: RunStatus | 'skipped';
  reason: string | null;
  dir: string;
  wallSeconds: number;
  /** True when the parent wrote result.json because the child did not. */
  writtenByParent: boolean;
}

/** Trains and tests one cell in a child process; result.json exists afterwards in every case. */
export async function runCellInChild(config: Config, root: string, opts: ChildOptions & { resume?: boolean } = {}): Promise<CellOutcome> {
  const started = Date.now();
  const dir = runDir(config, root);
  const file = join(dir, RESULT_FILE);
  // A result.json from before this attempt (a retried failure) does not count as this attempt's. Its
  // creation time is compared, not the clock: the previous attempt may have ended in this millisecond.
  const previous = existsSync(file) ? (safeRead(file)?.createdAt ?? null) : null;
  const outcome = await runChild(
    { kind: 'run', config, root, resume: opts.resume === true, runId: runId(config) },
    { ...opts, logFile: opts.logFile ?? join(dir, CHILD_LOG) },
  );
  const wallSeconds = (Date.now() - started) / 1000;
  const result = existsSync(file) ? safeRead(file) : null;
  if (result !== null && result.createdAt !== previous) {
    return { status: result.status, reason: result.reason ?? null, dir, wallSeconds, writtenByParent: false };
  }
  // The child stopped at the run lock because another process took the run after the plan: its folder
  // is that process's, so no result is written over its training.
  const holder = lockHolder(dir, RUN_LOCK);
  if (holder !== null) return { status: 'skipped', reason: `running: ${holder}`, dir, wallSeconds, writtenByParent: false };
  const status: RunStatus = outcome.status === 'ok' ? 'failed' : outcome.status;
  const reason =
    outcome.status === 'ok' ? 'the run process reported ok but wrote no result.json' : (outcome.reason ?? 'the run process ended without a result');
  const record = existsSync(join(dir, 'config.json')) ? RunRecord.open(dir) : RunRecord.create(config, root);
  record.writeResult(fallbackResult(config, status, reason, wallSeconds));
  record.log({ event: 'result', status, reason, writtenBy: 'parent' });
  return { status, reason, dir, wallSeconds, writtenByParent: true };
}

function safeRead(file: string): RunResult | null {
  try {
    return readResultFile(file);
  } catch {
    return null;
  }
}
