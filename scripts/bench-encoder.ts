/** The encoder of `npm run bench` and scripts/profile.ts: the `cpu-long` preset's (configs/presets/cpu-long.yaml). */
export const BENCH_ENCODER = { layers: 4, hidden: 256, heads: 4, ffn: 1024 };
