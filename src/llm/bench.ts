/**
 * Rough throughput of a local GGUF model through the same client the pipeline uses: prompt processing
 * (a long prompt, one answer token) and generation (a short prompt, up to `genTokens` free tokens).
 * Greedy, no grammar, no cache. A model with random weights may stop early on its end token; the rate
 * divides the tokens actually produced.
 */
import { EmbeddedLlamaClient } from './clients/embedded.js';

export interface BenchResult {
  device: string;
  loadMs: number;
  promptTokens: number;
  promptTokensPerSecond: number;
  generatedTokens: number;
  generationTokensPerSecond: number;
}

export async function benchGguf(
  path: string,
  opts: { promptWords: number; genTokens: number; contextSize: number; device: 'auto' | 'cpu'; threads: number | null },
): Promise<BenchResult> {
  const client = new EmbeddedLlamaClient({ id: 'bench', path, contextSize: opts.contextSize, device: opts.device, threads: opts.threads });
  try {
    const t0 = performance.now();
    const device = await client.device();
    const loadMs = performance.now() - t0;
    const words = Array.from({ length: opts.promptWords }, (_, i) => ['alpha', 'beta', 'gamma', 'delta', 'omega'][i % 5]).join(' ');
    const call = { maxTokens: 1, temperature: 0, timeoutMs: 600_000 };
    const long = await client.chat([{ role: 'user', content: words }], call);
    const short = await client.chat([{ role: 'user', content: 'Write.' }], { ...call, maxTokens: 1 });
    const gen = await client.chat([{ role: 'user', content: 'Write.' }], { ...call, maxTokens: opts.genTokens });
    const generated = (gen.completionTokens ?? 0) - (short.completionTokens ?? 0);
    return {
      device: device === false ? 'cpu' : device,
      loadMs,
      promptTokens: long.promptTokens ?? 0,
      promptTokensPerSecond: ((long.promptTokens ?? 0) / long.ms) * 1000,
      generatedTokens: gen.completionTokens ?? 0,
      // The short call's time is the prompt part of the generation call, taken out of the rate.
      generationTokensPerSecond: generated > 0 ? (generated / Math.max(1, gen.ms - short.ms)) * 1000 : 0,
    };
  } finally {
    await client.close();
  }
}
