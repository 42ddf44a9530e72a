/**
 * Reading the memory frontier's output (`longner memory`, reports/memory-frontier/[<preset>/]frontier.json)
 * for the efficiency report. Only the fields used here are checked; anything else in the file is
 * ignored, so the two commands can evolve separately.
 */
import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import { LongnerError } from '../errors.js';
import { projectPath } from '../runs/experiment.js';

const nullableNumber = z.number().nullable().optional();

const FrontierFileSchema = z.looseObject({
  preset: z.string().nullable().optional(),
  backend: z.string().nullable().optional(),
  backendDetail: z.string().nullable().optional(),
  budgetBytes: z.number().nullable().optional(),
  createdAt: z.string().optional(),
  methods: z
    .array(
      z.looseObject({
        method: z.string(),
        attention: z.string().optional(),
        measured: z
          .looseObject({ limit: z.string().optional(), maxOk: nullableNumber, firstOom: nullableNumber, end: z.string().optional() })
          .nullable()
          .optional(),
      }),
    )
    .default([]),
  probes: z
    .array(
      z.looseObject({
        method: z.string(),
        mode: z.string(),
        words: z.number(),
        status: z.string().optional(),
        peakBytes: nullableNumber,
        ms: nullableNumber,
      }),
    )
    .default([]),
});
export type FrontierFile = z.infer<typeof FrontierFileSchema>;

export interface FoundFrontier {
  file: string;
  data: FrontierFile;
}

/** The candidate paths with `{preset}` filled in; a path naming `{preset}` is skipped when there is no preset. */
export function frontierCandidates(patterns: readonly string[], preset: string | null): string[] {
  return patterns.filter((p) => preset !== null || !p.includes('{preset}')).map((p) => projectPath(p.replaceAll('{preset}', preset ?? '')));
}

/** The first candidate file that exists, parsed; null when none exists. */
export function readFrontier(candidates: readonly string[]): FoundFrontier | null {
  for (const file of candidates) {
    if (!existsSync(file)) continue;
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new LongnerError(`${file}: invalid JSON: ${err instanceof Error ? err.message : String(err)}`);
    }
    const parsed = FrontierFileSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new LongnerError(`${file}: ${issue.path.map(String).join('.') || '(top level)'}: ${issue.message}`);
    }
    return { file, data: parsed.data };
  }
  return null;
}
