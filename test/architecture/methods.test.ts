/**
 * A method is declared in one place, src/config/methods/index.ts (METHOD_SECTION), and everything
 * else follows from it: config validation accepts it and keeps only its section in the run hash, a
 * span method has a model factory (the type checker insists) and is searched by the memory frontier
 * (methods: null) and run by the experiment grids that say `methods: all`.
 */
import test from 'ava';
import { METHOD_SECTION, METHODS } from '../../src/config/methods/index.js';
import { resolveConfigFromObject } from '../../src/config/load.js';
import { loadMemorySettings, planMethods } from '../../src/measure/memory-settings.js';
import { SPAN_METHODS } from '../../src/models/index.js';
import { loadExperiment } from '../../src/runs/experiment.js';
import { expandGrid } from '../../src/runs/grid.js';
import { fromRoot } from '../../src/util/paths.js';

test('every declared method validates in a config and reads its own section', (t) => {
  t.deepEqual([...METHODS], Object.keys(METHOD_SECTION));
  for (const method of METHODS) {
    const config = resolveConfigFromObject({ method });
    t.is(config.method, method);
    t.true(METHOD_SECTION[method] in config, `${method}: section ${METHOD_SECTION[method]}`);
  }
  t.throws(() => resolveConfigFromObject({ method: 'no-such-method' }), { message: /method/ });
});

test('every declared method but the LLM ensemble is a span model, searched by the memory frontier', (t) => {
  t.deepEqual([...SPAN_METHODS].sort(), METHODS.filter((m) => m !== 'el4ner').sort());
  const settings = loadMemorySettings(fromRoot('experiments', 'memory-frontier.yaml'));
  t.is(settings.methods, null);
  t.deepEqual(
    planMethods(settings).map((p) => p.method),
    [...SPAN_METHODS],
  );
});

test('`methods: all` in an experiment grid runs every declared method', (t) => {
  const experiment = loadExperiment('table2-main', { preset: 'quick' });
  const methods = new Set(expandGrid(experiment).map((cell) => cell.method));
  t.deepEqual([...methods].sort(), [...METHODS].sort());
});
