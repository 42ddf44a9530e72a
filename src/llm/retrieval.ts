/**
 * Demonstration retrieval (research/baselines.md B.4). The candidate pool is the training documents cut
 * into consecutive windows of `demoWindow` words, each with the gold entities that lie wholly inside it.
 *
 * 'span-sim' ranks a candidate by EL4NER's span-level similarity
 *     SpanSim(S, S^c) = sum_{s in S} w(s) * max_{c in S^c} cos(s, c)  /  sum_{s in S} w(s)
 * where S are the query window's pre-extracted span strings, S^c the candidate's gold entity strings, w the
 * POS weight of a span's first word (pos.ts) and cos the cosine of character n-gram TF-IDF vectors fitted
 * on the pool's gold span strings. A candidate without gold spans scores 0. When no query span has a
 * positive weight (nothing pre-extracted, or only verbs and the like), the sum is 0/0 and the query falls
 * back to 'text-sim' for that window: the cosine of whole-window n-gram TF-IDF vectors.
 * Ties go to the earlier pool window (training order), so retrieval is deterministic. The top-k come
 * most similar first.
 */
import type { Document, Entity } from '../data/types.js';
import { sha256 } from '../util/hash.js';
import { createRng, shuffled } from '../util/rng.js';
import type { PosWeigher } from './pos.js';
import { renderWords, wordWindows } from './text.js';

export interface Demo {
  /** `<doc id>@<first word>`, for logs. */
  id: string;
  words: string[];
  /** Word offsets within `words`. */
  entities: Entity[];
}

export type RetrievalMethod = 'span-sim' | 'text-sim' | 'random' | 'none';

export interface RetrievalOptions {
  method: RetrievalMethod;
  k: number;
  ngramMin: number;
  ngramMax: number;
  seed: number;
}

/** The training documents as demonstration windows (consecutive, not overlapping). */
export function demoPool(train: readonly Document[], demoWindow: number): Demo[] {
  const out: Demo[] = [];
  for (const doc of train) {
    for (const w of wordWindows(doc.words.length, demoWindow, demoWindow)) {
      out.push({
        id: `${doc.id}@${w.start}`,
        words: doc.words.slice(w.start, w.end),
        entities: doc.entities
          .filter((e) => e.start >= w.start && e.end <= w.end)
          .map((e) => ({ start: e.start - w.start, end: e.end - w.start, type: e.type })),
      });
    }
  }
  return out;
}

export type SparseVector = Map<string, number>;

/** Character n-grams of the lowercased text with '#' marking its two ends. */
export function charNgrams(text: string, nMin: number, nMax: number): string[] {
  const s = `#${text.toLowerCase().replace(/\s+/gu, ' ').trim()}#`;
  const chars = [...s];
  const out: string[] = [];
  for (let n = nMin; n <= nMax; n++) {
    for (let i = 0; i + n <= chars.length; i++) out.push(chars.slice(i, i + n).join(''));
  }
  return out;
}

/** TF-IDF over character n-grams, L2-normalised; idf = ln((1 + N) / (1 + df)) + 1 (unseen n-grams get df 0). */
export class TfidfEmbedder {
  private readonly df = new Map<string, number>();
  private readonly n: number;

  constructor(
    corpus: readonly string[],
    private readonly nMin: number,
    private readonly nMax: number,
  ) {
    this.n = corpus.length;
    for (const text of corpus) {
      for (const g of new Set(charNgrams(text, nMin, nMax))) this.df.set(g, (this.df.get(g) ?? 0) + 1);
    }
  }

  embed(text: string): SparseVector {
    const tf = new Map<string, number>();
    for (const g of charNgrams(text, this.nMin, this.nMax)) tf.set(g, (tf.get(g) ?? 0) + 1);
    let norm = 0;
    for (const [g, count] of tf) {
      const v = count * (Math.log((1 + this.n) / (1 + (this.df.get(g) ?? 0))) + 1);
      tf.set(g, v);
      norm += v * v;
    }
    norm = Math.sqrt(norm);
    if (norm > 0) for (const [g, v] of tf) tf.set(g, v / norm);
    return tf;
  }
}

/** Dot product of two sparse vectors (their cosine when both are L2-normalised). */
export function cosine(a: SparseVector, b: SparseVector): number {
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  let dot = 0;
  for (const [g, v] of small) {
    const u = large.get(g);
    if (u !== undefined) dot += v * u;
  }
  return dot;
}

export interface WeightedSpan {
  vector: SparseVector;
  weight: number;
}

/** SpanSim of query spans against candidate spans; null when the weights sum to 0 (undefined similarity). */
export function spanSim(query: readonly WeightedSpan[], candidate: readonly SparseVector[]): number | null {
  let num = 0;
  let den = 0;
  for (const s of query) {
    if (s.weight <= 0) continue;
    let best = 0;
    for (const c of candidate) best = Math.max(best, cosine(s.vector, c));
    num += s.weight * best;
    den += s.weight;
  }
  return den === 0 ? null : num / den;
}

/** Indices of the k highest scores, ties to the lower index. */
export function topK(scores: readonly number[], k: number): number[] {
  return scores
    .map((score, i) => ({ score, i }))
    .sort((a, b) => b.score - a.score || a.i - b.i)
    .slice(0, k)
    .map((x) => x.i);
}

export class Retriever {
  private readonly spanEmbedder: TfidfEmbedder | null = null;
  private readonly candidateSpans: SparseVector[][] = [];
  private textEmbedder: TfidfEmbedder | null = null;
  private candidateTexts: SparseVector[] = [];

  constructor(
    private readonly pool: readonly Demo[],
    private readonly opts: RetrievalOptions,
    private readonly weigher: PosWeigher,
  ) {
    if (opts.method === 'span-sim') {
      const strings = pool.map((d) => d.entities.map((e) => spanText(d.words, e)));
      this.spanEmbedder = new TfidfEmbedder(strings.flat(), opts.ngramMin, opts.ngramMax);
      this.candidateSpans = strings.map((list) => list.map((s) => this.spanEmbedder!.embed(s)));
    }
  }

  /** The demonstrations for one query window, given the window's words and its pre-extracted span strings. */
  async select(words: readonly string[], querySpans: readonly string[], key: string): Promise<Demo[]> {
    const k = Math.min(this.opts.k, this.pool.length);
    if (k === 0 || this.opts.method === 'none') return [];
    if (this.opts.method === 'random') {
      // Seeded per query window, so a window's demonstrations do not depend on which windows ran before it.
      const seed = parseInt(sha256(`${this.opts.seed}:${key}`).slice(0, 8), 16);
      return shuffled(this.pool, createRng(seed)).slice(0, k);
    }
    if (this.opts.method === 'span-sim' && this.spanEmbedder !== null) {
      const query: WeightedSpan[] = [];
      for (const s of new Set(querySpans)) query.push({ vector: this.spanEmbedder.embed(s), weight: await this.weigher.weight(s) });
      const scores = this.candidateSpans.map((c) => spanSim(query, c));
      if (scores.every((s): s is number => s !== null)) return topK(scores, k).map((i) => this.pool[i]!);
    }
    return this.byText(words, k);
  }

  private byText(words: readonly string[], k: number): Demo[] {
    if (this.textEmbedder === null) {
      // Fitted on first use: only 'text-sim' runs and span-sim fallbacks need it.
      const texts = this.pool.map((d) => renderWords(d.words));
      this.textEmbedder = new TfidfEmbedder(texts, this.opts.ngramMin, this.opts.ngramMax);
      this.candidateTexts = texts.map((t) => this.textEmbedder!.embed(t));
    }
    const q = this.textEmbedder.embed(renderWords(words));
    return topK(
      this.candidateTexts.map((c) => cosine(q, c)),
      k,
    ).map((i) => this.pool[i]!);
  }
}

export function spanText(words: readonly string[], e: { start: number; end: number }): string {
  return renderWords(words.slice(e.start, e.end));
}
