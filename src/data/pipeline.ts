/**
 * From a resolved config to model inputs: protocol splits -> tokenizer -> segments.
 * The tokenizer is trained on the training split's words only (never validation or test text); a
 * run keeps it next to its results, and a pretrained encoder brings its own.
 */
import { existsSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { loadProtocol, type ProtocolData } from './protocol.js';
import type { Registry } from './registry.js';
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

/** Loads the tokenizer at `path`, or trains one on `words` and saves it there. */
export async function loadOrTrainTokenizer(path: string, words: () => Iterable<string>, config: Config): Promise<SubwordTokenizer> {
  if (existsSync(path)) return SubwordTokenizer.load(path);
  const tokenizer = await SubwordTokenizer.train(words(), {
    vocabSize: config.tokenizer.vocabSize,
    lowercase: config.tokenizer.lowercase,
  });
  tokenizer.save(path);
  return tokenizer;
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
    registry,
  });
}

/** Everything a run needs as inputs; `tokenizerPath` is loaded when it exists, else trained and saved. */
export async function prepareData(config: Config, opts: { tokenizerPath: string; registry?: Registry }): Promise<PreparedData> {
  const protocol = await loadProtocolFor(config, opts.registry);
  const tokenizer = await loadOrTrainTokenizer(opts.tokenizerPath, () => wordsOf(protocol.train), config);
  return {
    protocol,
    tokenizer,
    train: await segmentDocuments(protocol.train, tokenizer, config),
    validation: await segmentDocuments(protocol.validation, tokenizer, config),
    test: await segmentDocuments(protocol.test, tokenizer, config),
  };
}
