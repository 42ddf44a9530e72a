/**
 * From a resolved config to model inputs: protocol splits -> tokenizer -> segments.
 * The tokenizer is trained on the training split's words only (never validation or test text); a
 * run keeps it next to its results, and a pretrained encoder brings its own.
 */
import { existsSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { corpusIdentity, tokenizerKey } from './fingerprint.js';
import { loadProtocol, type ProtocolData } from './protocol.js';
import { registryFor, type Registry } from './registry.js';
import { segmentDocument, type Segment } from './segmenter.js';
import { SubwordTokenizer } from './tokenizer.js';
import type { Document } from './types.js';

export interface SplitSegments {
  docs: Document[];
  segments: Segment[];
  byDoc: Map<string, Segment[]>;
  /** Tokens over all segments (for tokens/s figures). */
  tokens: number;
}

export interface PreparedData {
  protocol: ProtocolData;
  tokenizer: SubwordTokenizer;
  train: SplitSegments;
  validation: SplitSegments;
  test: SplitSegments;
}

/**
 * Loads the tokenizer at `path` when it was trained under `key` (tokenizerKey: the options and the
 * corpus, data fingerprints included), else trains one on `words` and saves it there with the key, so
 * a tokenizer never outlives the text it was made from.
 */
export async function loadOrTrainTokenizer(path: string, words: () => Iterable<string>, config: Config, key: string): Promise<SubwordTokenizer> {
  if (existsSync(path) && SubwordTokenizer.readKey(path) === key) return SubwordTokenizer.load(path);
  const tokenizer = await SubwordTokenizer.train(words(), {
    vocabSize: config.tokenizer.vocabSize,
    lowercase: config.tokenizer.lowercase,
  });
  tokenizer.save(path, key);
  return tokenizer;
}

/** The key of the tokenizer a run without a pretrained encoder trains on its own training split. */
export function runTokenizerKey(config: Config, registry: Registry = registryFor(config)): string {
  return tokenizerKey(config, corpusIdentity(config, [config.dataset.name], registry));
}

export function* wordsOf(docs: readonly Document[]): Iterable<string> {
  for (const doc of docs) yield* doc.words;
}

export async function segmentDocuments(docs: Document[], tokenizer: SubwordTokenizer, config: Config): Promise<SplitSegments> {
  const segments: Segment[] = [];
  const byDoc = new Map<string, Segment[]>();
  let tokens = 0;
  for (const doc of docs) {
    const tok = await tokenizer.encodeWords(doc.words);
    const parts = segmentDocument(doc, tok, {
      maxLen: config.segment.maxLen,
      overlap: config.segment.overlap,
      cls: tokenizer.cls,
      sep: tokenizer.sep,
    });
    byDoc.set(doc.id, parts);
    for (const s of parts) tokens += s.tokenIds.length;
    segments.push(...parts);
  }
  return { docs, segments, byDoc, tokens };
}

export async function loadProtocolFor(config: Config, registry?: Registry): Promise<ProtocolData> {
  const d = config.dataset;
  return loadProtocol(d.name, {
    protocol: d.protocol,
    validationFraction: d.validationFraction,
    validationDocs: d.validationDocs,
    splitSeed: d.splitSeed,
    maxDocs: d.maxDocs,
    registry: registry ?? registryFor(config),
  });
}

/**
 * Everything a run needs as inputs. The tokenizer is `opts.tokenizer` (a pretrained encoder's), else
 * the one at `tokenizerPath` when it was trained on this config's training split as it is now
 * (runTokenizerKey), else one trained on it and saved there.
 */
export async function prepareData(config: Config, opts: { tokenizerPath: string; tokenizer?: SubwordTokenizer; registry?: Registry }): Promise<PreparedData> {
  const protocol = await loadProtocolFor(config, opts.registry);
  const tokenizer =
    opts.tokenizer ?? (await loadOrTrainTokenizer(opts.tokenizerPath, () => wordsOf(protocol.train), config, runTokenizerKey(config, opts.registry)));
  return {
    protocol,
    tokenizer,
    train: await segmentDocuments(protocol.train, tokenizer, config),
    validation: await segmentDocuments(protocol.validation, tokenizer, config),
    test: await segmentDocuments(protocol.test, tokenizer, config),
  };
}
