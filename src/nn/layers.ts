/**
 * Basic differentiable layers on 2D tensors [rows, features].
 *
 * Symbols: x input [n, d_in]; W [d_in, d_out], b [d_out]; LoRA pair A [d_in, r], B [r, d_out] with
 * scale alpha / r (Hu et al. 2021), so linear(x) = x W + b + (alpha / r) (x A) B. B starts at zero,
 * so a freshly added LoRA pair leaves the layer's output unchanged.
 */
import * as tf from '@tensorflow/tfjs-core';
import { fillDropoutMask } from '../backend/random.js';
import { fusedGelu, fusedGeluGrad, fusedLayerNorm, fusedLayerNormGrad, prefersWideProducts } from '../backend/fused.js';
import type { Rng } from '../util/rng.js';
import type { ParamStore } from './params.js';

// Weights are typed as tensors (a tf.Variable is one), so the functions below also take plain
// tensors, e.g. in gradient checks.
export interface LoraWeights {
  A: tf.Tensor2D;
  B: tf.Tensor2D;
  /** alpha / r */
  scale: number;
}

export interface LinearWeights {
  W: tf.Tensor2D;
  b: tf.Tensor1D | null;
  lora: LoraWeights | null;
}

export interface LoraOptions {
  rank: number;
  alpha: number;
}

/**
 * Creates (or reuses) `${name}.W`, `${name}.b` and, with `lora`, `${name}.lora_A` / `${name}.lora_B`.
 * A uses PEFT's default (kaiming-uniform with a = sqrt(5), i.e. uniform within 1 / sqrt(d_in)).
 */
export function createLinear(
  params: ParamStore,
  name: string,
  dIn: number,
  dOut: number,
  opts: { bias?: boolean; lora?: LoraOptions | null } = {},
): LinearWeights {
  const W = params.param(`${name}.W`, [dIn, dOut], { kind: 'xavier' }) as tf.Variable<tf.Rank.R2>;
  const b = opts.bias === false ? null : (params.param(`${name}.b`, [dOut], { kind: 'zeros' }) as tf.Variable<tf.Rank.R1>);
  let lora: LoraWeights | null = null;
  if (opts.lora) {
    const { rank, alpha } = opts.lora;
    lora = {
      A: params.param(`${name}.lora_A`, [dIn, rank], { kind: 'uniform', limit: 1 / Math.sqrt(dIn) }) as tf.Variable<tf.Rank.R2>,
      B: params.param(`${name}.lora_B`, [rank, dOut], { kind: 'zeros' }) as tf.Variable<tf.Rank.R2>,
      scale: alpha / rank,
    };
  }
  return { W, b, lora };
}

export function linear(x: tf.Tensor2D, w: LinearWeights): tf.Tensor2D {
  return tf.tidy(() => {
    let y: tf.Tensor2D = tf.matMul(x, w.W);
    if (w.b) y = tf.add(y, w.b);
    if (w.lora) y = tf.add(y, tf.mul(tf.matMul(tf.matMul(x, w.lora.A), w.lora.B), w.lora.scale));
    return y;
  });
}

/**
 * linear(x) split into `parts` equal column groups, e.g. one [n, d_head] tensor per attention head.
 * On wasm the weights are sliced rather than the output: weights are small, and there a slice costs
 * the whole input, which for activations grows with the sequence length. On the native engine the
 * output is split instead (one product instead of `parts`).
 */
export function linearSplit(x: tf.Tensor2D, w: LinearWeights, parts: number): tf.Tensor2D[] {
  return tf.tidy(() => {
    const [dIn, dOut] = w.W.shape;
    if (dOut % parts !== 0) throw new Error(`linearSplit: ${dOut} columns do not split into ${parts} parts`);
    // Where slicing activations is cheap (the native engine), one wide product beats `parts` narrow ones.
    if (prefersWideProducts()) return tf.split(linear(x, w), parts, 1) as tf.Tensor2D[];
    const dp = dOut / parts;
    // x A is shared by every part; only B is sliced.
    const xA = w.lora ? tf.matMul(x, w.lora.A) : null;
    const outs: tf.Tensor2D[] = [];
    for (let p = 0; p < parts; p++) {
      let y: tf.Tensor2D = tf.matMul(x, tf.slice(w.W, [0, p * dp], [dIn, dp]));
      if (w.b) y = tf.add(y, tf.slice(w.b, [p * dp], [dp]));
      if (w.lora && xA) {
        const r = w.lora.B.shape[0];
        y = tf.add(y, tf.mul(tf.matMul(xA, tf.slice(w.lora.B, [0, p * dp], [r, dp])), w.lora.scale));
      }
      outs.push(y);
    }
    return outs;
  });
}

export interface NormWeights {
  gamma: tf.Tensor1D;
  beta: tf.Tensor1D;
}

export function createLayerNorm(params: ParamStore, name: string, dim: number): NormWeights {
  return {
    gamma: params.param(`${name}.gamma`, [dim], { kind: 'ones' }) as tf.Variable<tf.Rank.R1>,
    beta: params.param(`${name}.beta`, [dim], { kind: 'zeros' }) as tf.Variable<tf.Rank.R1>,
  };
}

/**
 * Normalises each row over its features: x_hat = (x - mean) / sqrt(var + eps), y = x_hat gamma + beta.
 * One fused kernel each way where the backend has one (native), else stock ops. One tape node with a
 * hand-written gradient: tfjs keeps every intermediate's gradient until the
 * backward pass ends, so the op-by-op form would hold about ten [n, d] tensors per call; this one
 * keeps x_hat and 1 / sigma. With g = dy gamma:
 *   dx = (g - mean(g) - x_hat mean(g x_hat)) / sigma,  dgamma = sum_rows dy x_hat,  dbeta = sum_rows dy.
 */
export function layerNorm(x: tf.Tensor2D, w: NormWeights, eps = 1e-5): tf.Tensor2D {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, gamma, beta] = args as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D];
    const save = args[3] as tf.GradSaveFunc;
    const fused = fusedLayerNorm(xi, gamma, beta, eps);
    if (fused !== null) {
      save([fused.xhat, fused.rsigma, gamma]);
      return {
        value: fused.y as tf.Tensor2D,
        gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
          const [sxhat, srsigma, sgamma] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D];
          const g = fusedLayerNormGrad(dy, sxhat, srsigma, sgamma);
          if (g === null) throw new Error('layerNorm: the backend changed between the forward and backward pass');
          return [g.dx, g.dgamma, g.dbeta];
        },
      };
    }
    const { mean, variance } = tf.moments(xi, -1, true);
    const rsigma = tf.rsqrt(tf.add(variance, eps));
    const xhat = tf.mul(tf.sub(xi, mean), rsigma);
    save([xhat, rsigma, gamma]);
    return {
      value: tf.add(tf.mul(xhat, gamma), beta) as tf.Tensor2D,
      gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
        const [sxhat, srsigma, sgamma] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D];
        const g = tf.mul(dy, sgamma);
        const centred = tf.sub(g, tf.mean(g, -1, true));
        const dx = tf.mul(tf.sub(centred, tf.mul(sxhat, tf.mean(tf.mul(g, sxhat), -1, true))), srsigma);
        return [dx, tf.sum(tf.mul(dy, sxhat), 0), tf.sum(dy, 0)];
      },
    };
  });
  return op(x, w.gamma, w.beta) as tf.Tensor2D;
}

const GELU_C = Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;

/**
 * GELU, tanh approximation: 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3). One tape node
 * keeping only x (see layerNorm for why); the gradient is
 *   0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2).
 */
export function gelu<T extends tf.Tensor>(x: T): T {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const xi = args[0] as tf.Tensor;
    (args[1] as tf.GradSaveFunc)([xi]);
    const fused = fusedGelu(xi);
    if (fused !== null) {
      return {
        value: fused,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const dx = fusedGeluGrad(saved[0]!, dy);
          if (dx === null) throw new Error('gelu: the backend changed between the forward and backward pass');
          return dx;
        },
      };
    }
    const t = tf.tanh(tf.mul(tf.add(xi, tf.mul(tf.pow(xi, 3), GELU_A)), GELU_C));
    return {
      value: tf.mul(tf.mul(xi, 0.5), tf.add(t, 1)),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const sx = saved[0]!;
        const x2 = tf.square(sx);
        const th = tf.tanh(tf.mul(tf.mul(sx, tf.add(tf.mul(x2, GELU_A), 1)), GELU_C));
        const du = tf.mul(tf.add(tf.mul(x2, 3 * GELU_A), 1), GELU_C);
        const d = tf.add(tf.mul(tf.add(th, 1), 0.5), tf.mul(tf.mul(tf.mul(sx, 0.5), tf.sub(1, tf.square(th))), du));
        return tf.mul(dy, d);
      },
    };
  });
  return op(x) as T;
}

/**
 * Inverted dropout with a mask drawn from `rng` (backend/random.ts), so a seed gives the same mask on every
 * backend. Identity when not training or when rate is 0.
 */
export function dropout<T extends tf.Tensor>(x: T, rate: number, training: boolean, rng: Rng | undefined): T {
  if (!training || rate <= 0) return x;
  if (rate >= 1) throw new Error(`dropout rate must be below 1, got ${rate}`);
  if (rng === undefined) throw new Error('dropout in training needs an rng');
  const mask = new Float32Array(x.size);
  fillDropoutMask(mask, rate, rng);
  return tf.tidy(() => tf.mul(x, tf.tensor(mask, x.shape, 'float32')) as T);
}

/** Rows of `table` [V, d] for the given ids: [ids.length, d]. */
export function embedding(table: tf.Tensor2D, ids: Int32Array): tf.Tensor2D {
  return tf.tidy(() => tf.gather(table, tf.tensor1d(ids, 'int32')));
}

/**
 * Sets a layer's bias to log(prior / (1 - prior)), so every sigmoid output starts at `prior`
 * instead of 0.5 (Lin et al. 2017, focal loss). With thousands of negative cells per gold span, a
 * BCE head that starts at 0.5 spends its first hundreds of steps only pushing negatives down.
 * `null` keeps the layer's own initialisation.
 */
export function initBiasToPrior(w: LinearWeights, prior: number | null): void {
  if (prior === null || w.b === null) return;
  const b = w.b;
  if (!(b instanceof tf.Variable)) throw new Error('initBiasToPrior: the bias is not a variable');
  tf.tidy(() => b.assign(tf.fill(b.shape, Math.log(prior / (1 - prior)))));
}
