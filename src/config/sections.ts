/** Helpers shared by the schema and the per-method sections in src/config/methods/. */
import { z } from 'zod';

/**
 * A config section is a strict object; where it is used it gets `.prefault({})` (not `.default`),
 * so an absent section is parsed from `{}` and every field default inside it applies.
 */
export function section<Shape extends z.ZodRawShape>(shape: Shape) {
  return z.strictObject(shape);
}

export const posInt = () => z.number().int().positive();
export const nullablePosInt = (description: string) => posInt().nullable().default(null).describe(description);
