/**
 * `longner llm ...`: the LLM side of the framework. `make-test-gguf` writes a random-weight GGUF (tests,
 * smoke runs: no real model can be downloaded here), `bench` times a GGUF on this machine, `run` runs an
 * el4ner config end to end (the same code `longner train`/`eval` call for method el4ner).
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { loadConfig } from '../config/load.js';
import { LongnerError } from '../errors.js';
import { runDir } from '../runs/id.js';
import { benchGguf } from '../llm/bench.js';
import { TINY_SHAPE, writeTestGguf } from '../llm/gguf-writer.js';
import { executeEnsembleRun } from '../runs/el4ner.js';
import { withConfigOptions, type ConfigArgs } from './config.js';
import { printResult } from './show.js';

interface MakeArgs {
  out: string;
  hidden: number;
  layers: number;
  heads: number;
  'kv-heads': number;
  ff: number;
  type: 'f32' | 'f16';
  seed: number;
}

const makeTestGguf: CommandModule<object, MakeArgs> = {
  command: 'make-test-gguf <out>',
  describe: 'write a llama-architecture GGUF with random weights and a tiny byte-fallback vocabulary (answers are gibberish: plumbing and speed only)',
  // yargs infers each option's type; the cast at the end names them as the handler's argument interface.
  builder: (y) =>
    y
      .positional('out', { type: 'string', demandOption: true, describe: 'file to write, e.g. .cache/tiny.gguf' })
      .option('hidden', { type: 'number', default: TINY_SHAPE.hidden, describe: 'embedding width' })
      .option('layers', { type: 'number', default: TINY_SHAPE.layers, describe: 'transformer blocks' })
      .option('heads', { type: 'number', default: TINY_SHAPE.heads, describe: 'attention heads' })
      .option('kv-heads', { type: 'number', default: TINY_SHAPE.kvHeads, describe: 'key/value heads' })
      .option('ff', { type: 'number', default: TINY_SHAPE.ff, describe: 'feed-forward width' })
      .option('type', { choices: ['f32', 'f16'] as const, default: TINY_SHAPE.type, describe: 'weight type' })
      .option('seed', { type: 'number', default: TINY_SHAPE.seed, describe: 'seed of the random weights' }) as unknown as Argv<MakeArgs>,
  handler: (args) => {
    for (const key of ['hidden', 'layers', 'heads', 'kv-heads', 'ff'] as const) {
      if (!Number.isInteger(args[key]) || args[key] < 1) throw new LongnerError(`--${key} ${args[key]}: expected a positive integer`);
    }
    let bytes: number;
    try {
      bytes = writeTestGguf(args.out, {
        hidden: args.hidden,
        layers: args.layers,
        heads: args.heads,
        kvHeads: args['kv-heads'],
        ff: args.ff,
        type: args.type,
        seed: args.seed,
      });
    } catch (err) {
      if (err instanceof RangeError) throw new LongnerError(`make-test-gguf: ${err.message}`);
      throw err;
    }
    console.log(`written: ${resolve(args.out)} (${(bytes / 2 ** 20).toFixed(2)} MiB, random weights)`);
  },
};

interface BenchArgs {
  file: string;
  'prompt-words': number;
  'gen-tokens': number;
  'context-size': number;
  device: 'auto' | 'cpu';
  threads?: number;
}

const bench: CommandModule<object, BenchArgs> = {
  command: 'bench <file>',
  describe: 'time prompt processing and generation of a local GGUF model on this machine',
  // yargs infers each option's type; the cast at the end names them as the handler's argument interface.
  builder: (y) =>
    y
      .positional('file', { type: 'string', demandOption: true, describe: 'GGUF file' })
      .option('prompt-words', { type: 'number', default: 200, describe: 'words of the long prompt' })
      .option('gen-tokens', { type: 'number', default: 64, describe: 'tokens to generate' })
      .option('context-size', { type: 'number', default: 4096, describe: 'context to allocate' })
      .option('device', { choices: ['auto', 'cpu'] as const, default: 'cpu' as const, describe: "'auto' uses a GPU when one is usable" })
      .option('threads', { type: 'number', describe: 'CPU threads (default: every core)' }) as unknown as Argv<BenchArgs>,
  handler: async (args) => {
    if (!statSync(args.file, { throwIfNoEntry: false })?.isFile()) throw new LongnerError(`${args.file}: GGUF file not found`);
    const r = await benchGguf(args.file, {
      promptWords: args['prompt-words'],
      genTokens: args['gen-tokens'],
      contextSize: args['context-size'],
      device: args.device,
      threads: args.threads ?? null,
    });
    console.log(
      `${args.file} on ${r.device}: load ${r.loadMs.toFixed(0)} ms; prompt ${r.promptTokens} tokens at ${r.promptTokensPerSecond.toFixed(0)} tok/s; ` +
        `generation ${r.generatedTokens} tokens at ${r.generationTokensPerSecond.toFixed(0)} tok/s`,
    );
  },
};

const run: CommandModule<object, ConfigArgs> = {
  command: 'run <file>',
  describe: 'run an el4ner config (ensemble or single-LLM k-shot) on the test split and write its run record',
  builder: (y) => withConfigOptions(y),
  handler: async (args) => {
    const { config } = loadConfig(args.file, { preset: args.preset, set: args.set });
    if (config.method !== 'el4ner') throw new LongnerError(`${args.file}: method is "${config.method}"; \`longner llm run\` runs method el4ner`);
    console.error(`longner: run ${runDir(config)}`);
    const result = await executeEnsembleRun(config);
    printResult(result, runDir(config));
    const llm = result.llm;
    if (llm) {
      console.log(
        `llm: ${llm.calls} calls (${llm.cachedCalls} cached, ${llm.failedCalls} failed), ${llm.promptTokens} prompt + ${llm.completionTokens} completion tokens, ` +
          `${(llm.msTotal / 1000).toFixed(1)} s of model time (${llm.msPerDocument?.toFixed(0) ?? '-'} ms/doc); offsets by ${llm.offsetRule}; ` +
          `${llm.unalignedAnswers} unaligned, ${llm.unparseableAnswers} unparseable answers`,
      );
    }
    if (result.status !== 'ok' && result.status !== 'not-run') process.exitCode = 1;
  },
};

export const llmCommand: CommandModule = {
  command: 'llm <command>',
  describe: 'LLM tools: test GGUF files, speed, el4ner runs',
  builder: (y) => y.command(makeTestGguf).command(bench).command(run).demandCommand(1),
  handler: () => undefined,
};
