/**
 * Run identity. A run directory is keyed by what was computed, so re-running the same config and
 * seed finds the same directory (idempotent grids, resumable shards), while any changed value gets
 * a new one.
 */
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { corpusIdentity, type SplitFingerprints } from '../data/fingerprint.js';
import { registryFor, type Registry } from '../data/registry.js';
import { sha256, stableStringify } from '../util/hash.js';
import { runsRoot } from '../util/paths.js';

/** The datasets a run reads: its own, and those its masked-LM pretraining reads. */
function datasetsRead(config: Config): string[] {
  const pretraining = config.encoder.pretrained === 'mlm' ? (config.pretrain.datasets ?? []) : [];
  return [...new Set([config.dataset.name, ...pretraining])];
}

/** sha256 of each data file the run reads, by dataset and raw split (data/fingerprint.ts). */
export function dataFingerprints(config: Config, registry: Registry = registryFor(config)): Record<string, SplitFingerprints | null> {
  return corpusIdentity(config, datasetsRead(config), registry).fingerprints;
}

/**
 * First 10 hex digits of the SHA-256 of the resolved config and of the content of the data files it
 * reads, without what does not change the computation's definition: the seed (it has its own slot in
 * the id), the experiment name (the parent folder), the preset name (only the values it set count)
 * and the paths of dataset.files (their content counts, not where they are).
 * Adding an option to the schema changes every hash, as it should: old runs were made without it.
 */
export function configHash(config: Config, registry?: Registry): string {
  const { experiment: _experiment, preset: _preset, ...rest } = config;
  const { seed: _seed, ...train } = rest.train;
  const { files, ...dataset } = rest.dataset;
  const data = dataFingerprints(config, registry);
  return sha256(stableStringify({ ...rest, dataset: { ...dataset, files: files === null ? null : 'by content' }, train, data })).slice(0, 10);
}

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
