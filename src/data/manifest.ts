/**
 * The shapes of datasets/manifest.json and of the user's own datasets (user-datasets.ts): which files
 * make up a dataset, in which layout, with which protocols. registry.ts resolves them to files.
 */
import { z } from 'zod';

export const splitSchema = z.strictObject({
  split: z.string().min(1),
  file: z.string().regex(/^[^/\\]+$/, 'a bare file name'),
  /** The layout; for manifest files a fallback when the first line does not show it (readers.ts 'auto'). */
  format: z.enum(['sener', 'scirex', 'generic', 'auto']),
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/, '64 lower-case hex digits')
    .nullable(),
  bytes: z.number().int().positive().nullable(),
  docs: z.number().int().nonnegative().nullable(),
  note: z.string().optional(),
  urls: z.array(z.url()),
  howToGet: z.string().min(1),
  /** User datasets only: the file's absolute path. */
  path: z.string().optional(),
});

export const protocolSchema = z.strictObject({
  train: z.string(),
  /** `fraction`: validation is a share of the train source; `docs`: a fixed number of its documents; else a raw split name. */
  validation: z.string(),
  test: z.string(),
});

export const datasetSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'lower-case letters, digits and dashes'),
  title: z.string(),
  citation: z.string(),
  licence: z.string(),
  types: z.array(z.string().min(1)).min(1),
  protocols: z.strictObject({ local: protocolSchema, paper: protocolSchema }),
  splits: z.array(splitSchema).min(1),
  /** User datasets only: where the dataset is defined (a config file, or the user registry), for messages. */
  source: z.string().optional(),
});

export const manifestSchema = z.strictObject({
  version: z.literal(1),
  datasets: z.array(datasetSchema).min(1),
});

export type SplitSpec = z.infer<typeof splitSchema>;
export type DatasetSpec = z.infer<typeof datasetSchema>;
export type ProtocolSpec = z.infer<typeof protocolSchema>;
export type Manifest = z.infer<typeof manifestSchema>;
