/**
 * Method-specific config sections, one file per method, each fully defaulted. Every section is present
 * in every resolved config (so a run's config.json shows every option), but a run reads only the
 * section of its own `method`.
 */
import { CnnNerSection } from './cnn-ner.js';
import { El4nerSection } from './el4ner.js';
import { GlobalPointerSection } from './global-pointer.js';
import { SenerSection } from './sener.js';
import { SpanEnumSection } from './span-enum.js';
import { UtcIeSection } from './utc-ie.js';

export const methodSections = {
  spanEnum: SpanEnumSection.prefault({}).describe('Exhaustive span enumeration (src/models/span-enum.ts).'),
  globalPointer: GlobalPointerSection.prefault({}).describe('Global Pointer and Efficient Global Pointer (src/models/global-pointer.ts).'),
  cnnNer: CnnNerSection.prefault({}).describe('CNN-NER: biaffine L x L grid and masked 3x3 convolutions (src/models/cnn-ner.ts).'),
  utcIe: UtcIeSection.prefault({}).describe('UTC-IE: CNN-NER plus plus-shaped axis attention (src/models/utc-ie.ts).'),
  sener: SenerSection.prefault({}).describe('SeNER: BiSPA head, LoRA, whole-word masking (src/models/sener.ts).'),
  el4ner: El4nerSection.prefault({}).describe('EL4NER-style ensemble of LLMs and the single-LLM k-shot baseline (src/llm/).'),
};

/**
 * The methods, each with the config section it reads (the only method section in its run hash). This
 * is where a method is declared: the config's `method` accepts exactly these, and a span method must
 * also have a model factory in src/models/index.ts (the type checker insists); the trainer, the memory
 * frontier and the experiment grids follow from there (docs/adding-a-method.md).
 */
export const METHOD_SECTION = {
  'span-enum': 'spanEnum',
  'global-pointer': 'globalPointer',
  'cnn-ner': 'cnnNer',
  'utc-ie': 'utcIe',
  sener: 'sener',
  el4ner: 'el4ner',
} as const satisfies Record<string, keyof typeof methodSections>;

export type Method = keyof typeof METHOD_SECTION;
export const METHODS = Object.keys(METHOD_SECTION) as [Method, ...Method[]];
