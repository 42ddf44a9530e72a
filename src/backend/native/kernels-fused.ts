/*
 * Fused kernels that exist only on the native backend, under names of our own. Callers reach them
 * through src/backend/fused.ts, which says whether the active backend has them; elsewhere the same
 * computation runs as a composition of stock tfjs ops, and the gradient checks hold the two equal.
 */
import type { NativeBackend } from './backend.js';
import { attrNumber, floats, input, isFloat, sizeOf, type KernelArgs, type KernelResult } from './kernel-util.js';

export const FUSED = {
  adamW: 'LongnerAdamW',
  layerNorm: 'LongnerLayerNorm',
  layerNormGrad: 'LongnerLayerNormGrad',
  gelu: 'LongnerGelu',
  geluGrad: 'LongnerGeluGrad',
} as const;

function requireFloat(name: string, ...ts: Parameters<typeof isFloat>): void {
  if (!isFloat(...ts)) throw new Error(`longner native: ${name} takes float32 tensors`);
}

/** inputs p, g, m, v; outputs [p', m', v'] as fresh tensors (the caller assigns them). */
function adamW(args: KernelArgs, b: NativeBackend): KernelResult {
  const p = input(args, 'p'), g = input(args, 'g'), m = input(args, 'm'), v = input(args, 'v');
  requireFloat(FUSED.adamW, p, g, m, v);
  const n = sizeOf(p.shape);
  const [pOut, mOut, vOut] = [b.floats(n), b.floats(n), b.floats(n)];
  b.addon.adamw(floats(b, p), floats(b, g), floats(b, m), floats(b, v), pOut, mOut, vOut,
    attrNumber(args, 'beta1'), attrNumber(args, 'beta2'), attrNumber(args, 'epsilon'), attrNumber(args, 'decay'),
    attrNumber(args, 'stepSize'), attrNumber(args, 'biasCorrection2Sqrt'));
  return [b.output([...p.shape], pOut), b.output([...p.shape], mOut), b.output([...p.shape], vOut)];
}

/** inputs x [rows, d], gamma, beta; outputs [y, xhat, rsigma [rows, 1]]. */
function layerNorm(args: KernelArgs, b: NativeBackend): KernelResult {
  const x = input(args, 'x'), gamma = input(args, 'gamma'), beta = input(args, 'beta');
  requireFloat(FUSED.layerNorm, x, gamma, beta);
  const d = x.shape[x.shape.length - 1]!;
  const rows = sizeOf(x.shape) / d;
  const [y, xhat, rsigma] = [b.floats(rows * d), b.floats(rows * d), b.floats(rows)];
  b.addon.layerNorm(floats(b, x), floats(b, gamma), floats(b, beta), y, xhat, rsigma, rows, d, attrNumber(args, 'epsilon'));
  return [b.output([...x.shape], y), b.output([...x.shape], xhat), b.output([...x.shape.slice(0, -1), 1], rsigma)];
}

/** inputs dy, xhat, rsigma, gamma; outputs [dx, dgamma, dbeta]. */
function layerNormGrad(args: KernelArgs, b: NativeBackend): KernelResult {
  const dy = input(args, 'dy'), xhat = input(args, 'xhat'), rsigma = input(args, 'rsigma'), gamma = input(args, 'gamma');
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
  const x = input(args, 'x'), dy = input(args, 'dy');
  requireFloat(FUSED.geluGrad, x, dy);
  const dx = b.floats(sizeOf(x.shape));
  b.addon.geluGrad(floats(b, x), floats(b, dy), dx);
  return b.output([...x.shape], dx);
}

export const FUSED_KERNELS = {
  [FUSED.adamW]: adamW,
  [FUSED.layerNorm]: layerNorm,
  [FUSED.layerNormGrad]: layerNormGrad,
  [FUSED.gelu]: gelu,
  [FUSED.geluGrad]: geluGrad,
};
