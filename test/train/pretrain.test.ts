import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { mergeConfigObjects, resolveConfigFromObject } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { loadProtocol } from '../../src/data/protocol.js';
import { writeSenerJsonl } from '../../src/data/readers.js';
import { createRegistry, parseManifest, type Registry } from '../../src/data/registry.js';
import { generateDocuments } from '../../src/data/synthetic.js';
import { SubwordTokenizer, UNK_ID } from '../../src/data/tokenizer.js';
import type { Document } from '../../src/data/types.js';
import { LongnerError } from '../../src/errors.js';
import { Encoder, type EncoderConfig } from '../../src/nn/encoder.js';
import { createMlmHead } from '../../src/nn/mlm.js';
import { ParamStore } from '../../src/nn/params.js';
import {
  ENCODER_CKPT,
  LOCK_FILE,
  LOG_FILE,
  STATE_FILE,
  SUMMARY_FILE,
  TOKENIZER_FILE,
  cutPieces,
  ensurePretrained,
  loadPretrainedEncoder,
  pretrain,
  pretrainCorpus,
  pretrainKey,
  pretrainRunDir,
} from '../../src/train/pretrain/index.js';
import { setupBackend } from './helpers.js';
import { tempDirs } from '../temp-dirs.js';

const temp = tempDirs();

test.before(async () => {
  await setupBackend();
});

// Fixture dataset "toy" in a temp mirror. Every document ends with a marker word naming its raw
// split and index. The synthetic generator only uses the letters of its syllables, so markers of
// the letters q (train.json), y (dev.json) and x (test.json) are characters no other word has.
const base = temp('pretrain');
const mirror = join(base, 'mirror');
const marked = (n: number, seed: number, letter: string): Document[] =>
  generateDocuments({ docs: n, words: [40, 90], entitiesPerDoc: 2, entityLength: { dist: 'uniform', min: 1, max: 3 }, types: ['A', 'B'], seed }).map(
    (d, i) => ({
      ...d,
      id: `${letter}-${i}`,
      words: [...d.words, `${letter}${letter}${i}`],
    }),
  );
const rawSplits = { train: marked(24, 1, 'q'), dev: marked(30, 2, 'y'), test: marked(10, 3, 'x') };
mkdirSync(join(mirror, 'toy'), { recursive: true });
for (const [name, docs] of Object.entries(rawSplits)) writeSenerJsonl(join(mirror, 'toy', `${name}.json`), docs);
const splitSpec = (name: string) => ({
  split: name,
  file: `${name}.json`,
  format: 'sener' as const,
  sha256: null,
  bytes: null,
  docs: null,
  urls: [],
  howToGet: 'fixture',
});
const registry: Registry = createRegistry({
  root: base,
  mirror,
  manifest: parseManifest(
    {
      version: 1,
      datasets: [
        {
          name: 'toy',
          title: 'Toy',
          citation: '',
          licence: '',
          types: ['A', 'B'],
          protocols: { local: { train: 'dev', validation: 'fraction', test: 'test' }, paper: { train: 'train', validation: 'dev', test: 'test' } },
          splits: [splitSpec('train'), splitSpec('dev'), splitSpec('test')],
        },
      ],
    },
    'fixture manifest',
  ),
});

function tinyConfig(over: Record<string, unknown> = {}): Config {
  const baseConfig = {
    experiment: 'pretrain-test',
    dataset: { name: 'toy', protocol: 'local', validationFraction: 0.2 },
    tokenizer: { vocabSize: 120 },
    encoder: { layers: 1, hidden: 32, heads: 2, ffn: 64, dropout: 0, pretrained: 'mlm' },
    pretrain: { steps: 30, batchSize: 8, seqLen: 32, lr: 5e-3, warmup: 0.1, seed: 7 },
  };
  return resolveConfigFromObject(mergeConfigObjects(baseConfig, over));
}

const tempRoot = (): string => temp('pretrain-runs');

function readLog(dir: string): Record<string, unknown>[] {
  return readFileSync(join(dir, LOG_FILE), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('the key ignores fine-tuning choices and follows what defines the pretraining', (t) => {
  const c = tinyConfig();
  const hashOf = (cfg: Config): string => pretrainRunDir(cfg, '/runs', registry);
  const same = [
    { encoder: { attention: 'window' } },
    { encoder: { window: 16, logN: 'off' } },
    { train: { seed: 3618, lr: 1e-3, epochs: 2 } },
    { method: 'global-pointer', experiment: 'other' },
    { segment: { maxLen: 512 } },
    { dataset: { maxDocs: { test: 3, validation: 1 } } },
    { pretrain: { datasets: ['toy'] } },
    { backend: 'cpu' },
  ];
  for (const over of same) t.is(hashOf(tinyConfig(over)), hashOf(c), JSON.stringify(over));
  const different = [
    { encoder: { hidden: 64 } },
    { encoder: { layers: 2 } },
    { encoder: { heads: 4 } },
    { encoder: { ffn: 128 } },
    { encoder: { dropout: 0.1 } },
    { tokenizer: { vocabSize: 300 } },
    { pretrain: { steps: 31 } },
    { pretrain: { seed: 8 } },
    { pretrain: { datasets: ['toy', 'other'] } },
    { dataset: { splitSeed: 14 } },
    { dataset: { protocol: 'paper' } },
    { dataset: { maxDocs: { train: 5 } } },
  ];
  for (const over of different) t.not(hashOf(tinyConfig(over)), hashOf(c), JSON.stringify(over));
  t.regex(pretrainRunDir(c, '/runs', registry), /^\/runs\/pretrain\/toy-l1h32-[0-9a-f]{10}$/);
  t.deepEqual(pretrainKey(c, registry).corpus.datasets, ['toy']);
  t.false('attention' in pretrainKey(c, registry).encoder);
});

test('pieces are cut at word boundaries, wrapped in [CLS] ... [SEP]', (t) => {
  // Words of 2, 3, 1 and 5 tokens.
  const wordIndex = Int32Array.from([0, 0, 1, 1, 1, 2, 3, 3, 3, 3, 3]);
  const ids = Int32Array.from(wordIndex, (w, i) => 10 + i + w);
  const pieces = cutPieces({ ids, wordIndex }, 4, 2, 3);
  // Word 1 would be split by a 4-token cut, so the first piece is word 0 alone; word 3 is longer than a piece and is cut.
  t.deepEqual(
    pieces.map((p) => [...p.tokenWord]),
    [
      [-1, 0, 0, -1],
      [-1, 1, 1, 1, 2, -1],
      [-1, 3, 3, 3, 3, -1],
      [-1, 3, -1],
    ],
  );
  t.true(pieces.every((p) => p.tokenIds[0] === 2 && p.tokenIds[p.tokenIds.length - 1] === 3));
  t.deepEqual([...pieces.flatMap((p) => [...p.tokenIds.subarray(1, p.tokenIds.length - 1)])], [...ids]);
});

test('the corpus is the training split only: no validation or test word', async (t) => {
  // local protocol: train = dev minus 20%, validation = the held-out dev docs, test = test.
  const config = tinyConfig();
  const corpus = await pretrainCorpus(config, registry);
  const words = new Set(corpus.flatMap((c) => c.documents.flatMap((d) => d.words)));
  const markers = (docs: Document[]): string[] => docs.map((d) => d.words[d.words.length - 1]!);
  const protocol = await loadProtocol('toy', { protocol: 'local', validationFraction: 0.2, validationDocs: 30, splitSeed: 13, registry });
  t.true(protocol.validation.length > 0 && protocol.test.length > 0);
  t.true(markers(protocol.train).every((m) => words.has(m)));
  t.false(
    markers(protocol.validation).some((m) => words.has(m)),
    'a validation document is in the corpus',
  );
  t.false(
    markers(protocol.test).some((m) => words.has(m)),
    'a test document is in the corpus',
  );

  // paper protocol: train = train.json (q), validation = dev.json (y), test = test.json (x). The
  // tokenizer pretraining trains never saw the letters y and x.
  const paper = tinyConfig({ dataset: { protocol: 'paper' }, pretrain: { steps: 1 } });
  const r = await pretrain(paper, { root: tempRoot(), registry, quiet: true });
  t.is(r.status, 'ok');
  t.is(r.summary!.corpus.documents, rawSplits.train.length);
  const tokenizer = SubwordTokenizer.load(join(r.dir, TOKENIZER_FILE));
  const only = async (word: string): Promise<number[]> => [...(await tokenizer.encodeWords([word])).ids];
  t.true((await only('yy')).every((id) => id === UNK_ID));
  t.true((await only('xx')).every((id) => id === UNK_ID));
  t.false((await only('qq')).includes(UNK_ID));
});

test('the MLM loss goes down, the run writes its outputs, and a finished run is reused', async (t) => {
  const config = tinyConfig();
  const root = tempRoot();
  const r = await pretrain(config, { root, registry, quiet: true });
  t.is(r.status, 'ok');
  const s = r.summary!;
  t.is(s.steps, 30);
  t.is(s.lossCurve.length, 30);
  const losses = s.lossCurve.map(([, loss]) => loss);
  const first = losses.slice(0, 5).reduce((a, b) => a + b) / 5;
  const last = losses.slice(-5).reduce((a, b) => a + b) / 5;
  t.log(first, last);
  t.true(last < first - 0.5, `first-5 mean ${first}, last-5 mean ${last}`);
  t.true(s.tokens > 30 * 8 * 3 && s.tokens <= 30 * 8 * 32);
  t.true(s.msPerStep !== null && s.msPerStep > 0 && s.tokensPerSecond !== null && s.tokensPerSecond > 0);
  t.is(s.backend, tf.getBackend());
  t.true(Number.isFinite(s.finalLoss!));

  const summary = JSON.parse(readFileSync(join(r.dir, SUMMARY_FILE), 'utf8')) as { status: string; config: Config; env: { node: string } };
  t.is(summary.status, 'ok');
  t.is(summary.config.pretrain.steps, 30);
  t.is(summary.env.node, process.version);
  t.false(existsSync(join(r.dir, STATE_FILE)), 'the resume state is removed once finished');
  const steps = readLog(r.dir).filter((e) => e.event === 'step');
  t.is(steps.length, 30);
  t.true(steps.every((e) => typeof e.loss === 'number' && typeof e.lr === 'number'));

  // encoder.ckpt holds the encoder alone, and a mismatch names the pretraining run's sizes.
  const e = config.encoder;
  const cfg: EncoderConfig = {
    vocabSize: SubwordTokenizer.load(r.tokenizerPath).vocabSize,
    layers: e.layers,
    hidden: e.hidden,
    heads: e.heads,
    ffn: e.ffn,
    dropout: 0,
    attention: 'full',
    window: 4,
    logN: 'off',
    lora: null,
  };
  const store = new ParamStore(0);
  new Encoder(cfg, store);
  t.is(loadPretrainedEncoder(store, r.encoderCheckpoint).length, store.names().length);
  t.is(s.encoderParams, store.count());
  store.dispose();
  const wider = new ParamStore(0);
  new Encoder({ ...cfg, hidden: 64 }, wider);
  t.throws(() => loadPretrainedEncoder(wider, r.encoderCheckpoint), {
    instanceOf: LongnerError,
    message: /which used encoder\.layers=1, encoder\.hidden=32, encoder\.heads=2, encoder\.ffn=64, tokenizer\.vocabSize=120/,
  });
  wider.dispose();

  // ensurePretrained finds the same folder and does not pretrain again.
  const before = statSync(join(r.dir, SUMMARY_FILE)).mtimeMs;
  const found = await ensurePretrained(tinyConfig({ encoder: { attention: 'arrow', window: 8 }, train: { seed: 1 } }), { root, registry, quiet: true });
  t.is(found.dir, r.dir);
  t.is(found.encoderCheckpoint, join(r.dir, ENCODER_CKPT));
  t.is(statSync(join(r.dir, SUMMARY_FILE)).mtimeMs, before);
  // A path to the folder works as well.
  t.is((await ensurePretrained(tinyConfig({ encoder: { pretrained: r.dir } }))).tokenizerPath, join(r.dir, TOKENIZER_FILE));
  // Heads do not show in the weights' shapes; the folder's pretrain.json catches them.
  await t.throwsAsync(() => ensurePretrained(tinyConfig({ encoder: { pretrained: r.dir, heads: 4 } })), {
    instanceOf: LongnerError,
    message: /encoder\.heads is 4 here but 2 in the pretraining run/,
  });
});

test('a stopped run resumed from its last checkpoint ends bit for bit like an uninterrupted one', async (t) => {
  // Dropout on, so that the dropout streams are part of what must repeat.
  const config = tinyConfig({ encoder: { dropout: 0.1 }, pretrain: { steps: 12 } });
  const whole = await pretrain(config, { root: tempRoot(), registry, quiet: true });

  const root = tempRoot();
  const stopped = await pretrain(config, { root, registry, quiet: true, checkpointEvery: { steps: 4 }, shouldStop: (step) => step === 6 });
  t.is(stopped.status, 'aborted');
  const state = JSON.parse(readFileSync(join(stopped.dir, STATE_FILE), 'utf8')) as { step: number };
  t.is(state.step, 4, 'the last save was at step 4, so steps 5 and 6 are recomputed');
  t.false(existsSync(join(stopped.dir, ENCODER_CKPT)));

  const resumed = await pretrain(config, { root, registry, quiet: true, resume: true });
  t.is(resumed.status, 'ok');
  t.true(readFileSync(join(resumed.dir, ENCODER_CKPT)).equals(readFileSync(join(whole.dir, ENCODER_CKPT))), 'final encoder weights differ');
  t.deepEqual(resumed.summary!.lossCurve, whole.summary!.lossCurve);
  t.is(resumed.summary!.tokens, whole.summary!.tokens);
  const starts = readLog(resumed.dir).filter((e) => e.event === 'pretrain-start');
  t.deepEqual(
    starts.map((e) => [e.resume, e.fromStep]),
    [
      [false, 0],
      [true, 4],
    ],
  );
  // Without --resume the run starts afresh (and ends the same).
  const again = await pretrain(config, { root, registry, quiet: true });
  t.true(readFileSync(join(again.dir, ENCODER_CKPT)).equals(readFileSync(join(whole.dir, ENCODER_CKPT))));
  t.is(readLog(again.dir).filter((e) => e.event === 'pretrain-start').length, 1);
});

test('a non-finite loss ends the run as diverged, without an encoder checkpoint', async (t) => {
  const config = tinyConfig({ pretrain: { steps: 6, lr: 1e30, warmup: 0 } });
  const root = tempRoot();
  const r = await pretrain(config, { root, registry, quiet: true });
  t.is(r.status, 'diverged');
  t.regex(r.summary!.reason!, /non-finite .* at step \d/);
  t.true(r.summary!.steps < 6);
  t.false(existsSync(join(r.dir, ENCODER_CKPT)));
  await t.throwsAsync(() => ensurePretrained(config, { root, registry, quiet: true }), { instanceOf: LongnerError, message: /diverged/ });
});

test('a pretrained folder path must hold encoder.ckpt and tokenizer.json', async (t) => {
  const empty = temp('pretrained');
  const err = await t.throwsAsync(() => ensurePretrained(tinyConfig({ encoder: { pretrained: empty } })), { instanceOf: LongnerError });
  t.regex(err!.message, /no encoder\.ckpt and no tokenizer\.json/);
  t.regex(err!.message, /longner pretrain CONFIG/);
});

function randomize(store: ParamStore, seed: number): void {
  store.names().forEach((n, i) => {
    tf.tidy(() => {
      const v = store.get(n);
      v.assign(tf.randomNormal(v.shape, 0, 0.3, 'float32', seed + i));
    });
  });
}

function snapshot(store: ParamStore, names: string[]): Map<string, Float32Array> {
  return new Map(names.map((n) => [n, store.get(n).dataSync() as Float32Array]));
}

test('loadPretrainedEncoder loads the encoder and leaves LoRA pairs and the head as initialised', (t) => {
  const dir = temp('pretrained');
  const cfg: EncoderConfig = { vocabSize: 50, layers: 2, hidden: 8, heads: 2, ffn: 16, dropout: 0, attention: 'full', window: 4, logN: 'off', lora: null };
  const source = new ParamStore(1);
  new Encoder(cfg, source);
  createMlmHead(source, 8, 50);
  randomize(source, 100);
  const ckpt = join(dir, ENCODER_CKPT);
  source.save(ckpt, 'encoder.');

  const model = new ParamStore(2);
  new Encoder({ ...cfg, attention: 'arrow', lora: { rank: 2, alpha: 4, targets: ['q', 'v'] } }, model);
  model.param('head.W', [8, 3], { kind: 'xavier' });
  randomize(model, 500);
  const untouched = model.names().filter((n) => n.includes('lora_') || n.startsWith('head.'));
  t.is(untouched.length, 2 * 2 * 2 + 1);
  const before = snapshot(model, untouched);

  const loaded = loadPretrainedEncoder(model, ckpt);
  t.deepEqual(new Set(loaded), new Set(source.names('encoder.')));
  for (const n of loaded) t.deepEqual(model.get(n).dataSync(), source.get(n).dataSync(), n);
  for (const [n, values] of before) t.deepEqual(model.get(n).dataSync() as Float32Array, values, n);

  // Another architecture: a LongnerError that names the keys to align.
  for (const over of [{ hidden: 16 }, { layers: 3 }, { vocabSize: 60 }]) {
    const other = new ParamStore(3);
    new Encoder({ ...cfg, ...over }, other);
    const err = t.throws(() => loadPretrainedEncoder(other, ckpt), { instanceOf: LongnerError });
    t.regex(err!.message, /encoder\.layers, encoder\.hidden, encoder\.heads, encoder\.ffn and tokenizer\.vocabSize/);
    other.dispose();
  }
  source.dispose();
  model.dispose();
});

test('one process pretrains a folder at a time; a lock left by a dead process is taken over', async (t) => {
  const config = tinyConfig({ pretrain: { steps: 1 } });
  const root = tempRoot();
  const dir = pretrainRunDir(config, root, registry);
  mkdirSync(dir, { recursive: true });
  const lock = join(dir, LOCK_FILE);
  // This process is alive, so its lock is held.
  writeFileSync(lock, JSON.stringify({ pid: process.pid, host: hostname(), since: 'then' }));
  await t.throwsAsync(() => pretrain(config, { root, registry, quiet: true }), { instanceOf: LongnerError, message: /being pretrained by process \d+/ });
  const dead = spawnSync(process.execPath, ['-e', '']).pid!;
  writeFileSync(lock, JSON.stringify({ pid: dead, host: hostname(), since: 'then' }));
  const r = await pretrain(config, { root, registry, quiet: true });
  t.is(r.status, 'ok');
  t.false(existsSync(lock), 'the lock is released at the end');
});
