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
import { fork, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/schema.js';
import { classifyExit } from '../measure/child.js';
import { runDir, runId } from './id.js';
import { readResultFile } from './locate.js';
import { RESULT_FILE, RunRecord } from './record.js';
import { emptyMemory, emptyMetrics, emptyTiming, resultHeader, type RunResult, type RunStatus } from './result.js';
import type { ChildTask, DoneMessage } from './run-child.js';

export const CHILD_LOG = 'child.log';
/** How much of the child's output is kept in memory to explain a crash. */
const OUTPUT_TAIL = 16 * 1024;
/** After its message the child exits by itself; past this grace it is killed. */
const EXIT_GRACE_MS = 10_000;

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
export function runChild(task: ChildTask, opts: ChildOptions = {}): Promise<ChildOutcome> {
  return new Promise((resolve) => {
    let output = '';
    let done: DoneMessage | null = null;
    let timedOut = false;
    let settled = false;
    if (opts.logFile !== undefined) mkdirSync(dirname(opts.logFile), { recursive: true });
    const keep = (chunk: Buffer): void => {
      const text = chunk.toString('utf8');
      output = (output + text).slice(-OUTPUT_TAIL);
      if (opts.logFile !== undefined) appendFileSync(opts.logFile, text);
    };
    const child = fork(opts.script ?? runChildPath(), [], {
      execArgv: opts.execArgv ?? [],
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'json',
    });
    opts.onStart?.(child);
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const timeoutMs = opts.timeoutMs ?? null;
    const timer =
      timeoutMs === null
        ? undefined
        : setTimeout(() => {
            timedOut = done === null;
            child.kill('SIGKILL');
          }, timeoutMs);
    let grace: NodeJS.Timeout | undefined;
    const settle = (outcome: ChildOutcome): void => {
      if (settled) return;
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      if (grace !== undefined) clearTimeout(grace);
      resolve(outcome);
    };
    child.on('message', (message: unknown) => {
      if (!isDone(message)) return;
      done = message;
      grace = setTimeout(() => child.kill('SIGKILL'), EXIT_GRACE_MS);
    });
    child.on('error', (err) => {
      if (child.pid === undefined) settle({ status: 'failed', reason: `could not start the run process: ${err.message}`, reported: false });
    });
    child.on('close', (code, signal) => {
      if (done !== null) {
        const status = STATUSES.find((s) => s === done!.status) ?? 'failed';
        settle({ status, reason: done.reason, reported: true });
        return;
      }
      const verdict = classifyExit({ code, signal, output, timedOut, timeoutMs: timeoutMs ?? undefined });
      settle({ status: verdict.status, reason: verdict.reason, reported: false });
    });
    child.send({ type: 'task', task });
  });
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
  status: RunStatus;
  reason: string | null;
  dir: string;
  wallSeconds: number;
  /** True when the parent wrote result.json because the child did not. */
  writtenByParent: boolean;
}

/** Trains and tests one cell in a child process; result.json exists afterwards in every case. */
export async function runCellInChild(
  config: Config,
  root: string,
  opts: ChildOptions & { resume?: boolean } = {},
): Promise<CellOutcome> {
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
  const status: RunStatus = outcome.status === 'ok' ? 'failed' : outcome.status;
  const reason = outcome.status === 'ok' ? 'the run process reported ok but wrote no result.json' : (outcome.reason ?? 'the run process ended without a result');
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
