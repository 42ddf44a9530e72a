/**
 * AdamW (Loshchilov & Hutter 2019) with PyTorch's semantics (torch.optim.AdamW, what the SeNER
 * reference uses, research/sener.md section 3), plus the global-norm gradient clipping that runs
 * before it (torch.nn.utils.clip_grad_norm_). Per parameter p with gradient g, at its t-th update:
 *
 *   p <- p * (1 - lr * wd)                       decoupled weight decay (wd = 0 for excluded names)
 *   m <- b1 * m + (1 - b1) * g
 *   v <- b2 * v + (1 - b2) * g^2
 *   p <- p - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *
 * with b1 = 0.9, b2 = 0.999, eps = 1e-8 (PyTorch defaults). A parameter that got no gradient in a
 * step (tf.variableGrads leaves it out) is skipped entirely, decay included, and its t does not
 * advance, as in PyTorch (grad is None).
 *
 * Parameter groups: each parameter belongs to a named group with its own learning rate (the
 * trainer uses the model's `encoder` / `head` groups and the config's encoderLr / lr).
 *
 * State: the moments m and v live in a ParamStore of their own (names `exp_avg.<param>` and
 * `exp_avg_sq.<param>`, frozen), so a checkpoint of them is a standard parameter file, saved and
 * loaded bit for bit; the per-parameter step counts t are small and go into the trainer's JSON.
 */
import * as tf from '@tensorflow/tfjs-core';
import { fusedAdamW } from '../backend/fused.js';
import { LongnerError } from '../errors.js';
import type { SpanModel } from '../models/span-model.js';
import { ParamStore } from '../nn/params.js';

export interface AdamWParam {
  /** The parameter's name in its ParamStore. */
  name: string;
  variable: tf.Variable;
  group: string;
  /** Whether weight decay applies (see decaysWeight). */
  decay: boolean;
}

export interface AdamWOptions {
  weightDecay: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
}

/** Serializable part of the optimizer state (the moments are saved as a parameter file). */
export interface AdamWStepCounts {
  /** Updates applied so far, per parameter name. */
  steps: Record<string, number>;
}

// A LayerNorm module's name in src/nn (`ln`, `ln1`, `ln2`, `ln_f`) or a norm named as such elsewhere.
const NORM_COMPONENT = /^(ln(\d+|_[a-z0-9]+)?|.*norm.*)$/i;

/**
 * Weight-decay rule (the reference: "wd 0.01 except norm/bias params"). No decay for:
 * - biases: a name whose last component is `b` or `bias`, or ends in `_bias` (src/nn: `<linear>.b`,
 *   `mlm.out_bias`);
 * - LayerNorm weights: a last component `gamma` or `beta` (src/nn createLayerNorm), or any
 *   component that names a norm module (`ln`, `ln1`, `ln_f`, `...norm...`).
 * Everything else decays: matrices `.W`, LoRA `.lora_A` / `.lora_B`, embeddings, conv filters.
 * Components are matched whole, so a name that merely contains the letters "ln" is not excluded.
 */
export function decaysWeight(name: string): boolean {
  const parts = name.split('.');
  const last = parts[parts.length - 1]!;
  if (last === 'b' || last === 'bias' || last.endsWith('_bias')) return false;
  if (last === 'gamma' || last === 'beta') return false;
  return !parts.some((p) => NORM_COMPONENT.test(p));
}

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  private readonly moments: ParamStore;
  private readonly steps = new Map<string, number>();

  constructor(
    readonly params: readonly AdamWParam[],
    opts: AdamWOptions,
  ) {
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay;
    if (!(this.weightDecay >= 0)) throw new RangeError(`weight decay must be >= 0, got ${this.weightDecay}`);
    const names = new Set<string>();
    for (const p of params) {
      if (names.has(p.name)) throw new Error(`AdamW: parameter ${p.name} given twice`);
      names.add(p.name);
    }
    // Moments are created up front (zeros, as in PyTorch's lazy init) so memory stays flat across steps.
    this.moments = new ParamStore(0);
    for (const p of params) {
      this.moments.param(`exp_avg.${p.name}`, p.variable.shape, { kind: 'zeros' });
      this.moments.param(`exp_avg_sq.${p.name}`, p.variable.shape, { kind: 'zeros' });
      this.steps.set(p.name, 0);
    }
    this.moments.freeze('');
  }

  /** The model's trainable parameters, grouped by model.paramGroup, decay by decaysWeight. */
  static forModel(model: Pick<SpanModel, 'params' | 'paramGroup'>, opts: AdamWOptions): AdamW {
    const params = model.params.trainable().map((variable): AdamWParam => {
      const name = model.params.nameOf(variable);
      return { name, variable, group: model.paramGroup(name), decay: decaysWeight(name) };
    });
    return new AdamW(params, opts);
  }

  /**
   * One update. `grads` is keyed by tfjs variable name, as tf.variableGrads returns it; `lr` gives
   * each group's learning rate for this step. The gradients are not disposed here.
   */
  step(grads: tf.NamedTensorMap, lr: Readonly<Record<string, number>>): void {
    const { beta1: b1, beta2: b2, eps } = this;
    for (const p of this.params) {
      const g = grads[p.variable.name];
      if (g === undefined || g === null) continue;
      const rate = lr[p.group];
      if (rate === undefined) throw new Error(`AdamW: no learning rate for group ${p.group} (parameter ${p.name})`);
      const t = this.steps.get(p.name)! + 1;
      this.steps.set(p.name, t);
      const m = this.moments.get(`exp_avg.${p.name}`);
      const v = this.moments.get(`exp_avg_sq.${p.name}`);
      const wd = p.decay ? this.weightDecay : 0;
      tf.tidy(() => {
        const fused = fusedAdamW(p.variable, g, m, v, {
          beta1: b1,
          beta2: b2,
          epsilon: eps,
          decay: 1 - rate * wd,
          stepSize: rate / (1 - b1 ** t),
          biasCorrection2Sqrt: Math.sqrt(1 - b2 ** t),
        });
        if (fused !== null) {
          m.assign(fused.m);
          v.assign(fused.v);
          p.variable.assign(fused.p);
          return;
        }
        const decayed = wd > 0 ? tf.mul(p.variable, 1 - rate * wd) : p.variable;
        const m2 = tf.add(tf.mul(m, b1), tf.mul(g, 1 - b1));
        const v2 = tf.add(tf.mul(v, b2), tf.mul(tf.square(g), 1 - b2));
        const stepSize = rate / (1 - b1 ** t);
        const denom = tf.add(tf.div(tf.sqrt(v2), Math.sqrt(1 - b2 ** t)), eps);
        const updated = tf.sub(decayed, tf.mul(tf.div(m2, denom), stepSize));
        m.assign(m2);
        v.assign(v2);
        p.variable.assign(updated);
      });
    }
  }

  stepCounts(): AdamWStepCounts {
    return { steps: Object.fromEntries(this.steps) };
  }

  /** Writes the moments as a parameter file (atomically); the step counts come from stepCounts(). */
  saveMoments(path: string): void {
    this.moments.save(path);
  }

  /** Restores moments and step counts saved by saveMoments / stepCounts for the same parameter set. */
  load(path: string, counts: AdamWStepCounts): void {
    const missing = this.params.filter((p) => !Number.isInteger(counts.steps[p.name]) || counts.steps[p.name]! < 0).map((p) => p.name);
    const extra = Object.keys(counts.steps).filter((n) => !this.steps.has(n));
    if (missing.length > 0 || extra.length > 0) {
      throw new LongnerError(
        `optimizer state does not fit the model's trainable parameters (missing: ${missing.slice(0, 5).join(', ') || 'none'}; unknown: ${extra.slice(0, 5).join(', ') || 'none'})`,
      );
    }
    this.moments.load(path);
    for (const p of this.params) this.steps.set(p.name, counts.steps[p.name]!);
  }

  dispose(): void {
    this.moments.dispose();
  }
}

/** sqrt of the sum of squares of every gradient, in float32 on the backend, read back. */
export function globalNorm(grads: tf.NamedTensorMap): number {
  const list = Object.values(grads).filter((g): g is tf.Tensor => g !== null && g !== undefined);
  if (list.length === 0) return 0;
  return tf.tidy(() => tf.sqrt(tf.addN(list.map((g) => tf.sum(tf.square(g))))).dataSync()[0]!);
}

/**
 * torch.nn.utils.clip_grad_norm_: when the global norm exceeds `maxNorm`, every gradient is scaled
 * by maxNorm / (norm + 1e-6). Returns the norm before clipping and the gradients to use: new
 * tensors when clipped (the caller disposes both maps), the same map otherwise.
 * A non-finite norm is returned as is, without scaling, for the caller's divergence check.
 */
export function clipByGlobalNorm(grads: tf.NamedTensorMap, maxNorm: number | null): { norm: number; grads: tf.NamedTensorMap; clipped: boolean } {
  const norm = globalNorm(grads);
  if (maxNorm === null || !Number.isFinite(norm)) return { norm, grads, clipped: false };
  const coef = maxNorm / (norm + 1e-6);
  if (coef >= 1) return { norm, grads, clipped: false };
  const out: tf.NamedTensorMap = {};
  for (const [name, g] of Object.entries(grads)) {
    if (g !== null && g !== undefined) out[name] = tf.tidy(() => tf.mul(g, coef));
  }
  return { norm, grads: out, clipped: true };
}
