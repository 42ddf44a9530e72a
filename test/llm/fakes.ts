/** Scripted LLM clients for pipeline tests: each answer comes from a function of the request. */
import type { ChatMessage, ChatOptions, ChatResult, JsonSchema, LlmClient } from '../../src/llm/types.js';

export type AnswerKind = 'spans' | 'typed' | 'types' | 'verdicts' | 'free';

/** Which stage's JSON a request asks for, read from its schema. */
export function kindOf(schema: JsonSchema | undefined): AnswerKind {
  if (schema === undefined || !('type' in schema) || schema.type !== 'object') return 'free';
  const props = schema.properties;
  if ('types' in props) return 'types';
  if ('answers' in props) return 'verdicts';
  const entities = props.entities;
  if (entities !== undefined && 'items' in entities) return 'type' in entities.items && entities.items.type === 'object' ? 'typed' : 'spans';
  return 'free';
}

/** The numbered list items of a typing or verification prompt, in order (the quoted span of each line). */
export function listedSpans(messages: readonly ChatMessage[]): string[] {
  const user = messages[messages.length - 1]!.content;
  return [...user.matchAll(/^\d+\. (?:Is )?("(?:[^"\\]|\\.)*")/gm)].map((m) => JSON.parse(m[1]!) as string);
}

export type Script = (kind: AnswerKind, messages: readonly ChatMessage[], opts: ChatOptions) => string | Error;

export class ScriptedClient implements LlmClient {
  readonly calls: Array<{ kind: AnswerKind; messages: readonly ChatMessage[]; opts: ChatOptions }> = [];
  closed = false;

  constructor(
    readonly id: string,
    private readonly script: Script,
  ) {}

  async identity(): Promise<string> {
    return `scripted ${this.id}`;
  }

  async chat(messages: readonly ChatMessage[], opts: ChatOptions): Promise<ChatResult> {
    const kind = kindOf(opts.schema);
    this.calls.push({ kind, messages, opts });
    const answer = this.script(kind, messages, opts);
    if (answer instanceof Error) throw answer;
    return { text: answer, promptTokens: 100, completionTokens: 10, ms: 5 };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
