/**
 * A run's identity as a hash of what defines its computation: the resolved config (its own method's
 * section only) and the content of the data files it reads. Here, in the data layer, because the
 * data's fingerprints are part of it; runs/id.ts builds run ids and folders from it.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import { METHOD_SECTION, methodSections } from '../config/methods/index.js';
import { sha256, sha256FileSync, stableStringify } from '../util/hash.js';
import { corpusIdentity, type SplitFingerprints } from './fingerprint.js';
import { registryFor, type Registry } from './registry.js';

/** The datasets a run reads: its own, and those its masked-LM pretraining reads. */
function datasetsRead(config: Config): string[] {
  const pretraining = config.encoder.pretrained === 'mlm' ? (config.pretrain.datasets ?? []) : [];
  return [...new Set([config.dataset.name, ...pretraining])];
}

/**
 * The files of a pretrained encoder folder that decide what a run computes, of either kind
 * (train/pretrain/files.ts): the weights of an export or of a run, and the tokenizer.
 */
const PRETRAINED_CONTENT = ['encoder.safetensors', 'encoder.ckpt', 'tokenizer.json'];

/** encoder.pretrained as the hash sees it: 'mlm' and null as they are, a folder by the sha256 of its files, wherever it is. */
function pretrainedIdentity(choice: string | null): unknown {
  if (choice === null || choice === 'mlm') return choice;
  const dir = resolve(choice);
  const files = Object.fromEntries(PRETRAINED_CONTENT.filter((f) => existsSync(join(dir, f))).map((f) => [f, sha256FileSync(join(dir, f))]));
  // Nothing to hash: the run fails when it looks for the folder, and an id from the path is as good as any.
  return Object.keys(files).length > 0 ? { files } : { missing: choice };
}

/** sha256 of each data file the run reads, by dataset and raw split (data/fingerprint.ts). */
export function dataFingerprints(config: Config, registry: Registry = registryFor(config)): Record<string, SplitFingerprints | null> {
  return corpusIdentity(config, datasetsRead(config), registry).fingerprints;
}

/**
 * First 10 hex digits of the SHA-256 of the resolved config and of the content of the data files it
 * reads, without what does not change the computation's definition: the seed (it has its own slot in
 * the id), the experiment name (the parent folder), the preset name (only the values it set count)
 * the paths of dataset.files and of an encoder.pretrained folder (their content counts, not where they
 * are), and the sections of the other methods (a run reads only its own).
 * Adding an option to the schema changes every hash, as it should: old runs were made without it.
 */
export function configHash(config: Config, registry?: Registry): string {
  const { experiment: _experiment, preset: _preset, ...all } = config;
  // Only the run's own method section: an option added to another method must not re-id this run.
  const rest = Object.fromEntries(Object.entries(all).filter(([key]) => !(key in methodSections) || key === METHOD_SECTION[config.method])) as typeof all;
  const { seed: _seed, ...train } = rest.train;
  const { files, ...dataset } = rest.dataset;
  const data = dataFingerprints(config, registry);
  const encoder = { ...rest.encoder, pretrained: pretrainedIdentity(rest.encoder.pretrained) };
  return sha256(stableStringify({ ...rest, dataset: { ...dataset, files: files === null ? null : 'by content' }, encoder, train, data })).slice(0, 10);
}
