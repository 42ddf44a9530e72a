/**
 * Run identity. A run directory is keyed by what was computed, so re-running the same config and
 * seed finds the same directory (idempotent grids, resumable shards), while any changed value gets
 * a new one.
 */
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { configHash } from '../data/config-hash.js';
import type { Registry } from '../data/registry.js';
import { runsRoot } from '../util/paths.js';

/** `<method>-<dataset>-<hash>-s<seed>`, safe as a directory name. */
export function runId(config: Config, registry?: Registry): string {
  return `${config.method}-${safeName(config.dataset.name)}-${configHash(config, registry)}-s${config.train.seed}`;
}

/** `<root>/<experiment>/<run-id>`; the root defaults to runsRoot() ($LONGNER_RUNS_DIR or runs/). */
export function runDir(config: Config, root: string = runsRoot(), registry?: Registry): string {
  return join(root, safeName(config.experiment), runId(config, registry));
}

/** Dataset names may be paths or carry characters a folder name should not; the hash keeps ids distinct anyway. */
function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '_');
}
