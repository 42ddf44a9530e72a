/**
 * Run identity. A run directory is keyed by what was computed, so re-running the same config and
 * seed finds the same directory (idempotent grids, resumable shards), while any changed value gets
 * a new one.
 */
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { sha256, stableStringify } from '../util/hash.js';
import { runsRoot } from '../util/paths.js';

/**
 * First 10 hex digits of the SHA-256 of the resolved config, without what does not change the
 * computation's definition: the seed (it has its own slot in the id), the experiment name (the
 * parent folder) and the preset name (only the values it set count).
 * Adding an option to the schema changes every hash, as it should: old runs were made without it.
 */
export function configHash(config: Config): string {
  const { experiment: _experiment, preset: _preset, ...rest } = config;
  const { seed: _seed, ...train } = rest.train;
  return sha256(stableStringify({ ...rest, train })).slice(0, 10);
}

/** `<method>-<dataset>-<hash>-s<seed>`, safe as a directory name. */
export function runId(config: Config): string {
  return `${config.method}-${safeName(config.dataset.name)}-${configHash(config)}-s${config.train.seed}`;
}

/** `<root>/<experiment>/<run-id>`; the root defaults to runsRoot() ($LONGNER_RUNS_DIR or runs/). */
export function runDir(config: Config, root: string = runsRoot()): string {
  return join(root, safeName(config.experiment), runId(config));
}

/** Dataset names may be paths or carry characters a folder name should not; the hash keeps ids distinct anyway. */
function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '_');
}
