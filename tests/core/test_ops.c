// test_ops.c: the CPU op table checked op by op against independent double-precision references.
// Backward ops are compared with central finite differences of a scalar loss sum(out·r) (r random)
// built on reference forwards written here in double; forward ops are compared with the same
// references, products with a naive triple loop, optimizer steps with values worked out by hand.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/rng.h"
#include "test.h"

#define FD_H 1e-6  // central-difference step on the double references

static const srl_ops *ops;
static srl_rng *rng;


//---- helpers ----------------------------------------------------------------------------------

static float *fvec(size_t n) {
  return calloc(n ? n : 1, sizeof(float));
}
static double *dvec(size_t n) {
  return calloc(n ? n : 1, sizeof(double));
}

static void rand_fill(float *x, size_t n, float lo, float hi) {
  srl_rng_fill_uniform(rng, x, n, lo, hi);
}

static void to_double(double *d, const float *f, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] = f[i];
}

// a scalar loss of a flat double vector; the op under test's backward must match its gradient
typedef double (*loss_fn)(const double *x, const void *ctx);

// g = ∂f/∂x by central differences, x restored afterwards
static void fd_grad(double *g, double *x, size_t n, loss_fn f, const void *ctx) {
  for (size_t i = 0; i < n; i++) {
    double x0 = x[i];
    x[i] = x0 + FD_H;
    double fp = f(x, ctx);
    x[i] = x0 - FD_H;
    double fm = f(x, ctx);
    x[i] = x0;
    g[i] = (fp - fm) / (2 * FD_H);
  }
}

// count of |got − want| > atol + rtol·|want|, printing the first few
static int count_mismatch(const char *what, const float *got, const double *want, size_t n,
                          double atol, double rtol) {
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - want[i]);
    if (!(d <= atol + rtol * fabs(want[i]))) {
      if (bad < 5)
        fprintf(stderr, "    %s[%zu]: got %.9g want %.9g (diff %.3g)\n", what, i, got[i], want[i],
                d);
      bad++;
    }
  }
  return bad;
}

#define CHECK_VEC(what, got, want, n, atol, rtol) \
  CHECK_EQ_INT(count_mismatch(what, got, want, n, atol, rtol), 0)


//---- table lookup -----------------------------------------------------------------------------

TEST(table_lookup) {
  const srl_ops *t = NULL;
  CHECK_OK(srl_ops_get(&t, "cpu"));
  CHECK(t == srl_ops_cpu());
  CHECK(t && t->device == SRL_DEVICE_CPU && strcmp(t->name, "cpu") == 0);

  // every slot of the table is filled
  const srl_ops *c = srl_ops_cpu();
  CHECK(c->alloc && c->free && c->upload && c->download && c->copy && c->sync);
  CHECK(c->matmul && c->bias_add && c->bias_backward && c->act_forward && c->act_backward);
  CHECK(c->layernorm_forward && c->layernorm_backward && c->softmax_forward);
  CHECK(c->softmax_backward && c->dropout_forward && c->fill && c->mul && c->add && c->axpby);
  CHECK(c->scale && c->sum && c->sumsq && c->mse && c->adam_update && c->gauss_logprob);
  CHECK(c->gauss_logprob_backward && c->ppo_clip_loss);

  t = srl_ops_cpu();
  CHECK_ERR(srl_ops_get(&t, "bogus"), SRL_EINVAL);
  CHECK(t == NULL);
  CHECK_ERRMSG("bogus");
}


TEST(cuda_lookup_is_clean) {
  const srl_ops *t = srl_ops_cpu();
  srl_errclear();
  int rc = srl_ops_get(&t, "cuda");
#ifdef SRL_HAVE_CUDA
  // built with CUDA: either a usable table or a clear "no device"
  CHECK(rc == SRL_OK || rc == SRL_ENODEV);
  if (rc == SRL_OK) {
    CHECK(t && t->device == SRL_DEVICE_CUDA && strcmp(t->name, "cuda") == 0);
  } else {
    CHECK(t == NULL);
    CHECK(srl_errmsg()[0] != '\0');
  }
#else
  CHECK_EQ_INT(rc, SRL_EUNSUPPORTED);
  CHECK(t == NULL);
  CHECK_ERRMSG("CUDA");
  const srl_ops *u = srl_ops_cpu();
  CHECK_ERR(srl_ops_cuda(&u), SRL_EUNSUPPORTED);
  CHECK(u == NULL);
#endif
}


TEST(act_names_round_trip) {
  for (int a = 0; a < SRL_ACT_COUNT; a++) {
    const char *name = srl_act_name((srl_act)a);
    CHECK(name && strcmp(name, "?") != 0);
    CHECK_EQ_INT(srl_act_from_name(name), a);
  }
  CHECK(strcmp(srl_act_name(SRL_ACT_TANH), "tanh") == 0);
  CHECK(strcmp(srl_act_name(SRL_ACT_QUICK_GELU), "quick_gelu") == 0);
  CHECK_EQ_INT(srl_act_from_name("bogus"), -1);
  CHECK_EQ_INT(srl_act_from_name(""), -1);
  CHECK_EQ_INT(srl_act_from_name("Tanh"), -1);
  CHECK(strcmp(srl_act_name(SRL_ACT_COUNT), "?") == 0);
  CHECK(strcmp(srl_act_name((srl_act)-1), "?") == 0);
}


//---- memory -----------------------------------------------------------------------------------

TEST(memory_ops) {
  size_t n = 1000;
  float *a = ops->alloc(n * sizeof(float));
  float *b = ops->alloc(n * sizeof(float));
  CHECK(a && b);
  if (!a || !b) return;
  CHECK_EQ_INT((uintptr_t)a % SRL_ALIGN, 0);
  int nonzero = 0;
  for (size_t i = 0; i < n; i++) nonzero += a[i] != 0.0f;
  CHECK_EQ_INT(nonzero, 0);

  float *host = fvec(n), *back = fvec(n);
  rand_fill(host, n, -1, 1);
  CHECK_OK(ops->upload(a, host, n * sizeof(float)));
  CHECK_OK(ops->copy(b, a, n * sizeof(float)));
  CHECK_OK(ops->download(back, b, n * sizeof(float)));
  CHECK(memcmp(back, host, n * sizeof(float)) == 0);
  CHECK_OK(ops->copy(b, a, 0));
  CHECK_OK(ops->sync());
  ops->free(a);
  ops->free(b);
  ops->free(NULL);
  free(host);
  free(back);
}


//---- matmul -----------------------------------------------------------------------------------

// c = alpha·op(a)·op(b) + beta·c0 in double
static void matmul_ref(double *c, const float *a, const float *b, const float *c0, int m, int n,
                       int k, int ta, int tb, double alpha, double beta) {
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double s = 0;
      for (int p = 0; p < k; p++) {
        double av = ta ? a[(size_t)p * m + i] : a[(size_t)i * k + p];
        double bv = tb ? b[(size_t)j * k + p] : b[(size_t)p * n + j];
        s += av * bv;
      }
      c[(size_t)i * n + j] = alpha * s + (beta == 0 ? 0 : beta * c0[(size_t)i * n + j]);
    }
}


static void check_matmul(int m, int n, int k, int ta, int tb, float alpha, float beta) {
  size_t sa = (size_t)m * k, sb = (size_t)k * n, sc = (size_t)m * n;
  float *a = fvec(sa), *b = fvec(sb), *c = fvec(sc), *c0 = fvec(sc);
  double *want = dvec(sc);
  rand_fill(a, sa, -1, 1);
  rand_fill(b, sb, -1, 1);
  rand_fill(c0, sc, -1, 1);
  memcpy(c, c0, sc * sizeof(float));
  matmul_ref(want, a, b, c0, m, n, k, ta, tb, alpha, beta);
  ops->matmul(c, a, b, m, n, k, ta, tb, alpha, beta);
  char what[96];
  snprintf(what, sizeof what, "matmul m%d n%d k%d ta%d tb%d a%g b%g", m, n, k, ta, tb, alpha, beta);
  CHECK_VEC(what, c, want, sc, 1e-5 * (k + 1), 1e-5);
  free(a);
  free(b);
  free(c);
  free(c0);
  free(want);
}


TEST(matmul_transposes_alpha_beta) {
  static const int shapes[][3] = {{5, 7, 3}, {1, 9, 4}, {8, 1, 6}, {37, 29, 41}, {64, 70, 33}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    for (int ta = 0; ta < 2; ta++)
      for (int tb = 0; tb < 2; tb++) {
        check_matmul(shapes[s][0], shapes[s][1], shapes[s][2], ta, tb, 1.0f, 0.0f);
        check_matmul(shapes[s][0], shapes[s][1], shapes[s][2], ta, tb, 0.5f, 1.0f);
        check_matmul(shapes[s][0], shapes[s][1], shapes[s][2], ta, tb, -1.5f, 0.25f);
      }
}


TEST(matmul_thread_counts) {
  // the product is right whatever number of threads OpenBLAS is given
  static const int threads[] = {1, 2, 0};
  for (int t = 0; t < 3; t++) {
    srl_ops_cpu_set_threads(threads[t]);
    check_matmul(96, 80, 72, 0, 1, 1.0f, 0.0f);
    check_matmul(96, 80, 72, 1, 0, 0.5f, 1.0f);
  }
  srl_ops_cpu_set_threads(1);
}


TEST(matmul_beta0_overwrites_nan) {
  int m = 6, n = 5, k = 4;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      float a[24], b[20], c[30];
      double want[30];
      rand_fill(a, 24, -1, 1);
      rand_fill(b, 20, -1, 1);
      for (int i = 0; i < 30; i++) c[i] = (i % 2) ? NAN : INFINITY;
      matmul_ref(want, a, b, c, m, n, k, ta, tb, 2.0, 0.0);
      ops->matmul(c, a, b, m, n, k, ta, tb, 2.0f, 0.0f);
      CHECK_VEC("matmul beta0 nan", c, want, 30, 1e-5, 1e-5);
    }
  // an empty inner dimension scales c by beta, and beta = 0 still clears NaN
  float c[6] = {NAN, NAN, 1, 2, 3, 4}, d[6] = {1, 2, 3, 4, 5, 6};
  ops->matmul(c, NULL, NULL, 2, 3, 0, 0, 0, 1.0f, 0.0f);
  for (int i = 0; i < 6; i++) CHECK(c[i] == 0.0f);
  ops->matmul(d, NULL, NULL, 2, 3, 0, 0, 0, 1.0f, 2.0f);
  for (int i = 0; i < 6; i++) CHECK(d[i] == 2.0f * (i + 1));
}


//---- bias -------------------------------------------------------------------------------------

typedef struct {
  int rows, cols;
  const double *x, *r;
} bias_ctx;

// loss(bias) = Σ (x + bias)·r
static double bias_loss(const double *bias, const void *vc) {
  const bias_ctx *c = vc;
  double s = 0;
  for (int i = 0; i < c->rows; i++)
    for (int j = 0; j < c->cols; j++)
      s += (c->x[i * c->cols + j] + bias[j]) * c->r[i * c->cols + j];
  return s;
}


TEST(bias_add_and_backward) {
  int rows = 7, cols = 5;
  size_t nx = (size_t)rows * cols;
  float *x = fvec(nx), *out = fvec(nx), *bias = fvec(cols), *r = fvec(nx), *db = fvec(cols);
  double *xd = dvec(nx), *rd = dvec(nx), *bd = dvec(cols), *g = dvec(cols), *want = dvec(nx);
  rand_fill(x, nx, -1, 1);
  rand_fill(bias, cols, -1, 1);
  rand_fill(r, nx, -1, 1);

  // forward: out += bias per row
  memcpy(out, x, nx * sizeof(float));
  ops->bias_add(out, bias, rows, cols);
  for (int i = 0; i < rows; i++)
    for (int j = 0; j < cols; j++) want[i * cols + j] = (double)x[i * cols + j] + bias[j];
  CHECK_VEC("bias_add", out, want, nx, 1e-6, 1e-6);

  // backward accumulates onto what dbias held
  to_double(xd, x, nx);
  to_double(rd, r, nx);
  to_double(bd, bias, cols);
  bias_ctx c = {rows, cols, xd, rd};
  fd_grad(g, bd, cols, bias_loss, &c);
  for (int j = 0; j < cols; j++) db[j] = 0.25f * j;
  ops->bias_backward(db, r, rows, cols);
  for (int j = 0; j < cols; j++) g[j] += 0.25 * j;
  CHECK_VEC("bias_backward", db, g, cols, 1e-5, 1e-5);

  free(x), free(out), free(bias), free(r), free(db);
  free(xd), free(rd), free(bd), free(g), free(want);
}


//---- activations ------------------------------------------------------------------------------

static double softplus_ref(double x) {
  return x > 20 ? x : log1p(exp(x));
}

static double act_ref(double x, srl_act act) {
  switch (act) {
    case SRL_ACT_IDENTITY:
      return x;
    case SRL_ACT_TANH:
      return tanh(x);
    case SRL_ACT_RELU:
      return x > 0 ? x : 0;
    case SRL_ACT_MISH:
      return x * tanh(softplus_ref(x));
    case SRL_ACT_GELU:
      return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    case SRL_ACT_QUICK_GELU:
      return x / (1 + exp(-1.702 * x));
    case SRL_ACT_SIGMOID:
      return 1 / (1 + exp(-x));
    case SRL_ACT_SOFTPLUS:
      return softplus_ref(x);
    default:
      return NAN;
  }
}

typedef struct {
  srl_act act;
  size_t n;
  const double *r;
} act_ctx;

static double act_loss(const double *x, const void *vc) {
  const act_ctx *c = vc;
  double s = 0;
  for (size_t i = 0; i < c->n; i++) s += act_ref(x[i], c->act) * c->r[i];
  return s;
}


TEST(act_forward_backward_all) {
  enum { N = 96 };
  float x[N], r[N], out[N], din[N], alias[N];
  double xd[N], rd[N], want[N], g[N];
  rand_fill(x, N, -5, 5);
  // a few points in the tails and around softplus's linear switch at 20
  // (and past the exponential's clamp at -87.3, which CPU mish uses)
  static const float tails[] = {-30, -21, -19.5f, 19.5f, 20.5f, 25, 30, 8, -8, 0.001f, -88, -100};
  memcpy(x, tails, sizeof tails);
  // keep the relu kink out of reach of the difference step
  for (int i = 0; i < N; i++)
    if (fabsf(x[i]) < 1e-3f) x[i] = 0.5f;
  rand_fill(r, N, -1, 1);
  to_double(xd, x, N);
  to_double(rd, r, N);

  for (int a = 0; a < SRL_ACT_COUNT; a++) {
    srl_act act = (srl_act)a;
    char what[64];
    for (int i = 0; i < N; i++) want[i] = act_ref(xd[i], act);
    ops->act_forward(out, x, N, act);
    snprintf(what, sizeof what, "act_forward %s", srl_act_name(act));
    CHECK_VEC(what, out, want, N, 2e-6, 2e-6);

    // in place
    memcpy(alias, x, sizeof x);
    ops->act_forward(alias, alias, N, act);
    CHECK(memcmp(alias, out, sizeof out) == 0);

    act_ctx c = {act, N, rd};
    fd_grad(g, xd, N, act_loss, &c);
    ops->act_backward(din, r, x, N, act);
    snprintf(what, sizeof what, "act_backward %s", srl_act_name(act));
    CHECK_VEC(what, din, g, N, 1e-5, 1e-4);

    // din may alias dout
    memcpy(alias, r, sizeof r);
    ops->act_backward(alias, alias, x, N, act);
    CHECK(memcmp(alias, din, sizeof din) == 0);
  }
}


// mish on a dense sweep: the CPU's branch-free exponential (a polynomial, not expf) within
// a few float roundings of x·tanh(softplus(x)) from -90 to 30
TEST(mish_dense_sweep) {
  enum { N = 4801 };
  static float x[N], out[N], din[N], one[N];
  static double want[N], slope[N];
  for (int i = 0; i < N; i++) {
    x[i] = -90.0f + 0.025f * (float)i;
    one[i] = 1.0f;
    double xd = x[i], sp = softplus_ref(xd), t = tanh(sp), sig = 1 / (1 + exp(-xd));
    want[i] = xd * t;
    slope[i] = t + xd * (1 - t * t) * sig;
  }
  ops->act_forward(out, x, N, SRL_ACT_MISH);
  CHECK_VEC("mish sweep", out, want, N, 1e-30, 1e-6);
  ops->act_backward(din, one, x, N, SRL_ACT_MISH);
  CHECK_VEC("mish slope sweep", din, slope, N, 1e-7, 1e-6);  // it crosses 0 near -1.19
}


//---- layernorm --------------------------------------------------------------------------------

typedef struct {
  int rows, cols;
  const double *r;
} ln_ctx;

// p = [x (rows×cols) | w (cols) | b (cols)]; loss = Σ layernorm(x; w, b)·r
static double ln_loss(const double *p, const void *vc) {
  const ln_ctx *c = vc;
  const double *x = p, *w = p + c->rows * c->cols, *b = w + c->cols;
  double s = 0;
  for (int i = 0; i < c->rows; i++) {
    const double *xi = x + i * c->cols;
    double mu = 0, var = 0;
    for (int j = 0; j < c->cols; j++) mu += xi[j];
    mu /= c->cols;
    for (int j = 0; j < c->cols; j++) var += (xi[j] - mu) * (xi[j] - mu);
    var /= c->cols;
    for (int j = 0; j < c->cols; j++)
      s += ((xi[j] - mu) / sqrt(var + 1e-5) * w[j] + b[j]) * c->r[i * c->cols + j];
  }
  return s;
}


TEST(layernorm_forward_backward) {
  int rows = 4, cols = 13;
  size_t nx = (size_t)rows * cols, np = nx + 2 * (size_t)cols;
  float *x = fvec(nx), *w = fvec(cols), *b = fvec(cols), *out = fvec(nx), *r = fvec(nx);
  float *mean = fvec(rows), *rstd = fvec(rows), *din = fvec(nx), *dw = fvec(cols), *db = fvec(cols);
  double *p = dvec(np), *g = dvec(np), *rd = dvec(nx), *want = dvec(nx);
  rand_fill(x, nx, -2, 3);
  rand_fill(w, cols, 0.5f, 1.5f);
  rand_fill(b, cols, -0.5f, 0.5f);
  rand_fill(r, nx, -1, 1);

  // forward against the reference, with the saved statistics
  ops->layernorm_forward(out, mean, rstd, x, w, b, rows, cols);
  for (int i = 0; i < rows; i++) {
    double mu = 0, var = 0;
    for (int j = 0; j < cols; j++) mu += x[i * cols + j];
    mu /= cols;
    for (int j = 0; j < cols; j++) var += (x[i * cols + j] - mu) * (x[i * cols + j] - mu);
    var /= cols;
    double rs = 1 / sqrt(var + 1e-5);
    CHECK_CLOSE(mean[i], mu, 1e-6, 1e-6);
    CHECK_CLOSE(rstd[i], rs, 1e-6, 1e-5);
    for (int j = 0; j < cols; j++) want[i * cols + j] = (x[i * cols + j] - mu) * rs * w[j] + b[j];
  }
  CHECK_VEC("layernorm_forward", out, want, nx, 1e-5, 1e-5);

  // backward: din written, dw and db accumulate onto their previous contents
  to_double(p, x, nx);
  to_double(p + nx, w, cols);
  to_double(p + nx + cols, b, cols);
  to_double(rd, r, nx);
  ln_ctx c = {rows, cols, rd};
  fd_grad(g, p, np, ln_loss, &c);
  for (size_t i = 0; i < nx; i++) din[i] = NAN;
  for (int j = 0; j < cols; j++) dw[j] = 1.0f, db[j] = -2.0f;
  ops->layernorm_backward(din, dw, db, r, x, w, mean, rstd, rows, cols);
  for (int j = 0; j < cols; j++) g[nx + j] += 1.0, g[nx + cols + j] += -2.0;
  CHECK_VEC("layernorm din", din, g, nx, 1e-4, 1e-3);
  CHECK_VEC("layernorm dw", dw, g + nx, cols, 1e-4, 1e-4);
  CHECK_VEC("layernorm db", db, g + nx + cols, cols, 1e-4, 1e-4);

  free(x), free(w), free(b), free(out), free(r), free(mean), free(rstd), free(din), free(dw);
  free(db), free(p), free(g), free(rd), free(want);
}


//---- softmax ----------------------------------------------------------------------------------

typedef struct {
  int rows, cols;
  const double *r;
} sm_ctx;

static void softmax_ref(double *y, const double *x, int cols) {
  double mx = x[0], s = 0;
  for (int j = 1; j < cols; j++) mx = x[j] > mx ? x[j] : mx;
  for (int j = 0; j < cols; j++) s += exp(x[j] - mx);
  for (int j = 0; j < cols; j++) y[j] = exp(x[j] - mx) / s;
}

static double sm_loss(const double *x, const void *vc) {
  const sm_ctx *c = vc;
  double y[64], s = 0;
  for (int i = 0; i < c->rows; i++) {
    softmax_ref(y, x + i * c->cols, c->cols);
    for (int j = 0; j < c->cols; j++) s += y[j] * c->r[i * c->cols + j];
  }
  return s;
}


TEST(softmax_forward_backward) {
  enum { R = 5, C = 9, N = R * C };
  float x[N], out[N], r[N], din[N];
  double xd[N], rd[N], want[N], g[N];
  rand_fill(x, N, -4, 4);
  x[3] = 80.0f;  // a large logit: the row max keeps exp finite
  rand_fill(r, N, -1, 1);
  to_double(xd, x, N);
  to_double(rd, r, N);

  ops->softmax_forward(out, x, R, C);
  for (int i = 0; i < R; i++) softmax_ref(want + i * C, xd + i * C, C);
  CHECK_VEC("softmax_forward", out, want, N, 1e-6, 1e-5);
  for (int i = 0; i < R; i++) {
    double s = 0;
    for (int j = 0; j < C; j++) s += out[i * C + j];
    CHECK_CLOSE(s, 1.0, 1e-6, 0);
  }

  sm_ctx c = {R, C, rd};
  fd_grad(g, xd, N, sm_loss, &c);
  ops->softmax_backward(din, r, out, R, C);
  CHECK_VEC("softmax_backward", din, g, N, 1e-5, 1e-4);
}


//---- dropout ----------------------------------------------------------------------------------

TEST(dropout) {
  size_t n = 100000;
  float *x = fvec(n), *out = fvec(n), *mask = fvec(n), *mask2 = fvec(n), *out2 = fvec(n);
  rand_fill(x, n, -1, 1);

  // p = 0: a copy, mask of ones
  ops->dropout_forward(out, mask, x, n, 0.0f, 7);
  CHECK(memcmp(out, x, n * sizeof(float)) == 0);
  int ones = 0;
  for (size_t i = 0; i < n; i++) ones += mask[i] == 1.0f;
  CHECK_EQ_INT(ones, (int)n);

  // p = 0.3: about 70% kept, scaled by 1/0.7, the rest zero
  float p = 0.3f, keep = 1.0f / (1.0f - p);
  ops->dropout_forward(out, mask, x, n, p, 1234);
  size_t kept = 0, bad = 0;
  for (size_t i = 0; i < n; i++) {
    if (mask[i] == 0.0f) {
      bad += out[i] != 0.0f;
    } else {
      kept++;
      bad += fabsf(mask[i] - keep) > 1e-6f;
      bad += out[i] != x[i] * mask[i];
      CHECK_CLOSE(out[i], x[i] / 0.7, 1e-6, 1e-6);
    }
  }
  CHECK_EQ_INT(bad, 0);
  double frac = (double)kept / n;  // binomial std ≈ 0.0015
  CHECK_CLOSE(frac, 0.7, 0.01, 0);
  // the expected value of the output is the input
  double mean_mask = 0;
  for (size_t i = 0; i < n; i++) mean_mask += mask[i];
  CHECK_CLOSE(mean_mask / n, 1.0, 0.015, 0);

  // same seed, same mask; another seed, another mask
  ops->dropout_forward(out2, mask2, x, n, p, 1234);
  CHECK(memcmp(mask, mask2, n * sizeof(float)) == 0);
  CHECK(memcmp(out, out2, n * sizeof(float)) == 0);
  ops->dropout_forward(out2, mask2, x, n, p, 1235);
  size_t differ = 0;
  for (size_t i = 0; i < n; i++) differ += (mask[i] == 0.0f) != (mask2[i] == 0.0f);
  // independent masks disagree on 2·0.3·0.7 = 42% of elements
  CHECK_CLOSE((double)differ / n, 0.42, 0.02, 0);

  free(x), free(out), free(mask), free(mask2), free(out2);
}


//---- elementwise and reductions ---------------------------------------------------------------

TEST(elementwise) {
  enum { N = 1003 };
  float a[N], b[N], out[N], y[N];
  rand_fill(a, N, -2, 2);
  rand_fill(b, N, -2, 2);

  ops->fill(out, 3.5f, N);
  for (int i = 0; i < N; i++) CHECK(out[i] == 3.5f);

  ops->mul(out, a, b, N);
  for (int i = 0; i < N; i++) CHECK(out[i] == a[i] * b[i]);
  ops->add(out, a, b, N);
  for (int i = 0; i < N; i++) CHECK(out[i] == a[i] + b[i]);

  // axpby with b ≠ 0 mixes; b = 0 overwrites even NaN
  memcpy(y, b, sizeof y);
  ops->axpby(y, 0.5f, a, -2.0f, N);
  for (int i = 0; i < N; i++) CHECK_CLOSE(y[i], 0.5 * a[i] - 2.0 * b[i], 1e-6, 1e-6);
  for (int i = 0; i < N; i++) y[i] = (i % 3) ? NAN : -INFINITY;
  ops->axpby(y, 1.5f, a, 0.0f, N);
  for (int i = 0; i < N; i++) CHECK_CLOSE(y[i], 1.5 * a[i], 1e-6, 1e-6);

  memcpy(y, a, sizeof y);
  ops->scale(y, -0.25f, N);
  for (int i = 0; i < N; i++) CHECK(y[i] == -0.25f * a[i]);
}


TEST(reductions) {
  size_t n = 10007;
  float *x = fvec(n);
  rand_fill(x, n, -1, 3);
  double s = 0, ss = 0;
  for (size_t i = 0; i < n; i++) s += x[i], ss += (double)x[i] * x[i];
  CHECK_CLOSE(ops->sum(x, n), s, 1e-4, 1e-6);
  CHECK_CLOSE(ops->sumsq(x, n), ss, 1e-4, 1e-6);
  CHECK(ops->sum(x, 0) == 0.0f);
  CHECK(ops->sumsq(x, 0) == 0.0f);
  // cancellation: a sum that float accumulation gets visibly wrong
  for (size_t i = 0; i < n; i++) x[i] = (i % 2) ? 1e4f : -1e4f + 0.001f;
  double t = 0;
  for (size_t i = 0; i < n; i++) t += x[i];
  CHECK_CLOSE(ops->sum(x, n), t, 1e-3, 1e-6);
  free(x);
}


typedef struct {
  size_t n;
  double scale;
  const double *t;
} mse_ctx;

static double mse_loss(const double *p, const void *vc) {
  const mse_ctx *c = vc;
  double s = 0;
  for (size_t i = 0; i < c->n; i++) s += (p[i] - c->t[i]) * (p[i] - c->t[i]);
  return c->scale * s / c->n;
}


TEST(mse_and_gradient) {
  enum { N = 57 };
  float p[N], t[N], d[N];
  double pd[N], td[N], g[N];
  rand_fill(p, N, -2, 2);
  rand_fill(t, N, -2, 2);
  to_double(pd, p, N);
  to_double(td, t, N);
  double want = 0;
  for (int i = 0; i < N; i++) want += (pd[i] - td[i]) * (pd[i] - td[i]);
  want /= N;

  CHECK_CLOSE(ops->mse(NULL, p, t, N, 1.0f), want, 1e-6, 1e-6);
  float loss = ops->mse(d, p, t, N, 0.75f);
  CHECK_CLOSE(loss, want, 1e-6, 1e-6);  // the scale touches the gradient only
  mse_ctx c = {N, 0.75, td};
  fd_grad(g, pd, N, mse_loss, &c);
  CHECK_VEC("mse dpred", d, g, N, 1e-6, 1e-5);
  CHECK(ops->mse(d, p, t, 0, 1.0f) == 0.0f);
}


//---- adam -------------------------------------------------------------------------------------

// two steps of Adam / AdamW on one scalar parameter, written out in double
static void adam_two_steps(double out[2], double p0, double g1, double g2, double lr, double b1,
                           double b2, double eps, double wd, int decoupled) {
  double p = p0, m = 0, v = 0;
  const double g[2] = {g1, g2};
  for (int t = 1; t <= 2; t++) {
    double gt = g[t - 1];
    if (decoupled)
      p = p - lr * wd * p;
    else
      gt = gt + wd * p;
    m = b1 * m + (1 - b1) * gt;
    v = b2 * v + (1 - b2) * gt * gt;
    double mhat = m / (1 - pow(b1, t)), vhat = v / (1 - pow(b2, t));
    p = p - lr * mhat / (sqrt(vhat) + eps);
    out[t - 1] = p;
  }
}


TEST(adam_hand_computed) {
  // t = 1 by hand: m̂ = g, v̂ = g², so the step is lr·g/(|g| + eps) ≈ lr·sign(g)
  // p = 1, g = 0.5, lr = 0.1, wd = 0.1:
  //   Adam:  g' = 0.5 + 0.1·1 = 0.6, p = 1 − 0.1·0.6/(0.6 + 1e-8)  = 0.9
  //   AdamW: p = 1·(1 − 0.1·0.1) = 0.99, then p = 0.99 − 0.1·0.5/(0.5 + 1e-8) = 0.89
  srl_adam_step s = {.lr = 0.1f,
                     .beta1 = 0.9f,
                     .beta2 = 0.999f,
                     .eps = 1e-8f,
                     .weight_decay = 0.1f,
                     .step = 1,
                     .decoupled = 0};
  float p = 1.0f, g = 0.5f, m = 0, v = 0;
  ops->adam_update(&p, &g, &m, &v, 1, &s);
  CHECK_CLOSE(p, 0.9, 1e-6, 0);
  CHECK_CLOSE(m, 0.1 * 0.6, 1e-7, 1e-6);
  CHECK_CLOSE(v, 0.001 * 0.36, 1e-9, 5e-5);  // 1 − 0.999f is 1.3e-5 off in float
  p = 1.0f, m = 0, v = 0, s.decoupled = 1;
  ops->adam_update(&p, &g, &m, &v, 1, &s);
  CHECK_CLOSE(p, 0.89, 1e-6, 0);
  CHECK_CLOSE(m, 0.05, 1e-7, 1e-6);
  CHECK_CLOSE(v, 0.001 * 0.25, 1e-9, 5e-5);

  // t = 2 by hand, AdamW, g₂ = −0.2, from p₁ = 0.89, m₁ = 0.05, v₁ = 2.5e-4:
  //   p = 0.89·0.99 = 0.8811; m = 0.045 − 0.02 = 0.025; v = 2.4975e-4 + 4e-5 = 2.8975e-4
  //   m̂ = 0.025/0.19 = 0.131578947; v̂ = 2.8975e-4/0.001999 = 0.144947474, √ = 0.380719692
  //   p = 0.8811 − 0.1·0.131578947/0.380719702 = 0.846539…
  g = -0.2f, s.step = 2;
  ops->adam_update(&p, &g, &m, &v, 1, &s);
  CHECK_CLOSE(m, 0.025, 1e-7, 1e-5);
  CHECK_CLOSE(v, 2.8975e-4, 1e-10, 5e-5);
  double want2 = 0.8811 - 0.1 * (0.025 / 0.19) / (sqrt(2.8975e-4 / 0.001999) + 1e-8);
  CHECK_CLOSE(p, want2, 1e-6, 0);
  CHECK_CLOSE(p, 0.846539, 2e-6, 0);

  // vectors, both decay forms, no decay, against the double recurrence
  enum { N = 33 };
  float pv[N], g1[N], g2[N], mv[N], vv[N], p0[N];
  rand_fill(p0, N, -1, 1);
  rand_fill(g1, N, -1, 1);
  rand_fill(g2, N, -1, 1);
  static const float wds[] = {0.0f, 0.01f, 0.3f};
  for (int dec = 0; dec < 2; dec++)
    for (int w = 0; w < 3; w++) {
      srl_adam_step st = {.lr = 3e-3f,
                          .beta1 = 0.9f,
                          .beta2 = 0.99f,
                          .eps = 1e-6f,
                          .weight_decay = wds[w],
                          .step = 1,
                          .decoupled = dec};
      memcpy(pv, p0, sizeof pv);
      memset(mv, 0, sizeof mv);
      memset(vv, 0, sizeof vv);
      ops->adam_update(pv, g1, mv, vv, N, &st);
      float p1[N];
      memcpy(p1, pv, sizeof p1);
      st.step = 2;
      ops->adam_update(pv, g2, mv, vv, N, &st);
      for (int i = 0; i < N; i++) {
        double want[2];
        adam_two_steps(want, p0[i], g1[i], g2[i], (float)3e-3, (float)0.9, (float)0.99, (float)1e-6,
                       wds[w], dec);
        CHECK_CLOSE(p1[i], want[0], 1e-6, 1e-6);
        CHECK_CLOSE(pv[i], want[1], 1e-6, 1e-6);
      }
    }
}


//---- diagonal gaussian ------------------------------------------------------------------------

TEST(gauss_logprob_closed_form) {
  enum { R = 6, C = 3 };
  float x[R * C], mu[R * C], ls_row[R * C], ls_shared[C], logp[R];
  rand_fill(x, R * C, -2, 2);
  rand_fill(mu, R * C, -1, 1);
  rand_fill(ls_row, R * C, -1, 0.5f);
  rand_fill(ls_shared, C, -1, 0.5f);

  for (int per_row = 0; per_row < 2; per_row++) {
    const float *ls = per_row ? ls_row : ls_shared;
    ops->gauss_logprob(logp, x, mu, ls, R, C, per_row);
    for (int i = 0; i < R; i++) {
      // log of the product of the one-dimensional densities
      double dens = 1;
      for (int j = 0; j < C; j++) {
        double sd = exp((double)ls[per_row ? i * C + j : j]), z = (x[i * C + j] - mu[i * C + j]);
        dens *= exp(-z * z / (2 * sd * sd)) / (sd * sqrt(2 * M_PI));
      }
      CHECK_CLOSE(logp[i], log(dens), 1e-5, 1e-5);
    }
  }
  // standard normal at its mean: −C·½log 2π
  float zero[C] = {0, 0, 0}, lp;
  ops->gauss_logprob(&lp, zero, zero, zero, 1, C, 0);
  CHECK_CLOSE(lp, -C * 0.5 * log(2 * M_PI), 1e-6, 1e-6);
}


typedef struct {
  int rows, cols, per_row;
  const double *x, *r;
} gauss_ctx;

// p = [mean (rows×cols) | log_std (rows×cols or cols)]; loss = Σ_r logp_r·r_r
static double gauss_loss(const double *p, const void *vc) {
  const gauss_ctx *c = vc;
  const double *mu = p, *ls = p + c->rows * c->cols;
  double s = 0;
  for (int i = 0; i < c->rows; i++) {
    double lp = 0;
    for (int j = 0; j < c->cols; j++) {
      double l = ls[c->per_row ? i * c->cols + j : j],
             d = c->x[i * c->cols + j] - mu[i * c->cols + j];
      lp += -d * d / (2 * exp(2 * l)) - l - 0.5 * log(2 * M_PI);
    }
    s += lp * c->r[i];
  }
  return s;
}


TEST(gauss_logprob_backward) {
  enum { R = 5, C = 4 };
  for (int per_row = 0; per_row < 2; per_row++) {
    size_t nls = per_row ? R * C : C, np = R * C + nls;
    float x[R * C], mu[R * C], ls[R * C], r[R], dmean[R * C], dls[R * C];
    double xd[R * C], rd[R], p[2 * R * C], g[2 * R * C];
    rand_fill(x, R * C, -2, 2);
    rand_fill(mu, R * C, -1, 1);
    rand_fill(ls, nls, -1, 0.5f);
    rand_fill(r, R, -1, 1);
    to_double(xd, x, R * C);
    to_double(rd, r, R);
    to_double(p, mu, R * C);
    to_double(p + R * C, ls, nls);
    gauss_ctx c = {R, C, per_row, xd, rd};
    fd_grad(g, p, np, gauss_loss, &c);

    for (size_t i = 0; i < nls; i++) dls[i] = 0.5f;  // accumulates onto this
    for (int i = 0; i < R * C; i++) dmean[i] = NAN;  // written over
    ops->gauss_logprob_backward(dmean, dls, r, x, mu, ls, R, C, per_row);
    for (size_t i = 0; i < nls; i++) g[R * C + i] += 0.5;
    CHECK_VEC(per_row ? "dmean per-row" : "dmean shared", dmean, g, R * C, 1e-5, 1e-4);
    CHECK_VEC(per_row ? "dlog_std per-row" : "dlog_std shared", dls, g + R * C, nls, 1e-5, 1e-4);

    // either output may be NULL
    float dm2[R * C], dls2[R * C];
    memcpy(dls2, dls, sizeof dls2);
    ops->gauss_logprob_backward(dm2, NULL, r, x, mu, ls, R, C, per_row);
    CHECK(memcmp(dm2, dmean, sizeof dm2) == 0);
    ops->gauss_logprob_backward(NULL, dls2, r, x, mu, ls, R, C, per_row);
    for (size_t i = 0; i < nls; i++) CHECK_CLOSE(dls2[i], 2 * g[R * C + i] - 0.5, 1e-4, 1e-4);
  }
}


//---- ppo --------------------------------------------------------------------------------------

// one sample's PPO-clip objective by cases (Schulman et al. 2017), not through min()
static double ppo_case(double ratio, double adv, double eps, double *dobj_dratio) {
  if (adv >= 0 && ratio > 1 + eps) return *dobj_dratio = 0, (1 + eps) * adv;
  if (adv < 0 && ratio < 1 - eps) return *dobj_dratio = 0, (1 - eps) * adv;
  *dobj_dratio = adv;
  return ratio * adv;
}


TEST(ppo_clip_cases) {
  // (ratio, A) in every region, eps = 0.2
  static const double cases[][2] = {
      {1.1, 2.0},  {1.5, 2.0},  {0.5, 2.0},    // A > 0: inside, above (clipped), below
      {0.9, -1.5}, {1.5, -1.5}, {0.5, -1.5},   // A < 0: inside, above, below (clipped)
      {1.0, 0.7},  {1.25, 0.3}, {0.7, -0.4}};  // at ratio 1, just outside each side
  enum { N = sizeof cases / sizeof cases[0] };
  float logp[N], logp_old[N], adv[N], dlogp[N];
  double want_loss = 0, want_d[N];
  for (int i = 0; i < N; i++) {
    logp_old[i] = -1.0f + 0.1f * i;
    logp[i] = logp_old[i] + (float)log(cases[i][0]);
    adv[i] = (float)cases[i][1];
    double ratio = exp((double)logp[i] - logp_old[i]), dr;
    want_loss -= ppo_case(ratio, adv[i], 0.2, &dr) / N;
    want_d[i] = -dr * ratio / N;  // ∂ratio/∂logp = ratio
  }
  float loss = ops->ppo_clip_loss(dlogp, logp, logp_old, adv, N, 0.2f);
  CHECK_CLOSE(loss, want_loss, 1e-6, 1e-5);
  CHECK_VEC("ppo dlogp", dlogp, want_d, N, 1e-6, 1e-5);
  // the clipped cases carry no gradient, the others all of it
  CHECK(dlogp[1] == 0.0f && dlogp[5] == 0.0f && dlogp[7] == 0.0f && dlogp[8] == 0.0f);
  CHECK(dlogp[0] != 0.0f && dlogp[2] != 0.0f && dlogp[3] != 0.0f && dlogp[4] != 0.0f);
}


typedef struct {
  int n;
  double eps;
  const double *old, *adv;
} ppo_ctx;

static double ppo_loss(const double *logp, const void *vc) {
  const ppo_ctx *c = vc;
  double s = 0, d;
  for (int i = 0; i < c->n; i++) s -= ppo_case(exp(logp[i] - c->old[i]), c->adv[i], c->eps, &d);
  return s / c->n;
}


TEST(ppo_clip_finite_differences) {
  enum { N = 200 };
  float logp[N], old[N], adv[N], dlogp[N];
  double lp[N], od[N], ad[N], g[N];
  rand_fill(old, N, -3, 0);
  rand_fill(adv, N, -2, 2);
  for (int i = 0; i < N; i++) {
    // ratios over [0.5, 1.6], kept away from the kinks at 1 ± 0.2
    float ratio;
    do {
      ratio = (float)srl_rng_uniform_range(rng, 0.5, 1.6);
    } while (fabsf(ratio - 0.8f) < 0.01f || fabsf(ratio - 1.2f) < 0.01f);
    logp[i] = old[i] + logf(ratio);
  }
  to_double(lp, logp, N);
  to_double(od, old, N);
  to_double(ad, adv, N);
  ppo_ctx c = {N, 0.2, od, ad};
  fd_grad(g, lp, N, ppo_loss, &c);
  float loss = ops->ppo_clip_loss(dlogp, logp, old, adv, N, 0.2f);
  CHECK_CLOSE(loss, ppo_loss(lp, &c), 1e-6, 1e-5);
  CHECK_VEC("ppo dlogp fd", dlogp, g, N, 1e-6, 1e-4);
}


int main(void) {
  ops = srl_ops_cpu();
  if (srl_rng_create(&rng, 20240531, 0) != 0) return 1;
  RUN(table_lookup);
  RUN(cuda_lookup_is_clean);
  RUN(act_names_round_trip);
  RUN(memory_ops);
  RUN(matmul_transposes_alpha_beta);
  RUN(matmul_thread_counts);
  RUN(matmul_beta0_overwrites_nan);
  RUN(bias_add_and_backward);
  RUN(act_forward_backward_all);
  RUN(mish_dense_sweep);
  RUN(layernorm_forward_backward);
  RUN(softmax_forward_backward);
  RUN(dropout);
  RUN(elementwise);
  RUN(reductions);
  RUN(mse_and_gradient);
  RUN(adam_hand_computed);
  RUN(gauss_logprob_closed_form);
  RUN(gauss_logprob_backward);
  RUN(ppo_clip_cases);
  RUN(ppo_clip_finite_differences);
  srl_rng_destroy(rng);
  return TEST_REPORT();
}
