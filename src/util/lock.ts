/**
 * A lock file: one process at a time works in a folder (shards of a grid may ask for the same
 * pretraining run; two grids, or a grid and `train --resume`, the same run). Atomic creation
 * (O_EXCL) decides who holds it; the file names the holder.
 */
import { closeSync, existsSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { LongnerError } from '../errors.js';

/** Another process holds the lock. */
export class BusyError extends LongnerError {}

interface LockOwner {
  pid: number;
  host: string;
  since: string;
  /** The kernel's boot id: after a reboot the owner's pid may belong to another process. */
  boot?: string;
}

const LOCK_WRITE_GRACE_MS = 10_000;

function mtimeOf(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function bootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** What a lock file says: nobody holds it, a live process does (owner null: it is being written), or its holder is gone. */
type LockState = { kind: 'free' } | { kind: 'held'; owner: LockOwner | null } | { kind: 'stale' };

function lockState(file: string): LockState {
  if (!existsSync(file)) return { kind: 'free' };
  let owner: LockOwner | null = null;
  try {
    owner = JSON.parse(readFileSync(file, 'utf8')) as LockOwner;
  } catch {
    // Unreadable: just being written by its owner, or left half-written by a process killed right
    // after creating it. Only the second lasts, so an old unreadable lock is stale.
    return Date.now() - mtimeOf(file) > LOCK_WRITE_GRACE_MS ? { kind: 'stale' } : { kind: 'held', owner: null };
  }
  // A process on another host cannot be checked from here: its lock holds until removed.
  if (owner.host !== hostname()) return { kind: 'held', owner };
  const boot = bootId();
  if (owner.boot !== undefined && boot !== undefined && owner.boot !== boot) return { kind: 'stale' };
  return processAlive(owner.pid) ? { kind: 'held', owner } : { kind: 'stale' };
}

function holderText(owner: LockOwner | null): string {
  return owner === null ? 'another process' : `process ${owner.pid} on ${owner.host} (since ${owner.since})`;
}

/** Who holds the lock file `name` in `dir` ("process 12 on host (since ...)"), or null when nobody live does. */
export function lockHolder(dir: string, name: string): string | null {
  const state = lockState(join(dir, name));
  return state.kind === 'held' ? holderText(state.owner) : null;
}

/**
 * Takes the lock file `name` in `dir`, or throws BusyError naming its owner; returns the release
 * function. A lock left by a dead process on this host is taken over. `activity` says what the
 * holder does, for the message ("pretrained": "... is being pretrained by process 12 on host").
 */
export function acquireLock(dir: string, name: string, activity: string): () => void {
  const file = join(dir, name);
  const me: LockOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString(), boot: bootId() };
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, 'wx');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const state = lockState(file);
      if (state.kind === 'stale') rmSync(file, { force: true });
      if (state.kind !== 'held') continue;
      const wait = state.owner === null ? '' : `; wait for it, or remove ${name} if that process is gone`;
      throw new BusyError(`${dir} is being ${activity} by ${holderText(state.owner)}${wait}`);
    }
    writeSync(fd, JSON.stringify(me));
    closeSync(fd);
    return () => {
      // Release only our own lock.
      try {
        const held = JSON.parse(readFileSync(file, 'utf8')) as LockOwner;
        if (held.pid === me.pid && held.host === me.host) rmSync(file, { force: true });
      } catch {
        // Already gone.
      }
    };
  }
  throw new BusyError(`${dir}: cannot take ${name}`);
}
