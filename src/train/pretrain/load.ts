/** The fine-tuning side: find (or make) the pretrained encoder a config names, and load it into a model. */
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Config } from '../../config/schema.js';
import { LongnerError } from '../../errors.js';
import { readCheckpoint, type ParamStore } from '../../nn/params.js';
import { ROPE_BASE } from '../../nn/rope.js';
import { BusyError } from '../../util/lock.js';
import { readSafetensors } from '../../util/safetensors.js';
import { checkExportedFiles, readExportedConfig } from './export.js';
import { ENCODER_CKPT, ENCODER_PREFIX, ENCODER_SAFETENSORS, EXPORT_CONFIG, pretrainRunDir, TOKENIZER_FILE } from './files.js';
import { readSummary } from './state.js';
import { pretrain, type PretrainOptions } from './loop.js';

export interface PretrainedEncoder {
  dir: string;
  /** A pretraining run folder (encoder.ckpt) or an exported encoder folder (encoder.safetensors, config.json). */
  kind: 'run' | 'export';
  tokenizerPath: string;
  /** The weights file: encoder.ckpt or encoder.safetensors. */
  encoderCheckpoint: string;
}

export interface EnsureOptions extends Omit<PretrainOptions, 'resume'> {
  /** How often to look again while another process holds the folder's lock (default 10 s). */
  pollSeconds?: number;
}

const ARCHITECTURE_KEYS = ['layers', 'hidden', 'heads', 'ffn'] as const;

/**
 * The pretrained encoder a fine-tuning config asks for. `encoder.pretrained: 'mlm'`: the shared run
 * folder of pretrainKey(config), pretrained first when its pretrain.json is missing (resuming a
 * killed attempt; waiting when another process is at it). A path (loadConfig made it absolute,
 * relative to the config file that named it; one in a config built in code is relative to the working
 * directory): an exported encoder folder or a pretraining run folder, told apart by their files.
 */
export async function ensurePretrained(config: Config, opts: EnsureOptions = {}): Promise<PretrainedEncoder> {
  const choice = config.encoder.pretrained;
  if (choice === null) throw new Error('ensurePretrained: encoder.pretrained is null (random initialisation)');
  if (choice !== 'mlm') return checkPretrainedFolder(resolve(choice), config);

  const dir = pretrainRunDir(config, opts.root, opts.registry);
  let told = false;
  for (;;) {
    let summary = readSummary(dir);
    if (summary === null) {
      try {
        summary = (await pretrain(config, { ...opts, resume: true })).summary;
      } catch (err) {
        if (!(err instanceof BusyError)) throw err;
        if (!opts.quiet && !told) process.stderr.write(`longner: ${err.message}; waiting\n`);
        told = true;
        await new Promise((r) => setTimeout(r, (opts.pollSeconds ?? 10) * 1000));
        continue;
      }
      if (summary === null) throw new LongnerError(`pretraining in ${dir} was stopped before it finished; run \`longner pretrain CONFIG --resume\``);
    }
    if (summary.status !== 'ok') {
      throw new LongnerError(
        `pretraining in ${dir} ${summary.status}${summary.reason ? ` (${summary.reason})` : ''}; change the pretrain section and run again`,
      );
    }
    return { dir, kind: 'run', tokenizerPath: join(dir, TOKENIZER_FILE), encoderCheckpoint: join(dir, ENCODER_CKPT) };
  }
}

/**
 * An exported folder has encoder.safetensors (or, without encoder.ckpt beside it, a config.json); a
 * run folder has encoder.ckpt. Either needs every one of its files, and its architecture (from
 * config.json, or the run's pretrain.json when there) must be the config's.
 */
function checkPretrainedFolder(dir: string, config: Config): PretrainedEncoder {
  const how =
    'make one with `longner pretrain CONFIG` (and `--export DIR` for a folder to keep) and point encoder.pretrained at it, or set encoder.pretrained: mlm';
  const what = `encoder.pretrained: ${dir}`;
  if (!existsSync(dir)) throw new LongnerError(`${what} does not exist; ${how}`);
  const has = (f: string): boolean => existsSync(join(dir, f));
  const exported = has(ENCODER_SAFETENSORS) || (has(EXPORT_CONFIG) && !has(ENCODER_CKPT));
  const needed = exported ? [EXPORT_CONFIG, ENCODER_SAFETENSORS, TOKENIZER_FILE] : [ENCODER_CKPT, TOKENIZER_FILE];
  const missing = needed.filter((f) => !has(f));
  if (missing.length > 0) {
    const kind = exported ? 'a complete exported encoder' : 'a finished pretraining run';
    throw new LongnerError(`${what} has no ${missing.join(' and no ')}, so it is not ${kind}; ${how}`);
  }
  // Heads do not show in the weights' shapes, so the folder's own description is compared as well when it is there.
  const described = exported ? readExportedConfig(dir, what) : null;
  if (described !== null) {
    checkExportedFiles(dir, described, what);
    if (described.architecture.ropeBase !== ROPE_BASE) {
      throw new LongnerError(`${what} was trained with RoPE base ${described.architecture.ropeBase}, but this encoder uses ${ROPE_BASE}`);
    }
  }
  const theirs = described?.architecture ?? readSummary(dir)?.config?.encoder;
  const where = exported ? 'the exported encoder' : 'the pretraining run';
  if (theirs !== undefined) {
    const diffs = ARCHITECTURE_KEYS.filter((k) => theirs[k] !== config.encoder[k]).map(
      (k) => `encoder.${k} is ${config.encoder[k]} here but ${theirs[k]} in ${where}`,
    );
    if (diffs.length > 0) throw new LongnerError(`${what} does not fit this config: ${diffs.join(', ')}; align them`);
  }
  const weights = join(dir, exported ? ENCODER_SAFETENSORS : ENCODER_CKPT);
  return { dir, kind: exported ? 'export' : 'run', tokenizerPath: join(dir, TOKENIZER_FILE), encoderCheckpoint: weights };
}

function isLoraName(name: string): boolean {
  return name.endsWith('.lora_A') || name.endsWith('.lora_B');
}

/**
 * Loads a pretrained encoder's weights into a model's parameters: every `encoder.*` parameter except
 * LoRA pairs, which keep their initialisation (A random, B zero, so the model starts as the
 * pretrained encoder); head parameters are untouched. `checkpoint` is an encoder.ckpt (float32, as
 * trained) or an exported encoder.safetensors (F16 weights become their float32 values). Returns the
 * names loaded. Weights of another architecture are a LongnerError naming the config keys to align.
 */
export function loadPretrainedEncoder(params: ParamStore, checkpoint: string): string[] {
  const only = (name: string): boolean => name.startsWith(`${ENCODER_PREFIX}.`) && !isLoraName(name);
  if (!existsSync(checkpoint)) throw new LongnerError(`pretrained encoder ${checkpoint} does not exist; make one with \`longner pretrain CONFIG\``);
  const safetensors = checkpoint.endsWith('.safetensors');
  // Outside the try: a damaged file is its own error, not "another architecture".
  const tensors = safetensors ? readSafetensors(checkpoint).tensors : readCheckpoint(checkpoint);
  try {
    return params.assignAll(tensors, safetensors ? checkpoint : `checkpoint ${checkpoint}`, { only });
  } catch (err) {
    if (!(err instanceof LongnerError)) throw err;
    throw new LongnerError(
      `${err.message}. The pretrained encoder has another architecture: align encoder.layers, encoder.hidden, encoder.heads, encoder.ffn and tokenizer.vocabSize with the pretrained encoder${pretrainedShape(checkpoint)}, or pretrain one for this config with \`longner pretrain CONFIG\``,
    );
  }
}

/** ` (which used encoder.layers=..., ...)` from the run's pretrain.json or the export's config.json, when the weights sit in such a folder. */
function pretrainedShape(checkpoint: string): string {
  const dir = dirname(checkpoint);
  const used = (e: Record<(typeof ARCHITECTURE_KEYS)[number], number>, vocabSize: number): string =>
    ` (which used ${ARCHITECTURE_KEYS.map((k) => `encoder.${k}=${e[k]}`).join(', ')}, tokenizer.vocabSize=${vocabSize})`;
  try {
    if (basename(checkpoint) === ENCODER_SAFETENSORS) {
      const a = readExportedConfig(dir, checkpoint).architecture;
      return used(a, a.vocabSize);
    }
    if (basename(checkpoint) !== ENCODER_CKPT) return '';
    const summary = readSummary(dir);
    return summary === null ? '' : used(summary.config.encoder, summary.config.tokenizer.vocabSize);
  } catch {
    return '';
  }
}
