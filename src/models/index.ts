/** One factory per method; the trainer, evaluator and profiler only see the SpanModel interface. */
import { LongnerError } from '../errors.js';
import type { Config, Method } from '../config/schema.js';
import type { ParamStore } from '../nn/params.js';
import { createCnnNerModel } from './cnn-ner.js';
import { createGlobalPointerModel } from './global-pointer.js';
import { createSenerModel } from './sener.js';
import { createSpanEnumModel } from './span-enum.js';
import type { ModelContext, SpanModel } from './span-model.js';
import { createUtcIeModel } from './utc-ie.js';

type Factory = (config: Config, ctx: ModelContext, params?: ParamStore) => SpanModel;

/** Every method but the LLM ensemble is a span model, and the type checker wants its factory here. */
type SpanMethod = Exclude<Method, 'el4ner'>;

const FACTORIES: Record<SpanMethod, Factory> = {
  'span-enum': createSpanEnumModel,
  'global-pointer': createGlobalPointerModel,
  'cnn-ner': createCnnNerModel,
  'utc-ie': createUtcIeModel,
  sener: createSenerModel,
};

/** The span methods that train through the shared trainer (the LLM ensemble does not train). */
export const SPAN_METHODS = Object.keys(FACTORIES) as SpanMethod[];

export function createModel(config: Config, ctx: ModelContext, params?: ParamStore): SpanModel {
  const factory = config.method === 'el4ner' ? undefined : FACTORIES[config.method];
  if (factory === undefined) {
    throw new LongnerError(`method: '${config.method}' is not a trainable span model (span models: ${SPAN_METHODS.join(', ')})`);
  }
  return factory(config, ctx, params);
}
