/**
 * A finished pretraining run as a self-contained encoder folder that can be copied, committed or
 * published, and that `encoder.pretrained: PATH` loads: the weights in the safetensors format (names as
 * in ParamStore, F16 or F32), the tokenizer, and config.json (architecture and provenance). See index.ts.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { SubwordTokenizer } from '../../data/tokenizer.js';
import { LongnerError } from '../../errors.js';
import { readCheckpoint } from '../../nn/params.js';
import { ROPE_BASE } from '../../nn/rope.js';
import { writeFileAtomic, writeJsonAtomic } from '../../util/atomic.js';
import { EnvSchema } from '../../util/env.js';
import { sha256FileSync } from '../../util/hash.js';
import { writeSafetensors, type SafetensorsDtype } from '../../util/safetensors.js';
import { ENCODER_CKPT, ENCODER_PREFIX, ENCODER_SAFETENSORS, EXPORT_CONFIG, EXPORT_FORMAT, KEY_FILE, TOKENIZER_FILE } from './files.js';
import { readSummary } from './state.js';

export const EXPORT_DTYPES = ['f16', 'f32'] as const;
export type ExportDtype = (typeof EXPORT_DTYPES)[number];
const SAFETENSORS_DTYPE: Readonly<Record<ExportDtype, SafetensorsDtype>> = { f16: 'F16', f32: 'F32' };

const count = z.number().int().min(0);

/** config.json. Unknown fields are ignored, so an added field does not break this reader; a change of meaning bumps EXPORT_FORMAT. */
export const ExportedConfigSchema = z.object({
  format: z.literal(EXPORT_FORMAT),
  architecture: z.object({
    vocabSize: z.number().int().positive(),
    layers: z.number().int().positive(),
    hidden: z.number().int().positive(),
    heads: z.number().int().positive(),
    ffn: z.number().int().positive(),
    dropout: z.number().min(0).lt(1),
    /** Pre-LN transformer with RoPE on Q and K, no position embedding: the same weights run full, window and arrow attention. */
    positions: z.literal('rope'),
    ropeBase: z.number().positive(),
    norm: z.literal('pre-ln'),
    activation: z.literal('gelu'),
    attention: z.array(z.enum(['full', 'window', 'arrow'])),
  }),
  weights: z.object({
    file: z.literal(ENCODER_SAFETENSORS),
    dtype: z.enum(EXPORT_DTYPES),
    /** The parameters' name prefix (ParamStore names, e.g. encoder.l0.q.W). */
    prefix: z.string(),
    tensors: count,
    params: count,
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
  }),
  tokenizer: z.object({
    file: z.literal(TOKENIZER_FILE),
    vocabSize: z.number().int().positive(),
    lowercase: z.boolean(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
  }),
  pretraining: z.object({
    /** pretrainHash of the run, and the key it hashes (what defines the run: options, corpus files' sha256). */
    key: z.string(),
    definition: z.unknown(),
    objective: z.literal('whole-word masked LM'),
    steps: count,
    tokens: count,
    finalLoss: z.number().nullable(),
    corpus: z.object({ datasets: z.array(z.string()), documents: count, pieces: count, tokens: count, descriptions: z.array(z.string()) }),
    backend: z.string(),
    wallSeconds: z.number(),
    tokensPerSecond: z.number().nullable(),
    env: EnvSchema,
  }),
});
export type ExportedConfig = z.infer<typeof ExportedConfigSchema>;

export interface ExportResult {
  dir: string;
  config: ExportedConfig;
  /** Bytes of encoder.safetensors. */
  bytes: number;
}

/**
 * Writes the encoder of the finished run in `runDir` to `outDir` (created if needed; its three files
 * replaced). config.json is removed first and written last, so a folder caught halfway, or a failed
 * export, is not taken for a complete one; and its sha256s pin the other two files.
 */
export function exportEncoder(runDir: string, outDir: string, opts: { dtype?: ExportDtype } = {}): ExportResult {
  const dtype = opts.dtype ?? 'f16';
  const run = resolve(runDir);
  const dir = resolve(outDir);
  if (dir === run) throw new LongnerError(`--export ${outDir}: that is the pretraining run folder itself; export to another folder`);
  const summary = readSummary(run);
  if (summary === null) {
    throw new LongnerError(
      `${run} is not a finished pretraining run (no pretrain.json); finish it with \`longner pretrain CONFIG --resume\` (add --export DIR to export when it ends)`,
    );
  }
  if (summary.status !== 'ok')
    throw new LongnerError(`pretraining in ${run} ${summary.status} (${summary.reason ?? 'no reason recorded'}); there is no encoder to export`);
  const key = JSON.parse(readFileSync(join(run, KEY_FILE), 'utf8')) as { hash: string; key: unknown };

  const tensors = [...readCheckpoint(join(run, ENCODER_CKPT))]
    .filter(([name]) => name.startsWith(`${ENCODER_PREFIX}.`))
    .map(([name, t]) => ({ name, dtype: SAFETENSORS_DTYPE[dtype], shape: t.shape, values: t.values }));
  const embed = tensors.find((t) => t.name === `${ENCODER_PREFIX}.tok_embed`);
  if (embed === undefined) throw new Error(`${join(run, ENCODER_CKPT)} has no ${ENCODER_PREFIX}.tok_embed`);
  const tokenizer = SubwordTokenizer.load(join(run, TOKENIZER_FILE));
  if (tokenizer.vocabSize !== embed.shape[0]) {
    throw new Error(`${run}: the tokenizer has ${tokenizer.vocabSize} tokens but ${ENCODER_PREFIX}.tok_embed ${embed.shape[0]} rows`);
  }
  const e = summary.config.encoder;

  rmSync(join(dir, EXPORT_CONFIG), { force: true });
  const weightsPath = join(dir, ENCODER_SAFETENSORS);
  writeSafetensors(weightsPath, tensors, { format: EXPORT_FORMAT, config: EXPORT_CONFIG });
  writeFileAtomic(join(dir, TOKENIZER_FILE), readFileSync(join(run, TOKENIZER_FILE)));
  const config: ExportedConfig = {
    format: EXPORT_FORMAT,
    architecture: {
      vocabSize: embed.shape[0]!,
      layers: e.layers,
      hidden: e.hidden,
      heads: e.heads,
      ffn: e.ffn,
      dropout: e.dropout,
      positions: 'rope',
      ropeBase: ROPE_BASE,
      norm: 'pre-ln',
      activation: 'gelu',
      attention: ['full', 'window', 'arrow'],
    },
    weights: {
      file: ENCODER_SAFETENSORS,
      dtype,
      prefix: ENCODER_PREFIX,
      tensors: tensors.length,
      params: tensors.reduce((a, t) => a + t.values.length, 0),
      sha256: sha256FileSync(weightsPath),
    },
    tokenizer: {
      file: TOKENIZER_FILE,
      vocabSize: tokenizer.vocabSize,
      lowercase: tokenizer.lowercase,
      sha256: sha256FileSync(join(dir, TOKENIZER_FILE)),
    },
    pretraining: {
      key: key.hash,
      definition: key.key,
      objective: 'whole-word masked LM',
      steps: summary.steps,
      tokens: summary.tokens,
      finalLoss: summary.finalLoss,
      corpus: summary.corpus,
      backend: summary.backend,
      wallSeconds: summary.wallSeconds,
      tokensPerSecond: summary.tokensPerSecond,
      env: summary.env,
    },
  };
  writeJsonAtomic(join(dir, EXPORT_CONFIG), config);
  return { dir, config, bytes: readFileSync(weightsPath).length };
}

/** config.json of an exported folder, checked; `what` starts the messages (e.g. "encoder.pretrained: DIR"). */
export function readExportedConfig(dir: string, what: string): ExportedConfig {
  const file = join(dir, EXPORT_CONFIG);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new LongnerError(`${what}: ${file} is not readable JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  const format = (raw as { format?: unknown } | null)?.format;
  if (format !== EXPORT_FORMAT) {
    throw new LongnerError(
      `${what}: ${file} has format ${JSON.stringify(format)}, expected "${EXPORT_FORMAT}" (an encoder exported by \`longner pretrain CONFIG --export DIR\`; other checkpoints, e.g. Hugging Face ones, cannot be loaded)`,
    );
  }
  const parsed = ExportedConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new LongnerError(`${what}: ${file}: ${issue?.path.join('.') || '(top level)'}: ${issue?.message ?? 'invalid'}; export it again`);
  }
  return parsed.data;
}

/** The files of an exported folder must be the ones its config.json describes: a half-replaced or edited folder is refused. */
export function checkExportedFiles(dir: string, config: ExportedConfig, what: string): void {
  for (const [file, sha] of [
    [ENCODER_SAFETENSORS, config.weights.sha256],
    [TOKENIZER_FILE, config.tokenizer.sha256],
  ] as const) {
    if (sha256FileSync(join(dir, file)) !== sha) {
      throw new LongnerError(`${what}: ${file} is not the file its config.json describes (sha256 differs); export the encoder again`);
    }
  }
}
