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
