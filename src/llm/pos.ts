/**
 * Span weights for SpanSim from the part of speech of a span's first word (research/baselines.md B.5, the
 * reimplementation's table): proper noun 4, noun 2, pronoun 1, anything else 0. Tags come from wink-nlp's
 * English model (Universal POS tags, shipped inside the npm package), tagging the span text on its own as
 * the reimplementation does with NLTK.
 */
import type { WinkMethods } from 'wink-nlp';

export const POS_WEIGHTS: Readonly<Record<string, number>> = { PROPN: 4, NOUN: 2, PRON: 1 };

let tagger: Promise<WinkMethods> | null = null;

function loadTagger(): Promise<WinkMethods> {
  // Loaded on first use: the model takes a few hundred ms to read.
  tagger ??= Promise.all([import('wink-nlp'), import('wink-eng-lite-web-model')]).then(([wink, model]) => wink.default(model.default, ['pos']));
  return tagger;
}

/** Universal POS tag of the first token of `text`, or null for text without tokens. */
export async function firstWordPos(text: string): Promise<string | null> {
  const nlp = await loadTagger();
  const tags = nlp.readDoc(text).tokens().out(nlp.its.pos) as string[];
  return tags[0] ?? null;
}

/** Weight of a span from the POS of its first word; cached, since the same strings recur. */
export class PosWeigher {
  private readonly cache = new Map<string, number>();

  async weight(span: string): Promise<number> {
    const hit = this.cache.get(span);
    if (hit !== undefined) return hit;
    const pos = await firstWordPos(span);
    const w = pos === null ? 0 : (POS_WEIGHTS[pos] ?? 0);
    this.cache.set(span, w);
    return w;
  }
}
