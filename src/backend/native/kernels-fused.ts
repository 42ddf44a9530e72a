/*
 * Fused kernels that exist only on the native backend, under names of our own. Callers reach them
 * through src/backend/fused.ts, which says whether the active backend has them; elsewhere the same
 * computation runs as a composition of stock tfjs ops, and the gradient checks hold the two equal.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { NativeBackend } from './backend.js';
import { attrNumber, attrNumbers, floats, input, isFloat, sizeOf, type KernelArgs, type KernelResult } from './kernel-util.js';

export const FUSED = {
  adamW: 'LongnerAdamW',
  layerNorm: 'LongnerLayerNorm',
  layerNormGrad: 'LongnerLayerNormGrad',
  gelu: 'LongnerGelu',
  geluGrad: 'LongnerGeluGrad',
  softmaxGrad: 'LongnerSoftmaxGrad',
  windowGemm: 'LongnerWindowGemm',
  windowGemmGradInput: 'LongnerWindowGemmGradInput',
  windowGemmGradWeights: 'LongnerWindowGemmGradWeights',
  rowAttention: 'LongnerRowAttention',
  rowAttentionGrad: 'LongnerRowAttentionGrad',
} as const;

function requireFloat(name: string, ...ts: Parameters<typeof isFloat>): void {
  if (!isFloat(...ts)) throw new Error(`longner native: ${name} takes float32 tensors`);
}

/** inputs p, g, m, v; outputs [p', m', v'] as fresh tensors (the caller assigns them). */
function adamW(args: KernelArgs, b: NativeBackend): KernelResult {
  const p = input(args, 'p'),
    g = input(args, 'g'),
    m = input(args, 'm'),
    v = input(args, 'v');
  requireFloat(FUSED.adamW, p, g, m, v);
  const n = sizeOf(p.shape);
  const [pOut, mOut, vOut] = [b.floats(n), b.floats(n), b.floats(n)];
  b.addon.adamw(
    floats(b, p),
    floats(b, g),
    floats(b, m),
    floats(b, v),
    pOut,
    mOut,
    vOut,
    attrNumber(args, 'beta1'),
    attrNumber(args, 'beta2'),
    attrNumber(args, 'epsilon'),
    attrNumber(args, 'decay'),
    attrNumber(args, 'stepSize'),
    attrNumber(args, 'biasCorrection2Sqrt'),
  );
  return [b.output([...p.shape], pOut), b.output([...p.shape], mOut), b.output([...p.shape], vOut)];
}

/** inputs x [rows, d], gamma, beta; outputs [y, xhat, rsigma [rows, 1]]. */
function layerNorm(args: KernelArgs, b: NativeBackend): KernelResult {
  const x = input(args, 'x'),
    gamma = input(args, 'gamma'),
    beta = input(args, 'beta');
  requireFloat(FUSED.layerNorm, x, gamma, beta);
  const d = x.shape[x.shape.length - 1]!;
  const rows = sizeOf(x.shape) / d;
  const [y, xhat, rsigma] = [b.floats(rows * d), b.floats(rows * d), b.floats(rows)];
  b.addon.layerNorm(floats(b, x), floats(b, gamma), floats(b, beta), y, xhat, rsigma, rows, d, attrNumber(args, 'epsilon'));
  return [b.output([...x.shape], y), b.output([...x.shape], xhat), b.output([...x.shape.slice(0, -1), 1], rsigma)];
}

/** inputs dy, xhat, rsigma, gamma; outputs [dx, dgamma, dbeta]. */
function layerNormGrad(args: KernelArgs, b: NativeBackend): KernelResult {
  const dy = input(args, 'dy'),
    xhat = input(args, 'xhat'),
    rsigma = input(args, 'rsigma'),
    gamma = input(args, 'gamma');
  requireFloat(FUSED.layerNormGrad, dy, xhat, rsigma, gamma);
  const d = dy.shape[dy.shape.length - 1]!;
  const rows = sizeOf(dy.shape) / d;
  const [dx, dgamma, dbeta] = [b.floats(rows * d), b.floats(d), b.floats(d)];
  b.addon.layerNormGrad(floats(b, dy), floats(b, xhat), floats(b, rsigma), floats(b, gamma), dx, dgamma, dbeta, rows, d);
  return [b.output([...dy.shape], dx), b.output([d], dgamma), b.output([d], dbeta)];
}

function gelu(args: KernelArgs, b: NativeBackend): KernelResult {
  const x = input(args, 'x');
  requireFloat(FUSED.gelu, x);
  const y = b.floats(sizeOf(x.shape));
  b.addon.gelu(floats(b, x), y);
  return b.output([...x.shape], y);
}

function geluGrad(args: KernelArgs, b: NativeBackend): KernelResult {
  const x = input(args, 'x'),
    dy = input(args, 'dy');
  requireFloat(FUSED.geluGrad, x, dy);
  const dx = b.floats(sizeOf(x.shape));
  b.addon.geluGrad(floats(b, x), floats(b, dy), dx);
  return b.output([...x.shape], dx);
}

/**
 * The gradient of a softmax over the last axis from its output p and output gradient dp, with an
 * optional dropout mask applied to dp first: ds = p (g - rowsum(g p)), g = dp (times mask).
 * inputs p, dp (and mask), all of one shape; output ds.
 */
function softmaxGrad(args: KernelArgs, b: NativeBackend): KernelResult {
  const p = input(args, 'p'),
    dp = input(args, 'dp');
  const mask = args.inputs.mask;
  requireFloat(FUSED.softmaxGrad, p, dp, ...(mask === undefined ? [] : [mask]));
  const cols = p.shape[p.shape.length - 1]!;
  const n = sizeOf(p.shape);
  for (const t of mask === undefined ? [dp] : [dp, mask]) {
    if (sizeOf(t.shape) !== n) throw new Error(`longner native: ${FUSED.softmaxGrad} takes tensors of one shape`);
  }
  const ds = b.floats(n);
  b.addon.softmaxGrad(floats(b, p), floats(b, dp), mask === undefined ? null : floats(b, mask), ds, cols === 0 ? 0 : n / cols, cols);
  return b.output([...p.shape], ds);
}

/**
 * Sums of products over row windows of x [p, cin] with w [taps, cin, cout]: a 3x3 convolution on a
 * flattened padded grid (src/nn/grid.ts maskedConv3x3) without the nine slices and their sum.
 * inputs x, w; attrs starts (one row offset per tap), rows n; output [n, cout].
 */
function windowGemm(args: KernelArgs, b: NativeBackend): KernelResult {
  const x = input(args, 'x'),
    w = input(args, 'w');
  requireFloat(FUSED.windowGemm, x, w);
  const [, cin, cout] = w.shape as [number, number, number];
  const n = attrNumber(args, 'rows');
  const out = b.floats(n * cout);
  b.addon.windowGemm(floats(b, x), floats(b, w), out, attrNumbers(args, 'starts'), n, cin, cout);
  return b.output([n, cout], out);
}

/** inputs dOut [n, cout], w; attrs starts, rowsIn p; output dx [p, cin]. */
function windowGemmGradInput(args: KernelArgs, b: NativeBackend): KernelResult {
  const dOut = input(args, 'dOut'),
    w = input(args, 'w');
  requireFloat(FUSED.windowGemmGradInput, dOut, w);
  const [, cin, cout] = w.shape as [number, number, number];
  const p = attrNumber(args, 'rowsIn');
  const dx = b.floats(p * cin);
  b.addon.windowGemmGradInput(floats(b, dOut), floats(b, w), dx, attrNumbers(args, 'starts'), dOut.shape[0]!, p, cin, cout);
  return b.output([p, cin], dx);
}

/** inputs x [p, cin], dOut [n, cout]; attrs starts; output dw [taps, cin, cout]. */
function windowGemmGradWeights(args: KernelArgs, b: NativeBackend): KernelResult {
  const x = input(args, 'x'),
    dOut = input(args, 'dOut');
  requireFloat(FUSED.windowGemmGradWeights, x, dOut);
  const starts = attrNumbers(args, 'starts');
  const cin = x.shape[1]!,
    cout = dOut.shape[1]!;
  const dw = b.floats(starts.length * cin * cout);
  b.addon.windowGemmGradWeights(floats(b, x), floats(b, dOut), dw, starts, dOut.shape[0]!, cin, cout);
  return b.output([starts.length, cin, cout], dw);
}

/** The sizes [R, C, c] of row attention's q, k, v, with the RoPE tables [C, c] and validity [R, C]; throws on operands that disagree. */
function rowAttentionSizes(name: string, args: KernelArgs): [number, number, number] {
  const [q, k, v, cos, sin, valid] = ['q', 'k', 'v', 'cos', 'sin', 'valid'].map((n) => input(args, n)) as [
    tf.TensorInfo,
    tf.TensorInfo,
    tf.TensorInfo,
    tf.TensorInfo,
    tf.TensorInfo,
    tf.TensorInfo,
  ];
  requireFloat(name, q, k, v, cos, sin, valid);
  const [R, C, c] = q.shape as [number, number, number];
  const is = (t: tf.TensorInfo, shape: number[]): boolean => t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i]);
  if (q.shape.length !== 3 || !is(k, [R, C, c]) || !is(v, [R, C, c]) || !is(cos, [C, c]) || !is(sin, [C, c]) || !is(valid, [R, C])) {
    throw new Error(
      `longner native: ${name} takes q, k, v [R, C, c], cos, sin [C, c] and valid [R, C], got [${q.shape}], [${k.shape}], [${v.shape}], [${cos.shape}], [${sin.shape}], [${valid.shape}]`,
    );
  }
  return [R, C, c];
}

/**
 * Row attention with RoPE on q and k, invalid keys masked, q scaled, and dropout drawn from a counter
 * (attrs scale, rate, seed): the [R, C, C] tensors stay inside the kernel. inputs q, k, v, cos, sin,
 * valid; output [R, C, c].
 */
function rowAttention(args: KernelArgs, b: NativeBackend): KernelResult {
  const [R, C, c] = rowAttentionSizes(FUSED.rowAttention, args);
  const f = (n: string): Float32Array => floats(b, input(args, n));
  const out = b.floats(R * C * c);
  b.addon.rowAttention(
    f('q'),
    f('k'),
    f('v'),
    f('cos'),
    f('sin'),
    f('valid'),
    out,
    R,
    C,
    c,
    attrNumber(args, 'scale'),
    attrNumber(args, 'rate'),
    attrNumber(args, 'seed'),
  );
  return b.output([R, C, c], out);
}

/** inputs those of rowAttention and dy; attrs those of the forward call; outputs [dq, dk, dv]. */
function rowAttentionGrad(args: KernelArgs, b: NativeBackend): KernelResult {
  const [R, C, c] = rowAttentionSizes(FUSED.rowAttentionGrad, args);
  const f = (n: string): Float32Array => floats(b, input(args, n));
  const [dq, dk, dv] = [b.floats(R * C * c), b.floats(R * C * c), b.floats(R * C * c)];
  b.addon.rowAttentionGrad(
    f('q'),
    f('k'),
    f('v'),
    f('cos'),
    f('sin'),
    f('valid'),
    f('dy'),
    dq,
    dk,
    dv,
    R,
    C,
    c,
    attrNumber(args, 'scale'),
    attrNumber(args, 'rate'),
    attrNumber(args, 'seed'),
  );
  return [b.output([R, C, c], dq), b.output([R, C, c], dk), b.output([R, C, c], dv)];
}

export const FUSED_KERNELS = {
  [FUSED.adamW]: adamW,
  [FUSED.layerNorm]: layerNorm,
  [FUSED.layerNormGrad]: layerNormGrad,
  [FUSED.gelu]: gelu,
  [FUSED.geluGrad]: geluGrad,
  [FUSED.softmaxGrad]: softmaxGrad,
  [FUSED.windowGemm]: windowGemm,
  [FUSED.windowGemmGradInput]: windowGemmGradInput,
  [FUSED.windowGemmGradWeights]: windowGemmGradWeights,
  [FUSED.rowAttention]: rowAttention,
  [FUSED.rowAttentionGrad]: rowAttentionGrad,
};
