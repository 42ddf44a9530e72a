/**
 * Clients from config: `${NAME}` in a model's path, baseUrl or model is replaced by that environment
 * variable (so committed configs hold no machine paths or private addresses), then each client is wrapped
 * in the disk cache unless el4ner.cache is off.
 */
import { isAbsolute } from 'node:path';
import type { El4nerConfig, LlmModelConfig } from '../../config/methods/el4ner.js';
import { LongnerError } from '../../errors.js';
import { fromRoot } from '../../util/paths.js';
import type { LlmClient } from '../types.js';
import { CachedClient } from './cache.js';
import { EmbeddedLlamaClient } from './embedded.js';
import { OpenAiClient } from './openai.js';

const VARIABLE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** `value` with each ${NAME} replaced by process.env.NAME; a variable that is unset or empty is an error naming the key. */
export function expandEnv(value: string, where: string, env: NodeJS.ProcessEnv = process.env): string {
  return value.replace(VARIABLE, (_, name: string) => {
    const v = env[name];
    if (v === undefined || v === '') throw new LongnerError(`${where}: environment variable ${name} is not set (the config reads "${value}")`);
    return v;
  });
}

/** The model entry with its environment variables expanded. */
export function resolveModel(m: LlmModelConfig, index: number, env: NodeJS.ProcessEnv = process.env): LlmModelConfig {
  const at = (key: string) => `el4ner.models.${index}.${key}`;
  return {
    ...m,
    path: m.path === null ? null : expandEnv(m.path, at('path'), env),
    baseUrl: m.baseUrl === null ? null : expandEnv(m.baseUrl, at('baseUrl'), env),
    model: m.model === null ? null : expandEnv(m.model, at('model'), env),
  };
}

export interface ClientOptions {
  env?: NodeJS.ProcessEnv;
  onEvent?: (event: Record<string, unknown>) => void;
}

export function createClient(m: LlmModelConfig, cfg: El4nerConfig, opts: ClientOptions = {}): LlmClient {
  let client: LlmClient;
  if (m.kind === 'gguf') {
    if (m.path === null) throw new LongnerError(`el4ner model "${m.id}": kind gguf needs a path`);
    client = new EmbeddedLlamaClient({ id: m.id, path: m.path, contextSize: m.contextSize, device: m.device, threads: m.threads });
  } else {
    if (m.baseUrl === null || m.model === null) throw new LongnerError(`el4ner model "${m.id}": kind openai needs a baseUrl and a model`);
    client = new OpenAiClient({
      id: m.id,
      baseUrl: m.baseUrl,
      model: m.model,
      apiKeyEnv: m.apiKeyEnv,
      responseFormat: m.responseFormat,
      concurrency: cfg.concurrency,
      retries: cfg.retries,
      retryBaseMs: cfg.retryBaseMs,
      env: opts.env,
      onEvent: opts.onEvent,
    });
  }
  return cfg.cache ? new CachedClient(client, cacheDir(cfg)) : client;
}

export function cacheDir(cfg: El4nerConfig): string {
  return isAbsolute(cfg.cacheDir) ? cfg.cacheDir : fromRoot(cfg.cacheDir);
}
