/**
 * A disk cache in front of any client, so a rerun of the same prompts costs nothing. The key is the
 * sha256 of (model identity, messages, sampling, schema); the identity is an endpoint URL and model name
 * or a GGUF file's content hash, never a key, and the stored entry holds only the answer and its measured
 * cost. Entries are written atomically; an unreadable entry is treated as a miss and overwritten.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomic } from '../../util/atomic.js';
import { sha256, stableStringify } from '../../util/hash.js';
import type { ChatMessage, ChatOptions, ChatResult, LlmClient } from '../types.js';

/** Bumped when the entry format or the key recipe changes, so old entries are never misread. */
const CACHE_VERSION = 1;

interface CacheEntry {
  version: number;
  model: string;
  text: string;
  promptTokens: number | null;
  completionTokens: number | null;
  ms: number;
  createdAt: string;
}

export function cacheKey(identity: string, messages: readonly ChatMessage[], opts: ChatOptions): string {
  // The timeout is left out: it decides whether an answer arrives, not what it says.
  return sha256(
    stableStringify({
      version: CACHE_VERSION,
      model: identity,
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
      sampling: { temperature: opts.temperature, maxTokens: opts.maxTokens },
      schema: opts.schema ?? null,
    }),
  );
}

export class CachedClient implements LlmClient {
  readonly id: string;
  /** The inner client's token counter, when it has one (prompts are fitted to the context with it). */
  readonly countTokens?: (text: string) => Promise<number>;

  constructor(
    private readonly inner: LlmClient,
    private readonly dir: string,
  ) {
    this.id = inner.id;
    const counter = inner.countTokens?.bind(inner);
    if (counter) this.countTokens = counter;
  }

  identity(): Promise<string> {
    return this.inner.identity();
  }

  /** Where the answer to this call is (or would be) stored. */
  async pathFor(messages: readonly ChatMessage[], opts: ChatOptions): Promise<string> {
    const key = cacheKey(await this.inner.identity(), messages, opts);
    return join(this.dir, key.slice(0, 2), `${key}.json`);
  }

  async chat(messages: readonly ChatMessage[], opts: ChatOptions): Promise<ChatResult> {
    const file = await this.pathFor(messages, opts);
    const hit = readEntry(file);
    if (hit !== null) {
      return { text: hit.text, promptTokens: hit.promptTokens, completionTokens: hit.completionTokens, ms: hit.ms, cached: true };
    }
    const result = await this.inner.chat(messages, opts);
    const entry: CacheEntry = {
      version: CACHE_VERSION,
      model: this.inner.id,
      text: result.text,
      promptTokens: result.promptTokens,
      completionTokens: result.completionTokens,
      ms: result.ms,
      createdAt: new Date().toISOString(),
    };
    writeJsonAtomic(file, entry);
    return { ...result, cached: false };
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

function readEntry(file: string): CacheEntry | null {
  if (!existsSync(file)) return null;
  try {
    const data = JSON.parse(readFileSync(file, 'utf8')) as Partial<CacheEntry>;
    if (data.version !== CACHE_VERSION || typeof data.text !== 'string' || typeof data.ms !== 'number') return null;
    return {
      version: data.version,
      model: String(data.model),
      text: data.text,
      promptTokens: typeof data.promptTokens === 'number' ? data.promptTokens : null,
      completionTokens: typeof data.completionTokens === 'number' ? data.completionTokens : null,
      ms: data.ms,
      createdAt: String(data.createdAt),
    };
  } catch {
    return null;
  }
}
