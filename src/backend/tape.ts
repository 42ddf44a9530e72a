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
 *   requested tensor. A gradient function that hands its incoming gradient through unchanged gets a
 *   clone, so what it returns is never what gets disposed.
 * Nested passes (recomputation, checkpoint.ts) keep their own frame. The values computed are the same
 * (the tests run every gradient through this); only when tensors are freed changes.
 */
import * as tf from '@tensorflow/tfjs-core';

interface TapeNode {
  outputs: tf.Tensor[];
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
}

interface EngineInternals {
  state: { activeTape: TapeNode[] | null };
  gradients(f: () => tf.Tensor, xs: tf.Tensor[], dy?: tf.Tensor, allowNoGradients?: boolean): { value: tf.Tensor; grads: tf.Tensor[] };
  addTapeNode(...args: unknown[]): void;
}

interface Frame {
  /** Tensors with an id at least this were created by the backward pass. */
  firstBackwardId: number;
  /** Ids of the tensors whose gradients the caller gets back. */
  requested: Set<number>;
  /** Gradients a processed node consumed, freed when the pass reaches the next node. */
  pending: tf.Tensor[];
}

let installed = false;

export function installGradientRelease(): void {
  if (installed) return;
  installed = true;
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
