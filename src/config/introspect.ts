/**
 * Reading the config schema's own structure (which keys a section has, their order, their
 * descriptions), so error messages and `config print` never keep a second list of options.
 */
import { z } from 'zod';
import { ConfigSchema } from './schema.js';

type Schema = z.core.$ZodType;

/** Strips default/prefault/optional/nullable wrappers, returning the innermost schema. */
export function unwrapSchema(schema: Schema): Schema {
  let current = schema;
  for (;;) {
    const inner = unwrapOnce(current);
    if (inner === current) return current;
    current = inner;
  }
}

/** The description of an option: the one on the outermost wrapper that has one. */
export function descriptionOf(schema: Schema): string | undefined {
  let current = schema;
  for (;;) {
    const description = z.globalRegistry.get(current)?.description;
    if (description !== undefined) return description;
    const inner = unwrapOnce(current);
    if (inner === current) return undefined;
    current = inner;
  }
}

function unwrapOnce(schema: Schema): Schema {
  if (schema instanceof z.ZodDefault || schema instanceof z.ZodPrefault || schema instanceof z.ZodOptional || schema instanceof z.ZodNullable) {
    return schema.unwrap();
  }
  return schema;
}

/** The fields of an object schema in declaration order, or null when `schema` is not an object. */
export function objectShape(schema: Schema): Record<string, Schema> | null {
  const inner = unwrapSchema(schema);
  return inner instanceof z.ZodObject ? (inner.shape as Record<string, Schema>) : null;
}

/** The schema at a key path of the config (e.g. ['train', 'lr']), or null when there is no such option. */
export function schemaAt(path: readonly PropertyKey[], root: Schema = ConfigSchema): Schema | null {
  let current: Schema = root;
  for (const key of path) {
    const shape = objectShape(current);
    if (shape === null || typeof key !== 'string' || !Object.hasOwn(shape, key)) return null;
    current = shape[key]!;
  }
  return current;
}

/** The option names of the section at `path` ([] = top level), in schema order. */
export function knownKeys(path: readonly PropertyKey[], root: Schema = ConfigSchema): string[] {
  const schema = schemaAt(path, root);
  const shape = schema === null ? null : objectShape(schema);
  return shape === null ? [] : Object.keys(shape);
}
