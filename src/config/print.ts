/** The resolved config as YAML, for `longner config print` and for the config.yaml of each run. */
import { Document, isMap, isScalar, type YAMLMap } from 'yaml';
import { ConfigSchema, type Config } from './schema.js';
import { descriptionOf, objectShape } from './introspect.js';
import type { z } from 'zod';

export interface FormatOptions {
  /** Put each option's description above it as a YAML comment. */
  comments?: boolean;
}

/** YAML with keys in schema order (the order they are documented in), not insertion order. */
export function formatConfig(config: Config, opts: FormatOptions = {}): string {
  const doc = new Document(orderBySchema(config, ConfigSchema));
  if (opts.comments === true && isMap(doc.contents)) annotate(doc.contents, ConfigSchema);
  return doc.toString({ lineWidth: 0 });
}

function orderBySchema(value: unknown, schema: z.core.$ZodType): unknown {
  const shape = objectShape(schema);
  if (shape === null || value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const record = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(shape)) {
    if (Object.hasOwn(record, key)) out[key] = orderBySchema(record[key], shape[key]!);
  }
  // Keys the schema does not know cannot come out of validation, but printing must not drop data.
  for (const key of Object.keys(record)) {
    if (!Object.hasOwn(out, key)) out[key] = record[key];
  }
  return out;
}

function annotate(map: YAMLMap, schema: z.core.$ZodType): void {
  const shape = objectShape(schema);
  if (shape === null) return;
  for (const pair of map.items) {
    if (!isScalar(pair.key) || typeof pair.key.value !== 'string') continue;
    const field = shape[pair.key.value];
    if (field === undefined) continue;
    const description = descriptionOf(field);
    if (description !== undefined) pair.key.commentBefore = ` ${description}`;
    if (isMap(pair.value)) annotate(pair.value, field);
  }
}
