/**
 * `--shard i/n`: a deterministic split of a grid's runs over n machines (a SLURM array, a Kubernetes
 * indexed Job). Runs are sorted by run id and run k goes to shard k mod n, so every machine computes
 * the same split from the same experiment file without talking to the others, the shards are disjoint
 * and together cover the grid, and their sizes differ by at most one.
 */
import { LongnerError } from '../errors.js';

export interface Shard {
  /** 0-based, as SLURM_ARRAY_TASK_ID (with --array=0-N) and JOB_COMPLETION_INDEX are. */
  index: number;
  count: number;
}

export function parseShard(text: string): Shard {
  const match = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (match === null) throw new LongnerError(`--shard "${text}": expected i/n with 0 <= i < n, e.g. --shard 0/4`);
  const index = Number(match[1]);
  const count = Number(match[2]);
  if (count < 1 || index >= count) throw new LongnerError(`--shard "${text}": expected i/n with 0 <= i < n (shards are numbered from 0)`);
  return { index, count };
}

/** The items of one shard, in run-id order. */
export function shardItems<T extends { runId: string }>(items: readonly T[], shard: Shard | null): T[] {
  const sorted = [...items].sort((a, b) => (a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0));
  if (shard === null) return sorted;
  return sorted.filter((_, k) => k % shard.count === shard.index);
}
