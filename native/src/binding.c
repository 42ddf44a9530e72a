/*
 * N-API entry points of the native engine. Each checks its arguments (types, ranks, and that every
 * array holds at least the elements the kernel will touch) and throws a JS error otherwise, so the
 * kernels in kernels.c can trust their inputs. Arrays are borrowed, never copied or kept.
 */
#define NAPI_VERSION 8
#include <dnnl.h>
#include <node_api.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kernels.h"

#define MAX_ARGS 16

typedef struct {
  napi_env env;
  napi_value argv[MAX_ARGS];
  size_t argc;
  const char *name;
  int failed;
} call_t;

static int fail(call_t *c, const char *what) {
  if (!c->failed) {
    char msg[256];
    snprintf(msg, sizeof msg, "longner-native %s: %s", c->name, what);
    napi_throw_range_error(c->env, NULL, msg);
  }
  c->failed = 1;
  return 0;
}

static int start(call_t *c, napi_env env, napi_callback_info info, const char *name, size_t want) {
  c->env = env;
  c->name = name;
  c->failed = 0;
  c->argc = MAX_ARGS;
  if (napi_get_cb_info(env, info, &c->argc, c->argv, NULL, NULL) != napi_ok) return fail(c, "bad call");
  if (c->argc < want) return fail(c, "too few arguments");
  return 1;
}

static void *typed(call_t *c, size_t i, napi_typedarray_type want, size_t *length) {
  if (c->failed) return NULL;
  bool is = false;
  napi_is_typedarray(c->env, c->argv[i], &is);
  if (!is) {
    fail(c, "expected a typed array argument");
    return NULL;
  }
  napi_typedarray_type type;
  void *data = NULL;
  napi_value buffer;
  size_t offset;
  napi_get_typedarray_info(c->env, c->argv[i], &type, length, &data, &buffer, &offset);
  if (type != want) {
    fail(c, "typed array of the wrong element type");
    return NULL;
  }
  return data;
}

/*
 * A float array that must hold at least `need` elements. Needs are products of caller-supplied
 * numbers, computed in double so that they cannot wrap around as int64 products can (num() and
 * dims() bound every factor by 2^53). An empty array has a NULL data pointer, so whether typed()
 * succeeded is told by c->failed, never by the pointer.
 */
static void *typed_at_least(call_t *c, size_t i, napi_typedarray_type type, double need, const char *tooShort) {
  size_t len = 0;
  void *p = typed(c, i, type, &len);
  if (!c->failed && (double)len < need) {
    fail(c, tooShort);
    return NULL;
  }
  return p;
}

static float *f32(call_t *c, size_t i, double need) {
  return typed_at_least(c, i, napi_float32_array, need, "array shorter than the shape it is used with");
}

static int32_t *i32(call_t *c, size_t i, double need) {
  return typed_at_least(c, i, napi_int32_array, need, "index array shorter than expected");
}

/* A size, count or index: finite and at most 2^53 in magnitude, so products of three stay finite doubles. */
static int64_t num(call_t *c, size_t i) {
  if (c->failed) return 0;
  double d = 0;
  if (napi_get_value_double(c->env, c->argv[i], &d) != napi_ok) return fail(c, "expected a number argument"), 0;
  if (!(d >= -9007199254740992.0 && d <= 9007199254740992.0)) return fail(c, "number out of range"), 0;
  return (int64_t)d;
}

static double real(call_t *c, size_t i) {
  if (c->failed) return 0;
  double d = 0;
  if (napi_get_value_double(c->env, c->argv[i], &d) != napi_ok) fail(c, "expected a number argument");
  return d;
}

static int nonneg(call_t *c, int64_t v) { return v >= 0 || fail(c, "negative size"); }

/* A JS array of at most `max` integers; returns its length or -1. */
static int int_list(call_t *c, size_t i, int64_t *out, uint32_t max) {
  if (c->failed) return -1;
  uint32_t len = 0;
  bool is = false;
  napi_is_array(c->env, c->argv[i], &is);
  if (!is || napi_get_array_length(c->env, c->argv[i], &len) != napi_ok) return fail(c, "expected an array of dims"), -1;
  if (len > max) return fail(c, "too many dims"), -1;
  for (uint32_t k = 0; k < len; k++) {
    napi_value v;
    double d;
    napi_get_element(c->env, c->argv[i], k, &v);
    if (napi_get_value_double(c->env, v, &d) != napi_ok) return fail(c, "expected numbers in a dims array"), -1;
    if (!(d >= -9007199254740992.0 && d <= 9007199254740992.0)) return fail(c, "number out of range"), -1;
    out[k] = (int64_t)d;
  }
  return (int)len;
}

/* A shape, permutation, begin...: at most LN_MAX_RANK integers. */
static int dims(call_t *c, size_t i, int64_t *out) { return int_list(c, i, out, LN_MAX_RANK); }

/* In double, like every size check here (see f32). */
static double product(const int64_t *s, int rank) {
  double p = 1;
  for (int d = 0; d < rank; d++) p *= (double)s[d];
  return p;
}

static napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

/* gemm(a, b, c, batchA, batchB, m, n, k, transA, transB) */
static napi_value Gemm(napi_env env, napi_callback_info info) {
  call_t c;
  if (!start(&c, env, info, "gemm", 10)) return NULL;
  int64_t bA = num(&c, 3), bB = num(&c, 4), m = num(&c, 5), n = num(&c, 6), k = num(&c, 7);
  int tA = (int)num(&c, 8), tB = (int)num(&c, 9);
  if (!nonneg(&c, m) || !nonneg(&c, n) || !nonneg(&c, k)) return NULL;
  if (bA < 1 || bB < 1 || (bA != bB && bA != 1 && bB != 1)) return fail(&c, "batch sizes do not broadcast"), NULL;
  int64_t batch = bA > bB ? bA : bB;
  const float *a = f32(&c, 0, (double)bA * m * k), *b = f32(&c, 1, (double)bB * k * n);
  float *out = f32(&c, 2, (double)batch * m * n);
  if (c.failed) return NULL;
  if (!ln_gemm(a, b, out, bA, bB, m, n, k, tA, tB)) return fail(&c, "dnnl_sgemm failed"), NULL;
  return undefined(env);
}

/* The arguments binary and compare share: an op code, two strided inputs and the output shape. */
typedef struct {
  int64_t op, sa[LN_MAX_RANK], sb[LN_MAX_RANK], shape[LN_MAX_RANK];
  int rank;
  const float *a, *b;
  double total;
} broadcast_t;

/* op, a, aStrides, b, bStrides, (out), shape at arguments 0-4 and 6; reads the inputs' arrays. */
static int broadcast_args(call_t *c, int64_t opCount, broadcast_t *p) {
  p->op = num(c, 0);
  int ra = dims(c, 2, p->sa), rb = dims(c, 4, p->sb);
  p->rank = dims(c, 6, p->shape);
  if (c->failed) return 0;
  if (p->op < 0 || p->op >= opCount) return fail(c, "unknown op");
  if (ra != p->rank || rb != p->rank) return fail(c, "strides and shape differ in rank");
  /* the last element each input is read at, in double like every size check here (see f32) */
  double lastA = 0, lastB = 0;
  for (int d = 0; d < p->rank; d++) {
    if (p->shape[d] < 0 || p->sa[d] < 0 || p->sb[d] < 0) return fail(c, "negative dim or stride");
    if (p->shape[d] == 0) lastA = lastB = -1;
    if (lastA >= 0) lastA += (double)(p->shape[d] - 1) * p->sa[d];
    if (lastB >= 0) lastB += (double)(p->shape[d] - 1) * p->sb[d];
  }
  p->total = product(p->shape, p->rank);
  p->a = f32(c, 1, lastA + 1);
  p->b = f32(c, 3, lastB + 1);
  return !c->failed;
}

/* binary(op, a, aStrides, b, bStrides, out, shape) */
static napi_value Binary(napi_env env, napi_callback_info info) {
  call_t c;
  broadcast_t p;
  if (!start(&c, env, info, "binary", 7) || !broadcast_args(&c, BIN_COUNT, &p)) return NULL;
  float *out = f32(&c, 5, p.total);
  if (c.failed) return NULL;
  if (p.total > 0) ln_binary((binary_op)p.op, p.a, p.sa, p.b, p.sb, out, p.shape, p.rank);
  return undefined(env);
}

/* compare(op, a, aStrides, b, bStrides, out, shape): out is a Uint8Array */
static napi_value Compare(napi_env env, napi_callback_info info) {
  call_t c;
  broadcast_t p;
  if (!start(&c, env, info, "compare", 7) || !broadcast_args(&c, CMP_COUNT, &p)) return NULL;
  size_t nOut = 0;
  uint8_t *out = typed(&c, 5, napi_uint8_array, &nOut);
  if (c.failed) return NULL;
  if ((double)nOut < p.total) return fail(&c, "output shorter than the shape"), NULL;
  if (p.total > 0) ln_compare((compare_op)p.op, p.a, p.sa, p.b, p.sb, out, p.shape, p.rank);
  return undefined(env);
}

/* logical(isOr, a, b, out): byte arrays of one length */
static napi_value Logical(napi_env env, napi_callback_info info) {
  call_t c;
  if (!start(&c, env, info, "logical", 4)) return NULL;
  int isOr = (int)num(&c, 0);
  size_t na = 0, nb = 0, no = 0;
  const uint8_t *a = typed(&c, 1, napi_uint8_array, &na);
  const uint8_t *b = typed(&c, 2, napi_uint8_array, &nb);
  uint8_t *out = typed(&c, 3, napi_uint8_array, &no);
  if (c.failed) return NULL;
  if (nb < na || no < na) return fail(&c, "arrays of different lengths"), NULL;
  ln_logical(isOr, a, b, out, (int64_t)na);
  return undefined(env);
}

/* unary(op, x, out) */
static napi_value Unary(napi_env env, napi_callback_info info) {
  call_t c;
  if (!start(&c, env, info, "unary", 3)) return NULL;
  int64_t op = num(&c, 0);
  size_t n = 0;
  const float *x = typed(&c, 1, napi_float32_array, &n);
  float *out = f32(&c, 2, (int64_t)n);
  if (c.failed) return NULL;
  if (op < 0 || op >= UN_COUNT) return fail(&c, "unknown op"), NULL;
  ln_unary((unary_op)op, x, out, (int64_t)n);
  return undefined(env);
}

/* clip(x, out, lo, hi) */
static napi_value Clip(napi_env env, napi_callback_info info) {
  call_t c;
  if (!start(&c, env, info, "clip", 4)) return NULL;
  size_t n = 0;
  const float *x = typed(&c, 0, napi_float32_array, &n);
  float *out = f32(&c, 1, (double)n);
  double lo = real(&c, 2), hi = real(&c, 3);
  if (c.failed) return NULL;
  if (!(lo <= hi)) return fail(&c, "lo must not be above hi"), NULL;
  ln_clip(x, out, (int64_t)n, (float)lo, (float)hi);
  return undefined(env);
}

/* reduce(op, x, out, outer, r, inner) */
static napi_value Reduce(napi_env env, napi_callback_info info) {
  call_t c;
  if (!start(&c, env, info, "reduce", 6)) return NULL;
  int64_t op = num(&c, 0), outer = num(&c, 3), r = num(&c, 4), inner = num(&c, 5);
  if (!nonneg(&c, outer) || !nonneg(&c, r) || !nonneg(&c, inner)) return NULL;
  const float *x = f32(&c, 1, (double)outer * r * inner);
  float *out = f32(&c, 2, (double)outer * inner);
  if (c.failed) return NULL;
  if (op < 0 || op >= RED_COUNT) return fail(&c, "unknown op"), NULL;
  ln_reduce((reduce_op)op, x, out, outer, r, inner);
  return undefined(env);
}

/* argMinMax(x, out, outer, r, inner, isMin) */
static napi_value ArgMinMax(napi_env env, napi_callback_info info) {
  call_t c;
  if (!start(&c, env, info, "argMinMax", 6)) return NULL;
  int64_t outer = num(&c, 2), r = num(&c, 3), inner = num(&c, 4);
  int isMin = (int)num(&c, 5);
  if (!nonneg(&c, outer) || !nonneg(&c, inner)) return NULL;
  if (r < 1) return fail(&c, "empty axis"), NULL;
  const float *x = f32(&c, 0, (double)outer * r * inner);
  int32_t *out = i32(&c, 1, (double)outer * inner);
  if (c.failed) return NULL;
  ln_argmax(x, out, outer, r, inner, isMin);
  return undefined(env);
}

/* softmax(x, out, rows, cols, log) */
static napi_value Softmax(napi_env env, napi_callback_info info) {
  call_t c;
  if (!start(&c, env, info, "softmax", 5)) return NULL;
  int64_t rows = num(&c, 2), cols = num(&c, 3);
  int lg = (int)num(&c, 4);
  if (!nonneg(&c, rows) || !nonneg(&c, cols)) return NULL;
  const float *x = f32(&c, 0, (double)rows * cols);
  float *out = f32(&c, 1, (double)rows * cols);
  if (c.failed) return NULL;
  ln_softmax(x, out, rows, cols, lg);
  return undefined(env);
}

/* softmaxGrad(p, dp, mask | null, ds, rows, cols) */
static napi_value SoftmaxGrad(napi_env env, napi_callback_info info) {
  call_t c;
  if (!start(&c, env, info, "softmaxGrad", 6)) return NULL;
  int64_t rows = num(&c, 4), cols = num(&c, 5);
  if (!nonneg(&c, rows) || !nonneg(&c, cols)) return NULL;
  const double n = (double)rows * cols;
  const float *p = f32(&c, 0, n), *dp = f32(&c, 1, n), *m = NULL;
  napi_valuetype maskType = napi_undefined;
  if (!c.failed) napi_typeof(env, c.argv[2], &maskType);
  if (maskType != napi_null) m = f32(&c, 2, n);
  float *ds = f32(&c, 3, n);
  if (c.failed) return NULL;
  ln_softmax_grad(p, dp, m, ds, rows, cols);
  return undefined(env);
}

/* transpose(x, out, shape, perm) */
static napi_value Transpose(napi_env env, napi_callback_info info) {
  call_t c;
  if (!start(&c, env, info, "transpose", 4)) return NULL;
  int64_t shape[LN_MAX_RANK], perm[LN_MAX_RANK];
  int rank = dims(&c, 2, shape), rp = dims(&c, 3, perm);
  if (c.failed) return NULL;
  if (rank != rp || rank < 1) return fail(&c, "perm and shape differ in rank"), NULL;
  int seen[LN_MAX_RANK] = {0};
  for (int d = 0; d < rank; d++) {
    if (perm[d] < 0 || perm[d] >= rank || seen[perm[d]]++) return fail(&c, "not a permutation"), NULL;
    if (shape[d] < 0) return fail(&c, "negative dim"), NULL;
  }
  double total = product(shape, rank);
  const float *x = f32(&c, 0, total);
  float *out = f32(&c, 1, total);
  if (c.failed) return NULL;
  ln_transpose(x, out, shape, perm, rank);
  return undefined(env);
}

/* slice(x, out, shape, begin, size) */
static napi_value Slice(napi_env env, napi_callback_info info) {
  call_t c;
  if (!start(&c, env, info, "slice", 5)) return NULL;
  int64_t shape[LN_MAX_RANK], begin[LN_MAX_RANK], size[LN_MAX_RANK];
  int rank = dims(&c, 2, shape), rb = dims(&c, 3, begin), rs = dims(&c, 4, size);
  if (c.failed) return NULL;
  if (rank != rb || rank != rs || rank < 1) return fail(&c, "begin, size and shape differ in rank"), NULL;
  for (int d = 0; d < rank; d++)
    if (begin[d] < 0 || size[d] < 0 || begin[d] + size[d] > shape[d]) return fail(&c, "slice outside the input"), NULL;
  const float *x = f32(&c, 0, product(shape, rank));
  float *out = f32(&c, 1, product(size, rank));
  if (c.failed) return NULL;
  ln_slice(x, out, shape, begin, size, rank);
  return undefined(env);
}

/* pad(x, out, shape, before, after, value) */
static napi_value Pad(napi_env env, napi_callback_info info) {
  call_t c;
  if (!start(&c, env, info, "pad", 6)) return NULL;
  int64_t shape[LN_MAX_RANK], before[LN_MAX_RANK], after[LN_MAX_RANK], outShape[LN_MAX_RANK];
  int rank = dims(&c, 2, shape), rb = dims(&c, 3, before), ra = dims(&c, 4, after);
  float value = (float)real(&c, 5);
  if (c.failed) return NULL;
  if (rank != rb || rank != ra || rank < 1) return fail(&c, "paddings and shape differ in rank"), NULL;
  for (int d = 0; d < rank; d++) {
    if (before[d] < 0 || after[d] < 0 || shape[d] < 0) return fail(&c, "negative padding"), NULL;
    outShape[d] = shape[d] + before[d] + after[d];
  }
  const float *x = f32(&c, 0, product(shape, rank));
  float *out = f32(&c, 1, product(outShape, rank));
  if (c.failed) return NULL;
  ln_pad(x, out, shape, before, after, rank, value);
  return undefined(env);
}

/* copyRows(src, srcOffset, srcStride, dst, dstOffset, dstStride, rows, cols) */
static napi_value CopyRows(napi_env env, napi_callback_info info) {
  call_t c;
  if (!start(&c, env, info, "copyRows", 8)) return NULL;
  int64_t so = num(&c, 1), ss = num(&c, 2), dOff = num(&c, 4), ds = num(&c, 5), rows = num(&c, 6), cols = num(&c, 7);
  if (!nonneg(&c, so) || !nonneg(&c, ss) || !nonneg(&c, dOff) || !nonneg(&c, ds) || !nonneg(&c, rows) || !nonneg(&c, cols))
    return NULL;
  double needS = rows == 0 ? 0 : (double)so + (double)(rows - 1) * ss + cols;
  double needD = rows == 0 ? 0 : (double)dOff + (double)(rows - 1) * ds + cols;
  const float *src = f32(&c, 0, needS);
  float *dst = f32(&c, 3, needD);
  if (c.failed) return NULL;
  if (rows > 0 && cols > 0) ln_copy_rows(src + so, ss, dst + dOff, ds, rows, cols);
  return undefined(env);
}

/* gather(x, indices, out, outer, n, inner) */
static napi_value Gather(napi_env env, napi_callback_info info) {
  call_t c;
  if (!start(&c, env, info, "gather", 6)) return NULL;
  int64_t outer = num(&c, 3), n = num(&c, 4), inner = num(&c, 5);
  if (!nonneg(&c, outer) || !nonneg(&c, n) || !nonneg(&c, inner)) return NULL;
  size_t count = 0;
  const int32_t *idx = typed(&c, 1, napi_int32_array, &count);
  const float *x = f32(&c, 0, (double)outer * n * inner);
  float *out = f32(&c, 2, (double)outer * (double)count * inner);
  if (c.failed) return NULL;
  if (!ln_gather(x, idx, out, outer, n, inner, (int64_t)count)) return fail(&c, "index out of range"), NULL;
  return undefined(env);
}

/* segmentSum(x, ids, out, inner, segments) */
static napi_value SegmentSum(napi_env env, napi_callback_info info) {
  call_t c;
  if (!start(&c, env, info, "segmentSum", 5)) return NULL;
  int64_t inner = num(&c, 3), segments = num(&c, 4);
  if (!nonneg(&c, inner) || !nonneg(&c, segments)) return NULL;
  size_t count = 0;
  const int32_t *ids = typed(&c, 1, napi_int32_array, &count);
  const float *x = f32(&c, 0, (double)count * inner);
  float *out = f32(&c, 2, (double)segments * inner);
  if (c.failed) return NULL;
  ln_segment_sum(x, ids, out, (int64_t)count, inner, segments);
  return undefined(env);
}

/* select(cond, a, b, out, inner): cond holds one byte per `inner` elements */
static napi_value Select(napi_env env, napi_callback_info info) {
  call_t c;
  if (!start(&c, env, info, "select", 5)) return NULL;
  int64_t inner = num(&c, 4);
  if (inner < 1) return fail(&c, "inner must be positive"), NULL;
  size_t nc = 0, n = 0;
  const uint8_t *cond = typed(&c, 0, napi_uint8_array, &nc);
  const float *a = typed(&c, 1, napi_float32_array, &n);
  const float *b = f32(&c, 2, (int64_t)n);
  float *out = f32(&c, 3, (int64_t)n);
  if (c.failed) return NULL;
  if ((double)nc * inner < (double)n) return fail(&c, "condition shorter than the values"), NULL;
  ln_select(cond, a, b, out, (int64_t)n, inner);
  return undefined(env);
}

/* addN(arrays, out) */
static napi_value AddN(napi_env env, napi_callback_info info) {
  call_t c;
  if (!start(&c, env, info, "addN", 2)) return NULL;
  size_t n = 0;
  float *out = typed(&c, 1, napi_float32_array, &n);
  uint32_t count = 0;
  bool is = false;
  if (c.failed) return NULL;
  napi_is_array(env, c.argv[0], &is);
  if (!is || napi_get_array_length(env, c.argv[0], &count) != napi_ok || count < 1 || count > 64)
    return fail(&c, "expected 1 to 64 arrays"), NULL;
  const float *xs[64];
  for (uint32_t k = 0; k < count; k++) {
    napi_value v;
    napi_get_element(env, c.argv[0], k, &v);
    c.argv[MAX_ARGS - 1] = v;
    xs[k] = f32(&c, MAX_ARGS - 1, (int64_t)n);
    if (c.failed) return NULL;
  }
  ln_add_n(xs, (int)count, out, (int64_t)n);
  return undefined(env);
}

/* fill(out, value) */
static napi_value Fill(napi_env env, napi_callback_info info) {
  call_t c;
  if (!start(&c, env, info, "fill", 2)) return NULL;
  size_t n = 0;
  float *out = typed(&c, 0, napi_float32_array, &n);
  float value = (float)real(&c, 1);
  if (c.failed) return NULL;
  ln_fill(out, (int64_t)n, value);
  return undefined(env);
}

/* dropoutMask(out, rate, keep, state) -> the state after out.length draws */
static napi_value DropoutMask(napi_env env, napi_callback_info info) {
  call_t c;
  if (!start(&c, env, info, "dropoutMask", 4)) return NULL;
  size_t n = 0;
  float *out = typed(&c, 0, napi_float32_array, &n);
  double rate = real(&c, 1), keep = real(&c, 2), state = real(&c, 3);
  if (c.failed) return NULL;
  if (!(rate >= 0.0 && rate < 1.0)) return fail(&c, "rate must be in [0, 1)"), NULL;
  if (!(state >= 0.0 && state <= 4294967295.0)) return fail(&c, "state must be a uint32"), NULL;
  napi_value result;
  napi_create_uint32(env, ln_dropout_mask(out, (int64_t)n, rate, (float)keep, (uint32_t)state), &result);
  return result;
}

/* adamw(p, g, m, v, pOut, mOut, vOut, b1, b2, eps, decay, stepSize, biasCorrection2Sqrt) */
static napi_value AdamW(napi_env env, napi_callback_info info) {
  call_t c;
  if (!start(&c, env, info, "adamw", 13)) return NULL;
  size_t n = 0;
  const float *p = typed(&c, 0, napi_float32_array, &n);
  const float *g = f32(&c, 1, (int64_t)n), *m = f32(&c, 2, (int64_t)n), *v = f32(&c, 3, (int64_t)n);
  float *pOut = f32(&c, 4, (int64_t)n), *mOut = f32(&c, 5, (int64_t)n), *vOut = f32(&c, 6, (int64_t)n);
  double b1 = real(&c, 7), b2 = real(&c, 8);
  float eps = (float)real(&c, 9), decay = (float)real(&c, 10);
  float stepSize = (float)real(&c, 11), bc2 = (float)real(&c, 12);
  if (c.failed) return NULL;
  ln_adamw(p, g, m, v, pOut, mOut, vOut, (int64_t)n, b1, b2, eps, decay, stepSize, bc2);
  return undefined(env);
}

/* The shared checks of the window products: starts within x of p rows, n rows per window. */
#define MAX_TAPS 16

static int window_args(call_t *c, size_t startsArg, int64_t *starts, int64_t p, int64_t n, int *taps) {
  int k = int_list(c, startsArg, starts, MAX_TAPS);
  if (c->failed) return 0;
  if (k < 1) return fail(c, "at least one window");
  if (p < 0 || n < 0) return fail(c, "negative size");
  for (int t = 0; t < k; t++)
    if (starts[t] < 0 || starts[t] + n > p) return fail(c, "window outside the input");
  *taps = k;
  return 1;
}

/* windowGemm(x, w, out, starts, n, cin, cout): x [p, cin] */
static napi_value WindowGemm(napi_env env, napi_callback_info info) {
  call_t c;
  if (!start(&c, env, info, "windowGemm", 7)) return NULL;
  int64_t starts[MAX_TAPS], n = num(&c, 4), cin = num(&c, 5), cout = num(&c, 6);
  size_t xl = 0;
  const float *x = typed(&c, 0, napi_float32_array, &xl);
  if (c.failed || !nonneg(&c, n) || !nonneg(&c, cout)) return NULL;
  if (cin < 1) return fail(&c, "cin must be positive"), NULL;
  int taps = 0;
  if (!window_args(&c, 3, starts, (int64_t)xl / cin, n, &taps)) return NULL;
  const float *w = f32(&c, 1, (double)taps * cin * cout);
  float *out = f32(&c, 2, (double)n * cout);
  if (c.failed) return NULL;
  if (!ln_window_gemm(x, w, out, starts, taps, n, cin, cout)) return fail(&c, "dnnl_sgemm failed"), NULL;
  return undefined(env);
}

/* windowGemmGradInput(dOut, w, dx, starts, n, p, cin, cout) */
static napi_value WindowGemmGradInput(napi_env env, napi_callback_info info) {
  call_t c;
  if (!start(&c, env, info, "windowGemmGradInput", 8)) return NULL;
  int64_t starts[MAX_TAPS], n = num(&c, 4), p = num(&c, 5), cin = num(&c, 6), cout = num(&c, 7);
  if (c.failed || !nonneg(&c, n) || !nonneg(&c, p) || !nonneg(&c, cin) || !nonneg(&c, cout)) return NULL;
  int taps = 0;
  if (!window_args(&c, 3, starts, p, n, &taps)) return NULL;
  const float *dOut = f32(&c, 0, (double)n * cout), *w = f32(&c, 1, (double)taps * cin * cout);
  float *dx = f32(&c, 2, (double)p * cin);
  if (c.failed) return NULL;
  if (!ln_window_gemm_grad_input(dOut, w, dx, starts, taps, n, p, cin, cout)) return fail(&c, "dnnl_sgemm failed"), NULL;
  return undefined(env);
}

/* windowGemmGradWeights(x, dOut, dw, starts, n, cin, cout): x [p, cin] */
static napi_value WindowGemmGradWeights(napi_env env, napi_callback_info info) {
  call_t c;
  if (!start(&c, env, info, "windowGemmGradWeights", 7)) return NULL;
  int64_t starts[MAX_TAPS], n = num(&c, 4), cin = num(&c, 5), cout = num(&c, 6);
  size_t xl = 0;
  const float *x = typed(&c, 0, napi_float32_array, &xl);
  if (c.failed || !nonneg(&c, n) || !nonneg(&c, cout)) return NULL;
  if (cin < 1) return fail(&c, "cin must be positive"), NULL;
  int taps = 0;
  if (!window_args(&c, 3, starts, (int64_t)xl / cin, n, &taps)) return NULL;
  const float *dOut = f32(&c, 1, (double)n * cout);
  float *dw = f32(&c, 2, (double)taps * cin * cout);
  if (c.failed) return NULL;
  if (!ln_window_gemm_grad_weights(x, dOut, dw, starts, taps, n, cin, cout)) return fail(&c, "dnnl_sgemm failed"), NULL;
  return undefined(env);
}

/* layerNorm(x, gamma, beta, y, xhat, rsigma, rows, d, eps) */
static napi_value LayerNorm(napi_env env, napi_callback_info info) {
  call_t c;
  if (!start(&c, env, info, "layerNorm", 9)) return NULL;
  int64_t rows = num(&c, 6), d = num(&c, 7);
  float eps = (float)real(&c, 8);
  if (!nonneg(&c, rows) || d < 1) return fail(&c, "bad rows or features"), NULL;
  const double rd = (double)rows * d;
  const float *x = f32(&c, 0, rd), *gamma = f32(&c, 1, d), *beta = f32(&c, 2, d);
  float *y = f32(&c, 3, rd), *xhat = f32(&c, 4, rd), *rs = f32(&c, 5, rows);
  if (c.failed) return NULL;
  ln_layer_norm(x, gamma, beta, y, xhat, rs, rows, d, eps);
  return undefined(env);
}

/* layerNormGrad(dy, xhat, rsigma, gamma, dx, dgamma, dbeta, rows, d) */
static napi_value LayerNormGrad(napi_env env, napi_callback_info info) {
  call_t c;
  if (!start(&c, env, info, "layerNormGrad", 9)) return NULL;
  int64_t rows = num(&c, 7), d = num(&c, 8);
  if (!nonneg(&c, rows) || d < 1) return fail(&c, "bad rows or features"), NULL;
  const double rd = (double)rows * d;
  const float *dy = f32(&c, 0, rd), *xhat = f32(&c, 1, rd), *rs = f32(&c, 2, rows), *gamma = f32(&c, 3, d);
  float *dx = f32(&c, 4, rd), *dgamma = f32(&c, 5, d), *dbeta = f32(&c, 6, d);
  if (c.failed) return NULL;
  ln_layer_norm_grad(dy, xhat, rs, gamma, dx, dgamma, dbeta, rows, d);
  return undefined(env);
}

/* gelu(x, y) */
static napi_value Gelu(napi_env env, napi_callback_info info) {
  call_t c;
  if (!start(&c, env, info, "gelu", 2)) return NULL;
  size_t n = 0;
  const float *x = typed(&c, 0, napi_float32_array, &n);
  float *y = f32(&c, 1, (int64_t)n);
  if (c.failed) return NULL;
  ln_gelu(x, y, (int64_t)n);
  return undefined(env);
}

/* geluGrad(x, dy, dx) */
static napi_value GeluGrad(napi_env env, napi_callback_info info) {
  call_t c;
  if (!start(&c, env, info, "geluGrad", 3)) return NULL;
  size_t n = 0;
  const float *x = typed(&c, 0, napi_float32_array, &n);
  const float *dy = f32(&c, 1, (int64_t)n);
  float *dx = f32(&c, 2, (int64_t)n);
  if (c.failed) return NULL;
  ln_gelu_grad(x, dy, dx, (int64_t)n);
  return undefined(env);
}

/* setThreads(n) */
static napi_value SetThreads(napi_env env, napi_callback_info info) {
  call_t c;
  if (!start(&c, env, info, "setThreads", 1)) return NULL;
  int64_t n = num(&c, 0);
  if (c.failed) return NULL;
  if (n < 1 || n > 1024) return fail(&c, "threads must be 1 to 1024"), NULL;
  ln_set_threads((int)n);
  return undefined(env);
}

static const char *isa_name(dnnl_cpu_isa_t isa) {
  switch (isa) {
  case dnnl_cpu_isa_sse41: return "sse41";
  case dnnl_cpu_isa_avx: return "avx";
  case dnnl_cpu_isa_avx2: return "avx2";
  case dnnl_cpu_isa_avx512_core: return "avx512_core";
  case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
  case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
  case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
  default: return "other";
  }
}

/* info() -> { library, isa, threads } */
static napi_value Info(napi_env env, napi_callback_info cbinfo) {
  (void)cbinfo;
  const dnnl_version_t *v = dnnl_version();
  char lib[64];
  snprintf(lib, sizeof lib, "oneDNN %d.%d.%d", v->major, v->minor, v->patch);
  napi_value obj, s1, s2, n;
  napi_create_object(env, &obj);
  napi_create_string_utf8(env, lib, NAPI_AUTO_LENGTH, &s1);
  napi_create_string_utf8(env, isa_name(dnnl_get_effective_cpu_isa()), NAPI_AUTO_LENGTH, &s2);
  napi_create_int32(env, ln_max_threads(), &n);
  napi_set_named_property(env, obj, "library", s1);
  napi_set_named_property(env, obj, "isa", s2);
  napi_set_named_property(env, obj, "threads", n);
  return obj;
}

/* The sizes R, C, c and scale, rate, seed of rowAttention and rowAttentionGrad, from argument `at` on; false after a fail(). */
static int row_attention_args(call_t *c, size_t at, int64_t *dims3, float *scale, double *rate, uint32_t *seed) {
  for (int d = 0; d < 3; d++) dims3[d] = num(c, at + d);
  double sc = real(c, at + 3);
  *rate = real(c, at + 4);
  double s = real(c, at + 5);
  if (c->failed) return 0;
  for (int d = 0; d < 3; d++)
    if (!nonneg(c, dims3[d])) return 0;
  if (dims3[2] % 2 != 0) return fail(c, "the feature count must be even (RoPE pairs features)");
  if (!isfinite(sc)) return fail(c, "scale must be finite");
  if (!(*rate >= 0.0 && *rate < 1.0)) return fail(c, "rate must be in [0, 1)");
  if (!(s >= 0.0 && s <= 4294967295.0 && s == floor(s))) return fail(c, "seed must be a uint32");
  *scale = (float)sc;
  *seed = (uint32_t)s;
  return 1;
}

/* rowAttention(q, k, v, cos, sin, valid, out, R, C, c, scale, rate, seed) */
static napi_value RowAttention(napi_env env, napi_callback_info info) {
  call_t c;
  if (!start(&c, env, info, "rowAttention", 13)) return NULL;
  int64_t d[3];
  float scale;
  double rate;
  uint32_t seed;
  if (!row_attention_args(&c, 7, d, &scale, &rate, &seed)) return NULL;
  const double n = (double)d[0] * d[1] * d[2], table = (double)d[1] * d[2];
  const float *q = f32(&c, 0, n), *k = f32(&c, 1, n), *v = f32(&c, 2, n);
  const float *cosT = f32(&c, 3, table), *sinT = f32(&c, 4, table), *valid = f32(&c, 5, (double)d[0] * d[1]);
  float *out = f32(&c, 6, n);
  if (c.failed) return NULL;
  if (!ln_row_attention(q, k, v, cosT, sinT, valid, out, d[0], d[1], d[2], scale, rate, seed))
    return fail(&c, "dnnl_sgemm or scratch allocation failed"), NULL;
  return undefined(env);
}

/* rowAttentionGrad(q, k, v, cos, sin, valid, dy, dq, dk, dv, R, C, c, scale, rate, seed) */
static napi_value RowAttentionGrad(napi_env env, napi_callback_info info) {
  call_t c;
  if (!start(&c, env, info, "rowAttentionGrad", 16)) return NULL;
  int64_t d[3];
  float scale;
  double rate;
  uint32_t seed;
  if (!row_attention_args(&c, 10, d, &scale, &rate, &seed)) return NULL;
  const double n = (double)d[0] * d[1] * d[2], table = (double)d[1] * d[2];
  const float *q = f32(&c, 0, n), *k = f32(&c, 1, n), *v = f32(&c, 2, n);
  const float *cosT = f32(&c, 3, table), *sinT = f32(&c, 4, table), *valid = f32(&c, 5, (double)d[0] * d[1]);
  const float *dy = f32(&c, 6, n);
  float *dq = f32(&c, 7, n), *dk = f32(&c, 8, n), *dv = f32(&c, 9, n);
  if (c.failed) return NULL;
  if (!ln_row_attention_grad(q, k, v, cosT, sinT, valid, dy, dq, dk, dv, d[0], d[1], d[2], scale, rate, seed))
    return fail(&c, "dnnl_sgemm or scratch allocation failed"), NULL;
  return undefined(env);
}

#define EXPORT(name, fn)                                                           \
  do {                                                                             \
    napi_value f;                                                                  \
    napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &f);               \
    napi_set_named_property(env, exports, name, f);                                \
  } while (0)

static napi_value Init(napi_env env, napi_value exports) {
  EXPORT("info", Info);
  EXPORT("setThreads", SetThreads);
  EXPORT("gemm", Gemm);
  EXPORT("binary", Binary);
  EXPORT("unary", Unary);
  EXPORT("clip", Clip);
  EXPORT("compare", Compare);
  EXPORT("logical", Logical);
  EXPORT("reduce", Reduce);
  EXPORT("argMinMax", ArgMinMax);
  EXPORT("softmax", Softmax);
  EXPORT("softmaxGrad", SoftmaxGrad);
  EXPORT("transpose", Transpose);
  EXPORT("slice", Slice);
  EXPORT("pad", Pad);
  EXPORT("copyRows", CopyRows);
  EXPORT("gather", Gather);
  EXPORT("segmentSum", SegmentSum);
  EXPORT("select", Select);
  EXPORT("addN", AddN);
  EXPORT("fill", Fill);
  EXPORT("dropoutMask", DropoutMask);
  EXPORT("adamw", AdamW);
  EXPORT("windowGemm", WindowGemm);
  EXPORT("windowGemmGradInput", WindowGemmGradInput);
  EXPORT("windowGemmGradWeights", WindowGemmGradWeights);
  EXPORT("layerNorm", LayerNorm);
  EXPORT("layerNormGrad", LayerNormGrad);
  EXPORT("gelu", Gelu);
  EXPORT("geluGrad", GeluGrad);
  EXPORT("rowAttention", RowAttention);
  EXPORT("rowAttentionGrad", RowAttentionGrad);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
