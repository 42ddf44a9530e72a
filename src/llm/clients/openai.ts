/**
 * Client for OpenAI-compatible chat-completions endpoints (vLLM, llama.cpp server, Ollama, hosted APIs):
 * POST {baseUrl}/chat/completions with a timeout per attempt, retries with exponential backoff on 5xx, 429
 * and network errors, and at most `concurrency` requests in flight.
 *
 * The API key is read once from the environment variable the config names and lives only in a private
 * field and in the Authorization header: it is never part of a message, an identity (cache key), a log
 * event or an error (an endpoint echoing it back is redacted).
 */
import { LongnerError } from '../../errors.js';
import { LlmCallError, LlmTimeoutError, type ChatMessage, type ChatOptions, type ChatResult, type JsonSchema, type LlmClient } from '../types.js';
import { ConcurrencyLimit } from './limit.js';

export interface OpenAiClientOptions {
  id: string;
  /** Including the API version path, e.g. http://127.0.0.1:8000/v1. */
  baseUrl: string;
  model: string;
  /** Environment variable holding the key; null = send none. */
  apiKeyEnv: string | null;
  responseFormat: 'json-schema' | 'json-object' | 'none';
  concurrency: number;
  retries: number;
  retryBaseMs: number;
  /** Where the key is read from (tests pass their own). */
  env?: NodeJS.ProcessEnv;
  /** Receives retry events; they never hold the key. */
  onEvent?: (event: Record<string, unknown>) => void;
}

const MAX_RETRY_AFTER_MS = 60_000;

export class OpenAiClient implements LlmClient {
  readonly id: string;
  readonly #key: string | null;
  readonly #url: string;
  readonly #limit: ConcurrencyLimit;
  /** The options without `env`: the client keeps the one key it needs, never the environment that holds it. */
  private readonly opts: Omit<OpenAiClientOptions, 'env'>;

  constructor(options: OpenAiClientOptions) {
    const { env, ...opts } = options;
    this.opts = opts;
    this.id = opts.id;
    this.#url = `${opts.baseUrl.replace(/\/+$/, '')}/chat/completions`;
    this.#limit = new ConcurrencyLimit(opts.concurrency);
    if (opts.apiKeyEnv === null) {
      this.#key = null;
    } else {
      const key = (env ?? process.env)[opts.apiKeyEnv];
      if (key === undefined || key.trim() === '') {
        throw new LongnerError(`el4ner model "${opts.id}": environment variable ${opts.apiKeyEnv} is not set (expected the API key of ${opts.baseUrl})`);
      }
      this.#key = key.trim();
    }
  }

  async identity(): Promise<string> {
    return `openai ${this.opts.baseUrl.replace(/\/+$/, '')} ${this.opts.model}`;
  }

  chat(messages: readonly ChatMessage[], opts: ChatOptions): Promise<ChatResult> {
    return this.#limit.run(() => this.#withRetries(messages, opts));
  }

  async close(): Promise<void> {
    // Nothing to free: fetch pools its own sockets.
  }

  async #withRetries(messages: readonly ChatMessage[], opts: ChatOptions): Promise<ChatResult> {
    const started = performance.now();
    const body = JSON.stringify(this.#requestBody(messages, opts));
    for (let attempt = 0; ; attempt++) {
      const outcome = await this.#attempt(body, opts.timeoutMs);
      if (outcome.kind === 'ok') return { ...outcome.result, ms: performance.now() - started };
      if (outcome.kind === 'fatal' || attempt >= this.opts.retries) {
        const tries = attempt + 1;
        throw new LlmCallError(
          `${this.id}: ${outcome.message}${outcome.kind === 'retry' ? ` (gave up after ${tries} attempts)` : ''}`,
          outcome.status,
          outcome.kind === 'fatal',
        );
      }
      const backoff = this.opts.retryBaseMs * 2 ** attempt;
      const delay = Math.min(MAX_RETRY_AFTER_MS, outcome.retryAfterMs ?? backoff);
      this.opts.onEvent?.({ event: 'llm-retry', model: this.id, attempt: attempt + 1, status: outcome.status, reason: outcome.message, delayMs: delay });
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  #requestBody(messages: readonly ChatMessage[], opts: ChatOptions): Record<string, unknown> {
    const body: Record<string, unknown> = {
      model: this.opts.model,
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
      max_tokens: opts.maxTokens,
      temperature: opts.temperature,
    };
    if (opts.schema !== undefined && this.opts.responseFormat === 'json-schema') {
      body.response_format = { type: 'json_schema', json_schema: { name: 'answer', strict: true, schema: portableSchema(opts.schema) } };
    } else if (opts.schema !== undefined && this.opts.responseFormat === 'json-object') {
      body.response_format = { type: 'json_object' };
    }
    return body;
  }

  async #attempt(body: string, timeoutMs: number): Promise<Attempt> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
      if (this.#key !== null) headers.authorization = `Bearer ${this.#key}`;
      const response = await fetch(this.#url, { method: 'POST', headers, body, signal: controller.signal });
      const text = await response.text();
      if (response.ok) return this.#parse(text, response.status);
      const status = response.status;
      if (status === 429 || status >= 500) {
        return { kind: 'retry', status, message: `HTTP ${status} from ${this.#url}`, retryAfterMs: retryAfter(response.headers.get('retry-after')) };
      }
      if (status === 401 || status === 403) {
        const which = this.opts.apiKeyEnv === null ? 'no key was sent (set apiKeyEnv)' : `check the key in ${this.opts.apiKeyEnv}`;
        return { kind: 'fatal', status, message: `HTTP ${status} from ${this.#url}: the endpoint refused the request; ${which}` };
      }
      return { kind: 'fatal', status, message: `HTTP ${status} from ${this.#url}: ${this.#redact(text).slice(0, 300)}` };
    } catch (err) {
      if (controller.signal.aborted) throw new LlmTimeoutError(this.id, timeoutMs);
      // fetch rejects with a TypeError on connection refused/reset and DNS failures: worth a retry.
      const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
      return { kind: 'retry', status: null, message: `network error calling ${this.#url}${this.#redact(cause)}`, retryAfterMs: null };
    } finally {
      clearTimeout(timer);
    }
  }

  #parse(text: string, status: number): Attempt {
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      return { kind: 'retry', status, message: `HTTP ${status} from ${this.#url} with a body that is not JSON`, retryAfterMs: null };
    }
    const choice = field(field(data, 'choices'), 0);
    const content = field(field(choice, 'message'), 'content');
    if (typeof content !== 'string') {
      return { kind: 'retry', status, message: `HTTP ${status} from ${this.#url} without choices[0].message.content`, retryAfterMs: null };
    }
    const usage = field(data, 'usage');
    const prompt = field(usage, 'prompt_tokens');
    const completion = field(usage, 'completion_tokens');
    return {
      kind: 'ok',
      result: {
        text: content,
        promptTokens: typeof prompt === 'number' ? prompt : null,
        completionTokens: typeof completion === 'number' ? completion : null,
        ms: 0,
      },
    };
  }

  /** Endpoints sometimes quote the request's credentials in an error body. */
  #redact(text: string): string {
    return this.#key === null ? text : text.split(this.#key).join('[redacted]');
  }
}

/**
 * The schema without length and count bounds: hosted strict modes accept only a subset of JSON Schema and
 * some reject maxLength/minItems/maxItems with a 400. The parsers check counts anyway (answers.ts), and
 * the prompts state them.
 */
export function portableSchema(schema: JsonSchema): JsonSchema {
  if ('enum' in schema) return { enum: schema.enum };
  if (schema.type === 'string') return { type: 'string' };
  if (schema.type === 'array') return { type: 'array', items: portableSchema(schema.items) };
  return {
    type: 'object',
    properties: Object.fromEntries(Object.entries(schema.properties).map(([k, v]) => [k, portableSchema(v)])),
    required: schema.required,
    additionalProperties: false,
  };
}

type Attempt =
  | { kind: 'ok'; result: ChatResult }
  | { kind: 'retry'; status: number | null; message: string; retryAfterMs: number | null }
  | { kind: 'fatal'; status: number; message: string };

function field(value: unknown, key: string | number): unknown {
  if (value === null || typeof value !== 'object') return undefined;
  return (value as Record<string | number, unknown>)[key];
}

/** Retry-After in seconds or as an HTTP date; null when absent or unreadable. */
function retryAfter(header: string | null): number | null {
  if (header === null) return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}
