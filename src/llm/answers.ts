/**
 * The JSON each stage asks for, as a schema (sent to the model: grammar or response_format) and as a
 * parser. Parsing is lenient about wrapping (code fences, text around the object), strict about shape: an
 * answer of the wrong shape is unparseable and counts as an empty answer.
 */
import { z } from 'zod';
import type { JsonSchema } from './types.js';

export const NONE_LABEL = 'none';

function object(properties: Record<string, JsonSchema>): JsonSchema {
  return { type: 'object', properties, required: Object.keys(properties), additionalProperties: false };
}

/** Untyped extraction: {"entities": ["span", ...]}. */
export function spansSchema(maxItems: number, maxChars: number): JsonSchema {
  return object({ entities: { type: 'array', items: { type: 'string', maxLength: maxChars }, maxItems } });
}

/** Typed extraction: {"entities": [{"text": "span", "type": "label"}, ...]}. */
export function typedSpansSchema(types: readonly string[], maxItems: number, maxChars: number): JsonSchema {
  return object({
    entities: { type: 'array', items: object({ text: { type: 'string', maxLength: maxChars }, type: { enum: types } }), maxItems },
  });
}

/** Typing of n listed spans: {"types": [label or "none", ...]} with exactly n labels, in list order. */
export function labelsSchema(types: readonly string[], n: number): JsonSchema {
  return object({ types: { type: 'array', items: { enum: [...types, NONE_LABEL] }, minItems: n, maxItems: n } });
}

/** Verification of n (span, type) pairs: {"answers": ["yes" | "no", ...]} with exactly n answers. */
export function verdictsSchema(n: number): JsonSchema {
  return object({ answers: { type: 'array', items: { enum: ['yes', 'no'] }, minItems: n, maxItems: n } });
}

/** The first JSON object in an answer: the whole text, else inside a code fence, else from the first '{' to the last '}'. */
export function extractJson(text: string): unknown {
  const attempts = [text.trim()];
  const fence = /```(?:json)?\s*([\s\S]*?)```/u.exec(text);
  if (fence) attempts.push(fence[1]!.trim());
  const open = text.indexOf('{');
  const close = text.lastIndexOf('}');
  if (open !== -1 && close > open) attempts.push(text.slice(open, close + 1));
  for (const candidate of attempts) {
    try {
      return JSON.parse(candidate) as unknown;
    } catch {
      // try the next reading
    }
  }
  return undefined;
}

const SpansAnswer = z.object({ entities: z.array(z.string()) });
const TypedAnswer = z.object({ entities: z.array(z.object({ text: z.string(), type: z.string() })) });
const LabelsAnswer = z.object({ types: z.array(z.string()) });
const VerdictsAnswer = z.object({ answers: z.array(z.string()) });

export function parseSpans(text: string): string[] | null {
  const parsed = SpansAnswer.safeParse(extractJson(text));
  return parsed.success ? parsed.data.entities : null;
}

/** Typed spans; entries whose type is not one of `types` are dropped (they cannot be scored). */
export function parseTypedSpans(text: string, types: readonly string[]): Array<{ text: string; type: string }> | null {
  const parsed = TypedAnswer.safeParse(extractJson(text));
  if (!parsed.success) return null;
  const known = new Set(types);
  return parsed.data.entities.filter((e) => known.has(e.type));
}

/** Exactly n labels, each a type or "none"; anything else is unparseable. */
export function parseLabels(text: string, types: readonly string[], n: number): string[] | null {
  const parsed = LabelsAnswer.safeParse(extractJson(text));
  if (!parsed.success || parsed.data.types.length !== n) return null;
  const known = new Set([...types, NONE_LABEL]);
  return parsed.data.types.every((t) => known.has(t)) ? parsed.data.types : null;
}

/** Exactly n verdicts; true = yes. Case and surrounding space are forgiven. */
export function parseVerdicts(text: string, n: number): boolean[] | null {
  const parsed = VerdictsAnswer.safeParse(extractJson(text));
  if (!parsed.success || parsed.data.answers.length !== n) return null;
  const out: boolean[] = [];
  for (const a of parsed.data.answers) {
    const v = a.trim().toLowerCase();
    if (v !== 'yes' && v !== 'no') return null;
    out.push(v === 'yes');
  }
  return out;
}
