import test from 'ava';
import { WASM_HEAP_CAP, isOutOfMemory } from '../../src/measure/oom.js';

test('allocation failures are out of memory', (t) => {
  t.true(isOutOfMemory(new RangeError('Array buffer allocation failed')));
  t.true(isOutOfMemory(new Error('memory access out of bounds')));
  t.false(isOutOfMemory(new Error('shapes [2,3] and [4,5] do not match')));
});

test('a wasm RuntimeError counts as OOM only when the heap was near its cap', (t) => {
  const err = new WebAssembly.RuntimeError('null function or function signature mismatch');
  t.true(isOutOfMemory(err, WASM_HEAP_CAP - 2 ** 20));
  t.false(isOutOfMemory(err, 2 ** 30));
  t.false(isOutOfMemory(err));
});
