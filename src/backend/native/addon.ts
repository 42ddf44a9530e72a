/*
 * The native engine's addon (the local optional package `longner-native`, built from native/ by
 * node-gyp against Debian's oneDNN). Where the library was missing at install time the package is
 * absent and loading says what to install; nothing else in the project depends on it.
 */
import { createRequire } from 'node:module';

/** Operation codes, in the order of the enums in native/src/kernels.h. */
export const BINARY_OPS = ['Add', 'Sub', 'Multiply', 'RealDiv', 'Maximum', 'Minimum', 'Pow', 'SquaredDifference'] as const;
export const UNARY_OPS = [
  'Exp',
  'Log',
  'Tanh',
  'Sqrt',
  'Rsqrt',
  'Square',
  'Neg',
  'Abs',
  'Sigmoid',
  'Relu',
  'Reciprocal',
  'Log1p',
  'Softplus',
  'Erf',
  'Sign',
  'Expm1',
] as const;
export const REDUCE_OPS = ['Sum', 'Mean', 'Max', 'Min', 'Prod'] as const;
export const COMPARE_OPS = ['Equal', 'NotEqual', 'Greater', 'GreaterEqual', 'Less', 'LessEqual'] as const;

export type BinaryOp = (typeof BINARY_OPS)[number];
export type UnaryOp = (typeof UNARY_OPS)[number];
export type ReduceOp = (typeof REDUCE_OPS)[number];

/** What native/src/binding.c exports. Every call checks its sizes and throws a RangeError on a mismatch. */
export interface NativeAddon {
  info(): { library: string; isa: string; threads: number };
  setThreads(n: number): void;
  gemm(
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
    batchA: number,
    batchB: number,
    m: number,
    n: number,
    k: number,
    transA: number,
    transB: number,
  ): void;
  binary(op: number, a: Float32Array, aStrides: number[], b: Float32Array, bStrides: number[], out: Float32Array, shape: number[]): void;
  unary(op: number, x: Float32Array, out: Float32Array): void;
  clip(x: Float32Array, out: Float32Array, lo: number, hi: number): void;
  compare(op: number, a: Float32Array, aStrides: number[], b: Float32Array, bStrides: number[], out: Uint8Array, shape: number[]): void;
  logical(isOr: number, a: Uint8Array, b: Uint8Array, out: Uint8Array): void;
  reduce(op: number, x: Float32Array, out: Float32Array, outer: number, r: number, inner: number): void;
  argMinMax(x: Float32Array, out: Int32Array, outer: number, r: number, inner: number, isMin: number): void;
  softmax(x: Float32Array, out: Float32Array, rows: number, cols: number, log: number): void;
  softmaxGrad(p: Float32Array, dp: Float32Array, mask: Float32Array | null, ds: Float32Array, rows: number, cols: number): void;
  transpose(x: Float32Array, out: Float32Array, shape: number[], perm: number[]): void;
  slice(x: Float32Array, out: Float32Array, shape: number[], begin: number[], size: number[]): void;
  pad(x: Float32Array, out: Float32Array, shape: number[], before: number[], after: number[], value: number): void;
  copyRows(src: Float32Array, srcOffset: number, srcStride: number, dst: Float32Array, dstOffset: number, dstStride: number, rows: number, cols: number): void;
  gather(x: Float32Array, indices: Int32Array, out: Float32Array, outer: number, n: number, inner: number): void;
  segmentSum(x: Float32Array, ids: Int32Array, out: Float32Array, inner: number, segments: number): void;
  select(cond: Uint8Array, a: Float32Array, b: Float32Array, out: Float32Array, inner: number): void;
  addN(xs: Float32Array[], out: Float32Array): void;
  fill(out: Float32Array, value: number): void;
  dropoutMask(out: Float32Array, rate: number, keep: number, state: number): number;
  adamw(
    p: Float32Array,
    g: Float32Array,
    m: Float32Array,
    v: Float32Array,
    pOut: Float32Array,
    mOut: Float32Array,
    vOut: Float32Array,
    b1: number,
    b2: number,
    eps: number,
    decay: number,
    stepSize: number,
    biasCorrection2Sqrt: number,
  ): void;
  windowGemm(x: Float32Array, w: Float32Array, out: Float32Array, starts: number[], n: number, cin: number, cout: number): void;
  windowGemmGradInput(dOut: Float32Array, w: Float32Array, dx: Float32Array, starts: number[], n: number, p: number, cin: number, cout: number): void;
  windowGemmGradWeights(x: Float32Array, dOut: Float32Array, dw: Float32Array, starts: number[], n: number, cin: number, cout: number): void;
  layerNorm(
    x: Float32Array,
    gamma: Float32Array,
    beta: Float32Array,
    y: Float32Array,
    xhat: Float32Array,
    rsigma: Float32Array,
    rows: number,
    d: number,
    eps: number,
  ): void;
  layerNormGrad(
    dy: Float32Array,
    xhat: Float32Array,
    rsigma: Float32Array,
    gamma: Float32Array,
    dx: Float32Array,
    dgamma: Float32Array,
    dbeta: Float32Array,
    rows: number,
    d: number,
  ): void;
  gelu(x: Float32Array, y: Float32Array): void;
  geluGrad(x: Float32Array, dy: Float32Array, dx: Float32Array): void;
  rowAttention(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    cos: Float32Array,
    sin: Float32Array,
    valid: Float32Array,
    out: Float32Array,
    R: number,
    C: number,
    c: number,
    scale: number,
    rate: number,
    seed: number,
  ): void;
  rowAttentionGrad(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    cos: Float32Array,
    sin: Float32Array,
    valid: Float32Array,
    dy: Float32Array,
    dq: Float32Array,
    dk: Float32Array,
    dv: Float32Array,
    R: number,
    C: number,
    c: number,
    scale: number,
    rate: number,
    seed: number,
  ): void;
}

export const NATIVE_PACKAGE = 'longner-native';

/** How to get the engine where it is missing; shown in the one-line fallback message. */
export const NATIVE_INSTALL_HINT = "install Debian's oneDNN (`apt-get install -y libdnnl-dev`) and run `npm install` again to build it";

export type AddonLoad = { ok: true; addon: NativeAddon } | { ok: false; reason: string };

const EXPECTED: readonly (keyof NativeAddon)[] = ['info', 'setThreads', 'gemm', 'binary', 'compare', 'logical', 'unary', 'reduce', 'softmax', 'adamw'];

let cached: AddonLoad | undefined;

function describe(err: unknown): string {
  const code = err !== null && typeof err === 'object' ? (err as { code?: unknown }).code : undefined;
  if (code === 'MODULE_NOT_FOUND') return `the ${NATIVE_PACKAGE} package is not built`;
  const text = err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err);
  return `${NATIVE_PACKAGE} failed to load (${text})`;
}

function isAddon(value: unknown): value is NativeAddon {
  if (value === null || typeof value !== 'object') return false;
  const record = value as Record<string, unknown>;
  return EXPECTED.every((name) => typeof record[name] === 'function');
}

/** Loads the addon with `requireFn` (Node's require; tests pass a stand-in), never throwing. */
export function loadNativeAddonWith(requireFn: (id: string) => unknown): AddonLoad {
  try {
    const loaded = requireFn(NATIVE_PACKAGE);
    return isAddon(loaded) ? { ok: true, addon: loaded } : { ok: false, reason: `${NATIVE_PACKAGE} is out of date (rebuild it with \`npm install\`)` };
  } catch (err) {
    return { ok: false, reason: describe(err) };
  }
}

/** Loads the addon once per process. */
export function loadNativeAddon(): AddonLoad {
  cached ??= loadNativeAddonWith(createRequire(import.meta.url));
  return cached;
}
