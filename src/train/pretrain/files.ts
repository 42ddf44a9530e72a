/** The folder layout and identity of a pretraining run: what defines it (its key), where it lives. See index.ts for the procedure. */
import { join } from 'node:path';
import type { Config } from '../../config/schema.js';
import { corpusIdentity, tokenizerKey, type CorpusIdentity } from '../../data/fingerprint.js';
import { registryFor, type Registry } from '../../data/registry.js';
import { SPECIAL_TOKENS } from '../../data/tokenizer.js';
import { sha256, stableStringify } from '../../util/hash.js';
import { runsRoot } from '../../util/paths.js';

export const KEY_FILE = 'key.json';
export const TOKENIZER_FILE = 'tokenizer.json';
export const ENCODER_CKPT = 'encoder.ckpt';
export const SUMMARY_FILE = 'pretrain.json';
export const LOG_FILE = 'log.jsonl';
export const LAST_CKPT = 'last.ckpt';
export const LAST_OPTIM = 'last.optim.ckpt';
export const STATE_FILE = 'pretrain-state.json';
export const LOCK_FILE = 'pretrain.lock';
/** An exported encoder folder (export.ts): the weights, the tokenizer (TOKENIZER_FILE) and this description, written last. */
export const ENCODER_SAFETENSORS = 'encoder.safetensors';
export const EXPORT_CONFIG = 'config.json';
export const EXPORT_FORMAT = 'longner-encoder/1';

/** Bumped when the pretraining procedure changes what it computes, so old runs are not reused. */
const PROCEDURE_VERSION = 1;
export const STATE_FORMAT = 'longner-pretrain-state/1';
export const ENCODER_PREFIX = 'encoder';
export const OPTIMIZER_GROUP = 'all';
export const CLIP_NORM = 1.0;
export const MASK_TAG = 0x4d4c;
export const DEFAULT_CHECKPOINT_SECONDS = 300;
/** The loss curve keeps at most about this many points (one per logged window). */
export const CURVE_POINTS = 200;
export const SPECIAL_IDS = SPECIAL_TOKENS.map((_, id) => id);

/** Everything that defines a pretraining run, and nothing else. */
export interface PretrainKey {
  version: number;
  pretrain: Omit<Config['pretrain'], 'datasets'>;
  tokenizer: Config['tokenizer'];
  encoder: Pick<Config['encoder'], 'layers' | 'hidden' | 'heads' | 'ffn' | 'dropout'>;
  /** pretrain.datasets ?? [dataset.name], their protocol options and their files' sha256. */
  corpus: CorpusIdentity;
}

/** `registry` (tests inject fixtures) defaults to the config's own (registryFor). */
export function pretrainKey(config: Config, registry: Registry = registryFor(config)): PretrainKey {
  const { datasets, ...pretrain } = config.pretrain;
  const { layers, hidden, heads, ffn, dropout } = config.encoder;
  return {
    version: PROCEDURE_VERSION,
    pretrain,
    tokenizer: config.tokenizer,
    encoder: { layers, hidden, heads, ffn, dropout },
    // Resolved, so `datasets: null` and `datasets: [<dataset.name>]` are the same run.
    corpus: corpusIdentity(config, datasets ?? [config.dataset.name], registry),
  };
}

/** First 10 hex digits of the SHA-256 of the key. */
export function pretrainHash(config: Config, registry?: Registry): string {
  return sha256(stableStringify(pretrainKey(config, registry))).slice(0, 10);
}

/** The key of the tokenizer a pretraining run trains (and the fine-tuning runs that start from it copy). */
export function pretrainTokenizerKey(config: Config, registry?: Registry): string {
  return tokenizerKey(config, pretrainKey(config, registry).corpus);
}

/** `<root>/pretrain/<datasets>-l<layers>h<hidden>-<hash>`. */
export function pretrainRunDir(config: Config, root: string = runsRoot(), registry?: Registry): string {
  const key = pretrainKey(config, registry);
  const short = `${key.corpus.datasets.map(safeName).join('+')}-l${key.encoder.layers}h${key.encoder.hidden}`;
  return join(root, 'pretrain', `${short}-${sha256(stableStringify(key)).slice(0, 10)}`);
}

export function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '_');
}
