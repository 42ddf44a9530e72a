/*
 * The native engine's kernels: plain C over float32 arrays, no N-API. binding.c checks every size
 * at the boundary before calling in, so the kernels trust their arguments.
 */
#ifndef LONGNER_KERNELS_H
#define LONGNER_KERNELS_H

#include <stdint.h>

#define LN_MAX_RANK 8

typedef enum {
  BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV, BIN_MAX, BIN_MIN, BIN_POW, BIN_SQDIFF,
  BIN_COUNT
} binary_op;

typedef enum { CMP_EQUAL, CMP_NOT_EQUAL, CMP_GREATER, CMP_GREATER_EQUAL, CMP_LESS, CMP_LESS_EQUAL, CMP_COUNT } compare_op;

typedef enum {
  UN_EXP, UN_LOG, UN_TANH, UN_SQRT, UN_RSQRT, UN_SQUARE, UN_NEG, UN_ABS, UN_SIGMOID, UN_RELU,
  UN_RECIPROCAL, UN_LOG1P, UN_SOFTPLUS, UN_ERF, UN_SIGN, UN_EXPM1,
  UN_COUNT
} unary_op;

typedef enum { RED_SUM, RED_MEAN, RED_MAX, RED_MIN, RED_PROD, RED_COUNT } reduce_op;

void ln_set_threads(int n);
int ln_max_threads(void);

/* C[b] = op(A[b]) op(B[b]) for b < batch; a batch count of 1 for A or B broadcasts it. */
int ln_gemm(const float *a, const float *b, float *c, int64_t batchA, int64_t batchB, int64_t m, int64_t n,
            int64_t k, int transA, int transB);

/*
 * out[i] = a[ia] op b[ib] over an output of `rank` dims; strides are in elements and are 0 on a
 * broadcast dimension.
 */
void ln_binary(binary_op op, const float *a, const int64_t *aStrides, const float *b, const int64_t *bStrides,
               float *out, const int64_t *shape, int rank);
/* As ln_binary, with a 0/1 byte output (tfjs's bool). */
void ln_compare(compare_op op, const float *a, const int64_t *aStrides, const float *b, const int64_t *bStrides,
                uint8_t *out, const int64_t *shape, int rank);
/* out = a && b (or ||) on bytes of equal length. */
void ln_logical(int isOr, const uint8_t *a, const uint8_t *b, uint8_t *out, int64_t n);
void ln_unary(unary_op op, const float *x, float *out, int64_t n);
/* out = min(max(x, lo), hi), NaN kept (tfjs's ClipByValue). */
void ln_clip(const float *x, float *out, int64_t n, float lo, float hi);

/* x viewed as [outer, r, inner]; out [outer, inner]. */
void ln_reduce(reduce_op op, const float *x, float *out, int64_t outer, int64_t r, int64_t inner);
void ln_argmax(const float *x, int32_t *out, int64_t outer, int64_t r, int64_t inner, int isMin);
void ln_softmax(const float *x, float *out, int64_t rows, int64_t cols, int logSoftmax);
/*
 * The gradient of p = softmax(s) over rows of `cols`: ds = p (g - rowsum(g p)), g = dp (times the
 * dropout mask m when m is not NULL): one pass instead of five.
 */
void ln_softmax_grad(const float *p, const float *dp, const float *m, float *ds, int64_t rows, int64_t cols);

void ln_transpose(const float *x, float *out, const int64_t *shape, const int64_t *perm, int rank);
void ln_slice(const float *x, float *out, const int64_t *shape, const int64_t *begin, const int64_t *size, int rank);
void ln_pad(const float *x, float *out, const int64_t *shape, const int64_t *before, const int64_t *after, int rank,
            float value);
/* Copies `rows` runs of `cols` elements from src (row stride srcStride) into dst (row stride dstStride). */
void ln_copy_rows(const float *src, int64_t srcStride, float *dst, int64_t dstStride, int64_t rows, int64_t cols);
/* x [outer, n, inner] gathered at `idx` along n: out [outer, count, inner]; false on an index out of range. */
int ln_gather(const float *x, const int32_t *idx, float *out, int64_t outer, int64_t n, int64_t inner, int64_t count);
/* out [segments, inner] = sums of the rows of x [count, inner] by segment id; ids outside are dropped. */
void ln_segment_sum(const float *x, const int32_t *ids, float *out, int64_t count, int64_t inner, int64_t segments);
/* out[i] = cond[i / inner] ? a[i] : b[i] */
void ln_select(const uint8_t *cond, const float *a, const float *b, float *out, int64_t n, int64_t inner);
void ln_add_n(const float *const *xs, int count, float *out, int64_t n);
void ln_fill(float *out, int64_t n, float value);
/*
 * Inverted-dropout mask: out[i] = u_i < rate ? 0 : keep, with u_i the mulberry32 stream of
 * src/util/rng.ts continued from `state` (bit for bit the JS generator's numbers); returns the
 * state after n draws.
 */
uint32_t ln_dropout_mask(float *out, int64_t n, double rate, float keep, uint32_t state);

/*
 * AdamW with decoupled decay; writes the new parameter and moments to fresh outputs. The betas come
 * in double so that 1 - beta is formed before rounding to float (as tfjs and PyTorch do).
 */
void ln_adamw(const float *p, const float *g, const float *m, const float *v, float *pOut, float *mOut, float *vOut,
              int64_t n, double b1, double b2, float eps, float decay, float stepSize, float biasCorrection2Sqrt);

/*
 * Sums of products over row windows of one matrix (a 3x3 convolution on a flattened padded grid):
 * out [n, cout] = sum_t x[starts[t] .. starts[t] + n) w[t], with x [p, cin] and w [taps, cin, cout].
 * The gradients: dx [p, cin] = sum_t (dOut w[t]^T placed at rows starts[t]), dw[t] = x-window_t^T dOut.
 */
int ln_window_gemm(const float *x, const float *w, float *out, const int64_t *starts, int taps, int64_t n, int64_t cin,
                   int64_t cout);
int ln_window_gemm_grad_input(const float *dOut, const float *w, float *dx, const int64_t *starts, int taps, int64_t n,
                              int64_t p, int64_t cin, int64_t cout);
int ln_window_gemm_grad_weights(const float *x, const float *dOut, float *dw, const int64_t *starts, int taps, int64_t n,
                                int64_t cin, int64_t cout);

/* Layer norm over the last axis of x [rows, d]; saves x_hat and 1 / sigma for the gradient. */
void ln_layer_norm(const float *x, const float *gamma, const float *beta, float *y, float *xhat, float *rsigma,
                   int64_t rows, int64_t d, float eps);
void ln_layer_norm_grad(const float *dy, const float *xhat, const float *rsigma, const float *gamma, float *dx,
                        float *dgamma, float *dbeta, int64_t rows, int64_t d);
/* GELU, tanh approximation, and its gradient times dy. */
void ln_gelu(const float *x, float *y, int64_t n);
void ln_gelu_grad(const float *x, const float *dy, float *dx, int64_t n);

/*
 * Low-memory row attention (SeNER's BiSPA, UTC-IE's axis attention; src/nn/grid.ts rowAttention):
 * for every row r of q, k, v [R, C, c], with RoPE by column index (tables cos, sin [C, c]) on q and k,
 * q scaled by `scale`, keys with valid[r, j] = 0 biased by LN_INVALID_KEY, and the inverted-dropout
 * mask M of `rate` drawn from a counter:
 *   out_r = (softmax(RoPE(q_r) scale RoPE(k_r)^T + bias_r) * M_r) v_r,  0 for a row without a valid key.
 * Cell (r, i, j) is dropped when the top 24 bits of fmix32(key_r ^ (i C + j) 0x9e3779b9) fall below
 * ln_dropout_threshold(rate), key_r = ln_dropout_row_key(seed, r). The [C, C] tensors live in
 * per-thread scratch; the gradient recomputes the probabilities and the mask.
 */
#define LN_INVALID_KEY (-10000.0f)
uint32_t ln_dropout_row_key(uint32_t seed, int64_t row);
uint32_t ln_dropout_threshold(double rate);
int ln_row_attention(const float *q, const float *k, const float *v, const float *cosT, const float *sinT, const float *valid,
                     float *out, int64_t R, int64_t C, int64_t c, float scale, double rate, uint32_t seed);
int ln_row_attention_grad(const float *q, const float *k, const float *v, const float *cosT, const float *sinT,
                          const float *valid, const float *dy, float *dq, float *dk, float *dv, int64_t R, int64_t C, int64_t c,
                          float scale, double rate, uint32_t seed);

#endif
