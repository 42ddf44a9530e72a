/**
 * The layers of docs/architecture.md hold in the code: every relative import in src/ goes to the same
 * layer or a lower one, and no module reaches itself through its imports (no cycle, in a layer or
 * across). A new upward import or cycle fails here, naming the files.
 */
import test from 'ava';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fromRoot } from '../../src/util/paths.js';

/** Lowest first. `llm` sits beside `models` (an LLM ensemble is a method); files directly in src/ are util. */
const LAYERS = ['util', 'config', 'data', 'backend', 'nn', 'models', 'eval', 'train', 'measure', 'runs', 'report', 'cli'] as const;
const SAME_AS: Readonly<Record<string, (typeof LAYERS)[number]>> = { llm: 'models' };

const SRC = fromRoot('src');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

function layerOf(file: string): { name: string; rank: number } {
  const parts = relative(SRC, file).split('/');
  const top = parts.length === 1 ? 'util' : parts[0]!;
  const rank = LAYERS.indexOf((SAME_AS[top] ?? top) as (typeof LAYERS)[number]);
  if (rank < 0) throw new Error(`${relative(SRC, file)}: folder ${top} is in no layer (add it to LAYERS and docs/architecture.md)`);
  return { name: top, rank };
}

/** Relative imports and re-exports of a module, as src paths (type-only imports count: they are a dependency too). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+'(\.{1,2}\/[^']+)'/gm)].map((m) => resolve(dirname(file), m[1]!).replace(/\.js$/, '.ts'));
}

const files = sources(SRC);
const graph = new Map(files.map((f) => [f, importsOf(f)]));

test('no module imports from a higher layer', (t) => {
  t.true(files.length > 50);
  const upward: string[] = [];
  for (const [file, targets] of graph) {
    const from = layerOf(file);
    for (const target of targets) {
      const to = layerOf(target);
      const besides = from.name !== to.name && from.rank === to.rank && (from.name === 'llm' || to.name === 'llm');
      if (to.rank > from.rank || besides) upward.push(`${relative(SRC, file)} (${from.name}) imports ${relative(SRC, target)} (${to.name})`);
    }
  }
  t.deepEqual(upward, []);
});

test('no import cycle', (t) => {
  // Tarjan's strongly connected components: any component of two or more modules is a cycle.
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(relative(SRC, w));
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(component.sort());
    }
  };
  for (const f of files) if (!idx.has(f)) visit(f);
  t.deepEqual(cycles, []);
});

test('the check can fail: an upward import is seen', (t) => {
  const fake = join(SRC, 'util', 'fake.ts');
  const target = resolve(dirname(fake), '../cli/main.ts');
  t.true(layerOf(target).rank > layerOf(fake).rank);
});
