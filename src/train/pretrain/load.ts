/** The fine-tuning side: find (or make) the pretraining run a config names, and load its encoder into a model. */
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Config } from '../../config/schema.js';
import { LongnerError } from '../../errors.js';
import type { ParamStore } from '../../nn/params.js';
import { BusyError } from '../../util/lock.js';
import { ENCODER_CKPT, ENCODER_PREFIX, pretrainRunDir, TOKENIZER_FILE } from './files.js';
import { readSummary } from './state.js';
import { pretrain, type PretrainOptions } from './loop.js';

export interface PretrainedEncoder {
  dir: string;
  tokenizerPath: string;
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
 * killed attempt; waiting when another process is at it). A path (relative to the working
 * directory): a pretraining run folder, checked for encoder.ckpt and tokenizer.json.
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
    return { dir, tokenizerPath: join(dir, TOKENIZER_FILE), encoderCheckpoint: join(dir, ENCODER_CKPT) };
  }
}

function checkPretrainedFolder(dir: string, config: Config): PretrainedEncoder {
  const how = 'make one with `longner pretrain CONFIG` and point encoder.pretrained at the folder it prints (or set encoder.pretrained: mlm)';
  if (!existsSync(dir)) throw new LongnerError(`encoder.pretrained: ${dir} does not exist; ${how}`);
  const missing = [ENCODER_CKPT, TOKENIZER_FILE].filter((f) => !existsSync(join(dir, f)));
  if (missing.length > 0) {
    throw new LongnerError(`encoder.pretrained: ${dir} has no ${missing.join(' and no ')}, so it is not a finished pretraining run; ${how}`);
  }
  // Heads do not show in the weights' shapes, so the run's own config is compared as well when it is there.
  const theirs = readSummary(dir)?.config?.encoder;
  if (theirs !== undefined) {
    const diffs = ARCHITECTURE_KEYS.filter((k) => theirs[k] !== config.encoder[k]).map(
      (k) => `encoder.${k} is ${config.encoder[k]} here but ${theirs[k]} in the pretraining run`,
    );
    if (diffs.length > 0) throw new LongnerError(`encoder.pretrained: ${dir} does not fit this config: ${diffs.join(', ')}; align them`);
  }
  return { dir, tokenizerPath: join(dir, TOKENIZER_FILE), encoderCheckpoint: join(dir, ENCODER_CKPT) };
}

function isLoraName(name: string): boolean {
  return name.endsWith('.lora_A') || name.endsWith('.lora_B');
}

/**
 * Loads a pretrained encoder checkpoint into a model's parameters: every `encoder.*` parameter
 * except LoRA pairs, which keep their initialisation (A random, B zero, so the model starts as the
 * pretrained encoder); head parameters are untouched. Returns the names loaded. A checkpoint of
 * another architecture is a LongnerError naming the config keys to align.
 */
export function loadPretrainedEncoder(params: ParamStore, checkpoint: string): string[] {
  const only = (name: string): boolean => name.startsWith(`${ENCODER_PREFIX}.`) && !isLoraName(name);
  if (!existsSync(checkpoint)) throw new LongnerError(`pretrained encoder ${checkpoint} does not exist; make one with \`longner pretrain CONFIG\``);
  try {
    return params.load(checkpoint, { only });
  } catch (err) {
    if (!(err instanceof LongnerError)) throw err;
    throw new LongnerError(
      `${err.message}. The pretrained encoder has another architecture: align encoder.layers, encoder.hidden, encoder.heads, encoder.ffn and tokenizer.vocabSize with the pretraining run${pretrainedShape(checkpoint)}, or pretrain one for this config with \`longner pretrain CONFIG\``,
    );
  }
}

/** ` (which used encoder.layers=..., ...)` from the run's pretrain.json, when the checkpoint sits in a run folder. */
function pretrainedShape(checkpoint: string): string {
  if (basename(checkpoint) !== ENCODER_CKPT) return '';
  try {
    const summary = readSummary(dirname(checkpoint));
    if (summary === null) return '';
    const e = summary.config.encoder;
    return ` (which used ${ARCHITECTURE_KEYS.map((k) => `encoder.${k}=${e[k]}`).join(', ')}, tokenizer.vocabSize=${summary.config.tokenizer.vocabSize})`;
  } catch {
    return '';
  }
}
