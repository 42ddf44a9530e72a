/**
 * Recomputation (gradient checkpointing, Chen et al. 2016): y = f(x, weights) keeps only its inputs
 * for the backward pass, which runs f again under a gradient tape of its own. A training step then
 * holds one block's intermediates at a time instead of every block's, for one more forward pass.
 *
 * `weights` is any structure of tensors (parameters, and the constants f reads such as masks and
 * RoPE tables): every tensor in it becomes an input of the op, so the recomputation never reads a
 * tensor that the forward pass's tidy has disposed, and parameters (tf.Variable) get their gradients
 * through it; other tensors are constants.
 * Dropout inside f draws from `rng`; the forward pass notes the generator's state and the
 * recomputation replays the same draws (then puts the stream back where it was), so both passes see
 * the same masks.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../util/rng.js';

type Leaf = tf.Tensor;

/** The tensors of a structure, depth first in key order (arrays by index). */
function leaves(value: unknown, out: Leaf[] = []): Leaf[] {
  if (value instanceof tf.Tensor) out.push(value);
  else if (Array.isArray(value)) for (const v of value) leaves(v, out);
  else if (isPlainObject(value)) for (const key of Object.keys(value).sort()) leaves(value[key], out);
  return out;
}

/** The structure with its tensors replaced, in the order leaves() lists them. */
function rebuild<W>(value: W, replacements: readonly Leaf[]): W {
  let next = 0;
  const walk = (v: unknown): unknown => {
    if (v instanceof tf.Tensor) return replacements[next++];
    if (Array.isArray(v)) return v.map(walk);
    if (isPlainObject(v))
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .map((k) => [k, walk(v[k])]),
      );
    return v;
  };
  return walk(value) as W;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object') return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** The slice of tfjs's engine state that a nested gradient tape overwrites. */
interface TapeState {
  state: { activeTape: unknown };
}

/**
 * Gradients of f's output (times dy) with respect to xs, taken while tfjs is already running a
 * backward pass. The engine keeps one active tape: a tape started now would replace the outer pass's
 * and, on ending, dispose it. So the outer tape is put back afterwards.
 */
function nestedGradients(f: () => tf.Tensor, xs: tf.Tensor[], dy: tf.Tensor): (tf.Tensor | undefined)[] {
  // The engine's tape state and gradients() are internal to tfjs-core (not in its typings).
  const engine = tf.engine() as unknown as TapeState & {
    gradients: (f: () => tf.Tensor, xs: tf.Tensor[], dy: tf.Tensor, allowNoGradients: boolean) => { value: tf.Tensor; grads: (tf.Tensor | undefined)[] };
  };
  const outer = engine.state.activeTape;
  try {
    const { value, grads } = engine.gradients(f, xs, dy, true);
    value.dispose();
    return grads;
  } finally {
    engine.state.activeTape = outer;
  }
}

export function checkpoint<W, X extends tf.Tensor, T extends tf.Tensor>(f: (x: X, weights: W) => T, x: X, weights: W, rng?: Rng): T {
  const inputs = [x, ...leaves(weights)];
  // Gradients are taken for x and the trainable parameters only: the constants among the leaves can
  // sit behind ops without a gradient (a comparison building a row mask), which a tape from them would
  // have to cross. (The saved copies are plain tensors, so this is decided here.)
  // Frozen parameters (LoRA's base weights) need none either.
  const differentiable = inputs.map((t, i) => i === 0 || (t instanceof tf.Variable && t.trainable && t.dtype === 'float32'));
  const replay = rng?.state;
  if (rng !== undefined && replay === undefined) throw new Error('checkpoint: recomputation needs a generator whose state can be replayed (createRng)');
  const start = replay?.get();
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const xs = args.slice(0, -1) as tf.Tensor[];
    save(xs);
    const run = (ts: readonly tf.Tensor[]): T => f(ts[0] as X, rebuild(weights, ts.slice(1)));
    return {
      value: run(xs),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => {
        const wrt = saved.filter((_, i) => differentiable[i]);
        const after = replay?.get();
        if (replay !== undefined && start !== undefined) replay.set(start);
        let grads: (tf.Tensor | undefined)[];
        try {
          grads = nestedGradients(() => run(saved), wrt, dy);
        } finally {
          if (replay !== undefined && after !== undefined) replay.set(after);
        }
        let g = 0;
        // Constants, and parameters f does not reach, get zeros: tfjs wants one float gradient per input.
        return saved.map((t, i) => (differentiable[i] ? (grads[g++] ?? tf.zeros(t.shape)) : tf.zeros(t.shape)));
      },
    };
  });
  return op(...inputs) as T;
}
