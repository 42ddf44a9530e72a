/**
 * The one schema of every option. Each option has a default and a description, every object is
 * strict (an unknown key is an error, so a typo never silently falls back to a default), and the
 * key order here is the order `longner config print` shows.
 *
 * Defaults follow the SeNER reference code (THUDM/scholar-profiling `sener/`, research/sener.md
 * sections 3 and 7.1) where it has a value; the encoder size is a small CPU-friendly one because no
 * pretrained DeBERTa can be loaded here.
 *
 * Method-specific sections live in src/config/methods/, one file per method, collected in
 * methods/index.ts: adding a method's options is a local change there.
 */
import { z } from 'zod';
import { nullablePosInt, posInt, section } from './sections.js';
import { METHODS, methodSections } from './methods/index.js';

export { METHODS };
export const BACKENDS = ['auto', 'tensorflow', 'native', 'wasm', 'cpu'] as const;

export const MethodSchema = z.enum(METHODS);
export type Method = z.infer<typeof MethodSchema>;

/** Experiment names become directory names under runs/, so they stay filesystem-safe. */
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

const DatasetSection = section({
  name: z
    .string()
    .min(1)
    .default('scholar-xl')
    .describe(
      'Dataset name: a registered dataset (scholar-xl, scirex, profiling-07), one added with `longner datasets add`, ' +
        'or the name of the corpus given by dataset.files.',
    ),
  files: section({
    train: z.string().min(1).describe('Training file (JSONL).'),
    validation: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe('Validation file (JSONL); null = hold out dataset.validationFraction of the training documents (seeded by dataset.splitSeed).'),
    test: z.string().min(1).describe('Test file (JSONL).'),
  })
    .nullable()
    .default(null)
    .describe(
      'Your own corpus, without editing the repository: its files, absolute or relative to the config file that names them. ' +
        "null = dataset.name is a registered dataset. The files' sha256 enter the run id.",
    ),
  format: z
    .enum(['auto', 'sener', 'scirex', 'generic'])
    .default('auto')
    .describe(
      "Layout of dataset.files: 'sener' {doc_id, text, entity: [[start, end, words, type]]}, 'scirex' {doc_id, words, ner: [[start, end, type]]}, " +
        "'generic' {id, words, entities: [{start, end, type}]} (end exclusive, word indices); 'auto' reads each file's first line.",
    ),
  types: z
    .array(z.string().min(1))
    .min(1)
    .nullable()
    .default(null)
    .describe('Entity types of dataset.files in label order; null = the sorted types found in the training file (recorded in the run).'),
  protocol: z
    .enum(['local', 'paper'])
    .default('local')
    .describe(
      "Which files make train/validation/test. 'local': the protocol for the files we have (research/datasets.md: " +
        "Scholar-XL and Profiling-07 train on dev and test on test; SciREX trains on train and tests on dev). 'paper': the paper's " +
        'official splits, which need the train/test files that are missing here.',
    ),
  validationFraction: z
    .number()
    .min(0)
    .lt(1)
    .default(0.1)
    .describe(
      'Share of the training documents held out for validation when the dataset has no validation split of its own (Scholar-XL, Profiling-07 local protocol).',
    ),
  validationDocs: z
    .number()
    .int()
    .min(0)
    .default(30)
    .describe('Number of training documents held out for validation where the protocol uses a fixed count (SciREX local protocol).'),
  splitSeed: z
    .number()
    .int()
    .default(13)
    .describe('Seed of the validation hold-out; fixed separately from train.seed so every training seed sees the same split.'),
  maxDocs: section({
    train: nullablePosInt('Use at most this many training documents (first ones after the split); null = all.'),
    validation: nullablePosInt('Use at most this many validation documents; null = all.'),
    test: nullablePosInt('Use at most this many test documents; null = all.'),
  })
    .prefault({})
    .describe('Caps on documents per split, for quick runs; null = no cap.'),
}).superRefine((dataset, ctx) => {
  if (dataset.files === null) {
    if (dataset.types !== null)
      ctx.addIssue({ code: 'custom', path: ['types'], message: 'null unless dataset.files is set (a registered dataset brings its types)' });
    if (dataset.format !== 'auto')
      ctx.addIssue({ code: 'custom', path: ['format'], message: "'auto' unless dataset.files is set (a registered dataset brings its layout)" });
  } else if (!/^[a-z0-9][a-z0-9-]*$/.test(dataset.name)) {
    // It becomes a folder name and a registry key, like the registered datasets' names.
    ctx.addIssue({ code: 'custom', path: ['name'], message: 'lower-case letters, digits and dashes (the name of the corpus in dataset.files)' });
  }
});

const TokenizerSection = section({
  vocabSize: z
    .number()
    .int()
    .min(100)
    .default(8000)
    .describe('Vocabulary size of the sub-word tokenizer trained on the training text (ignored when encoder.pretrained brings its own).'),
  lowercase: z.boolean().default(false).describe('Lowercase text before tokenizing.'),
});

const SegmentSection = section({
  maxLen: z
    .number()
    .int()
    .min(3)
    .default(5120)
    .describe('Maximum segment length in sub-word tokens, [CLS] and [SEP] included (reference code: 5120, i.e. 5118 content tokens).'),
  overlap: z.number().int().min(0).default(0).describe('Sub-word tokens shared by consecutive segments of a long document (reference code: 0, a plain split).'),
}).superRefine((segment, ctx) => {
  if (segment.overlap >= segment.maxLen - 2) {
    ctx.addIssue({
      code: 'custom',
      path: ['overlap'],
      message: `an integer below segment.maxLen - 2 = ${segment.maxLen - 2} (the content tokens besides [CLS] and [SEP])`,
    });
  }
});

const EncoderSection = section({
  layers: posInt().default(4).describe('Transformer layers (reference: DeBERTa-v3-large, 24).'),
  hidden: posInt().default(256).describe('Hidden size (reference: 1024).'),
  heads: posInt().default(4).describe('Attention heads; must divide encoder.hidden (reference: 16).'),
  ffn: posInt().default(1024).describe('Feed-forward inner size (reference: 4096).'),
  dropout: z.number().min(0).lt(1).default(0.1).describe('Dropout on attention and feed-forward outputs.'),
  attention: z
    .enum(['full', 'window', 'arrow'])
    .default('arrow')
    .describe("Self-attention pattern: 'full' (O(L^2)), 'window' (sliding window only) or 'arrow' (window plus a global [CLS], SeNER)."),
  window: posInt().default(128).describe('One-sided attention window in sub-word tokens for window/arrow attention (reference: 128, hard-coded).'),
  logN: z
    .enum(['padded', 'true', 'off'])
    .default('padded')
    .describe(
      "LogN scaling of the [CLS] attention row by log_512(n): 'padded' uses the batch length padded to a multiple of 2*window " +
        "(reference code), 'true' the real length, 'off' disables it.",
    ),
  pretrained: z
    .string()
    .min(1)
    .nullable()
    .default(null)
    .describe(
      "Where the encoder's weights start: null = random initialisation; 'mlm' = the framework's own masked-LM " +
        'pretraining run described by the pretrain section (run once, shared by every fine-tuning run that names it); ' +
        'or the path of a folder, absolute or relative to the config file that names it (write ./mlm for a folder called mlm): ' +
        'an encoder exported by `longner pretrain CONFIG --export DIR` (encoder.safetensors, tokenizer.json, config.json) ' +
        'or a pretraining run folder (encoder.ckpt, tokenizer.json). Its tokenizer is used, and encoder.layers, hidden, heads ' +
        'and ffn must match it. The run id hashes the folder by content.',
    ),
}).superRefine((encoder, ctx) => {
  if (encoder.hidden % encoder.heads !== 0) {
    ctx.addIssue({ code: 'custom', path: ['heads'], message: `a divisor of encoder.hidden = ${encoder.hidden}` });
  }
});

const TrainSection = section({
  seed: z.number().int().default(2288).describe('Training seed: initialisation, shuffling, dropout, masking (reference checkpoints: 2288, 3618, 4937).'),
  epochs: posInt().default(30).describe('Maximum epochs (reference: 30).'),
  batchSize: posInt().default(2).describe('Documents (segments) per optimizer step (reference: micro-batch 2 per GPU, 16 globally on 8 GPUs).'),
  lr: z
    .number()
    .positive()
    .default(7e-4)
    .describe("Peak learning rate of the span head and other non-encoder parameters (SeNER reference: 7e-4; the baselines' method configs set their own)."),
  encoderLr: z
    .number()
    .positive()
    .default(4e-4)
    .describe(
      "Peak learning rate of the encoder's trainable parameters, SeNER's LoRA adapters or a whole fine-tuned encoder (SeNER reference: " +
        "Scholar-XL 4e-4, SciREX 3e-4, Profiling-07 2e-4; the baselines' method configs set their own).",
    ),
  weightDecay: z.number().min(0).default(0.01).describe('AdamW weight decay; norms and biases get none (reference: 0.01).'),
  warmup: z.number().min(0).lt(1).default(0.1).describe('Share of the total steps with linear warm-up, then linear decay (reference: 0.1).'),
  clip: z.number().positive().nullable().default(1.0).describe('Global gradient-norm clip; null = no clipping (reference: 1.0).'),
  recompute: z
    .enum(['none', 'encoder', 'head', 'all'])
    .default('none')
    .describe(
      'Recomputation (gradient checkpointing): keep only the inputs of each encoder layer (`encoder`), of each block of the span ' +
        "head (`head`: SeNER's BiSPA blocks, CNN-NER's convolution layers, UTC-IE's cross blocks) or of both (`all`), and run the " +
        'block again in the backward pass. Same gradients, less memory, about one more forward pass of time (reference: none).',
    ),
  patience: posInt().nullable().default(10).describe('Stop after this many epochs without a validation-F1 gain; null = never stop early (reference: 10).'),
  maxSteps: nullablePosInt('Stop after this many optimizer steps, whatever train.epochs says; null = no cap. The schedule spans min(epochs, maxSteps).'),
  outputBiasPrior: z
    .number()
    .gt(0)
    .lt(1)
    .nullable()
    .default(null)
    .describe(
      'Initial probability of every cell of the BCE span heads (SeNER, CNN-NER, UTC-IE): their output bias starts at ' +
        'log(p / (1 - p)) (Lin et al. 2017). null = the reference zero initialisation (p = 0.5).',
    ),
  bce: section({
    reduction: z
      .enum(['sum', 'mean'])
      .default('sum')
      .describe("'sum': summed over every trained cell and type of a segment (reference); 'mean': divided by their number."),
    posWeight: z.number().positive().default(1).describe("Weight of the positive cells' term (reference: 1; PyTorch pos_weight)."),
    focalGamma: z
      .number()
      .min(0)
      .default(0)
      .describe("Focal-loss gamma: each cell's term is scaled by (1 - p_t)^gamma (Lin et al. 2017; reference: 0, plain BCE)."),
  })
    .prefault({})
    .describe('Loss of the BCE span heads (SeNER, CNN-NER, UTC-IE), src/nn/bce.ts; the defaults are the reference.'),
});

const PretrainSection = section({
  steps: posInt().default(2000).describe('Masked-LM optimizer steps.'),
  batchSize: posInt().default(8).describe('Sequences per masked-LM step.'),
  seqLen: posInt().default(256).describe('Tokens per pretraining sequence, [CLS] and [SEP] included (consecutive pieces of the training text).'),
  lr: z.number().positive().default(5e-4).describe('Peak learning rate (AdamW, linear warm-up then linear decay).'),
  warmup: z.number().min(0).lt(1).default(0.06).describe('Share of the steps with linear warm-up.'),
  weightDecay: z.number().min(0).default(0.01).describe('AdamW weight decay; norms and biases get none.'),
  maskRate: z.number().gt(0).lt(1).default(0.15).describe('Share of tokens masked, chosen by whole words (80% [MASK], 10% random, 10% kept).'),
  seed: z.number().int().default(1234).describe('Seed of initialisation, sequence order and masking.'),
  datasets: z
    .array(z.string().min(1))
    .min(1)
    .nullable()
    .default(null)
    .describe('Datasets whose training-side words (never validation or test text) make the corpus; null = [dataset.name].'),
});

/**
 * The validation grid of eval.threshold: tuned. It reaches down to 0.001 because a BCE head early in
 * training ranks gold cells above the rest at probabilities of 1e-3 to 1e-2 (measured: SeNER after
 * 300 steps on Scholar-XL, gold median 0.0011, src/eval/diagnostics.ts).
 */
export const DEFAULT_THRESHOLD_GRID = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8, 0.9];

const EvalSection = section({
  threshold: z
    .union([z.number().min(0).max(1), z.literal('tuned')])
    .default(0.5)
    .describe(
      "Probability a span needs to be predicted (reference: 0.5; a zero-logit rule such as Global Pointer's is 0.5 on the sigmoid). " +
        "'tuned': the BCE heads (SeNER, CNN-NER, UTC-IE) take, at every validation, the value of eval.thresholdGrid with the best " +
        'validation F1 (ties: the one nearest 0.5), which also selects the best checkpoint; the test split is scored at the best ' +
        "checkpoint's value and at 0.5. Other methods decode at 0.5.",
    ),
  thresholdGrid: z
    .array(z.number().gt(0).lt(1))
    .min(1)
    .default(DEFAULT_THRESHOLD_GRID)
    .describe('Thresholds a validation scores from the same forward passes (the BCE heads); the tuned threshold is one of them.'),
  every: nullablePosInt(
    'Also validate every this many optimizer steps (a learning curve, and checkpoint selection within long epochs); null = only at epoch ends (reference). ' +
      'Patience then counts validations rather than epochs.',
  ),
  batchSize: posInt().default(4).describe('Segments per inference batch (reference predict.py: 4).'),
});

export const ConfigSchema = z.strictObject({
  experiment: z.string().regex(NAME_PATTERN).default('default').describe('Experiment name: runs are stored under runs/<experiment>/.'),
  method: MethodSchema.default('sener').describe('Which method to train and evaluate.'),
  backend: z
    .enum(BACKENDS)
    .default('auto')
    .describe("TensorFlow.js backend: 'auto' takes tensorflow (tfjs-node) when installed, else native (the oneDNN engine, when built), else wasm, else cpu."),
  preset: z
    .string()
    .nullable()
    .default(null)
    .describe('Name of the preset applied with --preset; recorded by the loader, setting it in a file applies nothing.'),
  dataset: DatasetSection.prefault({}).describe('Which documents, which splits.'),
  tokenizer: TokenizerSection.prefault({}).describe('Sub-word tokenizer.'),
  segment: SegmentSection.prefault({}).describe('Cutting long documents into model inputs.'),
  encoder: EncoderSection.prefault({}).describe('The transformer encoder shared by the span-based methods.'),
  train: TrainSection.prefault({}).describe('Optimisation.'),
  eval: EvalSection.prefault({}).describe('Inference and decoding.'),
  pretrain: PretrainSection.prefault({}).describe("Masked-LM pretraining of the encoder, used when encoder.pretrained is 'mlm'."),
  ...methodSections,
});

/** The resolved config: every option present. */
export type Config = z.output<typeof ConfigSchema>;
/** What a YAML file may hold before defaults apply. */
export type ConfigInput = z.input<typeof ConfigSchema>;

export function defaultConfig(): Config {
  return ConfigSchema.parse({});
}
