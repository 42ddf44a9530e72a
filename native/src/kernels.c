/*
 * Kernels of the native engine. Loops are written so GCC vectorises them (-O3, `omp simd`), and
 * large ones are split over OpenMP threads: the same libgomp pool oneDNN's sgemm uses, so the
 * process has one pool. Transcendentals use branch-free polynomial forms (vexp below) because
 * glibc's scalar expf does not vectorise without -ffast-math, which would also break NaN and
 * infinity handling that masks and divergence checks rely on.
 */
#define _GNU_SOURCE
#include "kernels.h"

#include <dnnl.h>
#include <pthread.h>
#include <signal.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Batched products at most this many multiply-adds each run one product per thread (ln_gemm). */
#define GEMM_SMALL (8 * 1024 * 1024)

/*
 * Below this many elements a loop stays on one thread: waking a passively waiting thread costs tens
 * of microseconds, about what a simple loop over 256 K floats takes on one.
 */
#define PAR_MIN 262144

/*
 * oneDNN 2.6's sgemm crashes the process (heap corruption, segfault) when a signal handler runs on
 * a thread while it is inside the product: measured here with SIGPROF from `node --cpu-prof` and
 * with a SIGUSR2 sent every millisecond, on one thread and on two. So every thread that runs it
 * blocks signals meanwhile: the caller around each call (below), the OpenMP workers for good (they
 * inherit the mask they are created with, and only compute). A blocked signal waits until the
 * product ends, a few milliseconds at most.
 */
static void block_signals(sigset_t *old) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, old);
}

static void restore_signals(const sigset_t *old) { pthread_sigmask(SIG_SETMASK, old, NULL); }

void ln_set_threads(int n) {
  sigset_t old;
  block_signals(&old);
  omp_set_num_threads(n < 1 ? 1 : n);
  /* Creates the pool's workers now, while signals are blocked, so that they inherit that mask. */
#pragma omp parallel
  {
  }
  restore_signals(&old);
}
int ln_max_threads(void) { return omp_get_max_threads(); }

int ln_gemm(const float *a, const float *b, float *c, int64_t batchA, int64_t batchB, int64_t m, int64_t n,
            int64_t k, int transA, int transB) {
  const int64_t batch = batchA > batchB ? batchA : batchB;
  /* An empty output: nothing to do (and dnnl_sgemm rejects the leading dimensions of 0 it would get). */
  if (m == 0 || n == 0) return 1;
  const int64_t lda = transA ? m : k, ldb = transB ? k : n;
  sigset_t old;
  int ok = 1;
  block_signals(&old);
  if (k == 0) {
    memset(c, 0, sizeof(float) * (size_t)(batch * m * n));
  } else if (batch >= 2 * (int64_t)omp_get_max_threads() && omp_get_max_threads() > 1 && m * n * k <= GEMM_SMALL) {
    /*
     * Many small products (SeNER's BiSPA: 510 rows of 257 x 33 x 257): one whole product per thread.
     * Splitting each small product over the threads, as sgemm does, ran at a third of the rate.
     * Inside a parallel region oneDNN runs each call on its calling thread.
     */
#pragma omp parallel for schedule(dynamic, 4)
    for (int64_t i = 0; i < batch; i++) {
      const float *ai = a + (batchA == 1 ? 0 : i * m * k);
      const float *bi = b + (batchB == 1 ? 0 : i * k * n);
      if (dnnl_sgemm(transA ? 'T' : 'N', transB ? 'T' : 'N', m, n, k, 1.0f, ai, lda, bi, ldb, 0.0f, c + i * m * n, n) != dnnl_success)
        ok = 0; /* only ever cleared: a benign race */
    }
  } else {
    for (int64_t i = 0; i < batch && ok; i++) {
      const float *ai = a + (batchA == 1 ? 0 : i * m * k);
      const float *bi = b + (batchB == 1 ? 0 : i * k * n);
      ok = dnnl_sgemm(transA ? 'T' : 'N', transB ? 'T' : 'N', m, n, k, 1.0f, ai, lda, bi, ldb, 0.0f, c + i * m * n, n) == dnnl_success;
    }
  }
  restore_signals(&old);
  return ok;
}

/*
 * The window products: each tap is one sgemm on a row window of x (a pointer offset, no copy),
 * accumulated in place with beta = 1 instead of summing separate products.
 */
int ln_window_gemm(const float *x, const float *w, float *out, const int64_t *starts, int taps, int64_t n, int64_t cin,
                   int64_t cout) {
  sigset_t old;
  int ok = 1;
  block_signals(&old);
  if (cin == 0) memset(out, 0, sizeof(float) * (size_t)(n * cout));
  for (int t = 0; t < taps && ok && cin > 0; t++)
    ok = dnnl_sgemm('N', 'N', n, cout, cin, 1.0f, x + starts[t] * cin, cin, w + t * cin * cout, cout, t == 0 ? 0.0f : 1.0f,
                    out, cout) == dnnl_success;
  restore_signals(&old);
  return ok;
}

int ln_window_gemm_grad_input(const float *dOut, const float *w, float *dx, const int64_t *starts, int taps, int64_t n,
                              int64_t p, int64_t cin, int64_t cout) {
  sigset_t old;
  int ok = 1;
  memset(dx, 0, sizeof(float) * (size_t)(p * cin));
  block_signals(&old);
  for (int t = 0; t < taps && ok && cout > 0; t++)
    ok = dnnl_sgemm('N', 'T', n, cin, cout, 1.0f, dOut, cout, w + t * cin * cout, cout, 1.0f, dx + starts[t] * cin, cin) ==
         dnnl_success;
  restore_signals(&old);
  return ok;
}

int ln_window_gemm_grad_weights(const float *x, const float *dOut, float *dw, const int64_t *starts, int taps, int64_t n,
                                int64_t cin, int64_t cout) {
  sigset_t old;
  int ok = 1;
  if (n == 0) memset(dw, 0, sizeof(float) * (size_t)(taps * cin * cout));
  block_signals(&old);
  for (int t = 0; t < taps && ok && n > 0; t++)
    ok = dnnl_sgemm('T', 'N', cin, cout, n, 1.0f, x + starts[t] * cin, cin, dOut, cout, 0.0f, dw + t * cin * cout, cout) ==
         dnnl_success;
  restore_signals(&old);
  return ok;
}

/* ---- transcendentals on 16-float vectors ----
 * GCC does not vectorise a scalar exp that builds 2^k from bits (the type pun blocks it), so the hot
 * ones are written on GCC vector types, where a cast between int and float vectors is a bit-cast.
 * -march=native maps 16 lanes to one AVX-512 register (or two AVX2 ones elsewhere).
 */
typedef float vf __attribute__((vector_size(64)));
typedef int32_t vi __attribute__((vector_size(64)));
#define VL 16

static inline vf vsplat(float a) { return (vf){} + a; }
/* m ? a : b per lane, m a comparison result (-1 or 0 per lane) */
static inline vf vsel(vi m, vf a, vf b) { return (vf)((m & (vi)a) | (~m & (vi)b)); }
static inline vf vload(const float *p) {
  vf v;
  memcpy(&v, p, sizeof v);
  return v;
}
static inline void vstore(float *p, vf v) { memcpy(p, &v, sizeof v); }
/* The first n (< 16) lanes from p, zeros after. */
static inline vf vload_part(const float *p, int64_t n) {
  float tmp[VL] = {0};
  memcpy(tmp, p, sizeof(float) * (size_t)n);
  return vload(tmp);
}
static inline void vstore_part(float *p, vf v, int64_t n) {
  float tmp[VL];
  vstore(tmp, v);
  memcpy(p, tmp, sizeof(float) * (size_t)n);
}

/*
 * exp(x) = 2^k exp(r), k = floor(x / ln 2 + 1/2), |r| <= ln 2 / 2, with Cephes' degree-6 polynomial
 * for exp(r) (relative error about 1e-7). Inputs are clamped to [-104, 88.72283]: below, the result
 * rounds to 0; above, it is inf; NaN stays NaN. 2^k is applied as two factors 2^(k>>1) and
 * 2^(k-(k>>1)), each a normal float for every k in [-150, 128], so results near FLT_MIN and
 * subnormal ones come out right.
 */
static inline vf vexp(vf x) {
  const vf lo = vsplat(-104.0f), hi = vsplat(88.72283f);
  vf xc = vsel(x < lo, lo, vsel(x > hi, hi, x));
  vf t = xc * 1.44269504088896341f + 0.5f;
  vi k = __builtin_convertvector(t, vi);
  k = k + (__builtin_convertvector(k, vf) > t); /* truncation rounded a negative t up: floor is one less */
  vf kf = __builtin_convertvector(k, vf);
  vf r = xc - kf * 0.693359375f + kf * 2.12194440e-4f;
  vf p = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r +
          1.6666665459e-1f) * r + 5.0000001201e-1f;
  vf y = p * (r * r) + r + 1.0f;
  vi k1 = k >> 1;
  vf res = y * (vf)((k1 + 127) << 23) * (vf)((k - k1 + 127) << 23);
  res = vsel(x > hi, vsplat(INFINITY), res);
  return vsel(x != x, x, res);
}

/*
 * tanh(x) = 1 - 2 / (exp(2x) + 1), with Cephes' odd polynomial (tanhf) for |x| < 0.625, where that
 * form cancels: with a Taylor polynomial up to 0.0625 only, the cancellation just above it cost
 * 1.6e-6 relative error; now the error stays near 2e-7 everywhere.
 */
static inline vf vtanh(vf x) {
  vf big = 1.0f - 2.0f / (vexp(2.0f * x) + 1.0f);
  vf x2 = x * x;
  vf small = ((((-5.70498872745e-3f * x2 + 2.06390887954e-2f) * x2 - 5.37397155531e-2f) * x2 + 1.33314422036e-1f) * x2 -
              3.33332819422e-1f) * x2 * x + x;
  vf ax = vsel(x < 0.0f, -x, x);
  return vsel(ax < 0.625f, small, big);
}

static inline vf vsigmoid(vf x) { return 1.0f / (1.0f + vexp(-x)); }

/*
 * Calls fn(ctx, lo, hi) on [0, n) split into one range per thread (multiples of 16 elements), or
 * once when n is small: a parallel region costs a wake-up, and on a shared 2-core machine a
 * second thread that is not scheduled makes the region wait.
 */
typedef void (*range_fn)(void *ctx, int64_t lo, int64_t hi);
static void parallel_ranges(int64_t n, range_fn fn, void *ctx) {
  if (n < PAR_MIN || omp_get_max_threads() == 1) {
    fn(ctx, 0, n);
    return;
  }
#pragma omp parallel
  {
    const int64_t k = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t chunk = (((n + k - 1) / k) + VL - 1) / VL * VL;
    const int64_t lo = t * chunk, hi = lo + chunk < n ? lo + chunk : n;
    if (lo < hi) fn(ctx, lo, hi);
  }
}

/* out[lo, hi) = EXPR of v = x[lo, hi), 16 lanes at a time. */
#define VMAP(x, out, lo, hi, EXPR)                \
  do {                                            \
    int64_t i_ = (lo);                            \
    for (; i_ + VL <= (hi); i_ += VL) {           \
      vf v = vload((x) + i_);                     \
      vstore((out) + i_, (EXPR));                 \
    }                                             \
    if (i_ < (hi)) {                              \
      vf v = vload_part((x) + i_, (hi) - i_);     \
      vstore_part((out) + i_, (EXPR), (hi) - i_); \
    }                                             \
  } while (0)

typedef struct {
  unary_op op;
  const float *x;
  float *out;
} unary_ctx;

static void unary_range(void *p, int64_t lo, int64_t hi) {
  const unary_ctx *c = p;
  const float *x = c->x;
  float *out = c->out;
  switch (c->op) {
  case UN_EXP: VMAP(x, out, lo, hi, vexp(v)); break;
  case UN_TANH: VMAP(x, out, lo, hi, vtanh(v)); break;
  case UN_SIGMOID: VMAP(x, out, lo, hi, vsigmoid(v)); break;
  case UN_LOG: for (int64_t i = lo; i < hi; i++) out[i] = logf(x[i]); break;
  case UN_SQRT: for (int64_t i = lo; i < hi; i++) out[i] = sqrtf(x[i]); break;
  case UN_RSQRT: for (int64_t i = lo; i < hi; i++) out[i] = 1.0f / sqrtf(x[i]); break;
  case UN_SQUARE: for (int64_t i = lo; i < hi; i++) out[i] = x[i] * x[i]; break;
  case UN_NEG: for (int64_t i = lo; i < hi; i++) out[i] = -x[i]; break;
  case UN_ABS: for (int64_t i = lo; i < hi; i++) out[i] = fabsf(x[i]); break;
  /* NaN < 0 is false, so NaN stays NaN, as in tfjs's relu */
  case UN_RELU: for (int64_t i = lo; i < hi; i++) out[i] = x[i] < 0.0f ? 0.0f : x[i]; break;
  case UN_RECIPROCAL: for (int64_t i = lo; i < hi; i++) out[i] = 1.0f / x[i]; break;
  case UN_LOG1P: for (int64_t i = lo; i < hi; i++) out[i] = log1pf(x[i]); break;
  /* softplus(x) = max(x, 0) + log1p(exp(-|x|)), stable at both ends */
  case UN_SOFTPLUS:
    for (int64_t i = lo; i < hi; i++) out[i] = (x[i] > 0.0f ? x[i] : 0.0f) + log1pf(expf(-fabsf(x[i])));
    break;
  case UN_ERF: for (int64_t i = lo; i < hi; i++) out[i] = erff(x[i]); break;
  case UN_SIGN: for (int64_t i = lo; i < hi; i++) out[i] = x[i] > 0.0f ? 1.0f : (x[i] < 0.0f ? -1.0f : 0.0f); break;
  case UN_EXPM1: for (int64_t i = lo; i < hi; i++) out[i] = expm1f(x[i]); break;
  default: break;
  }
}

void ln_unary(unary_op op, const float *x, float *out, int64_t n) {
  unary_ctx c = {op, x, out};
  parallel_ranges(n, unary_range, &c);
}

typedef struct {
  const float *x;
  float *out;
  float lo, hi;
} clip_ctx;

static void clip_range(void *p, int64_t lo, int64_t hi) {
  const clip_ctx *c = p;
#pragma omp simd
  for (int64_t i = lo; i < hi; i++) {
    const float v = c->x[i];
    c->out[i] = v > c->hi ? c->hi : (v < c->lo ? c->lo : v);
  }
}

void ln_clip(const float *x, float *out, int64_t n, float lo, float hi) {
  clip_ctx c = {x, out, lo, hi};
  parallel_ranges(n, clip_range, &c);
}

static inline float apply_binary(binary_op op, float a, float b) {
  switch (op) {
  case BIN_ADD: return a + b;
  case BIN_SUB: return a - b;
  case BIN_MUL: return a * b;
  case BIN_DIV: return a / b;
  case BIN_MAX: return (a != a || b != b) ? NAN : (a > b ? a : b);
  case BIN_MIN: return (a != a || b != b) ? NAN : (a < b ? a : b);
  case BIN_POW: return powf(a, b);
  case BIN_SQDIFF: return (a - b) * (a - b);
  default: return 0.0f;
  }
}

/* The innermost dimension with given strides, as one tight loop per op so each vectorises. */
#define INNER_LOOP(EXPR)                                                                                  \
  if (sa == 1 && sb == 1) {                                                                               \
    _Pragma("omp simd") for (int64_t i = 0; i < len; i++) { float x = a[i], y = b[i]; out[i] = (EXPR); } \
  } else if (sa == 1 && sb == 0) {                                                                        \
    const float y = b[0];                                                                                 \
    _Pragma("omp simd") for (int64_t i = 0; i < len; i++) { float x = a[i]; out[i] = (EXPR); }            \
  } else if (sa == 0 && sb == 1) {                                                                        \
    const float x = a[0];                                                                                 \
    _Pragma("omp simd") for (int64_t i = 0; i < len; i++) { float y = b[i]; out[i] = (EXPR); }            \
  } else {                                                                                                \
    for (int64_t i = 0; i < len; i++) { float x = a[i * sa], y = b[i * sb]; out[i] = (EXPR); }            \
  }

static void binary_inner(binary_op op, const float *a, int64_t sa, const float *b, int64_t sb, float *out,
                         int64_t len) {
  switch (op) {
  case BIN_ADD: INNER_LOOP(x + y) break;
  case BIN_SUB: INNER_LOOP(x - y) break;
  case BIN_MUL: INNER_LOOP(x * y) break;
  case BIN_DIV: INNER_LOOP(x / y) break;
  case BIN_MAX: INNER_LOOP((x != x || y != y) ? NAN : (x > y ? x : y)) break;
  case BIN_MIN: INNER_LOOP((x != x || y != y) ? NAN : (x < y ? x : y)) break;
  case BIN_SQDIFF: INNER_LOOP((x - y) * (x - y)) break;
  default:
    for (int64_t i = 0; i < len; i++) out[i] = apply_binary(op, a[i * sa], b[i * sb]);
    break;
  }
}

void ln_binary(binary_op op, const float *a, const int64_t *aStrides, const float *b, const int64_t *bStrides,
               float *out, const int64_t *shape, int rank) {
  if (rank == 0) {
    out[0] = apply_binary(op, a[0], b[0]);
    return;
  }
  const int64_t inner = shape[rank - 1];
  int64_t rows = 1;
  for (int d = 0; d < rank - 1; d++) rows *= shape[d];
  const int64_t total = rows * inner;
  /* Rows are independent: split them over threads; a single long row is split by chunks instead. */
  if (rows == 1) {
    const int64_t chunk = 16384;
    const int64_t nChunks = (inner + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (total >= PAR_MIN)
    for (int64_t c = 0; c < nChunks; c++) {
      const int64_t start = c * chunk, len = inner - start < chunk ? inner - start : chunk;
      binary_inner(op, a + start * aStrides[rank - 1], aStrides[rank - 1], b + start * bStrides[rank - 1],
                   bStrides[rank - 1], out + start, len);
    }
    return;
  }
#pragma omp parallel for schedule(static) if (total >= PAR_MIN)
  for (int64_t r = 0; r < rows; r++) {
    int64_t rem = r, offA = 0, offB = 0;
    for (int d = rank - 2; d >= 0; d--) {
      const int64_t idx = rem % shape[d];
      rem /= shape[d];
      offA += idx * aStrides[d];
      offB += idx * bStrides[d];
    }
    binary_inner(op, a + offA, aStrides[rank - 1], b + offB, bStrides[rank - 1], out + r * inner, inner);
  }
}

static inline uint8_t apply_compare(compare_op op, float x, float y) {
  switch (op) {
  case CMP_EQUAL: return x == y;
  case CMP_NOT_EQUAL: return x != y;
  case CMP_GREATER: return x > y;
  case CMP_GREATER_EQUAL: return x >= y;
  case CMP_LESS: return x < y;
  default: return x <= y;
  }
}

void ln_compare(compare_op op, const float *a, const int64_t *aStrides, const float *b, const int64_t *bStrides,
                uint8_t *out, const int64_t *shape, int rank) {
  if (rank == 0) {
    out[0] = apply_compare(op, a[0], b[0]);
    return;
  }
  const int64_t inner = shape[rank - 1], sa = aStrides[rank - 1], sb = bStrides[rank - 1];
  int64_t rows = 1;
  for (int d = 0; d < rank - 1; d++) rows *= shape[d];
#pragma omp parallel for schedule(static) if (rows * inner >= PAR_MIN)
  for (int64_t r = 0; r < rows; r++) {
    int64_t rem = r, offA = 0, offB = 0;
    for (int d = rank - 2; d >= 0; d--) {
      const int64_t idx = rem % shape[d];
      rem /= shape[d];
      offA += idx * aStrides[d];
      offB += idx * bStrides[d];
    }
    const float *ar = a + offA, *br = b + offB;
    uint8_t *o = out + r * inner;
    for (int64_t i = 0; i < inner; i++) o[i] = apply_compare(op, ar[i * sa], br[i * sb]);
  }
}

void ln_logical(int isOr, const uint8_t *a, const uint8_t *b, uint8_t *out, int64_t n) {
  if (isOr) {
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (int64_t i = 0; i < n; i++) out[i] = (a[i] | b[i]) != 0;
  } else {
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (int64_t i = 0; i < n; i++) out[i] = (a[i] & b[i]) != 0;
  }
}

void ln_reduce(reduce_op op, const float *x, float *out, int64_t outer, int64_t r, int64_t inner) {
  const int64_t n = outer * r * inner;
  if (inner == 1) {
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (int64_t o = 0; o < outer; o++) {
      const float *row = x + o * r;
      float acc;
      switch (op) {
      case RED_SUM:
      case RED_MEAN: {
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < r; i++) s += row[i];
        acc = op == RED_MEAN ? s / (float)r : s;
        break;
      }
      case RED_MAX: {
        float m = -INFINITY;
        int nan = 0;
        for (int64_t i = 0; i < r; i++) { nan |= row[i] != row[i]; m = row[i] > m ? row[i] : m; }
        acc = nan ? NAN : m;
        break;
      }
      case RED_MIN: {
        float m = INFINITY;
        int nan = 0;
        for (int64_t i = 0; i < r; i++) { nan |= row[i] != row[i]; m = row[i] < m ? row[i] : m; }
        acc = nan ? NAN : m;
        break;
      }
      default: {
        float p = 1.0f;
        for (int64_t i = 0; i < r; i++) p *= row[i];
        acc = p;
      }
      }
      out[o] = acc;
    }
    return;
  }
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (int64_t o = 0; o < outer; o++) {
    float *dst = out + o * inner;
    const float *src = x + o * r * inner;
    const float init = op == RED_MAX ? -INFINITY : op == RED_MIN ? INFINITY : op == RED_PROD ? 1.0f : 0.0f;
    for (int64_t j = 0; j < inner; j++) dst[j] = r == 0 ? init : src[j];
    for (int64_t i = 1; i < r; i++) {
      const float *s = src + i * inner;
      switch (op) {
      case RED_SUM:
      case RED_MEAN:
#pragma omp simd
        for (int64_t j = 0; j < inner; j++) dst[j] += s[j];
        break;
      case RED_MAX:
        for (int64_t j = 0; j < inner; j++) dst[j] = (dst[j] != dst[j] || s[j] != s[j]) ? NAN : (s[j] > dst[j] ? s[j] : dst[j]);
        break;
      case RED_MIN:
        for (int64_t j = 0; j < inner; j++) dst[j] = (dst[j] != dst[j] || s[j] != s[j]) ? NAN : (s[j] < dst[j] ? s[j] : dst[j]);
        break;
      default:
        for (int64_t j = 0; j < inner; j++) dst[j] *= s[j];
      }
    }
    if (op == RED_MEAN && r > 0)
      for (int64_t j = 0; j < inner; j++) dst[j] /= (float)r;
  }
}

void ln_argmax(const float *x, int32_t *out, int64_t outer, int64_t r, int64_t inner, int isMin) {
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < inner; j++) {
      const float *s = x + o * r * inner + j;
      int32_t best = 0;
      float bv = s[0];
      for (int64_t i = 1; i < r; i++) {
        const float v = s[i * inner];
        if (isMin ? v < bv : v > bv) { bv = v; best = (int32_t)i; }
      }
      out[o * inner + j] = best;
    }
}

static void softmax_row(const float *src, float *dst, int64_t cols, int logSoftmax) {
  float m = -INFINITY;
  for (int64_t j = 0; j < cols; j++) m = src[j] > m ? src[j] : m;
  const vf vm = vsplat(m);
  vf acc = vsplat(0.0f);
  int64_t j = 0;
  for (; j + VL <= cols; j += VL) {
    vf e = vexp(vload(src + j) - vm);
    acc += e;
    if (!logSoftmax) vstore(dst + j, e);
  }
  if (j < cols) {
    /* padding lanes hold -inf: their exp is 0 */
    float tmp[VL];
    for (int64_t q = 0; q < VL; q++) tmp[q] = j + q < cols ? src[j + q] : -INFINITY;
    vf e = vexp(vload(tmp) - vm);
    acc += e;
    if (!logSoftmax) vstore_part(dst + j, e, cols - j);
  }
  float s = 0.0f;
  for (int q = 0; q < VL; q++) s += acc[q];
  if (logSoftmax) {
    const float lse = m + logf(s);
    for (int64_t q = 0; q < cols; q++) dst[q] = src[q] - lse;
  } else {
    const float inv = 1.0f / s;
    for (int64_t q = 0; q < cols; q++) dst[q] *= inv;
  }
}

void ln_softmax(const float *x, float *out, int64_t rows, int64_t cols, int logSoftmax) {
#pragma omp parallel for schedule(static) if (rows * cols >= PAR_MIN && omp_get_max_threads() > 1)
  for (int64_t r = 0; r < rows; r++) softmax_row(x + r * cols, out + r * cols, cols, logSoftmax);
}

static void softmax_grad_row(const float *p, const float *dp, const float *m, float *ds, int64_t cols) {
  float s = 0.0f;
  if (m != NULL) {
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < cols; j++) s += dp[j] * m[j] * p[j];
#pragma omp simd
    for (int64_t j = 0; j < cols; j++) ds[j] = p[j] * (dp[j] * m[j] - s);
  } else {
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < cols; j++) s += dp[j] * p[j];
#pragma omp simd
    for (int64_t j = 0; j < cols; j++) ds[j] = p[j] * (dp[j] - s);
  }
}

void ln_softmax_grad(const float *p, const float *dp, const float *m, float *ds, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if (rows * cols >= PAR_MIN && omp_get_max_threads() > 1)
  for (int64_t r = 0; r < rows; r++)
    softmax_grad_row(p + r * cols, dp + r * cols, m == NULL ? NULL : m + r * cols, ds + r * cols, cols);
}

/* ---- layout ---- */

static void row_major_strides(const int64_t *shape, int rank, int64_t *strides) {
  int64_t s = 1;
  for (int d = rank - 1; d >= 0; d--) {
    strides[d] = s;
    s *= shape[d];
  }
}

void ln_transpose(const float *x, float *out, const int64_t *shape, const int64_t *perm, int rank) {
  int64_t inStrides[LN_MAX_RANK], outShape[LN_MAX_RANK], src[LN_MAX_RANK];
  row_major_strides(shape, rank, inStrides);
  int64_t total = 1;
  for (int d = 0; d < rank; d++) {
    outShape[d] = shape[perm[d]];
    src[d] = inStrides[perm[d]];
    total *= outShape[d];
  }
  if (total == 0) return;
  /* The common case [.., M, N] -> [.., N, M]: tiled so reads and writes both stay in cache. */
  if (rank >= 2 && perm[rank - 1] == rank - 2 && perm[rank - 2] == rank - 1) {
    int same = 1;
    for (int d = 0; d < rank - 2; d++) same &= perm[d] == d;
    if (same) {
      const int64_t M = shape[rank - 2], N = shape[rank - 1], batch = total / (M * N), T = 32;
#pragma omp parallel for collapse(2) schedule(static) if (total >= PAR_MIN)
      for (int64_t b = 0; b < batch; b++)
        for (int64_t i0 = 0; i0 < M; i0 += T) {
          const float *xs = x + b * M * N;
          float *os = out + b * M * N;
          for (int64_t j0 = 0; j0 < N; j0 += T)
            for (int64_t i = i0; i < i0 + T && i < M; i++)
              for (int64_t j = j0; j < j0 + T && j < N; j++) os[j * M + i] = xs[i * N + j];
        }
      return;
    }
  }
  const int64_t inner = outShape[rank - 1], innerStride = src[rank - 1], rows = total / inner;
#pragma omp parallel for schedule(static) if (total >= PAR_MIN)
  for (int64_t r = 0; r < rows; r++) {
    int64_t rem = r, off = 0;
    for (int d = rank - 2; d >= 0; d--) {
      off += (rem % outShape[d]) * src[d];
      rem /= outShape[d];
    }
    float *dst = out + r * inner;
    const float *s = x + off;
    for (int64_t j = 0; j < inner; j++) dst[j] = s[j * innerStride];
  }
}

void ln_slice(const float *x, float *out, const int64_t *shape, const int64_t *begin, const int64_t *size, int rank) {
  int64_t strides[LN_MAX_RANK];
  row_major_strides(shape, rank, strides);
  int64_t total = 1;
  for (int d = 0; d < rank; d++) total *= size[d];
  if (total == 0) return;
  const int64_t inner = size[rank - 1], rows = total / inner;
#pragma omp parallel for schedule(static) if (total >= PAR_MIN)
  for (int64_t r = 0; r < rows; r++) {
    int64_t rem = r, off = begin[rank - 1];
    for (int d = rank - 2; d >= 0; d--) {
      off += (begin[d] + rem % size[d]) * strides[d];
      rem /= size[d];
    }
    memcpy(out + r * inner, x + off, sizeof(float) * (size_t)inner);
  }
}

void ln_pad(const float *x, float *out, const int64_t *shape, const int64_t *before, const int64_t *after, int rank,
            float value) {
  int64_t outShape[LN_MAX_RANK], outStrides[LN_MAX_RANK];
  int64_t total = 1, inTotal = 1;
  for (int d = 0; d < rank; d++) {
    outShape[d] = shape[d] + before[d] + after[d];
    total *= outShape[d];
    inTotal *= shape[d];
  }
  row_major_strides(outShape, rank, outStrides);
  ln_fill(out, total, value);
  if (inTotal == 0) return;
  const int64_t inner = shape[rank - 1], rows = inTotal / inner;
#pragma omp parallel for schedule(static) if (total >= PAR_MIN)
  for (int64_t r = 0; r < rows; r++) {
    int64_t rem = r, off = before[rank - 1];
    for (int d = rank - 2; d >= 0; d--) {
      off += (before[d] + rem % shape[d]) * outStrides[d];
      rem /= shape[d];
    }
    memcpy(out + off, x + r * inner, sizeof(float) * (size_t)inner);
  }
}

void ln_copy_rows(const float *src, int64_t srcStride, float *dst, int64_t dstStride, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if (rows * cols >= PAR_MIN)
  for (int64_t r = 0; r < rows; r++) memcpy(dst + r * dstStride, src + r * srcStride, sizeof(float) * (size_t)cols);
}

int ln_gather(const float *x, const int32_t *idx, float *out, int64_t outer, int64_t n, int64_t inner, int64_t count) {
  for (int64_t i = 0; i < count; i++)
    if (idx[i] < 0 || idx[i] >= n) return 0;
#pragma omp parallel for collapse(2) schedule(static) if (outer * count * inner >= PAR_MIN)
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < count; i++)
      memcpy(out + (o * count + i) * inner, x + (o * n + idx[i]) * inner, sizeof(float) * (size_t)inner);
  return 1;
}

void ln_segment_sum(const float *x, const int32_t *ids, float *out, int64_t count, int64_t inner, int64_t segments) {
  ln_fill(out, segments * inner, 0.0f);
  /* Rows of one segment may be anywhere, so split the feature axis over threads, never the rows. */
#pragma omp parallel for schedule(static) if (count * inner >= PAR_MIN && inner >= 64)
  for (int64_t j0 = 0; j0 < inner; j0 += 64) {
    const int64_t j1 = j0 + 64 < inner ? j0 + 64 : inner;
    for (int64_t i = 0; i < count; i++) {
      const int32_t s = ids[i];
      if (s < 0 || s >= segments) continue;
      float *dst = out + s * inner;
      const float *src = x + i * inner;
#pragma omp simd
      for (int64_t j = j0; j < j1; j++) dst[j] += src[j];
    }
  }
}

void ln_select(const uint8_t *cond, const float *a, const float *b, float *out, int64_t n, int64_t inner) {
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
  for (int64_t i = 0; i < n; i++) out[i] = cond[i / inner] ? a[i] : b[i];
}

void ln_add_n(const float *const *xs, int count, float *out, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    float s = 0.0f;
    for (int k = 0; k < count; k++) s += xs[k][i];
    out[i] = s;
  }
}

void ln_fill(float *out, int64_t n, float value) {
#pragma omp parallel for simd schedule(static) if (n >= 4 * PAR_MIN)
  for (int64_t i = 0; i < n; i++) out[i] = value;
}

uint32_t ln_dropout_mask(float *out, int64_t n, double rate, float keep, uint32_t state) {
  uint32_t a = state;
  for (int64_t i = 0; i < n; i++) {
    a += 0x6d2b79f5u;
    uint32_t t = a;
    t = (t ^ (t >> 15)) * (t | 1u);
    t ^= t + (t ^ (t >> 7)) * (t | 61u);
    const double u = (double)(t ^ (t >> 14)) / 4294967296.0;
    out[i] = u < rate ? 0.0f : keep;
  }
  return a;
}

/* ---- fused training pieces ---- */

void ln_adamw(const float *p, const float *g, const float *m, const float *v, float *pOut, float *mOut, float *vOut,
              int64_t n, double b1, double b2, float eps, float decay, float stepSize, float biasCorrection2Sqrt) {
  /*
   * 1 - beta in double, then rounded: in float, 1.0f - (float)0.999 is 0.00099998713, 1.3e-5 off
   * 0.001, which biased every second moment (and the update by about 6e-6) against tfjs and PyTorch.
   */
  const float fb1 = (float)b1, fb2 = (float)b2, c1 = (float)(1.0 - b1), c2 = (float)(1.0 - b2);
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    const float gi = g[i];
    const float m2 = m[i] * fb1 + gi * c1;
    const float v2 = v[i] * fb2 + gi * gi * c2;
    const float denom = sqrtf(v2) / biasCorrection2Sqrt + eps;
    mOut[i] = m2;
    vOut[i] = v2;
    pOut[i] = p[i] * decay - (m2 / denom) * stepSize;
  }
}

void ln_layer_norm(const float *x, const float *gamma, const float *beta, float *y, float *xhat, float *rsigma,
                   int64_t rows, int64_t d, float eps) {
#pragma omp parallel for schedule(static) if (rows * d >= PAR_MIN)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * d;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < d; j++) s += xr[j];
    const float mean = s / (float)d;
    float q = 0.0f;
#pragma omp simd reduction(+ : q)
    for (int64_t j = 0; j < d; j++) q += (xr[j] - mean) * (xr[j] - mean);
    const float rs = 1.0f / sqrtf(q / (float)d + eps);
    rsigma[r] = rs;
    float *hr = xhat + r * d, *yr = y + r * d;
#pragma omp simd
    for (int64_t j = 0; j < d; j++) {
      const float h = (xr[j] - mean) * rs;
      hr[j] = h;
      yr[j] = h * gamma[j] + beta[j];
    }
  }
}

void ln_layer_norm_grad(const float *dy, const float *xhat, const float *rsigma, const float *gamma, float *dx,
                        float *dgamma, float *dbeta, int64_t rows, int64_t d) {
  ln_fill(dgamma, d, 0.0f);
  ln_fill(dbeta, d, 0.0f);
  for (int64_t r = 0; r < rows; r++) {
    const float *dyr = dy + r * d, *hr = xhat + r * d;
    float *dxr = dx + r * d;
    float sg = 0.0f, sgh = 0.0f;
#pragma omp simd reduction(+ : sg, sgh)
    for (int64_t j = 0; j < d; j++) {
      const float g = dyr[j] * gamma[j];
      sg += g;
      sgh += g * hr[j];
    }
    const float mg = sg / (float)d, mgh = sgh / (float)d, rs = rsigma[r];
#pragma omp simd
    for (int64_t j = 0; j < d; j++) {
      dxr[j] = (dyr[j] * gamma[j] - mg - hr[j] * mgh) * rs;
      dgamma[j] += dyr[j] * hr[j];
      dbeta[j] += dyr[j];
    }
  }
}

#define GELU_C 0.7978845608028654f
#define GELU_A 0.044715f

typedef struct {
  const float *x, *dy;
  float *out;
} gelu_ctx;

static void gelu_range(void *p, int64_t lo, int64_t hi) {
  const gelu_ctx *c = p;
  VMAP(c->x, c->out, lo, hi, 0.5f * v * (1.0f + vtanh(GELU_C * (v + GELU_A * v * v * v))));
}

static void gelu_grad_range(void *p, int64_t lo, int64_t hi) {
  const gelu_ctx *c = p;
  for (int64_t i = lo; i < hi; i += VL) {
    const int64_t n = hi - i < VL ? hi - i : VL;
    vf x = n == VL ? vload(c->x + i) : vload_part(c->x + i, n);
    vf dy = n == VL ? vload(c->dy + i) : vload_part(c->dy + i, n);
    vf x2 = x * x;
    vf u = GELU_C * x * (1.0f + GELU_A * x2);
    vf t = vtanh(u);
    /* 1 - tanh^2 u as 4e / (1 + e)^2 with e = exp(-2|u|): 1 - t * t cancels once t rounds to +-1 */
    vf e = vexp(-2.0f * vsel(u < 0.0f, -u, u));
    vf sech2 = 4.0f * e / ((1.0f + e) * (1.0f + e));
    vf du = GELU_C * (1.0f + 3.0f * GELU_A * x2);
    vf dx = dy * (0.5f * (1.0f + t) + 0.5f * x * sech2 * du);
    if (n == VL) vstore(c->out + i, dx);
    else vstore_part(c->out + i, dx, n);
  }
}

void ln_gelu(const float *x, float *y, int64_t n) {
  gelu_ctx c = {x, NULL, y};
  parallel_ranges(n, gelu_range, &c);
}

void ln_gelu_grad(const float *x, const float *dy, float *dx, int64_t n) {
  gelu_ctx c = {x, dy, dx};
  parallel_ranges(n, gelu_grad_range, &c);
}

/* ---- low-memory row attention (SeNER's BiSPA, UTC-IE's axis attention) ----
 * softmax(q_r k_r^T) times a dropout mask times v_r for every row r of [R, C, .] operands, one row
 * per thread with [C, C] scratch of its own: the [R, C, C] scores, probabilities and mask never
 * exist. The backward pass recomputes the probabilities of a row from q and k, and the mask from
 * its counter, so nothing but the inputs is kept between the passes.
 */

static inline uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

uint32_t ln_dropout_row_key(uint32_t seed, int64_t row) { return fmix32(seed ^ fmix32((uint32_t)row * 0x9e3779b9u + 0x7f4a7c15u)); }

uint32_t ln_dropout_threshold(double rate) { return rate <= 0 ? 0u : (uint32_t)ceil(rate * 16777216.0); }

/* m[j] = keep, or 0 where the 24 top bits of the cell's hash fall below the threshold (u < rate). */
static void dropout_row(uint32_t rowKey, int64_t first, int64_t n, uint32_t thr, float keep, float *m) {
#pragma omp simd
  for (int64_t j = 0; j < n; j++) {
    const uint32_t h = fmix32(rowKey ^ ((uint32_t)(first + j) * 0x9e3779b9u));
    m[j] = (h >> 8) < thr ? 0.0f : keep;
  }
}

/*
 * RoPE by column index and a scale, written into rows of stride ld (out[2t] = x[2t] cos - x[2t+1] sin,
 * out[2t+1] = x[2t+1] cos + x[2t] sin, as src/nn/rope.ts), and its transpose for the gradient.
 */
static void rope_rows(const float *x, const float *cosT, const float *sinT, float *out, int64_t C, int64_t c, int64_t ld,
                      float scale) {
  for (int64_t i = 0; i < C; i++) {
    const float *xi = x + i * c, *co = cosT + i * c, *si = sinT + i * c;
    float *o = out + i * ld;
    for (int64_t t = 0; t + 1 < c; t += 2) {
      o[t] = (xi[t] * co[t] - xi[t + 1] * si[t]) * scale;
      o[t + 1] = (xi[t + 1] * co[t + 1] + xi[t] * si[t + 1]) * scale;
    }
  }
}

static void rope_rows_grad(const float *d, int64_t ld, const float *cosT, const float *sinT, float *dx, int64_t C, int64_t c,
                           float scale) {
  for (int64_t i = 0; i < C; i++) {
    const float *di = d + i * ld, *co = cosT + i * c, *si = sinT + i * c;
    float *o = dx + i * c;
    for (int64_t t = 0; t + 1 < c; t += 2) {
      o[t] = (di[t] * co[t] + di[t + 1] * si[t + 1]) * scale;
      o[t + 1] = (di[t + 1] * co[t + 1] - di[t] * si[t]) * scale;
    }
  }
}

/* q_a = [RoPE(q_r) scale, 1] and k_a = [RoPE(k_r), key bias] of one row, [C, c + 1] each; false when no key is valid. */
static int row_operands(const float *qr, const float *kr, const float *cosT, const float *sinT, const float *validRow, float *qa,
                        float *ka, int64_t C, int64_t c, float scale) {
  int any = 0;
  for (int64_t j = 0; j < C; j++) any |= validRow[j] > 0.5f;
  if (!any) return 0;
  const int64_t a = c + 1;
  rope_rows(qr, cosT, sinT, qa, C, c, a, scale);
  rope_rows(kr, cosT, sinT, ka, C, c, a, 1.0f);
  for (int64_t j = 0; j < C; j++) {
    qa[j * a + c] = 1.0f;
    ka[j * a + c] = validRow[j] > 0.5f ? 0.0f : LN_INVALID_KEY;
  }
  return 1;
}

int ln_row_attention(const float *q, const float *k, const float *v, const float *cosT, const float *sinT, const float *valid,
                     float *out, int64_t R, int64_t C, int64_t c, float scale, double rate, uint32_t seed) {
  if (R == 0 || C == 0 || c == 0) return 1;
  const int64_t a = c + 1;
  const uint32_t thr = ln_dropout_threshold(rate);
  const float keep = rate > 0 ? (float)(1.0 / (1.0 - rate)) : 1.0f;
  sigset_t old;
  int ok = 1;
  block_signals(&old);
#pragma omp parallel if (R > 1 && omp_get_max_threads() > 1)
  {
    /* s: scores then probabilities [C, C]; qa, ka [C, a]; m: one row of the mask */
    float *s = malloc(sizeof(float) * (size_t)(C * C + 2 * C * a + C));
    if (s == NULL) ok = 0;
#pragma omp for schedule(dynamic, 4)
    for (int64_t r = 0; r < R; r++) {
      if (s == NULL) continue;
      float *qa = s + C * C, *ka = qa + C * a, *m = ka + C * a;
      float *outr = out + r * C * c;
      if (!row_operands(q + r * C * c, k + r * C * c, cosT, sinT, valid + r * C, qa, ka, C, c, scale)) {
        memset(outr, 0, sizeof(float) * (size_t)(C * c));
        continue;
      }
      if (dnnl_sgemm('N', 'T', C, C, a, 1.0f, qa, a, ka, a, 0.0f, s, C) != dnnl_success) ok = 0;
      const uint32_t key = ln_dropout_row_key(seed, r);
      for (int64_t i = 0; i < C; i++) {
        float *si = s + i * C;
        softmax_row(si, si, C, 0);
        if (thr > 0) {
          dropout_row(key, i * C, C, thr, keep, m);
#pragma omp simd
          for (int64_t j = 0; j < C; j++) si[j] *= m[j];
        }
      }
      if (dnnl_sgemm('N', 'N', C, c, C, 1.0f, s, C, v + r * C * c, c, 0.0f, outr, c) != dnnl_success) ok = 0;
    }
    free(s);
  }
  restore_signals(&old);
  return ok;
}

int ln_row_attention_grad(const float *q, const float *k, const float *v, const float *cosT, const float *sinT,
                          const float *valid, const float *dy, float *dq, float *dk, float *dv, int64_t R, int64_t C, int64_t c,
                          float scale, double rate, uint32_t seed) {
  if (R == 0 || C == 0 || c == 0) return 1;
  const int64_t a = c + 1;
  const uint32_t thr = ln_dropout_threshold(rate);
  const float keep = rate > 0 ? (float)(1.0 / (1.0 - rate)) : 1.0f;
  sigset_t old;
  int ok = 1;
  block_signals(&old);
#pragma omp parallel if (R > 1 && omp_get_max_threads() > 1)
  {
    /* p: probabilities, g: d(P M) then dS, pm: P M, all [C, C]; qa, ka, dqa, dka [C, a]; m: one row of the mask */
    float *p = malloc(sizeof(float) * (size_t)(3 * C * C + 4 * C * a + C));
    if (p == NULL) ok = 0;
#pragma omp for schedule(dynamic, 4)
    for (int64_t r = 0; r < R; r++) {
      if (p == NULL) continue;
      float *g = p + C * C, *pm = g + C * C, *qa = pm + C * C, *ka = qa + C * a, *dqa = ka + C * a, *dka = dqa + C * a;
      float *m = dka + C * a;
      const float *vr = v + r * C * c, *dyr = dy + r * C * c;
      float *dqr = dq + r * C * c, *dkr = dk + r * C * c, *dvr = dv + r * C * c;
      if (!row_operands(q + r * C * c, k + r * C * c, cosT, sinT, valid + r * C, qa, ka, C, c, scale)) {
        /* the row's output is 0 whatever its inputs */
        memset(dqr, 0, sizeof(float) * (size_t)(C * c));
        memset(dkr, 0, sizeof(float) * (size_t)(C * c));
        memset(dvr, 0, sizeof(float) * (size_t)(C * c));
        continue;
      }
      if (dnnl_sgemm('N', 'T', C, C, a, 1.0f, qa, a, ka, a, 0.0f, p, C) != dnnl_success) ok = 0;
      if (dnnl_sgemm('N', 'T', C, C, c, 1.0f, dyr, c, vr, c, 0.0f, g, C) != dnnl_success) ok = 0;
      const uint32_t key = ln_dropout_row_key(seed, r);
      for (int64_t i = 0; i < C; i++) {
        float *pi = p + i * C, *gi = g + i * C, *pmi = pm + i * C;
        softmax_row(pi, pi, C, 0);
        if (thr > 0) dropout_row(key, i * C, C, thr, keep, m);
        else
          for (int64_t j = 0; j < C; j++) m[j] = 1.0f;
        /* dS = P (G M - rowsum(G M P)) */
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < C; j++) {
          pmi[j] = pi[j] * m[j];
          sum += gi[j] * pmi[j];
        }
#pragma omp simd
        for (int64_t j = 0; j < C; j++) gi[j] = pi[j] * (gi[j] * m[j] - sum);
      }
      if (dnnl_sgemm('T', 'N', C, c, C, 1.0f, pm, C, dyr, c, 0.0f, dvr, c) != dnnl_success) ok = 0;
      if (dnnl_sgemm('N', 'N', C, a, C, 1.0f, g, C, ka, a, 0.0f, dqa, a) != dnnl_success) ok = 0;
      if (dnnl_sgemm('T', 'N', C, a, C, 1.0f, g, C, qa, a, 0.0f, dka, a) != dnnl_success) ok = 0;
      rope_rows_grad(dqa, a, cosT, sinT, dqr, C, c, scale);
      rope_rows_grad(dka, a, cosT, sinT, dkr, C, c, 1.0f);
    }
    free(p);
  }
  restore_signals(&old);
  return ok;
}
