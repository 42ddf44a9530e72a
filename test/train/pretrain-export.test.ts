/**
 * An exported encoder folder: what `longner pretrain CONFIG --export DIR` writes, that it reloads
 * exactly (F32) or to half precision (F16), that `encoder.pretrained: DIR` takes it (relative to the
 * config file) and checks it, and that a fine-tuning run starts from its weights.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, mergeConfigObjects, resolveConfigFromObject } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { configHash } from '../../src/data/config-hash.js';
import { writeSenerJsonl } from '../../src/data/readers.js';
import { generateDocuments } from '../../src/data/synthetic.js';
import { SubwordTokenizer } from '../../src/data/tokenizer.js';
import { LongnerError } from '../../src/errors.js';
import { Encoder } from '../../src/nn/encoder.js';
import { ParamStore, readCheckpoint } from '../../src/nn/params.js';
import { executeRun } from '../../src/runs/execute.js';
import { runDir as runDirOf } from '../../src/runs/id.js';
import { BEST_CKPT } from '../../src/train/checkpoint.js';
import {
  ENCODER_CKPT,
  ENCODER_SAFETENSORS,
  EXPORT_CONFIG,
  EXPORT_FORMAT,
  TOKENIZER_FILE,
  ensurePretrained,
  exportEncoder,
  loadPretrainedEncoder,
  pretrain,
  pretrainEncoderConfig,
  pretrainHash,
  readExportedConfig,
  type PretrainResult,
} from '../../src/train/pretrain/index.js';
import { fromRoot } from '../../src/util/paths.js';
import { fromHalfBits, readSafetensors, toHalfBits } from '../../src/util/safetensors.js';
import { defaultTestBackend } from '../nn/helpers.js';
import { setupBackend } from './helpers.js';
import { tempDirs } from '../temp-dirs.js';

const temp = tempDirs();

test.before(async () => {
  await setupBackend();
});

// A user corpus (dataset.files) in its own folder, so that every path of the code, in-process runs
// and the command line alike, finds it without a fixture registry.
const base = temp('export');
const corpus = join(base, 'corpus');
mkdirSync(corpus);
const docs = (n: number, seed: number) =>
  generateDocuments({ docs: n, words: [30, 60], entitiesPerDoc: 2, entityLength: { dist: 'uniform', min: 1, max: 3 }, types: ['A', 'B'], seed });
writeSenerJsonl(join(corpus, 'train.jsonl'), docs(12, 1));
writeSenerJsonl(join(corpus, 'dev.jsonl'), docs(2, 2));
writeSenerJsonl(join(corpus, 'test.jsonl'), docs(2, 3));

const TINY = {
  method: 'sener',
  experiment: 'export-test',
  backend: defaultTestBackend(),
  dataset: { name: 'toy', files: { train: 'train.jsonl', validation: 'dev.jsonl', test: 'test.jsonl' } },
  tokenizer: { vocabSize: 120 },
  segment: { maxLen: 32 },
  encoder: { layers: 1, hidden: 32, heads: 2, ffn: 64, dropout: 0, window: 4, pretrained: 'mlm' },
  pretrain: { steps: 4, batchSize: 4, seqLen: 32, lr: 5e-3, seed: 7 },
  train: { epochs: 1, maxSteps: 2, batchSize: 2 },
  sener: { window: 4, cnnDim: 4, biaffineSize: 8, depth: 1 },
  eval: { batchSize: 2 },
};

/** A config file in the corpus folder (so its relative paths start there), loaded as the CLI does. */
function configFile(name: string, over: Record<string, unknown> = {}): string {
  const path = join(corpus, name);
  writeFileSync(path, JSON.stringify(mergeConfigObjects(TINY, over)));
  return path;
}
const load = (name: string, over: Record<string, unknown> = {}, set?: string[]): Config => loadConfig(configFile(name, over), { set }).config;

const root = join(base, 'runs');
let pretrained: Promise<PretrainResult> | null = null;
/** One tiny pretraining run, shared by the tests. */
function finishedRun(): Promise<PretrainResult> {
  pretrained ??= pretrain(load('pretrain.yaml'), { root, quiet: true });
  return pretrained;
}

const bitsOf = (values: Float32Array): number[] => [...new Uint32Array(values.buffer, values.byteOffset, values.length)];

test('an export holds the encoder, the tokenizer and config.json; F32 reloads exactly, F16 as the nearest halves', async (t) => {
  const run = await finishedRun();
  t.is(run.status, 'ok');
  const f32 = exportEncoder(run.dir, join(base, 'enc-f32'), { dtype: 'f32' });
  const f16 = exportEncoder(run.dir, join(base, 'enc-f16'));
  for (const out of [f32, f16])
    t.deepEqual(
      [EXPORT_CONFIG, ENCODER_SAFETENSORS, TOKENIZER_FILE].map((f) => existsSync(join(out.dir, f))),
      [true, true, true],
    );
  t.true(readFileSync(join(f16.dir, TOKENIZER_FILE)).equals(readFileSync(join(run.dir, TOKENIZER_FILE))));

  // config.json: architecture and provenance.
  const c = readExportedConfig(f16.dir, 'test');
  const s = run.summary!;
  const vocabSize = SubwordTokenizer.load(run.tokenizerPath).vocabSize;
  t.is(c.format, EXPORT_FORMAT);
  t.like(c.architecture, { vocabSize, layers: 1, hidden: 32, heads: 2, ffn: 64, dropout: 0, positions: 'rope', ropeBase: 10000 });
  t.like(c.weights, { file: ENCODER_SAFETENSORS, dtype: 'f16', prefix: 'encoder', params: s.encoderParams });
  t.like(c.tokenizer, { vocabSize, lowercase: false });
  t.like(c.pretraining, { key: pretrainHash(load('pretrain.yaml')), steps: 4, tokens: s.tokens, finalLoss: s.finalLoss, objective: 'whole-word masked LM' });
  t.deepEqual(c.pretraining.corpus.datasets, ['toy']);
  t.is(readExportedConfig(f32.dir, 'test').weights.dtype, 'f32');
  t.true(f16.bytes < f32.bytes * 0.55, `${f16.bytes} bytes in F16, ${f32.bytes} in F32`);

  // The file itself: ParamStore names, the chosen dtype, a pointer to config.json.
  const trained = readCheckpoint(join(run.dir, ENCODER_CKPT));
  const file = readSafetensors(join(f16.dir, ENCODER_SAFETENSORS));
  t.deepEqual(new Set(file.tensors.keys()), new Set(trained.keys()));
  t.true([...file.tensors.values()].every((x) => x.dtype === 'F16'));
  t.deepEqual(file.metadata, { format: EXPORT_FORMAT, config: EXPORT_CONFIG });

  // Loaded into a fresh fine-tuning model (arrow attention, LoRA): F32 bit for bit, F16 the nearest half of each weight.
  const cfg = {
    ...pretrainEncoderConfig(load('pretrain.yaml'), vocabSize),
    attention: 'arrow' as const,
    lora: { rank: 2, alpha: 4, targets: ['q', 'v'] as ('q' | 'v')[] },
  };
  for (const [out, exact] of [
    [f32, true],
    [f16, false],
  ] as const) {
    const store = new ParamStore(99);
    new Encoder(cfg, store);
    const loaded = loadPretrainedEncoder(store, join(out.dir, ENCODER_SAFETENSORS));
    t.deepEqual(new Set(loaded), new Set(trained.keys()));
    for (const [name, want] of trained) {
      const got = store.get(name).dataSync() as Float32Array;
      const expected = exact ? want.values : Float32Array.from(want.values, (x) => fromHalfBits(toHalfBits(x)));
      t.deepEqual(bitsOf(got), bitsOf(expected), name);
      if (!exact)
        t.true(
          got.every((g, i) => Math.abs(g - want.values[i]!) <= Math.abs(want.values[i]!) * 2 ** -11 + 2 ** -25),
          name,
        );
    }
    store.dispose();
  }

  // Exporting again gives the same bytes: a committed export can be checked by running the command.
  const again = exportEncoder(run.dir, join(base, 'enc-f16-again'));
  for (const f of [EXPORT_CONFIG, ENCODER_SAFETENSORS, TOKENIZER_FILE]) t.true(readFileSync(join(again.dir, f)).equals(readFileSync(join(f16.dir, f))), f);
});

test('only a finished run exports', async (t) => {
  const config = load('stopped.yaml', { pretrain: { steps: 3 } });
  const stopped = await pretrain(config, { root, quiet: true, shouldStop: (step) => step === 1 });
  t.is(stopped.status, 'aborted');
  t.throws(() => exportEncoder(stopped.dir, join(base, 'none')), { instanceOf: LongnerError, message: /not a finished pretraining run .*--resume/ });
  t.false(existsSync(join(base, 'none', EXPORT_CONFIG)));
  const diverged = await pretrain(load('diverged.yaml', { pretrain: { steps: 2, lr: 1e30, warmup: 0 } }), { root, quiet: true });
  t.is(diverged.status, 'diverged');
  t.throws(() => exportEncoder(diverged.dir, join(base, 'none')), { instanceOf: LongnerError, message: /diverged .*no encoder to export/ });
  const run = await finishedRun();
  t.throws(() => exportEncoder(run.dir, run.dir), { instanceOf: LongnerError, message: /the pretraining run folder itself/ });
});

test('encoder.pretrained: a folder path, relative to the config file, exported or a run, told apart by its files and checked', async (t) => {
  const run = await finishedRun();
  const out = exportEncoder(run.dir, join(base, 'models', 'enc'));
  // configs/ beside models/, as a preset under configs/presets/ names ../../models/...
  mkdirSync(join(corpus, 'configs'), { recursive: true });
  const config = load('configs/ft.yaml', {
    dataset: { files: { train: '../train.jsonl', validation: '../dev.jsonl', test: '../test.jsonl' } },
    encoder: { pretrained: '../../models/enc' },
  });
  t.is(config.encoder.pretrained, out.dir);
  const found = await ensurePretrained(config);
  t.like(found, { dir: out.dir, kind: 'export', tokenizerPath: join(out.dir, TOKENIZER_FILE), encoderCheckpoint: join(out.dir, ENCODER_SAFETENSORS) });
  // The run folder still works, and says which kind it is.
  t.like(await ensurePretrained(resolveConfigFromObject({ ...config, encoder: { ...config.encoder, pretrained: run.dir } })), {
    kind: 'run',
    encoderCheckpoint: join(run.dir, ENCODER_CKPT),
  });

  const withEncoder = (encoder: Record<string, unknown>, dir = out.dir): Config =>
    resolveConfigFromObject({ ...config, encoder: { ...config.encoder, pretrained: dir, ...encoder } });
  await t.throwsAsync(() => ensurePretrained(withEncoder({ heads: 4, ffn: 128 })), {
    instanceOf: LongnerError,
    message:
      /does not fit this config: encoder\.heads is 4 here but 2 in the exported encoder, encoder\.ffn is 128 here but 64 in the exported encoder; align them/,
  });

  // A copy to damage in several ways.
  const copy = (name: string): string => {
    const dir = join(base, 'damaged', name);
    cpSync(out.dir, dir, { recursive: true });
    return dir;
  };
  const partial = copy('partial');
  rmSync(join(partial, TOKENIZER_FILE));
  rmSync(join(partial, EXPORT_CONFIG));
  await t.throwsAsync(() => ensurePretrained(withEncoder({}, partial)), {
    instanceOf: LongnerError,
    message: /has no config\.json and no tokenizer\.json, so it is not a complete exported encoder; make one with `longner pretrain CONFIG`/,
  });
  const edited = copy('edited');
  const weights = readFileSync(join(edited, ENCODER_SAFETENSORS));
  weights.writeUInt8(weights.readUInt8(weights.length - 1) ^ 1, weights.length - 1);
  writeFileSync(join(edited, ENCODER_SAFETENSORS), weights);
  await t.throwsAsync(() => ensurePretrained(withEncoder({}, edited)), {
    instanceOf: LongnerError,
    message: /encoder\.safetensors is not the file its config\.json describes/,
  });
  const foreign = copy('foreign');
  writeFileSync(join(foreign, EXPORT_CONFIG), JSON.stringify({ model_type: 'bert', hidden_size: 768 }));
  await t.throwsAsync(() => ensurePretrained(withEncoder({}, foreign)), {
    instanceOf: LongnerError,
    message: /has format undefined, expected "longner-encoder\/1"/,
  });
  const rope = copy('rope');
  const described = JSON.parse(readFileSync(join(rope, EXPORT_CONFIG), 'utf8')) as { architecture: { ropeBase: number } };
  described.architecture.ropeBase = 500000;
  writeFileSync(join(rope, EXPORT_CONFIG), JSON.stringify(described));
  await t.throwsAsync(() => ensurePretrained(withEncoder({}, rope)), {
    instanceOf: LongnerError,
    message: /trained with RoPE base 500000, but this encoder uses 10000/,
  });
  const huggingFace = join(base, 'damaged', 'hf');
  mkdirSync(huggingFace, { recursive: true });
  writeFileSync(join(huggingFace, EXPORT_CONFIG), '{}');
  await t.throwsAsync(() => ensurePretrained(withEncoder({}, huggingFace)), {
    instanceOf: LongnerError,
    message: /has no encoder\.safetensors and no tokenizer\.json/,
  });

  // A damaged weights file is reported as such when loaded, not as another architecture.
  const truncated = join(base, 'damaged', 'truncated.safetensors');
  writeFileSync(truncated, weights.subarray(0, 100));
  const store = new ParamStore(1);
  new Encoder({ ...pretrainEncoderConfig(config, out.config.architecture.vocabSize) }, store);
  const err = t.throws(() => loadPretrainedEncoder(store, truncated), { instanceOf: LongnerError });
  t.regex(err!.message, /truncated\.safetensors is not a valid safetensors file: the header length/);
  t.notRegex(err!.message, /another architecture/);
  // Weights of another vocabulary: the architecture message, with the export's sizes.
  const other = new ParamStore(1);
  new Encoder({ ...pretrainEncoderConfig(config, 50) }, other);
  t.throws(() => loadPretrainedEncoder(other, join(out.dir, ENCODER_SAFETENSORS)), {
    instanceOf: LongnerError,
    message:
      /shape differs: encoder\.tok_embed .*another architecture.*which used encoder\.layers=1, encoder\.hidden=32, encoder\.heads=2, encoder\.ffn=64, tokenizer\.vocabSize=\d+/,
  });
  store.dispose();
  other.dispose();
});

test('the run id hashes an encoder.pretrained folder by content, not by where it is', async (t) => {
  const run = await finishedRun();
  const a = exportEncoder(run.dir, join(base, 'id', 'a'));
  const b = join(base, 'id', 'elsewhere', 'b');
  cpSync(a.dir, b, { recursive: true });
  const f32 = exportEncoder(run.dir, join(base, 'id', 'f32'), { dtype: 'f32' });
  const withPretrained = (dir: string): Config => load('id.yaml', {}, [`encoder.pretrained=${dir}`]);
  t.is(configHash(withPretrained(a.dir)), configHash(withPretrained(b)));
  t.not(configHash(withPretrained(a.dir)), configHash(withPretrained(f32.dir)));
  t.not(configHash(withPretrained(a.dir)), configHash(withPretrained(run.dir)));
  t.not(configHash(withPretrained(a.dir)), configHash(load('id.yaml')));
});

test('a fine-tuning run with encoder.pretrained: an exported folder starts from its weights', async (t) => {
  const run = await finishedRun();
  const out = exportEncoder(run.dir, join(base, 'ft-enc'));
  // SeNER with LoRA trains only the LoRA pairs and the Q/V biases, so the other encoder weights of
  // the best checkpoint are still the ones it started from.
  const config = load('ft-run.yaml', { encoder: { pretrained: '../ft-enc' } });
  t.is(config.encoder.pretrained, out.dir);
  const result = await executeRun(config, { root: join(base, 'ft-runs'), quiet: true });
  t.is(result.status, 'ok');
  const runDir = runDirOf(config, join(base, 'ft-runs'));
  t.true(readFileSync(join(runDir, TOKENIZER_FILE)).equals(readFileSync(join(out.dir, TOKENIZER_FILE))), 'the run uses the exported tokenizer');
  const best = readCheckpoint(join(runDir, BEST_CKPT));
  const exported = readSafetensors(join(out.dir, ENCODER_SAFETENSORS)).tensors;
  const frozen = [...exported.keys()].filter((n) => !/\.l\d+\.[qv]\.b$/.test(n));
  t.true(frozen.length > 5);
  for (const name of frozen) t.deepEqual(bitsOf(best.get(name)!.values), bitsOf(exported.get(name)!.values), name);
  const trainedBias = [...exported.keys()].find((n) => /\.q\.b$/.test(n))!;
  t.notDeepEqual(bitsOf(best.get(trainedBias)!.values), bitsOf(exported.get(trainedBias)!.values), 'the trainable biases did train');
  const log = readFileSync(join(runDir, 'log.jsonl'), 'utf8');
  t.true(log.includes(JSON.stringify({ event: 'pretrained', from: out.dir, kind: 'export' }).slice(1, -1)));
});

function longner(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const env: NodeJS.ProcessEnv = { ...process.env, LONGNER_RUNS_DIR: join(base, 'cli-runs'), LONGNER_HOME: join(base, 'home') };
  const r = spawnSync(process.execPath, [fromRoot('bin', 'longner.js'), ...args], { encoding: 'utf8', env, cwd: base });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('longner pretrain CONFIG --export DIR: an error before the run is finished, then --resume --export finishes and exports', (t) => {
  const file = configFile('cli.yaml', { backend: 'cpu', pretrain: { steps: 2 } });
  const early = longner('pretrain', file, '--export', 'cli-enc');
  t.is(early.code, 2, early.stdout + early.stderr);
  t.regex(early.stderr, /is not a finished pretraining run \(no pretrain\.json\); finish it with `longner pretrain CONFIG --resume`/);
  t.false(existsSync(join(base, 'cli-enc', EXPORT_CONFIG)));

  const done = longner('pretrain', file, '--resume', '--export', 'cli-enc', '--dtype', 'f32');
  t.is(done.code, 0, done.stderr);
  t.regex(done.stdout, /status: ok/);
  t.regex(done.stdout, /exported: .*cli-enc\n {2}encoder\.safetensors: .* \(f32\); layers 1, hidden 32, heads 2, ffn 64/);
  t.is(readExportedConfig(join(base, 'cli-enc'), 'test').weights.dtype, 'f32');

  // Once finished, --export alone exports (F16 by default) and does not pretrain again.
  const again = longner('pretrain', file, '--export', 'cli-enc16');
  t.is(again.code, 0, again.stderr);
  t.notRegex(again.stdout, /status:/);
  t.is(readExportedConfig(join(base, 'cli-enc16'), 'test').weights.dtype, 'f16');
});
