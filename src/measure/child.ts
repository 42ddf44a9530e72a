/**
 * Runs a probe task in a fresh Node process (probe-main.ts) and always comes back with a
 * ProbeResult, whatever happens to the child. Never throws for the child's sake: only a task that
 * does not validate (a caller's bug or a bad experiment file) is an exception.
 *
 * How a child that dies without sending its result is classified (`classifyExit`):
 * - killed by the parent after `timeoutMs`                          -> failed, "timeout after N s"
 * - its stdout/stderr shows an out-of-memory message (isOutOfMemory: V8's "JavaScript heap out of
 *   memory", wasm's "memory access out of bounds", "Cannot allocate Wasm memory", a device OOM), or
 *   emscripten's "Aborted(...)" (the wasm allocator aborts when the heap cannot grow) -> oom
 * - killed by SIGKILL, or exit code 137 (128 + SIGKILL): what the Linux OOM killer and container
 *   memory limits do                                                 -> oom
 * - any other signal or non-zero exit                               -> failed, with the code or signal
 *   and the last line it printed
 * - exit code 0 without a result                                     -> failed
 * A child that did send a result keeps it, even if it crashes while exiting.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isOutOfMemory } from './oom.js';
import { emptyProbeResult, parseProbeTask, type ProbeResult, type ProbeStatus, type ProbeTaskInput } from './task.js';

export interface ChildOptions {
  /** Kill the child after this long and record 'failed: timeout'; default 30 minutes. */
  timeoutMs?: number;
  /** Node flags for the child (e.g. `--max-old-space-size=8192`); default none. */
  execArgv?: string[];
  /** The child's entry script; default the compiled probe-main.js next to this module. */
  script?: string;
  env?: NodeJS.ProcessEnv;
}

export const DEFAULT_TIMEOUT_MS = 30 * 60 * 1000;
/** How much of the child's output is kept to explain a crash. */
const OUTPUT_TAIL = 16 * 1024;
/** After a result arrives the child exits by itself; past this grace it is killed. */
const EXIT_GRACE_MS = 10_000;

export function probeMainPath(): string {
  return fileURLToPath(new URL('./probe-main.js', import.meta.url));
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The tail of what the child printed (stdout and stderr interleaved). */
  output: string;
  timedOut: boolean;
  timeoutMs?: number;
}

/** What a child that died without a result means; see the file comment. */
export function classifyExit(info: ExitInfo): { status: ProbeStatus; reason: string } {
  if (info.timedOut) return { status: 'failed', reason: `timeout after ${Math.round((info.timeoutMs ?? 0) / 1000)} s` };
  const lines = info.output
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  // Emscripten prints "Aborted(...)" when the wasm runtime aborts: in tfjs-backend-wasm, a failed allocation.
  const oomLine = lines.find((l) => isOutOfMemory(l) || /^Aborted\(/.test(l));
  const how = info.signal !== null ? `killed by ${info.signal}` : `exited with code ${info.code}`;
  if (oomLine !== undefined) return { status: 'oom', reason: `${how}: ${oomLine.slice(0, 300)}` };
  if (info.signal === 'SIGKILL' || info.code === 137) {
    return { status: 'oom', reason: `${how} (what the system's out-of-memory killer does)` };
  }
  // Node ends a crash report with its version; the error line above the stack says more.
  const errorLine = [...lines].reverse().find((l) => /error|abort|fatal|exception/i.test(l) && !l.startsWith('at '));
  const telling = errorLine ?? lines[lines.length - 1];
  const last = telling !== undefined ? `: ${telling.slice(0, 300)}` : '';
  if (info.signal !== null || info.code !== 0) return { status: 'failed', reason: `${how}${last}` };
  return { status: 'failed', reason: `exited without sending a result${last}` };
}

function isResultMessage(message: unknown): message is { type: 'result'; result: ProbeResult } {
  return message !== null && typeof message === 'object' && (message as { type?: unknown }).type === 'result';
}

/** Runs one probe in its own process; resolves with its result or with the classified crash. */
/** How a forked task ended: its reply (if it sent one) and, for classifyExit, how the process exited. */
export interface ForkedExit<R> {
  reply: R | null;
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
  timedOut: boolean;
  /** Set when the process could not be started at all. */
  startError: string | null;
}

/**
 * Forks `script`, sends it `{ type: 'task', task }` over IPC and waits for it to close. The first
 * message `isReply` accepts is the reply; after it the child gets EXIT_GRACE_MS to exit by itself.
 * Shared by the memory probes and the experiment runner, so that both kill, time out and keep output
 * the same way. Always resolves.
 */
export function forkTask<R>(
  script: string,
  task: unknown,
  isReply: (message: unknown) => R | null,
  opts: { timeoutMs: number | null; execArgv?: string[]; env?: NodeJS.ProcessEnv; logFile?: string; onStart?: (child: ChildProcess) => void },
): Promise<ForkedExit<R>> {
  return new Promise((resolve) => {
    let output = '';
    let reply: R | null = null;
    let timedOut = false;
    let settled = false;
    if (opts.logFile !== undefined) mkdirSync(dirname(opts.logFile), { recursive: true });
    const keep = (chunk: Buffer): void => {
      const text = chunk.toString('utf8');
      output = (output + text).slice(-OUTPUT_TAIL);
      if (opts.logFile !== undefined) appendFileSync(opts.logFile, text);
    };
    const child = fork(script, [], {
      execArgv: opts.execArgv ?? [],
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'json',
    });
    opts.onStart?.(child);
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const timer =
      opts.timeoutMs === null
        ? undefined
        : setTimeout(() => {
            timedOut = reply === null;
            child.kill('SIGKILL');
          }, opts.timeoutMs);
    let grace: NodeJS.Timeout | undefined;
    const settle = (exit: Omit<ForkedExit<R>, 'reply' | 'output' | 'timedOut'>): void => {
      if (settled) return;
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      if (grace !== undefined) clearTimeout(grace);
      resolve({ ...exit, reply, output, timedOut });
    };
    child.on('message', (message: unknown) => {
      if (reply !== null) return;
      reply = isReply(message);
      if (reply !== null) grace = setTimeout(() => child.kill('SIGKILL'), EXIT_GRACE_MS);
    });
    child.on('error', (err) => {
      // Spawning failed (or a kill failed): nothing ran, so this is not an OOM.
      if (child.exitCode === null && child.signalCode === null && child.pid === undefined) {
        settle({ code: null, signal: null, startError: err.message });
      }
    });
    // 'close' comes after the output streams have drained, so the last lines are there to classify.
    child.on('close', (code, signal) => settle({ code, signal, startError: null }));
    child.send({ type: 'task', task });
  });
}

export async function runProbeInChild(input: ProbeTaskInput, opts: ChildOptions = {}): Promise<ProbeResult> {
  const task = parseProbeTask(input);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const started = performance.now();
  const exit = await forkTask(opts.script ?? probeMainPath(), task, (m) => (isResultMessage(m) ? m.result : null), { ...opts, timeoutMs });
  const wallMs = performance.now() - started;
  if (exit.reply !== null) return { ...exit.reply, wallMs };
  if (exit.startError !== null) return { ...emptyProbeResult(task, 'failed', `could not start the probe process: ${exit.startError}`, 0), wallMs };
  const { status, reason } = classifyExit({ ...exit, timeoutMs });
  return { ...emptyProbeResult(task, status, reason, 0), wallMs };
}
