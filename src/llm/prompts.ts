/**
 * Every prompt of the pipeline, in one place and in plain words. Each builder returns chat messages; the
 * answer format is JSON that answers.ts describes and parses. Entity types are listed with their label
 * (what the answer must use) and a readable name.
 */
import type { Entity } from '../data/types.js';
import { NONE_LABEL } from './answers.js';
import type { Demo } from './retrieval.js';
import { renderWords } from './text.js';
import type { ChatMessage } from './types.js';
import { unionStrings } from './vote.js';

const SYSTEM = 'You are a careful annotator of named entities in long documents. You answer with JSON only.';

/** "research_interests" -> "research interests". */
export function typeName(label: string): string {
  return label.replace(/[_-]+/g, ' ').trim();
}

function typeList(types: readonly string[]): string {
  return types.map((t) => `- ${t} (${typeName(t)})`).join('\n');
}

const VERBATIM = 'Copy each mention exactly as it is written in the text (same words, same spelling), and list each distinct mention once.';

function demoSpans(d: Demo): string[] {
  return unionStrings([d.entities.map((e) => spanOf(d.words, e))]);
}

function demoTyped(d: Demo): Array<{ text: string; type: string }> {
  const seen = new Set<string>();
  const out: Array<{ text: string; type: string }> = [];
  for (const e of d.entities) {
    const item = { text: spanOf(d.words, e), type: e.type };
    const key = JSON.stringify(item);
    if (!seen.has(key)) out.push(item);
    seen.add(key);
  }
  return out;
}

function spanOf(words: readonly string[], e: Entity): string {
  return renderWords(words.slice(e.start, e.end));
}

function examples(demos: readonly Demo[], answer: (d: Demo) => unknown): string {
  if (demos.length === 0) return '';
  const blocks = demos.map((d, i) => `Example ${i + 1}\nText: ${renderWords(d.words)}\nAnswer: ${JSON.stringify(answer(d))}`);
  return `\n\n${blocks.join('\n\n')}\n\nNow the text to annotate.`;
}

/** Zero-shot span pre-extraction (no types in the answer): the query spans of span-level retrieval. */
export function preExtractMessages(types: readonly string[], text: string): ChatMessage[] {
  return extractMessages(types, [], text, false);
}

/**
 * Span extraction with demonstrations. Untyped (EL4NER stage 2): {"entities": ["mention", ...]}.
 * Typed (the classic k-shot NER prompt, used when the typing stage is off): {"entities": [{"text", "type"}]}.
 */
export function extractMessages(types: readonly string[], demos: readonly Demo[], text: string, typed: boolean): ChatMessage[] {
  const format = typed
    ? 'Answer with JSON: {"entities": [{"text": "mention", "type": "label"}, ...]}, using the labels above. Answer {"entities": []} if there is none.'
    : 'Answer with JSON: {"entities": ["mention", ...]}. Answer {"entities": []} if there is none.';
  const user =
    `Find every mention of an entity of these types in the text:\n${typeList(types)}\n\n${VERBATIM}\n${format}` +
    examples(demos, (d) => ({ entities: typed ? demoTyped(d) : demoSpans(d) })) +
    `\n\nText: ${text}\nAnswer:`;
  return [
    { role: 'system', content: SYSTEM },
    { role: 'user', content: user },
  ];
}

/** Span typing (EL4NER stage 3): one label per listed span, or "none". */
export function typeMessages(types: readonly string[], demos: readonly Demo[], text: string, spans: readonly string[]): ChatMessage[] {
  const list = spans.map((s, i) => `${i + 1}. ${JSON.stringify(s)}`).join('\n');
  const user =
    `Each span listed below was found in the text. Give each span its entity type, one of:\n${typeList(types)}\n` +
    `or "${NONE_LABEL}" if the span is not an entity of these types. Do not add spans.` +
    examples(demos, (d) => ({ entities: demoTyped(d) })) +
    `\n\nText: ${text}\n\nSpans:\n${list}\n\n` +
    `Answer with JSON: {"types": [...]}, exactly ${spans.length} label${spans.length === 1 ? '' : 's'}, one per span, in the order listed.`;
  return [
    { role: 'system', content: SYSTEM },
    { role: 'user', content: user },
  ];
}

/** Self-verification (EL4NER stage 4): yes or no per (span, type) pair. */
export function verifyMessages(types: readonly string[], text: string, pairs: ReadonlyArray<{ text: string; type: string }>): ChatMessage[] {
  const list = pairs.map((p, i) => `${i + 1}. Is ${JSON.stringify(p.text)} a ${p.type} (${typeName(p.type)}) in this text?`).join('\n');
  const user =
    `Text: ${text}\n\nThe entity types are:\n${typeList(types)}\n\n` +
    `Answer each question with "yes" if the span is an entity of that type in the text above, otherwise "no".\n${list}\n\n` +
    `Answer with JSON: {"answers": [...]}, exactly ${pairs.length} answer${pairs.length === 1 ? '' : 's'}, "yes" or "no", in the order asked.`;
  return [
    { role: 'system', content: SYSTEM },
    { role: 'user', content: user },
  ];
}
