/**
 * What a computation read, by content: the sha256 of every file a protocol reads. It enters the run id
 * (runs/id.ts), the pretraining key (train/pretrain.ts) and the tokenizer key (pipeline.ts), so a
 * changed data file never reuses a run, a pretrained encoder or a tokenizer made from the old one.
 */
import type { Config } from '../config/schema.js';
import { sha256, sha256FileSync, stableStringify } from '../util/hash.js';
import type { ProtocolName } from './protocol.js';
import { userFileMissing, type Registry } from './registry.js';

/** Raw split name -> sha256 of its file ("unavailable: ..." for a registered file that is not here yet). */
export type SplitFingerprints = Record<string, string>;

/**
 * The fingerprints of the splits `protocol` reads from `dataset`; null for a dataset the registry does
 * not know (loading it fails later with the list of known ones). A manifest file with a published
 * sha256 is fingerprinted by it without reading (resolving the file checks it against that value).
 */
export function datasetFingerprint(registry: Registry, dataset: string, protocol: ProtocolName): SplitFingerprints | null {
  const known = registry.datasetNames();
  if (!known.includes(dataset) && !known.includes(dataset.toLowerCase())) return null;
  const ds = registry.dataset(dataset);
  const p = ds.protocols[protocol];
  const raw = [p.train, p.test, ...(p.validation === 'fraction' || p.validation === 'docs' ? [] : [p.validation])];
  const out: SplitFingerprints = {};
  for (const name of [...new Set(raw)].sort()) {
    const spec = registry.split(ds.name, name);
    if (spec.sha256 !== null) {
      out[name] = spec.sha256;
      continue;
    }
    const where = registry.locate(ds.name, name).path;
    // A user's file is never downloaded, so a missing one is an error now rather than a run id that changes later.
    if (where === null && spec.path !== undefined) throw userFileMissing(ds, spec);
    out[name] = where === null ? `unavailable: ${spec.file}` : sha256FileSync(where);
  }
  return out;
}

/** Everything that decides a training corpus: which datasets, which protocol split of them, and their files' content. */
export interface CorpusIdentity {
  datasets: string[];
  protocol: Config['dataset']['protocol'];
  validationFraction: number;
  validationDocs: number;
  splitSeed: number;
  maxTrainDocs: number | null;
  fingerprints: Record<string, SplitFingerprints | null>;
}

export function corpusIdentity(config: Config, datasets: readonly string[], registry: Registry): CorpusIdentity {
  const d = config.dataset;
  return {
    datasets: [...datasets],
    protocol: d.protocol,
    validationFraction: d.validationFraction,
    validationDocs: d.validationDocs,
    splitSeed: d.splitSeed,
    maxTrainDocs: d.maxDocs.train,
    fingerprints: Object.fromEntries(datasets.map((name) => [name, datasetFingerprint(registry, name, d.protocol)])),
  };
}

/** The key a tokenizer trained on `corpus` with the config's tokenizer options is stored under. */
export function tokenizerKey(config: Config, corpus: CorpusIdentity): string {
  return sha256(stableStringify({ tokenizer: config.tokenizer, corpus }));
}
