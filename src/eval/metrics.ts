/**
 * Strict micro P/R/F1 over (doc, start, end, type) tuples (research/baselines.md D.1):
 * - set semantics: duplicate tuples collapse on both sides;
 * - a match needs exact boundaries and exact type, so a right span with a wrong type is one FP and one FN;
 * - zero denominators give 0; the counts are kept beside the fractions so a reader sees why.
 * Broken down per type and per entity-length bucket, where a tuple's bucket is its own length in
 * words: per-bucket precision counts the predictions of that length, recall the gold of that length.
 */
import { z } from 'zod';
import { LongnerError } from '../errors.js';
import type { Document, Entity } from '../data/types.js';

export const LENGTH_BUCKETS = ['1', '2-3', '4-10', '11-50', '>50'] as const;
export type LengthBucket = (typeof LENGTH_BUCKETS)[number];

/** Strict micro precision / recall / F1 with the counts they come from; rates are fractions in [0, 1]. */
export const PrfSchema = z.strictObject({
  tp: z.number().int().min(0),
  fp: z.number().int().min(0),
  fn: z.number().int().min(0),
  precision: z.number().min(0).max(1),
  recall: z.number().min(0).max(1),
  f1: z.number().min(0).max(1),
});
export type Prf = z.infer<typeof PrfSchema>;

export interface Metrics {
  overall: Prf;
  /** Every type seen in gold or predictions, keys sorted. */
  perType: Record<string, Prf>;
  /** Always all five buckets. */
  perLength: Record<LengthBucket, Prf>;
}

export function lengthBucket(words: number): LengthBucket {
  if (!Number.isInteger(words) || words < 1) throw new RangeError(`entity length must be a positive integer, got ${words}`);
  if (words === 1) return '1';
  if (words <= 3) return '2-3';
  if (words <= 10) return '4-10';
  if (words <= 50) return '11-50';
  return '>50';
}

export function prf(tp: number, fp: number, fn: number): Prf {
  const precision = tp + fp === 0 ? 0 : tp / (tp + fp);
  const recall = tp + fn === 0 ? 0 : tp / (tp + fn);
  // 2PR/(P+R) written on counts, which avoids a rounding step and is 0 when tp is 0.
  const f1 = tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
  return { tp, fp, fn, precision, recall, f1 };
}

interface Tuple {
  type: string;
  bucket: LengthBucket;
}

export function scoreEntities(gold: Map<string, Entity[]> | readonly Document[], pred: Map<string, Entity[]>): Metrics {
  const goldByDoc = goldMap(gold);
  for (const docId of pred.keys()) {
    if (!goldByDoc.has(docId)) throw new LongnerError(`predictions name document "${docId}", which is not in the gold data`);
  }
  const goldSet = tupleSet(goldByDoc, 'gold');
  const predSet = tupleSet(pred, 'prediction');

  const counts = new Map<string, { tp: number; fp: number; fn: number }>();
  const bump = (group: string, field: 'tp' | 'fp' | 'fn'): void => {
    let c = counts.get(group);
    if (!c) {
      c = { tp: 0, fp: 0, fn: 0 };
      counts.set(group, c);
    }
    c[field]++;
  };
  // Group names cannot collide: types are prefixed 't:', buckets 'b:'.
  const record = (t: Tuple, field: 'tp' | 'fp' | 'fn'): void => {
    bump('overall', field);
    bump(`t:${t.type}`, field);
    bump(`b:${t.bucket}`, field);
  };
  for (const [key, t] of predSet) record(t, goldSet.has(key) ? 'tp' : 'fp');
  for (const [key, t] of goldSet) if (!predSet.has(key)) record(t, 'fn');

  const get = (group: string): Prf => {
    const c = counts.get(group) ?? { tp: 0, fp: 0, fn: 0 };
    return prf(c.tp, c.fp, c.fn);
  };
  const types = new Set<string>();
  for (const t of goldSet.values()) types.add(t.type);
  for (const t of predSet.values()) types.add(t.type);
  return {
    overall: get('overall'),
    // fromEntries defines own properties, so a type named "__proto__" stays a plain key.
    perType: Object.fromEntries([...types].sort().map((type) => [type, get(`t:${type}`)])),
    perLength: Object.fromEntries(LENGTH_BUCKETS.map((b) => [b, get(`b:${b}`)])) as Record<LengthBucket, Prf>,
  };
}

function goldMap(gold: Map<string, Entity[]> | readonly Document[]): Map<string, Entity[]> {
  if (gold instanceof Map) return gold;
  const out = new Map<string, Entity[]>();
  for (const doc of gold) {
    if (out.has(doc.id)) throw new LongnerError(`gold data has document id "${doc.id}" more than once`);
    out.set(doc.id, doc.entities);
  }
  return out;
}

/** Tuple key -> its type and bucket; a Map keyed by the whole tuple gives the set semantics. */
function tupleSet(byDoc: Map<string, Entity[]>, side: 'gold' | 'prediction'): Map<string, Tuple> {
  const out = new Map<string, Tuple>();
  for (const [docId, entities] of byDoc) {
    for (const e of entities) {
      if (!Number.isInteger(e.start) || !Number.isInteger(e.end) || e.start < 0 || e.end <= e.start) {
        throw new LongnerError(`${side} entity [${e.start}, ${e.end}) "${e.type}" in document "${docId}" is not a valid word span (end exclusive)`);
      }
      out.set(JSON.stringify([docId, e.start, e.end, e.type]), { type: e.type, bucket: lengthBucket(e.end - e.start) });
    }
  }
  return out;
}
