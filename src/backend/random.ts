/*
 * Long runs of random numbers for dropout masks. A [R, C, C] mask of SeNER's BiSPA attention holds
 * 34 M numbers at 510 words and w = 128; drawn one by one in JS that took about 0.45 s per mask.
 * The native addon continues the same mulberry32 stream in C (bit for bit: tested), so a seed
 * gives the same mask whichever backend runs and whether or not the addon is built.
 */
import type { Rng } from '../util/rng.js';
import { loadNativeAddon } from './native/addon.js';

/** mask[i] = 0 with probability `rate`, else 1 / (1 - rate) (inverted dropout), drawn from `rng`. */
export function fillDropoutMask(mask: Float32Array, rate: number, rng: Rng): void {
  const keep = 1 / (1 - rate);
  const load = loadNativeAddon();
  if (load.ok && rng.state !== undefined) {
    rng.state.set(load.addon.dropoutMask(mask, rate, keep, rng.state.get()));
    return;
  }
  for (let i = 0; i < mask.length; i++) mask[i] = rng.next() < rate ? 0 : keep;
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The dropout mask [R, C, C] of the native engine's low-memory row attention (native/src/kernels.c
 * ln_row_attention), bit for bit: cell (r, i, j) is 0 when the top 24 bits of
 * fmix32(key_r ^ (i C + j) 0x9e3779b9) fall below ceil(rate 2^24), else 1 / (1 - rate). Being a
 * function of the cell's index, the kernel recomputes it in the backward pass instead of storing it;
 * off the engine this builds the same mask for the stock-op composition.
 */
export function counterDropoutMask(R: number, C: number, rate: number, seed: number): Float32Array {
  const mask = new Float32Array(R * C * C);
  const threshold = rate <= 0 ? 0 : Math.ceil(rate * 16777216);
  const keep = rate > 0 ? 1 / (1 - rate) : 1;
  for (let r = 0; r < R; r++) {
    const key = fmix32((seed ^ fmix32((Math.imul(r, 0x9e3779b9) + 0x7f4a7c15) >>> 0)) >>> 0);
    for (let e = 0; e < C * C; e++) mask[r * C * C + e] = fmix32((key ^ Math.imul(e, 0x9e3779b9)) >>> 0) >>> 8 < threshold ? 0 : keep;
  }
  return mask;
}

/** A uint32 seed for a counter-drawn mask, taken from `rng` (one draw, so the stream stays in step on every backend). */
export function drawSeed(rng: Rng): number {
  return Math.floor(rng.next() * 4294967296) >>> 0;
}
