/**
 * An LLM run in-process from a local GGUF file by node-llama-cpp: CPU here (`device: 'cpu'`), a GPU where the
 * user has one and its binary. Answers are constrained by a grammar built from the JSON schema, so a model
 * can only emit JSON of the expected shape (it may still be cut off by maxTokens). One call runs at a time
 * per model: on a CPU, parallel sequences would only share the same cores.
 *
 * node-llama-cpp is imported lazily, so commands that never run a local model do not load its native code.
 */
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import type { ChatHistoryItem, Llama, LlamaContext, LlamaGrammar, LlamaModel } from 'node-llama-cpp';
import { LongnerError } from '../../errors.js';
import { sha256File, stableStringify } from '../../util/hash.js';
import { LlmTimeoutError, type ChatMessage, type ChatOptions, type ChatResult, type JsonSchema, type LlmClient } from '../types.js';
import { ConcurrencyLimit } from './limit.js';

export interface EmbeddedClientOptions {
  id: string;
  path: string;
  contextSize: number;
  device: 'auto' | 'cpu';
  /** CPU threads; null = node-llama-cpp's default (every core). */
  threads: number | null;
}

/** One llama.cpp runtime per GPU setting, shared by every model of the process (loading it takes about a second). */
const runtimes = new Map<'auto' | 'cpu', Promise<Llama>>();

function runtime(device: 'auto' | 'cpu'): Promise<Llama> {
  let llama = runtimes.get(device);
  if (llama === undefined) {
    llama = import('node-llama-cpp').then(({ getLlama, LlamaLogLevel }) =>
      // build 'never': use the prebuilt binary; building llama.cpp from source needs a download these machines cannot make.
      getLlama({ gpu: device === 'cpu' ? false : 'auto', build: 'never', logLevel: LlamaLogLevel.error }),
    );
    runtimes.set(device, llama);
  }
  return llama;
}

interface Loaded {
  llama: Llama;
  model: LlamaModel;
  context: LlamaContext;
}

export class EmbeddedLlamaClient implements LlmClient {
  readonly id: string;
  private loading: Promise<Loaded> | null = null;
  private hash: Promise<string> | null = null;
  private readonly grammars = new Map<string, Promise<LlamaGrammar>>();
  private readonly limit = new ConcurrencyLimit(1);

  constructor(private readonly opts: EmbeddedClientOptions) {
    this.id = opts.id;
    if (!existsSync(opts.path)) throw new LongnerError(`el4ner model "${opts.id}": GGUF file not found: ${opts.path}`);
  }

  async identity(): Promise<string> {
    this.hash ??= sha256File(this.opts.path);
    return `gguf ${basename(this.opts.path)} sha256:${await this.hash}`;
  }

  /** Loads the runtime, the model and its context (done by the first call otherwise). */
  load(): Promise<Loaded> {
    this.loading ??= (async () => {
      const llama = await runtime(this.opts.device);
      const model = await llama.loadModel({ modelPath: this.opts.path });
      const context = await model.createContext({
        contextSize: this.opts.contextSize,
        sequences: 1,
        ...(this.opts.threads === null ? {} : { threads: this.opts.threads }),
      });
      return { llama, model, context };
    })();
    return this.loading;
  }

  /** Whether llama.cpp runs on a GPU ('cuda', 'vulkan', 'metal') or the CPU (false). */
  async device(): Promise<string | false> {
    return (await this.load()).llama.gpu;
  }

  async chat(messages: readonly ChatMessage[], opts: ChatOptions): Promise<ChatResult> {
    const { llama, context } = await this.load();
    const grammar = opts.schema === undefined ? undefined : await this.grammar(llama, opts.schema);
    const { LlamaChatSession } = await import('node-llama-cpp');
    const { history, prompt } = splitMessages(messages, this.id);
    return this.limit.run(async () => {
      const started = performance.now();
      const sequence = context.getSequence();
      const session = new LlamaChatSession({ contextSequence: sequence, autoDisposeSequence: false });
      session.setChatHistory(history);
      const before = sequence.tokenMeter.getState();
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(new LlmTimeoutError(this.id, opts.timeoutMs)), opts.timeoutMs);
      try {
        const text = await session.prompt(prompt, {
          grammar,
          maxTokens: opts.maxTokens,
          temperature: opts.temperature,
          signal: controller.signal,
          stopOnAbortSignal: false,
        });
        const used = sequence.tokenMeter.diff(before);
        return { text, promptTokens: used.usedInputTokens, completionTokens: used.usedOutputTokens, ms: performance.now() - started };
      } catch (err) {
        if (controller.signal.aborted) throw new LlmTimeoutError(this.id, opts.timeoutMs);
        throw err;
      } finally {
        clearTimeout(timer);
        session.dispose({ disposeSequence: false });
        // A disposed sequence returns to the context's pool with its state cleared for the next call.
        sequence.dispose();
      }
    });
  }

  async countTokens(text: string): Promise<number> {
    return (await this.load()).model.tokenize(text).length;
  }

  async close(): Promise<void> {
    if (this.loading === null) return;
    const { model, context } = await this.loading;
    await context.dispose();
    await model.dispose();
    this.loading = null;
  }

  private grammar(llama: Llama, schema: JsonSchema): Promise<LlamaGrammar> {
    const key = stableStringify(schema);
    let grammar = this.grammars.get(key);
    if (grammar === undefined) {
      // JsonSchema is a subset of node-llama-cpp's GbnfJsonSchema; the cast only bridges its generic signature.
      type GrammarSchema = Parameters<Llama['createGrammarForJsonSchema']>[0];
      grammar = llama.createGrammarForJsonSchema(schema as unknown as GrammarSchema);
      this.grammars.set(key, grammar);
    }
    return grammar;
  }
}

/** node-llama-cpp's chat history: the last message must be the user's prompt; everything before it is history. */
function splitMessages(messages: readonly ChatMessage[], id: string): { history: ChatHistoryItem[]; prompt: string } {
  const last = messages[messages.length - 1];
  if (last === undefined || last.role !== 'user') throw new Error(`${id}: a chat must end with a user message`);
  const history: ChatHistoryItem[] = messages.slice(0, -1).map((m) => {
    if (m.role === 'system') return { type: 'system', text: m.content };
    if (m.role === 'user') return { type: 'user', text: m.content };
    return { type: 'model', response: [m.content] };
  });
  return { history, prompt: last.content };
}
