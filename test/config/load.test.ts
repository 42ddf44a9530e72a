import test from 'ava';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LongnerError } from '../../src/errors.js';
import { listPresets, loadConfig, mergeConfigObjects, parseSetArgument, resolveConfigFromObject } from '../../src/config/load.js';
import { defaultConfig, type Config } from '../../src/config/schema.js';
import { fromRoot } from '../../src/util/paths.js';
import { tempDirs } from '../temp-dirs.js';

const temp = tempDirs();

/** Writes `files` (name -> YAML text) into a fresh temp folder and returns its path. */
function fixture(files: Record<string, string>): string {
  const dir = temp('config');
  for (const [name, text] of Object.entries(files)) {
    const file = join(dir, name);
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, text);
  }
  return dir;
}

function loadError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof LongnerError) return err.message;
    throw err;
  }
  throw new Error('expected a LongnerError, nothing was thrown');
}

test('an empty file resolves to the defaults, which follow the reference code', (t) => {
  const dir = fixture({ 'empty.yaml': '# nothing\n' });
  const { config, sources } = loadConfig(join(dir, 'empty.yaml'));
  t.deepEqual(config, defaultConfig());
  t.is(sources.length, 1);
  t.is(config.method, 'sener');
  t.is(config.train.lr, 7e-4);
  t.is(config.train.seed, 2288);
  t.is(config.segment.maxLen, 5120);
  t.is(config.encoder.window, 128);
  t.is(config.dataset.maxDocs.train, null);
  t.is(config.preset, null);
});

test('extends: parents resolve first, in list order, the file last; objects merge, scalars replace', (t) => {
  const dir = fixture({
    'base.yaml': 'train: { lr: 1.0e-3, epochs: 5 }\ndataset: { maxDocs: { train: 10 } }\nencoder: { layers: 2 }\n',
    'mid.yaml': 'extends: base.yaml\ntrain: { epochs: 7 }\ndataset: { maxDocs: { test: 3 } }\n',
    'sub/other.yaml': 'encoder: { layers: 3, hidden: 64 }\n',
    'top.yaml': 'extends: [mid.yaml, sub/other.yaml]\ntrain:\n  epochs: 9\n',
  });
  const { config, sources } = loadConfig(join(dir, 'top.yaml'));
  t.is(config.train.lr, 1e-3); // from base, untouched by the children
  t.is(config.train.epochs, 9); // the file's own key wins
  t.is(config.dataset.maxDocs.train, 10); // nested objects merge...
  t.is(config.dataset.maxDocs.test, 3);
  t.is(config.encoder.layers, 3); // ...the later parent wins over the earlier one
  t.is(config.encoder.hidden, 64);
  t.deepEqual(
    sources.map((s) => s.replace(/\\/g, '/').split('/').slice(-1)[0]),
    ['base.yaml', 'mid.yaml', 'other.yaml', 'top.yaml'],
  );
});

test('encoder.pretrained: a path is relative to the file that names it (a --set one to the working directory); mlm and null are kept', (t) => {
  const dir = fixture({
    'configs/presets/base.yaml': 'encoder: { pretrained: ../../models/base }\n',
    'configs/own.yaml': 'extends: presets/base.yaml\n',
    'configs/mine.yaml': 'extends: presets/base.yaml\nencoder: { pretrained: enc }\n',
    'mlm.yaml': 'encoder: { pretrained: mlm }\n',
    'local-mlm.yaml': 'encoder: { pretrained: ./mlm }\n',
    'abs.yaml': `encoder: { pretrained: ${JSON.stringify(join(tmpdir(), 'somewhere'))} }\n`,
    'none.yaml': 'encoder: { pretrained: null }\n',
  });
  const pretrained = (file: string, set?: string[]): string | null => loadConfig(join(dir, file), { set }).config.encoder.pretrained;
  // The parent that set it, wherever the child is.
  t.is(pretrained('configs/own.yaml'), join(dir, 'models', 'base'));
  t.is(pretrained('configs/mine.yaml'), join(dir, 'configs', 'enc'));
  t.is(pretrained('configs/own.yaml', ['encoder.pretrained=x/enc']), join(process.cwd(), 'x', 'enc'));
  t.is(pretrained('configs/own.yaml', ['encoder.pretrained=mlm']), 'mlm');
  t.is(pretrained('mlm.yaml'), 'mlm');
  t.is(pretrained('local-mlm.yaml'), join(dir, 'mlm'));
  t.is(pretrained('abs.yaml'), join(tmpdir(), 'somewhere'));
  t.is(pretrained('none.yaml'), null);
  t.is(pretrained('none.yaml', ['encoder.pretrained=null']), null);
  // A config built in code keeps what it was given (ensurePretrained resolves it against the working directory).
  t.is(resolveConfigFromObject({ encoder: { pretrained: 'rel/enc' } }).encoder.pretrained, 'rel/enc');
});

test('merge semantics: arrays replace, mappings merge', (t) => {
  const merged = mergeConfigObjects({ a: { list: [1, 2, 3], keep: 1 }, b: 1 }, { a: { list: [9] }, b: { now: 'object' } });
  t.deepEqual(merged, { a: { list: [9], keep: 1 }, b: { now: 'object' } });
});

test('an extends cycle is an error naming the chain', (t) => {
  const dir = fixture({ 'a.yaml': 'extends: b.yaml\n', 'b.yaml': 'extends: ./a.yaml\n' });
  const message = loadError(() => loadConfig(join(dir, 'a.yaml')));
  t.regex(message, /extends cycle: .*a\.yaml -> .*b\.yaml -> .*a\.yaml/);
});

test('a missing extends target names the file that asked for it', (t) => {
  const dir = fixture({ 'a.yaml': 'extends: nowhere.yaml\n' });
  const message = loadError(() => loadConfig(join(dir, 'a.yaml')));
  t.regex(message, /a\.yaml: extends "nowhere\.yaml": file not found/);
});

test('precedence: file < preset < --set, and the preset name is recorded', (t) => {
  const dir = fixture({ 'c.yaml': 'train: { epochs: 50, lr: 2.0e-4 }\n' });
  const file = join(dir, 'c.yaml');
  const withPreset = loadConfig(file, { preset: 'quick' }).config;
  t.is(withPreset.train.epochs, 30); // quick overrides the file
  t.is(withPreset.train.lr, 3e-3); // quick sets learning rates, as cpu does (documented in each file)
  t.is(withPreset.dataset.maxDocs.test, 2);
  t.is(withPreset.preset, 'quick');

  const { config, sources } = loadConfig(file, { preset: 'quick', set: ['train.epochs=3', 'dataset.maxDocs.train=null'] });
  t.is(config.train.epochs, 3);
  t.is(config.dataset.maxDocs.train, null);
  t.true(sources[sources.length - 1]!.startsWith('--set dataset.maxDocs.train'));
  t.true(sources.some((s) => s.replace(/\\/g, '/').endsWith('configs/presets/quick.yaml')));
});

test("a preset's datasets block applies to that dataset only, after the preset and before --set", (t) => {
  const dir = fixture({ 'p.yaml': 'dataset: { name: profiling-07 }\n', 's.yaml': 'dataset: { name: scholar-xl }\n' });
  const steps = (file: string, set: string[] = []) => loadConfig(join(dir, file), { preset: 'cpu', set }).config.train.maxSteps;
  t.is(steps('p.yaml'), 2400);
  t.is(steps('s.yaml'), 800);
  // The dataset a --set names is the one the block is chosen for, as an experiment's datasets do.
  t.is(steps('s.yaml', ['dataset.name=profiling-07']), 2400);
  t.is(steps('p.yaml', ['dataset.name=scholar-xl']), 800);
  // An experiment's axis (a --set) still wins.
  t.is(steps('p.yaml', ['train.maxSteps=800']), 800);
  const { sources } = loadConfig(join(dir, 'p.yaml'), { preset: 'cpu' });
  t.true(sources.some((s) => s.endsWith('cpu.yaml (datasets.profiling-07)')));
});

test('--set values are parsed as YAML: numbers, null, booleans, strings', (t) => {
  const dir = fixture({ 'c.yaml': '' });
  const { config } = loadConfig(join(dir, 'c.yaml'), {
    set: ['train.lr=1e-3', 'encoder.pretrained=null', 'tokenizer.lowercase=true', 'dataset.name=scirex', 'train.maxSteps=40'],
  });
  t.is(config.train.lr, 0.001);
  t.is(config.encoder.pretrained, null);
  t.is(config.tokenizer.lowercase, true);
  t.is(config.dataset.name, 'scirex');
  t.is(config.train.maxSteps, 40);
  t.deepEqual(parseSetArgument('encoder.pretrained=weights/model-a'), { keyPath: ['encoder', 'pretrained'], value: 'weights/model-a' });
});

test('a malformed --set shows the expected form', (t) => {
  const dir = fixture({ 'c.yaml': '' });
  for (const bad of ['train.lr', '=5', 'train..lr=1', 'train.lr=']) {
    const message = loadError(() => loadConfig(join(dir, 'c.yaml'), { set: [bad] }));
    t.true(message.includes('key.path=value'), `${bad}: ${message}`);
    t.true(message.startsWith('--set'), message);
  }
});

test('an unknown key names its path, the known keys of its section and a likely fix', (t) => {
  const dir = fixture({ 'c.yaml': 'train:\n  lrr: 0.1\n' });
  const message = loadError(() => loadConfig(join(dir, 'c.yaml')));
  t.regex(message, /c\.yaml: unknown key "train\.lrr"/);
  t.regex(message, /known keys in train: seed, epochs, batchSize, lr, /);
  t.true(message.includes('did you mean "lr"'));

  const top = loadError(() => resolveConfigFromObject({ trian: {} }, 'code'));
  t.regex(top, /^code: unknown key "trian".*known keys at the top level: experiment, method/);
});

test('a wrong type names the key path, the expected type and the value, attributed to its source', (t) => {
  const dir = fixture({ 'c.yaml': 'train:\n  epochs: many\n' });
  const message = loadError(() => loadConfig(join(dir, 'c.yaml'), { set: ['train.lr=fast', 'encoder.attention=sparse'] }));
  const lines = message.split('\n');
  t.is(lines.length, 3);
  t.true(
    lines.some((l) => /c\.yaml: train\.epochs: expected an integer, got "many"$/.test(l)),
    message,
  );
  t.true(lines.includes('--set: train.lr: expected a number, got "fast"'), message);
  t.true(lines.includes('--set: encoder.attention: expected one of "full", "window", "arrow", got "sparse"'), message);
});

test('range checks and the overlap refinement explain the limit', (t) => {
  const positive = loadError(() => resolveConfigFromObject({ train: { patience: 0 } }, 'x.yaml'));
  t.is(positive, 'x.yaml: train.patience: expected an integer > 0 or null, got 0');
  const overlap = loadError(() => resolveConfigFromObject({ segment: { maxLen: 64, overlap: 62 } }, 'x.yaml'));
  t.regex(overlap, /^x\.yaml: segment\.overlap: expected an integer below segment\.maxLen - 2 = 62.*got 62$/);
  t.notThrows(() => resolveConfigFromObject({ segment: { maxLen: 64, overlap: 61 } }));
  const heads = loadError(() => resolveConfigFromObject({ encoder: { hidden: 100, heads: 3 } }, 'x.yaml'));
  t.regex(heads, /encoder\.heads: expected a divisor of encoder\.hidden = 100, got 3/);
});

test('malformed YAML reports file:line:col', (t) => {
  const dir = fixture({ 'bad.yaml': 'train:\n  lr: [1, 2\nencoder: {}\n' });
  const message = loadError(() => loadConfig(join(dir, 'bad.yaml')));
  t.regex(message, /bad\.yaml:\d+:\d+: \S/);
  t.false(message.includes('\n'), 'one line');

  const dup = fixture({ 'dup.yaml': 'train:\n  lr: 1\n  lr: 2\n' });
  t.regex(
    loadError(() => loadConfig(join(dup, 'dup.yaml'))),
    /dup\.yaml:3:3: Map keys must be unique/,
  );

  const list = fixture({ 'list.yaml': '- a\n- b\n' });
  t.regex(
    loadError(() => loadConfig(join(list, 'list.yaml'))),
    /list\.yaml: expected a mapping/,
  );
});

test('a missing file and an unknown preset are clear errors', (t) => {
  const dir = fixture({ 'c.yaml': '' });
  t.regex(
    loadError(() => loadConfig(join(dir, 'missing.yaml'))),
    /missing\.yaml: config file not found/,
  );
  const message = loadError(() => loadConfig(join(dir, 'c.yaml'), { preset: 'turbo' }));
  t.regex(message, /unknown preset "turbo" \(available presets: .*cpu.*paper.*quick/);
  t.regex(
    loadError(() => loadConfig(join(dir, 'c.yaml'), { preset: '../package' })),
    /unknown preset/,
  );
});

test('every preset file resolves, and paper carries the reference hyper-parameters', (t) => {
  const dir = fixture({ 'c.yaml': '' });
  const presets = listPresets();
  for (const name of ['quick', 'cpu', 'paper']) t.true(presets.includes(name), name);
  for (const name of presets) {
    t.notThrows(() => loadConfig(join(dir, 'c.yaml'), { preset: name }), name);
  }
  const paper = loadConfig(join(dir, 'c.yaml'), { preset: 'paper' }).config;
  t.like(paper.train, { lr: 7e-4, batchSize: 16, epochs: 30, patience: 10, warmup: 0.1, weightDecay: 0.01, clip: 1, maxSteps: null });
  t.like(paper.segment, { maxLen: 5120, overlap: 0 });
  t.like(paper.encoder, { window: 128, attention: 'arrow', logN: 'padded', layers: 24, hidden: 1024 });
  t.is(paper.eval.threshold, 0.5);

  const quick = loadConfig(join(dir, 'c.yaml'), { preset: 'quick' }).config;
  t.true(quick.train.maxSteps !== null && quick.train.maxSteps <= 300);
  t.true(quick.segment.maxLen <= 256);
});

test("under --preset paper every shipped config resolves to its method's reference learning rates", (t) => {
  // Every YAML under configs/ but the presets themselves and the pretraining configs (only their
  // pretrain, tokenizer and encoder sections are read): a new config, or a preset that starts
  // overriding a rate, is checked without editing this list.
  const dir = fromRoot('configs');
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => f.replace(/\\/g, '/'))
    .filter((f) => f.endsWith('.yaml') && !f.startsWith('presets/') && !f.startsWith('pretrain/'))
    .sort();
  // encoder / head: SeNER train.sh (LoRA rate per dataset), CNN-NER train_CNN_ds.py and UTC-IE
  // train_ner.py (lr, times non_ptm_lr_ratio 100 for the head), Global Pointer's single Adam rate.
  const seNerEncoder: Record<string, number> = { 'scholar-xl': 4e-4, scirex: 3e-4, 'profiling-07': 2e-4 };
  const defaults = defaultConfig().train;
  const expected = (c: Config): { encoderLr: number; lr: number } | null => {
    switch (c.method) {
      case 'sener':
        return { encoderLr: seNerEncoder[c.dataset.name] ?? Number.NaN, lr: 7e-4 };
      case 'cnn-ner':
        return { encoderLr: 7e-6, lr: 7e-4 };
      case 'utc-ie':
        return { encoderLr: 3e-5, lr: 3e-3 };
      case 'global-pointer':
        return { encoderLr: 2e-5, lr: 2e-5 };
      case 'span-enum':
        // No reference code: the schema defaults.
        return { encoderLr: defaults.encoderLr, lr: defaults.lr };
      case 'el4ner':
        // Prompted LLMs: nothing is trained.
        return null;
    }
  };
  const seen = new Set<string>();
  for (const file of files) {
    const { config } = loadConfig(join(dir, file), { preset: 'paper' });
    seen.add(config.method);
    const want = expected(config);
    if (want === null) continue;
    t.deepEqual({ encoderLr: config.train.encoderLr, lr: config.train.lr }, want, `${file} (${config.method} on ${config.dataset.name})`);
  }
  t.true(files.length >= 20, `${files.length} configs`);
  t.deepEqual([...seen].sort(), ['cnn-ner', 'el4ner', 'global-pointer', 'sener', 'span-enum', 'utc-ie']);
  t.is(defaults.lr, 7e-4);
  t.is(defaults.encoderLr, 4e-4);
});

test("presets only scale: they keep the method config's attention, and (but for the small-encoder ones) its window and learning rates", (t) => {
  const dir = fixture({ 'gp.yaml': 'method: global-pointer\nencoder: { attention: full, window: 64 }\ntrain: { lr: 2.0e-5 }\n' });
  // quick and cpu document why they set these: a few hundred updates need higher rates than the
  // reference's 30 epochs, and their short segments would make the reference 128-token window full attention.
  const small = new Set(['quick', 'cpu']);
  for (const preset of listPresets()) {
    const { config } = loadConfig(join(dir, 'gp.yaml'), { preset });
    t.is(config.encoder.attention, 'full', preset);
    if (small.has(preset)) continue;
    t.is(config.encoder.window, 64, preset);
    t.is(config.train.lr, 2e-5, preset);
  }
  t.is(loadConfig(join(dir, 'gp.yaml'), { preset: 'cpu' }).config.encoder.window, 64);
});
