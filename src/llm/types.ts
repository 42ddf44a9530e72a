/** The one interface every LLM backend implements, and the values that cross it. */

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/**
 * The JSON-schema subset the pipeline uses, which node-llama-cpp's grammar builder and OpenAI-style
 * `response_format: json_schema` both accept: objects list every property as required and allow no others.
 */
export type JsonSchema =
  | { type: 'string'; maxLength?: number }
  | { enum: readonly string[] }
  | { type: 'array'; items: JsonSchema; minItems?: number; maxItems?: number }
  | { type: 'object'; properties: Readonly<Record<string, JsonSchema>>; required: readonly string[]; additionalProperties: false };

export interface ChatOptions {
  /** Constrain the answer to JSON of this shape (grammar for gguf, response_format for openai). */
  schema?: JsonSchema;
  maxTokens: number;
  temperature: number;
  timeoutMs: number;
}

export interface ChatResult {
  text: string;
  /** Null when the backend reported no usage. */
  promptTokens: number | null;
  completionTokens: number | null;
  /** Latency of the call as measured when it was made. */
  ms: number;
  /** True when the answer came from the disk cache (set by the cache wrapper). */
  cached?: boolean;
}

export interface LlmClient {
  /** The config's model id (logs, vote priority). */
  readonly id: string;
  /**
   * What answers, for cache keys and run records: endpoint base URL and model name, or the GGUF file's
   * name and content hash. Never contains a key.
   */
  identity(): Promise<string>;
  chat(messages: readonly ChatMessage[], opts: ChatOptions): Promise<ChatResult>;
  /** Tokens of `text` in the model's own vocabulary, where the client can tell (prompts are fitted to the context with it). */
  countTokens?(text: string): Promise<number>;
  /** Frees native memory or sockets; the client is unusable afterwards. */
  close(): Promise<void>;
}

/** A call that did not finish within its timeout. */
export class LlmTimeoutError extends Error {
  constructor(
    readonly model: string,
    readonly timeoutMs: number,
  ) {
    super(`${model}: no answer within ${timeoutMs} ms`);
    this.name = 'LlmTimeoutError';
  }
}

/** A call that failed for good: retries exhausted, or an answer that retrying cannot fix. */
export class LlmCallError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    readonly fatal: boolean,
  ) {
    super(message);
    this.name = 'LlmCallError';
  }
}
