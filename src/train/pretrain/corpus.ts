/** The pretraining corpus: the unlabeled words of the training splits, cut into pieces of at most seqLen tokens, and the batch of each step. */
import type { Config } from '../../config/schema.js';
import { loadProtocol } from '../../data/protocol.js';
import { registryFor, type Registry } from '../../data/registry.js';
import type { SubwordTokenizer, TokenizedWords } from '../../data/tokenizer.js';
import type { Document } from '../../data/types.js';
import { LongnerError } from '../../errors.js';
import { epochOrder } from '../trainer.js';
import { pretrainKey } from './files.js';

export interface CorpusDataset {
  name: string;
  /** The protocol's training split of the dataset, and only that. */
  documents: Document[];
  /** Where the split comes from (the protocol's description). */
  description: string;
}

/**
 * The pretraining text: the training split of each corpus dataset under the config's protocol.
 * Validation and test documents are never part of it: pretraining on them would let the encoder see
 * the evaluation text before fine-tuning is scored on it. (The protocol also drops training
 * documents that repeat test documents, dedup.ts.)
 */
export async function pretrainCorpus(config: Config, registry?: Registry): Promise<CorpusDataset[]> {
  const reg = registry ?? registryFor(config);
  const c = pretrainKey(config, reg).corpus;
  const out: CorpusDataset[] = [];
  for (const name of c.datasets) {
    const data = await loadProtocol(name, {
      protocol: c.protocol,
      validationFraction: c.validationFraction,
      validationDocs: c.validationDocs,
      splitSeed: c.splitSeed,
      maxDocs: { train: c.maxTrainDocs },
      registry: reg,
    });
    out.push({ name, documents: data.train, description: data.description });
  }
  return out;
}

/** One pretraining sequence: [CLS] tokens [SEP], with each token's word (-1 for the specials). */
export interface Piece {
  tokenIds: Int32Array;
  tokenWord: Int32Array;
}

/**
 * Cuts one document's tokens into consecutive pieces of at most `contentLen` tokens, each wrapped in
 * [CLS] ... [SEP]. A piece ends at a word boundary when it can (a word longer than a whole piece is
 * cut), so whole-word masking sees whole words; word indices stay the document's.
 */
export function cutPieces(tok: TokenizedWords, contentLen: number, cls: number, sep: number): Piece[] {
  if (!Number.isInteger(contentLen) || contentLen < 1) throw new LongnerError(`pretrain.seqLen must leave room for at least one token besides [CLS] and [SEP]`);
  const n = tok.ids.length;
  const pieces: Piece[] = [];
  let start = 0;
  while (start < n) {
    let end = Math.min(n, start + contentLen);
    if (end < n) {
      // Back off to the first token of the word that the cut would split.
      let b = end;
      while (b > start && tok.wordIndex[b - 1] === tok.wordIndex[end]) b--;
      if (b > start) end = b;
    }
    const len = end - start;
    const tokenIds = new Int32Array(len + 2);
    const tokenWord = new Int32Array(len + 2);
    tokenIds[0] = cls;
    tokenWord[0] = -1;
    tokenIds.set(tok.ids.subarray(start, end), 1);
    tokenWord.set(tok.wordIndex.subarray(start, end), 1);
    tokenIds[len + 1] = sep;
    tokenWord[len + 1] = -1;
    pieces.push({ tokenIds, tokenWord });
    start = end;
  }
  return pieces;
}

export async function corpusPieces(documents: readonly Document[], tokenizer: SubwordTokenizer, seqLen: number): Promise<Piece[]> {
  const pieces: Piece[] = [];
  for (const doc of documents) {
    if (doc.words.length === 0) continue;
    pieces.push(...cutPieces(await tokenizer.encodeWords(doc.words), seqLen - 2, tokenizer.cls, tokenizer.sep));
  }
  return pieces;
}

/**
 * The pieces of step `step`: positions step*B .. step*B+B-1 of the concatenation of per-epoch
 * permutations. `orders` caches permutations of piece indices by epoch.
 */
export function batchAt(pieces: readonly Piece[], seed: number, step: number, batchSize: number, orders: Map<number, number[]>): Piece[] {
  const n = pieces.length;
  const out: Piece[] = [];
  for (let i = 0; i < batchSize; i++) {
    const p = step * batchSize + i;
    const epoch = Math.floor(p / n);
    let order = orders.get(epoch);
    if (order === undefined) {
      // Only the current and next epoch are ever needed: drop older permutations.
      for (const e of orders.keys()) if (e < epoch) orders.delete(e);
      order = epochOrder(
        pieces.map((_, k) => k),
        seed,
        epoch,
      );
      orders.set(epoch, order);
    }
    out.push(pieces[order[p % n]!]!);
  }
  return out;
}
