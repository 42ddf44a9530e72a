import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yargs from 'yargs';
import { llmCommand } from '../../src/cli/llm.js';
import { LongnerError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'longner-llm-cli-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const cli = (args: string[]) => yargs(args).command(llmCommand).strict().fail(false).exitProcess(false).parseAsync();

test('llm make-test-gguf writes a GGUF of the asked shape', async (t) => {
  const out = join(dir, 'x.gguf');
  const log = console.log;
  const lines: string[] = [];
  console.log = (line: string) => void lines.push(line);
  try {
    await cli(['llm', 'make-test-gguf', out, '--hidden', '32', '--layers', '1', '--heads', '2', '--kv-heads', '1', '--ff', '64']);
  } finally {
    console.log = log;
  }
  const file = readFileSync(out);
  t.is(file.toString('latin1', 0, 4), 'GGUF');
  t.is(Number(file.readBigUInt64LE(8)), 3 + 9, 'one block');
  t.regex(lines.join('\n'), /written: .*x\.gguf/);
});

test('llm make-test-gguf rejects an impossible shape with a user error', async (t) => {
  await t.throwsAsync(async () => cli(['llm', 'make-test-gguf', join(dir, 'bad.gguf'), '--hidden', '30', '--heads', '4']), {
    instanceOf: LongnerError,
    message: /not a multiple of heads/,
  });
});

test('llm run refuses a config of another method', async (t) => {
  const file = join(dir, 'sener.yaml');
  writeFileSync(file, 'method: sener\n');
  await t.throwsAsync(async () => cli(['llm', 'run', file]), { instanceOf: LongnerError, message: /llm run` runs method el4ner/ });
});
