/**
 * Entry point of a probe child process (forked by child.ts): receives one task over IPC, runs it,
 * sends the result back and exits. One probe per process, because the wasm heap never shrinks and
 * an out-of-memory crash must only end this process.
 *
 * Protocol: parent -> child `{ type: 'task', task }`; child -> parent `{ type: 'result', result }`.
 * A child that exits without sending a result is classified by the parent (child.ts).
 */
import {
  classifyProbeError,
  currentWasmHeap,
  emptyProbeResult,
  executeProbe,
  lastWasmAbort,
  parseProbeTask,
  type ProbeFault,
  type ProbeResult,
  type ProbeTask,
} from './task.js';

export interface TaskMessage {
  type: 'task';
  task: unknown;
}

function isTaskMessage(message: unknown): message is TaskMessage {
  return message !== null && typeof message === 'object' && (message as { type?: unknown }).type === 'task';
}

/** Test faults (task.fault): each fails the way a real crash would, at the moment the step would start. */
function injectFault(fault: ProbeFault): void {
  switch (fault.kind) {
    case 'throw':
      throw new Error(fault.message);
    case 'exit':
      // process.exit never returns; the return keeps the switch from seeming to fall through.
      process.exit(fault.code);
      return;
    case 'signal':
      process.kill(process.pid, fault.signal);
      // A signal is delivered asynchronously; wait for it so the step never starts.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
      return;
    case 'hang':
      for (;;) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
  }
}

function send(message: unknown): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined) {
      // Run by hand (no IPC channel): print the result as one JSON line instead.
      process.stdout.write(`${JSON.stringify(message)}\n`, () => resolve());
      return;
    }
    process.send(message, undefined, {}, () => resolve());
  });
}

let reported = false;

/** Sends the (first) result and exits at once: the heap is not needed any more and tfjs may hold handles open. */
async function report(result: ProbeResult): Promise<void> {
  if (reported) return;
  reported = true;
  await send({ type: 'result', result });
  process.exit(0);
}

async function run(raw: unknown): Promise<void> {
  let task: ProbeTask;
  try {
    task = parseProbeTask(raw);
  } catch (err) {
    process.stderr.write(`probe: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  }
  // An error can escape tfjs asynchronously (the wasm runtime rethrows outside the kernel call);
  // classify it like a caught error rather than dying with a bare exit code.
  const started = performance.now();
  const onUncaught = (err: unknown): void => {
    const verdict = classifyProbeError(err, currentWasmHeap(), lastWasmAbort());
    void report({ ...emptyProbeResult(task, verdict.status, verdict.reason, performance.now() - started), wasmHeapBytes: currentWasmHeap() });
  };
  process.on('uncaughtException', onUncaught);
  // The wasm runtime installs handlers that rethrow (so the process would die before a result is
  // sent): once the backend is up, they go. Unhandled rejections during the probe are executeProbe's
  // to explain (it collects them); outside it they crash the process, which the parent classifies.
  const ownHandlersOnly = (): void => {
    for (const listener of process.listeners('uncaughtException')) if (listener !== onUncaught) process.off('uncaughtException', listener);
    process.removeAllListeners('unhandledRejection');
  };
  const fault = task.fault;
  await report(await executeProbe(task, { afterBackend: ownHandlersOnly, ...(fault === null ? {} : { beforeStep: () => injectFault(fault) }) }));
}

if (process.send === undefined) {
  // `node dist/src/measure/probe-main.js '<task json>'` runs one probe by hand.
  const arg = process.argv[2];
  if (arg === undefined) {
    process.stderr.write('usage: node probe-main.js \'{"method":"sener","words":512,"mode":"train"}\'\n');
    process.exit(2);
  }
  await run(JSON.parse(arg) as unknown);
} else {
  // A parent that goes away takes its probe with it.
  process.on('disconnect', () => process.exit(1));
  process.once('message', (message: unknown) => {
    if (!isTaskMessage(message)) {
      process.stderr.write('probe: expected a task message\n');
      process.exit(2);
    }
    void run(message.task);
  });
}
