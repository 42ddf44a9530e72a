/*
 * A backward pass that frees gradients as it goes.
 *
 * tfjs-core's backward pass (tape.ts backpropagateGradients) keeps the gradient of every tensor on
 * the tape until the whole pass ends: the gradient flowing into a node is never disposed after the
 * node has used it. PyTorch frees it there. With a chain of n layers that keeps n activations'
 * worth of gradients alive at the end of the pass, on top of the saved activations: measured on a
 * SeNER training step (512 words, BiSPA with recomputation), gradients were more than half of the
 * peak.
 *
 * installGradientRelease() wraps two engine methods, on every backend:
 * - gradients(): notes the first tensor id of the backward pass (everything created after the
 *   forward pass), and the ids of the tensors whose gradients the caller asked for;
 * - addTapeNode(): wraps each node's gradient function so that, when the backward pass reaches the
 *   next node, the gradients that flowed into this one are disposed (the pass never reads them
 *   again), unless they were created before the backward pass (the caller's dy) or belong to a
 *   requested tensor; so are the copies the node saved for its gradient (tfjs frees them only at
 *   the end of the pass). A gradient function that hands its incoming gradient through unchanged gets a
 *   clone, so what it returns is never what gets disposed.
 * - addTapeNode() also swaps the saved inputs that a gradient reads only the shape of (both operands
 *   of an addition, the input of a reshape, pad, slice, concatenation or sum) for their shapes,
 *   and frees them at once: tfjs keeps them until the node's gradient has run.
 * Nested passes (recomputation, checkpoint.ts) keep their own frame. The values computed are the same
 * (the tests run every gradient through this); only when tensors are freed changes.
 */
import * as tf from '@tensorflow/tfjs-core';

interface TapeNode {
  kernelName: string;
  outputs: tf.Tensor[];
  saved?: tf.Tensor[];
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
}

interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  gradients(f: () => tf.Tensor, xs: tf.Tensor[], dy?: tf.Tensor, allowNoGradients?: boolean): { value: tf.Tensor; grads: tf.Tensor[] };
  addTapeNode(...args: unknown[]): void;
}

/**
 * Kernels whose gradient reads only the shape of some saved inputs (tfjs-core's gradients/*_grad.ts):
 * the index of each such input in the saved list, or 'all'. tfjs keeps the whole tensor for the rest of
 * the pass, e.g. both operands of every residual addition, so they are swapped for their shapes.
 * GatherV2 reads its params tensor's values only with batchDims > 0 (checked below).
 */
const SHAPE_ONLY: Readonly<Record<string, readonly number[] | 'all'>> = {
  Add: 'all',
  Sub: 'all',
  AddN: 'all',
  Reshape: [0],
  PadV2: [0],
  Slice: [0],
  Concat: 'all',
  Sum: [0],
  Mean: [0],
  GatherV2: [0],
};

/** What a gradient function sees of a tensor it only needs the shape of. */
function shapeOf(t: tf.Tensor): tf.Tensor {
  const standIn = { shape: t.shape, rank: t.rank, size: t.size, dtype: t.dtype, dispose: (): void => undefined };
  // It carries only what the gradient functions read (the shape); it never reaches a kernel.
  return standIn as unknown as tf.Tensor;
}

/** Replaces the saved tensors a node's gradient reads only the shape of, freeing them now. */
function keepShapesOnly(node: TapeNode, attrs: unknown): void {
  const which = SHAPE_ONLY[node.kernelName];
  const saved = node.saved;
  if (which === undefined || saved === undefined) return;
  if (node.kernelName === 'GatherV2' && ((attrs as { batchDims?: number } | null)?.batchDims ?? 0) !== 0) return;
  const indices = which === 'all' ? saved.map((_, i) => i) : which;
  for (const i of indices) {
    const t = saved[i];
    if (t === undefined) continue;
    // The node's gradient closure holds this same array, so replacing the entry is what it will read.
    saved[i] = shapeOf(t);
    t.dispose();
  }
}

interface Frame {
  /** Tensors with an id at least this were created by the backward pass. */
  firstBackwardId: number;
  /** Ids of the tensors whose gradients the caller gets back. */
  requested: Set<number>;
  /** Gradients and saved tensors of the node just processed, freed when the pass reaches the next node. */
  pending: tf.Tensor[];
}

let installed = false;

export function installGradientRelease(): void {
  if (installed) return;
  installed = true;
  // The engine's tape methods are internal to tfjs-core (not in its typings).
  const engine = tf.engine() as unknown as EngineInternals;
  const engineClass = Object.getPrototypeOf(engine).constructor as { nextTensorId: number };
  const frames: Frame[] = [];

  const gradients = engine.gradients.bind(engine);
  engine.gradients = (f, xs, dy, allowNoGradients) => {
    const frame: Frame = { firstBackwardId: Infinity, requested: new Set(xs.map((x) => x.id)), pending: [] };
    frames.push(frame);
    try {
      return gradients(
        () => {
          const y = f();
          frame.firstBackwardId = engineClass.nextTensorId;
          return y;
        },
        xs,
        dy,
        allowNoGradients,
      );
    } finally {
      frames.pop();
    }
  };

  const addTapeNode = engine.addTapeNode.bind(engine);
  engine.addTapeNode = (...args: unknown[]) => {
    addTapeNode(...args);
    const tape = engine.state.activeTape;
    const node = tape?.[tape.length - 1];
    const gradient = node?.gradient;
    if (node === undefined || gradient === undefined) return;
    // addTapeNode(kernelName, inputs, outputs, gradientsFunc, saved, attrs)
    keepShapesOnly(node, args[5]);
    node.gradient = (dys) => {
      const frame = frames[frames.length - 1];
      if (frame !== undefined) {
        for (const t of frame.pending) t.dispose();
        frame.pending = [];
      }
      const thunks = gradient(dys);
      const incoming = dys.filter((d): d is tf.Tensor => d !== null);
      if (frame !== undefined) {
        node.outputs.forEach((o, i) => {
          const d = dys[i];
          if (d !== null && d !== undefined && d.id >= frame.firstBackwardId && !frame.requested.has(o.id)) frame.pending.push(d);
        });
        // The tensors this node saved for its gradient (kept copies of its own): tfjs frees them when
        // the pass ends, unless a higher-order gradient may walk the tape again (gradientDepth > 0).
        if (engine.state.gradientDepth === 0) frame.pending.push(...(node.saved ?? []));
      }
      const wrapped: Record<string, () => tf.Tensor> = {};
      for (const [name, thunk] of Object.entries(thunks)) {
        wrapped[name] = () => {
          const r = thunk();
          return incoming.includes(r) ? r.clone() : r;
        };
      }
      return wrapped;
    };
  };
}
