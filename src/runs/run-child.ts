/**
 * Entry point of a grid cell's child process (forked by spawn.ts): receives one task over IPC, runs
 * it, reports and exits. One run per process, because the wasm heap never shrinks
 * (research/backends.md 3) and an out-of-memory crash must end only this run.
 *
 * Protocol: parent -> child `{ type: 'task', task }`; child -> parent `{ type: 'done', status, reason }`.
 * A `run` task's outcome is its result.json, written by executeRun (ok, oom, diverged, failed); the
 * message only saves the parent a file read. A child that dies first is classified by the parent.
 */
import { initBackend } from '../backend/index.js';
import { resolveConfigFromObject } from '../config/load.js';
import { ensurePretrained } from '../train/pretrain/index.js';
import { executeRun } from './execute.js';
import { runId } from './id.js';

export type ChildTask = { kind: 'run'; config: unknown; root: string; resume: boolean; runId: string } | { kind: 'pretrain'; config: unknown; root: string };

export interface DoneMessage {
  type: 'done';
  status: string;
  reason: string | null;
}

function isTaskMessage(message: unknown): message is { type: 'task'; task: ChildTask } {
  return message !== null && typeof message === 'object' && (message as { type?: unknown }).type === 'task';
}

function send(message: DoneMessage): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined) {
      process.stdout.write(`${JSON.stringify(message)}\n`, () => resolve());
      return;
    }
    process.send(message, undefined, {}, () => resolve());
  });
}

async function perform(task: ChildTask): Promise<DoneMessage> {
  const config = resolveConfigFromObject(task.config, 'grid cell');
  if (task.kind === 'pretrain') {
    // executeRun initialises the backend itself; pretraining alone needs it done here.
    await initBackend(config.backend, { quiet: true });
    await ensurePretrained(config, { root: task.root, quiet: true });
    return { type: 'done', status: 'ok', reason: null };
  }
  // The parent planned this run id; if the code changed since (a new option changes every config hash),
  // running would write a record the parent does not look for.
  if (runId(config) !== task.runId) {
    throw new Error(`config hash changed between planning (${task.runId}) and running (${runId(config)}): the code or schema changed; run the grid again`);
  }
  const result = await executeRun(config, { root: task.root, resume: task.resume, quiet: true });
  return { type: 'done', status: result.status, reason: result.reason ?? null };
}

process.once('message', (message: unknown) => {
  if (!isTaskMessage(message)) {
    process.stderr.write('run-child: expected a task message\n');
    process.exit(2);
  }
  perform(message.task).then(
    async (done) => {
      await send(done);
      // Exit at once: tfjs may hold handles open, and the heap is not needed any more.
      process.exit(0);
    },
    async (err: unknown) => {
      // executeRun has already written a failed result.json; the stack goes to the child's log.
      const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
      process.stderr.write(`run-child: ${text}\n`);
      await send({ type: 'done', status: 'failed', reason: (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 300) });
      process.exit(1);
    },
  );
});
