/**
 * A lock file: one process at a time works in a folder (shards of a grid may ask for the same
 * pretraining run). Atomic creation (O_EXCL) decides who holds it; the file names the holder.
 */
import { closeSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { LongnerError } from '../errors.js';

/** Another process holds the lock. */
export class BusyError extends LongnerError {}

interface LockOwner {
  pid: number;
  host: string;
  since: string;
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

/**
 * Takes the lock file `name` in `dir`, or throws BusyError naming its owner; returns the release
 * function. A lock left by a dead process on this host is taken over. `activity` says what the
 * holder does, for the message ("pretrained": "... is being pretrained by process 12 on host").
 */
export function acquireLock(dir: string, name: string, activity: string): () => void {
  const file = join(dir, name);
  const me: LockOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, 'wx');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let owner: LockOwner | null = null;
      try {
        owner = JSON.parse(readFileSync(file, 'utf8')) as LockOwner;
      } catch {
        // Unreadable: just being written by its owner, or left half-written by a process killed
        // right after creating it. Only the second lasts, so an old unreadable lock is stale.
      }
      const unreadableAndOld = owner === null && Date.now() - mtimeOf(file) > LOCK_WRITE_GRACE_MS;
      if (owner === null && !unreadableAndOld) throw new BusyError(`${dir} is being ${activity} by another process (${name} is being written)`);
      const stale = unreadableAndOld || (owner !== null && owner.host === me.host && !processAlive(owner.pid));
      if (stale) {
        rmSync(file, { force: true });
        continue;
      }
      throw new BusyError(
        `${dir} is being ${activity} by process ${owner!.pid} on ${owner!.host} (since ${owner!.since}); wait for it, or remove ${name} if that process is gone`,
      );
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
