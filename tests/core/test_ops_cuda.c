// test_ops_cuda.c: the CUDA op table against the CPU reference, op by op.
//
// Every op runs on random inputs of several shapes (odd ones included) on both tables; the CUDA
// result must match the CPU one within a normalised mean squared error Σ(a−b)²/Σb² ≤ 1e-7, and
// dropout masks must match bit for bit. One line per case prints its NMSE, so a GPU run shows
// where a twin drifts. Without a usable GPU (or in a build without CUDA) the comparisons skip,
// after checking that srl_ops_cuda fails cleanly with a message.
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/ops.h"
#include "core/rng.h"
#include "test.h"

#define NMSE_TOL 1e-7

static const srl_ops *cpu, *gpu;
static srl_rng *rng;
static double worst_nmse;  // over the whole run, for the summary line


//---- helpers ----------------------------------------------------------------------------------

// compare a CUDA result with the CPU reference; print one diagnostic line
static void check_nmse(const char *what, const float *got, const float *want, size_t n) {
  double e = srl_test_nmse(got, want, n);
  int ok = e <= NMSE_TOL;  // false for NaN
  printf("  %-4s %-52s nmse %.3e\n", ok ? "" : "BAD", what, e);
  if (!(e <= worst_nmse)) worst_nmse = e;
  if (!ok) {
    size_t worst = 0;
    double wd = -1;
    for (size_t i = 0; i < n; i++) {
      double d = (double)got[i] - want[i];
      if (d < 0) d = -d;
      if (!(d <= wd)) wd = d, worst = i;
    }
    fprintf(stderr, "  %s: nmse %.3e > %.0e; worst [%zu]: cuda %.9g, cpu %.9g\n", what, e, NMSE_TOL,
            worst, got[worst], want[worst]);
  }
  CHECK(ok);
}

static void check_scalar(const char *what, float got, float want) {
  check_nmse(what, &got, &want, 1);
}

static float *host_randn(size_t n, float std) {
  float *x = srl_malloc((n ? n : 1) * sizeof *x);
  srl_rng_fill_normal(rng, x, n, 0.0f, std);
  return x;
}

static float *host_copy(const float *x, size_t n) {
  float *y = srl_malloc((n ? n : 1) * sizeof *y);
  memcpy(y, x, n * sizeof *y);
  return y;
}

static float *host_fill(size_t n, float v) {
  float *y = srl_malloc((n ? n : 1) * sizeof *y);
  for (size_t i = 0; i < n; i++) y[i] = v;
  return y;
}

// a device copy of a host array
static float *dev(const float *x, size_t n) {
  float *d = gpu->alloc(n * sizeof *d);
  CHECK(d != NULL);
  if (d) CHECK_OK(gpu->upload(d, x, n * sizeof *d));
  return d;
}

// download a device array into a fresh host array
static float *down(const float *d, size_t n) {
  float *x = srl_malloc((n ? n : 1) * sizeof *x);
  memset(x, 0, (n ? n : 1) * sizeof *x);
  CHECK_OK(gpu->download(x, d, n * sizeof *x));
  return x;
}

// compare a device array with its CPU twin, then free the download
static void check_dev(const char *what, const float *d, const float *want, size_t n) {
  float *got = down(d, n);
  check_nmse(what, got, want, n);
  srl_free(got);
}

// the queue drained without a recorded failure
static void check_sync(void) {
  CHECK_OK(gpu->sync());
}

static const size_t sizes[] = {1, 7, 63, 1000, 4097, 2000003};
#define NSIZES (sizeof sizes / sizeof sizes[0])


//---- availability -----------------------------------------------------------------------------

// without a GPU: a clean failure with a message, through both entry points
TEST(test_cuda_unavailable) {
  const srl_ops *t = (const srl_ops *)1;
  int rc = srl_ops_cuda(&t);
  CHECK(rc == SRL_ENODEV || rc == SRL_EUNSUPPORTED);
  CHECK(t == NULL);
  CHECK_ERRMSG("device 'cuda' requested");
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", srl_errmsg());
  t = (const srl_ops *)1;
  CHECK_EQ_INT(srl_ops_get(&t, "cuda"), rc);
  CHECK(t == NULL);
  CHECK(strcmp(srl_errmsg(), msg) == 0);
}

static char skip_why[1200];

TEST(test_cuda_ops) {
  SKIP(skip_why);
}


TEST(test_table) {
  const srl_ops *t = NULL, *again = NULL;
  CHECK_OK(srl_ops_cuda(&t));
  CHECK_OK(srl_ops_get(&again, "cuda"));
  CHECK(t == gpu && again == gpu);
  CHECK(gpu->device == SRL_DEVICE_CUDA);
  CHECK(strcmp(gpu->name, "cuda") == 0);
  // every entry is set
#define CHECK_SET(op) CHECK(gpu->op != NULL)
  CHECK_SET(alloc);
  CHECK_SET(free);
  CHECK_SET(upload);
  CHECK_SET(download);
  CHECK_SET(copy);
  CHECK_SET(sync);
  CHECK_SET(matmul);
  CHECK_SET(bias_add);
  CHECK_SET(bias_backward);
  CHECK_SET(act_forward);
  CHECK_SET(act_backward);
  CHECK_SET(layernorm_forward);
  CHECK_SET(layernorm_backward);
  CHECK_SET(softmax_forward);
  CHECK_SET(softmax_backward);
  CHECK_SET(dropout_forward);
  CHECK_SET(fill);
  CHECK_SET(mul);
  CHECK_SET(add);
  CHECK_SET(axpby);
  CHECK_SET(scale);
  CHECK_SET(sum);
  CHECK_SET(sumsq);
  CHECK_SET(mse);
  CHECK_SET(adam_update);
  CHECK_SET(gauss_logprob);
  CHECK_SET(gauss_logprob_backward);
  CHECK_SET(ppo_clip_loss);
#undef CHECK_SET
}


//---- memory -----------------------------------------------------------------------------------

TEST(test_memory) {
  static const size_t nbytes[] = {0, 1, 7, 4097, 1 << 20};
  for (size_t s = 0; s < sizeof nbytes / sizeof nbytes[0]; s++) {
    size_t n = nbytes[s];
    unsigned char *src = srl_malloc(n + 1), *back = srl_malloc(n + 1);
    for (size_t i = 0; i < n; i++) src[i] = (unsigned char)(i * 131 + 7);
    void *a = gpu->alloc(n), *b = gpu->alloc(n);
    CHECK(a != NULL && b != NULL);
    if (!a || !b) continue;
    // zeroed
    memset(back, 0xab, n + 1);
    CHECK_OK(gpu->download(back, a, n));
    int zero = 1;
    for (size_t i = 0; i < n; i++) zero &= back[i] == 0;
    CHECK(zero);
    // upload, copy, download
    CHECK_OK(gpu->upload(a, src, n));
    CHECK_OK(gpu->copy(b, a, n));
    memset(back, 0, n + 1);
    CHECK_OK(gpu->download(back, b, n));
    CHECK(n == 0 || memcmp(back, src, n) == 0);
    // overlapping copy has memmove semantics, both directions
    if (n > 8) {
      CHECK_OK(gpu->copy((char *)a + 3, a, n - 3));
      CHECK_OK(gpu->download(back, a, n));
      CHECK(memcmp(back, src, 3) == 0 && memcmp(back + 3, src, n - 3) == 0);
      CHECK_OK(gpu->upload(a, src, n));
      CHECK_OK(gpu->copy(a, (char *)a + 5, n - 5));
      CHECK_OK(gpu->download(back, a, n));
      CHECK(memcmp(back, src + 5, n - 5) == 0 && memcmp(back + n - 5, src + n - 5, 5) == 0);
    }
    gpu->free(a);
    gpu->free(b);
    srl_free(src);
    srl_free(back);
  }
  gpu->free(NULL);
  check_sync();
  printf("  memory round trips ok\n");
}


//---- linear algebra ---------------------------------------------------------------------------

TEST(test_matmul) {
  static const int shapes[][3] = {{64, 60, 64},  {4096, 64, 64}, {1, 1, 1},    {7, 63, 1},
                                  {63, 7, 1000}, {1, 4097, 7},   {256, 6, 64}, {5, 3, 0}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
    for (int ta = 0; ta < 2; ta++)
      for (int tb = 0; tb < 2; tb++)
        for (int variant = 0; variant < 2; variant++) {
          // variant 0: beta = 0 over a NaN-filled c; variant 1: alpha, beta ≠ 0, 1
          float alpha = variant ? 0.75f : 1.0f, beta = variant ? -0.5f : 0.0f;
          float *a = host_randn((size_t)m * k, 1.0f), *b = host_randn((size_t)k * n, 1.0f);
          float *c = variant ? host_randn((size_t)m * n, 1.0f) : host_fill((size_t)m * n, NAN);
          float *da = dev(a, (size_t)m * k), *db = dev(b, (size_t)k * n);
          float *dc = dev(c, (size_t)m * n);
          cpu->matmul(c, a, b, m, n, k, ta, tb, alpha, beta);
          gpu->matmul(dc, da, db, m, n, k, ta, tb, alpha, beta);
          char what[96];
          snprintf(what, sizeof what, "matmul %dx%dx%d ta=%d tb=%d alpha=%g beta=%g", m, n, k, ta,
                   tb, alpha, beta);
          check_dev(what, dc, c, (size_t)m * n);
          gpu->free(da), gpu->free(db), gpu->free(dc);
          srl_free(a), srl_free(b), srl_free(c);
        }
  }
  check_sync();
}


static const int row_shapes[][2] = {{1, 1},    {4097, 7}, {4096, 64}, {63, 1000},
                                    {3, 4097}, {7, 256},  {5, 257}};
#define NROWSHAPES (sizeof row_shapes / sizeof row_shapes[0])


TEST(test_bias) {
  for (size_t s = 0; s < NROWSHAPES; s++) {
    int rows = row_shapes[s][0], cols = row_shapes[s][1];
    size_t n = (size_t)rows * cols;
    float *out = host_randn(n, 1.0f), *bias = host_randn(cols, 1.0f);
    float *dbias = host_randn(cols, 1.0f);  // nonzero: the gradient accumulates
    float *dout = host_randn(n, 1.0f);
    float *d_out = dev(out, n), *d_bias = dev(bias, cols), *d_dbias = dev(dbias, cols);
    float *d_dout = dev(dout, n);
    cpu->bias_add(out, bias, rows, cols);
    gpu->bias_add(d_out, d_bias, rows, cols);
    cpu->bias_backward(dbias, dout, rows, cols);
    gpu->bias_backward(d_dbias, d_dout, rows, cols);
    char what[96];
    snprintf(what, sizeof what, "bias_add %dx%d", rows, cols);
    check_dev(what, d_out, out, n);
    snprintf(what, sizeof what, "bias_backward %dx%d (+=)", rows, cols);
    check_dev(what, d_dbias, dbias, cols);
    gpu->free(d_out), gpu->free(d_bias), gpu->free(d_dbias), gpu->free(d_dout);
    srl_free(out), srl_free(bias), srl_free(dbias), srl_free(dout);
  }
  check_sync();
}


//---- activations ------------------------------------------------------------------------------

// inputs spread over the interesting ranges, with some beyond softplus's linear threshold
static float *act_inputs(size_t n) {
  float *x = host_randn(n, 3.0f);
  for (size_t i = 0; i < n; i += 11) x[i] = (i & 1) ? 20.0f + (float)(i % 7) : -22.5f;
  return x;
}

TEST(test_act) {
  for (int act = 0; act < SRL_ACT_COUNT; act++)
    for (size_t s = 0; s < NSIZES; s++) {
      size_t n = sizes[s];
      float *in = act_inputs(n), *dout = host_randn(n, 1.0f);
      float *out = host_fill(n, 0), *din = host_fill(n, 0);
      float *d_in = dev(in, n), *d_dout = dev(dout, n), *d_out = dev(out, n);
      float *d_din = dev(din, n);
      cpu->act_forward(out, in, n, (srl_act)act);
      gpu->act_forward(d_out, d_in, n, (srl_act)act);
      cpu->act_backward(din, dout, in, n, (srl_act)act);
      gpu->act_backward(d_din, d_dout, d_in, n, (srl_act)act);
      char what[96];
      snprintf(what, sizeof what, "act_forward %s n=%zu", srl_act_name((srl_act)act), n);
      check_dev(what, d_out, out, n);
      snprintf(what, sizeof what, "act_backward %s n=%zu", srl_act_name((srl_act)act), n);
      check_dev(what, d_din, din, n);
      // in place: out = f(out), din = dout·f'(in) into dout
      CHECK_OK(gpu->upload(d_out, in, n * sizeof *in));
      gpu->act_forward(d_out, d_out, n, (srl_act)act);
      gpu->act_backward(d_dout, d_dout, d_in, n, (srl_act)act);
      if (n == 4097) {
        snprintf(what, sizeof what, "act_forward %s in place", srl_act_name((srl_act)act));
        check_dev(what, d_out, out, n);
        snprintf(what, sizeof what, "act_backward %s in place", srl_act_name((srl_act)act));
        check_dev(what, d_dout, din, n);
      }
      gpu->free(d_in), gpu->free(d_dout), gpu->free(d_out), gpu->free(d_din);
      srl_free(in), srl_free(dout), srl_free(out), srl_free(din);
    }
  check_sync();
}


//---- normalisation ----------------------------------------------------------------------------

TEST(test_layernorm) {
  for (size_t s = 0; s < NROWSHAPES; s++) {
    int rows = row_shapes[s][0], cols = row_shapes[s][1];
    size_t n = (size_t)rows * cols;
    float *in = host_randn(n, 2.0f), *w = host_randn(cols, 1.0f), *b = host_randn(cols, 1.0f);
    for (size_t i = 0; i < n; i++) in[i] += 0.5f;  // a nonzero mean
    float *dout = host_randn(n, 1.0f);
    float *out = host_fill(n, 0), *mean = host_fill(rows, 0), *rstd = host_fill(rows, 0);
    float *din = host_fill(n, 0), *dw = host_randn(cols, 1.0f), *db = host_randn(cols, 1.0f);
    float *d_in = dev(in, n), *d_w = dev(w, cols), *d_b = dev(b, cols), *d_dout = dev(dout, n);
    float *d_out = dev(out, n), *d_mean = dev(mean, rows), *d_rstd = dev(rstd, rows);
    float *d_din = dev(din, n), *d_dw = dev(dw, cols), *d_db = dev(db, cols);
    cpu->layernorm_forward(out, mean, rstd, in, w, b, rows, cols);
    gpu->layernorm_forward(d_out, d_mean, d_rstd, d_in, d_w, d_b, rows, cols);
    // the backward pass uses each device's own statistics, as a network would
    cpu->layernorm_backward(din, dw, db, dout, in, w, mean, rstd, rows, cols);
    gpu->layernorm_backward(d_din, d_dw, d_db, d_dout, d_in, d_w, d_mean, d_rstd, rows, cols);
    char what[96];
    snprintf(what, sizeof what, "layernorm_forward %dx%d out", rows, cols);
    check_dev(what, d_out, out, n);
    snprintf(what, sizeof what, "layernorm_forward %dx%d mean", rows, cols);
    check_dev(what, d_mean, mean, rows);
    snprintf(what, sizeof what, "layernorm_forward %dx%d rstd", rows, cols);
    check_dev(what, d_rstd, rstd, rows);
    snprintf(what, sizeof what, "layernorm_backward %dx%d din", rows, cols);
    check_dev(what, d_din, din, n);
    snprintf(what, sizeof what, "layernorm_backward %dx%d dw (+=)", rows, cols);
    check_dev(what, d_dw, dw, cols);
    snprintf(what, sizeof what, "layernorm_backward %dx%d db (+=)", rows, cols);
    check_dev(what, d_db, db, cols);
    // din written over dout
    CHECK_OK(gpu->upload(d_dw, dw, cols * sizeof *dw));
    gpu->layernorm_backward(d_dout, d_dw, d_db, d_dout, d_in, d_w, d_mean, d_rstd, rows, cols);
    snprintf(what, sizeof what, "layernorm_backward %dx%d din over dout", rows, cols);
    check_dev(what, d_dout, din, n);
    gpu->free(d_in), gpu->free(d_w), gpu->free(d_b), gpu->free(d_dout), gpu->free(d_out);
    gpu->free(d_mean), gpu->free(d_rstd), gpu->free(d_din), gpu->free(d_dw), gpu->free(d_db);
    srl_free(in), srl_free(w), srl_free(b), srl_free(dout), srl_free(out), srl_free(mean);
    srl_free(rstd), srl_free(din), srl_free(dw), srl_free(db);
  }
  check_sync();
}


TEST(test_softmax) {
  for (size_t s = 0; s < NROWSHAPES; s++) {
    int rows = row_shapes[s][0], cols = row_shapes[s][1];
    size_t n = (size_t)rows * cols;
    float *in = host_randn(n, 3.0f), *dout = host_randn(n, 1.0f);
    for (size_t i = 0; i < n; i += 5) in[i] += 40.0f;  // the max shift matters
    float *out = host_fill(n, 0), *din = host_fill(n, 0);
    float *d_in = dev(in, n), *d_dout = dev(dout, n), *d_out = dev(out, n), *d_din = dev(din, n);
    cpu->softmax_forward(out, in, rows, cols);
    gpu->softmax_forward(d_out, d_in, rows, cols);
    cpu->softmax_backward(din, dout, out, rows, cols);
    gpu->softmax_backward(d_din, d_dout, d_out, rows, cols);
    char what[96];
    snprintf(what, sizeof what, "softmax_forward %dx%d", rows, cols);
    check_dev(what, d_out, out, n);
    snprintf(what, sizeof what, "softmax_backward %dx%d", rows, cols);
    check_dev(what, d_din, din, n);
    // in place: out over in, din over dout
    gpu->softmax_forward(d_in, d_in, rows, cols);
    gpu->softmax_backward(d_dout, d_dout, d_in, rows, cols);
    snprintf(what, sizeof what, "softmax %dx%d in place fwd", rows, cols);
    check_dev(what, d_in, out, n);
    snprintf(what, sizeof what, "softmax %dx%d in place bwd", rows, cols);
    check_dev(what, d_dout, din, n);
    gpu->free(d_in), gpu->free(d_dout), gpu->free(d_out), gpu->free(d_din);
    srl_free(in), srl_free(dout), srl_free(out), srl_free(din);
  }
  check_sync();
}


//---- dropout ----------------------------------------------------------------------------------

TEST(test_dropout) {
  static const float ps[] = {0.0f, 0.1f, 0.5f, 0.9f};
  for (size_t s = 0; s < NSIZES; s++)
    for (size_t q = 0; q < sizeof ps / sizeof ps[0]; q++) {
      size_t n = sizes[s];
      uint64_t seed = 0x5eed0000ull + s * 16 + q;
      float *in = host_randn(n, 1.0f), *out = host_fill(n, NAN), *mask = host_fill(n, NAN);
      float *d_in = dev(in, n), *d_out = dev(out, n), *d_mask = dev(mask, n);
      cpu->dropout_forward(out, mask, in, n, ps[q], seed);
      gpu->dropout_forward(d_out, d_mask, d_in, n, ps[q], seed);
      float *got_out = down(d_out, n), *got_mask = down(d_mask, n);
      size_t diff_mask = 0, diff_out = 0, kept = 0;
      for (size_t i = 0; i < n; i++) {
        diff_mask += memcmp(&got_mask[i], &mask[i], sizeof(float)) != 0;
        diff_out += memcmp(&got_out[i], &out[i], sizeof(float)) != 0;
        kept += mask[i] != 0.0f;
      }
      printf("  %-4s dropout n=%zu p=%.1f: %zu of %zu kept, %zu mask / %zu output mismatches\n",
             diff_mask || diff_out ? "BAD" : "", n, ps[q], kept, n, diff_mask, diff_out);
      CHECK_EQ_INT(diff_mask, 0);
      CHECK_EQ_INT(diff_out, 0);
      gpu->free(d_in), gpu->free(d_out), gpu->free(d_mask);
      srl_free(in), srl_free(out), srl_free(mask), srl_free(got_out), srl_free(got_mask);
    }
  check_sync();
}


//---- elementwise ------------------------------------------------------------------------------

TEST(test_elementwise) {
  for (size_t s = 0; s < NSIZES; s++) {
    size_t n = sizes[s];
    float *a = host_randn(n, 1.0f), *b = host_randn(n, 2.0f), *y = host_randn(n, 1.0f);
    float *ynan = host_fill(n, NAN), *out = host_fill(n, 0);
    float *d_a = dev(a, n), *d_b = dev(b, n), *d_y = dev(y, n), *d_ynan = dev(ynan, n);
    float *d_out = dev(out, n);
    char what[96];

    cpu->fill(out, -1.25f, n);
    gpu->fill(d_out, -1.25f, n);
    snprintf(what, sizeof what, "fill -1.25 n=%zu", n);
    check_dev(what, d_out, out, n);
    cpu->fill(out, 0.0f, n);
    gpu->fill(d_out, 0.0f, n);
    float *got = down(d_out, n);
    int zero = 1;
    for (size_t i = 0; i < n; i++) zero &= got[i] == 0.0f;
    CHECK(zero);
    srl_free(got);

    cpu->mul(out, a, b, n);
    gpu->mul(d_out, d_a, d_b, n);
    snprintf(what, sizeof what, "mul n=%zu", n);
    check_dev(what, d_out, out, n);

    cpu->add(out, a, b, n);
    gpu->add(d_out, d_a, d_b, n);
    snprintf(what, sizeof what, "add n=%zu", n);
    check_dev(what, d_out, out, n);

    cpu->axpby(y, 0.3f, a, -1.7f, n);
    gpu->axpby(d_y, 0.3f, d_a, -1.7f, n);
    snprintf(what, sizeof what, "axpby a=0.3 b=-1.7 n=%zu", n);
    check_dev(what, d_y, y, n);

    cpu->axpby(ynan, 2.5f, a, 0.0f, n);
    gpu->axpby(d_ynan, 2.5f, d_a, 0.0f, n);
    snprintf(what, sizeof what, "axpby b=0 over NaN n=%zu", n);
    check_dev(what, d_ynan, ynan, n);

    cpu->scale(b, -0.7f, n);
    gpu->scale(d_b, -0.7f, n);
    snprintf(what, sizeof what, "scale -0.7 n=%zu", n);
    check_dev(what, d_b, b, n);

    gpu->free(d_a), gpu->free(d_b), gpu->free(d_y), gpu->free(d_ynan), gpu->free(d_out);
    srl_free(a), srl_free(b), srl_free(y), srl_free(ynan), srl_free(out);
  }
  check_sync();
}


//---- reductions -------------------------------------------------------------------------------

TEST(test_reductions) {
  for (size_t s = 0; s < NSIZES; s++) {
    size_t n = sizes[s];
    float *x = host_randn(n, 1.0f), *t = host_randn(n, 1.0f);
    for (size_t i = 0; i < n; i++) x[i] += 0.25f;  // a sum well away from 0
    float *dpred = host_fill(n, 0);
    float *d_x = dev(x, n), *d_t = dev(t, n), *d_dpred = dev(dpred, n);
    char what[96];
    snprintf(what, sizeof what, "sum n=%zu", n);
    check_scalar(what, gpu->sum(d_x, n), cpu->sum(x, n));
    snprintf(what, sizeof what, "sumsq n=%zu", n);
    check_scalar(what, gpu->sumsq(d_x, n), cpu->sumsq(x, n));
    snprintf(what, sizeof what, "mse n=%zu (no gradient)", n);
    check_scalar(what, gpu->mse(NULL, d_x, d_t, n, 1.0f), cpu->mse(NULL, x, t, n, 1.0f));
    float got = gpu->mse(d_dpred, d_x, d_t, n, 0.5f), want = cpu->mse(dpred, x, t, n, 0.5f);
    snprintf(what, sizeof what, "mse n=%zu loss", n);
    check_scalar(what, got, want);
    snprintf(what, sizeof what, "mse n=%zu dpred (scale 0.5)", n);
    check_dev(what, d_dpred, dpred, n);
    gpu->free(d_x), gpu->free(d_t), gpu->free(d_dpred);
    srl_free(x), srl_free(t), srl_free(dpred);
  }
  CHECK(gpu->sum(NULL, 0) == 0.0f);
  CHECK(gpu->mse(NULL, NULL, NULL, 0, 1.0f) == 0.0f);
  check_sync();
}


//---- optimizer --------------------------------------------------------------------------------

TEST(test_adam) {
  static const srl_adam_step steps[] = {
      {.lr = 0.1f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f, .step = 1},
      {.lr = 0.05f, .beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-6f, .weight_decay = 0.1f, .step = 7},
      {.lr = 0.05f,
       .beta1 = 0.8f,
       .beta2 = 0.999f,
       .eps = 1e-8f,
       .weight_decay = 0.01f,
       .step = 30,
       .decoupled = 1},
  };
  for (size_t s = 0; s < NSIZES; s++)
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
      size_t n = sizes[s];
      const srl_adam_step *st = &steps[k];
      float *p = host_randn(n, 1.0f), *g = host_randn(n, 1.0f);
      float *m = host_randn(n, 0.1f), *v = host_randn(n, 0.1f);
      for (size_t i = 0; i < n; i++) v[i] *= v[i];  // second moments are ≥ 0
      float *p0 = host_copy(p, n);
      float *d_p = dev(p, n), *d_g = dev(g, n), *d_m = dev(m, n), *d_v = dev(v, n);
      cpu->adam_update(p, g, m, v, n, st);
      gpu->adam_update(d_p, d_g, d_m, d_v, n, st);
      char what[96];
      const char *kind = st->decoupled ? "adamw" : "adam";
      // the step itself (p − p0), which a comparison of p alone would hide under p's size
      float *got = down(d_p, n), *dgot = host_copy(got, n), *dwant = host_copy(p, n);
      for (size_t i = 0; i < n; i++) dgot[i] -= p0[i], dwant[i] -= p0[i];
      snprintf(what, sizeof what, "%s t=%d n=%zu param", kind, st->step, n);
      check_nmse(what, got, p, n);
      snprintf(what, sizeof what, "%s t=%d n=%zu param step", kind, st->step, n);
      check_nmse(what, dgot, dwant, n);
      snprintf(what, sizeof what, "%s t=%d n=%zu m", kind, st->step, n);
      check_dev(what, d_m, m, n);
      snprintf(what, sizeof what, "%s t=%d n=%zu v", kind, st->step, n);
      check_dev(what, d_v, v, n);
      gpu->free(d_p), gpu->free(d_g), gpu->free(d_m), gpu->free(d_v);
      srl_free(p), srl_free(g), srl_free(m), srl_free(v), srl_free(p0);
      srl_free(got), srl_free(dgot), srl_free(dwant);
    }
  check_sync();
}


//---- diagonal gaussian ------------------------------------------------------------------------

TEST(test_gauss) {
  static const int shapes[][2] = {{1, 1}, {4096, 6}, {4097, 7}, {63, 1000}, {2, 4097}, {1000, 2}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    for (int per_row = 0; per_row < 2; per_row++) {
      int rows = shapes[s][0], cols = shapes[s][1];
      size_t n = (size_t)rows * cols, nls = per_row ? n : (size_t)cols;
      float *x = host_randn(n, 1.0f), *mean = host_randn(n, 1.0f);
      float *log_std = host_randn(nls, 0.5f), *dlogp = host_randn(rows, 1.0f);
      float *logp = host_fill(rows, 0), *dmean = host_fill(n, 0);
      float *dls = host_randn(nls, 1.0f);  // nonzero: the gradient accumulates
      float *dls0 = host_copy(dls, nls);
      float *d_x = dev(x, n), *d_mean = dev(mean, n), *d_ls = dev(log_std, nls);
      float *d_dlogp = dev(dlogp, rows), *d_logp = dev(logp, rows), *d_dmean = dev(dmean, n);
      float *d_dls = dev(dls, nls);
      cpu->gauss_logprob(logp, x, mean, log_std, rows, cols, per_row);
      gpu->gauss_logprob(d_logp, d_x, d_mean, d_ls, rows, cols, per_row);
      cpu->gauss_logprob_backward(dmean, dls, dlogp, x, mean, log_std, rows, cols, per_row);
      gpu->gauss_logprob_backward(d_dmean, d_dls, d_dlogp, d_x, d_mean, d_ls, rows, cols, per_row);
      const char *lsk = per_row ? "per-row" : "shared";
      char what[96];
      snprintf(what, sizeof what, "gauss_logprob %dx%d %s", rows, cols, lsk);
      check_dev(what, d_logp, logp, rows);
      snprintf(what, sizeof what, "gauss_logprob_backward %dx%d %s dmean", rows, cols, lsk);
      check_dev(what, d_dmean, dmean, n);
      snprintf(what, sizeof what, "gauss_logprob_backward %dx%d %s dlog_std (+=)", rows, cols, lsk);
      check_dev(what, d_dls, dls, nls);
      // either output may be NULL: dlog_std alone, then dmean alone
      CHECK_OK(gpu->upload(d_dls, dls0, nls * sizeof *dls0));
      gpu->fill(d_dmean, 7.0f, n);
      gpu->gauss_logprob_backward(NULL, d_dls, d_dlogp, d_x, d_mean, d_ls, rows, cols, per_row);
      snprintf(what, sizeof what, "gauss_logprob_backward %dx%d %s dlog_std only", rows, cols, lsk);
      check_dev(what, d_dls, dls, nls);
      float *untouched = down(d_dmean, n);
      int seven = 1;
      for (size_t i = 0; i < n; i++) seven &= untouched[i] == 7.0f;
      CHECK(seven);
      srl_free(untouched);
      gpu->gauss_logprob_backward(d_dmean, NULL, d_dlogp, d_x, d_mean, d_ls, rows, cols, per_row);
      snprintf(what, sizeof what, "gauss_logprob_backward %dx%d %s dmean only", rows, cols, lsk);
      check_dev(what, d_dmean, dmean, n);
      gpu->free(d_x), gpu->free(d_mean), gpu->free(d_ls), gpu->free(d_dlogp), gpu->free(d_logp);
      gpu->free(d_dmean), gpu->free(d_dls);
      srl_free(x), srl_free(mean), srl_free(log_std), srl_free(dlogp), srl_free(logp);
      srl_free(dmean), srl_free(dls), srl_free(dls0);
    }
  check_sync();
}


//---- ppo --------------------------------------------------------------------------------------

TEST(test_ppo) {
  static const int ns[] = {1, 7, 63, 1000, 4096, 4097, 2000003};
  for (size_t s = 0; s < sizeof ns / sizeof ns[0]; s++) {
    int n = ns[s];
    float *logp = host_randn(n, 1.0f), *logp_old = host_copy(logp, n);
    float *adv = host_randn(n, 1.0f), *delta = host_randn(n, 0.3f);
    // ratios on both sides of the clip range, but none within 1e-4 of its edges: there the
    // gradient jumps, and the last-ulp differences of exp between devices would decide the side
    for (int i = 0; i < n; i++) {
      logp[i] += delta[i];
      for (;;) {
        double r = exp((double)(logp[i] - logp_old[i]));
        if (fabs(r - 1.2) > 1e-4 && fabs(r - 0.8) > 1e-4) break;
        logp[i] += 1e-3f;
      }
    }
    float *dlogp = host_fill(n, NAN);
    float *d_logp = dev(logp, n), *d_old = dev(logp_old, n), *d_adv = dev(adv, n);
    float *d_dlogp = dev(dlogp, n);
    float want = cpu->ppo_clip_loss(dlogp, logp, logp_old, adv, n, 0.2f);
    float got = gpu->ppo_clip_loss(d_dlogp, d_logp, d_old, d_adv, n, 0.2f);
    int clipped = 0;
    for (int i = 0; i < n; i++) clipped += dlogp[i] == 0.0f;
    char what[96];
    snprintf(what, sizeof what, "ppo_clip_loss n=%d loss (%d clipped)", n, clipped);
    check_scalar(what, got, want);
    snprintf(what, sizeof what, "ppo_clip_loss n=%d dlogp", n);
    check_dev(what, d_dlogp, dlogp, n);
    gpu->free(d_logp), gpu->free(d_old), gpu->free(d_adv), gpu->free(d_dlogp);
    srl_free(logp), srl_free(logp_old), srl_free(adv), srl_free(delta), srl_free(dlogp);
  }
  CHECK(gpu->ppo_clip_loss(NULL, NULL, NULL, NULL, 0, 0.2f) == 0.0f);
  check_sync();
}


int main(void) {
  cpu = srl_ops_cpu();
  int rc = srl_ops_cuda(&gpu);
  if (rc < 0) {
    snprintf(skip_why, sizeof skip_why, "no CUDA device (%s)", srl_errmsg());
    RUN(test_cuda_unavailable);
    RUN(test_cuda_ops);
    return TEST_REPORT();
  }
  if (srl_rng_create(&rng, 20240611, 0) < 0) {
    fprintf(stderr, "rng: %s\n", srl_errmsg());
    return 1;
  }
  RUN(test_table);
  RUN(test_memory);
  RUN(test_matmul);
  RUN(test_bias);
  RUN(test_act);
  RUN(test_layernorm);
  RUN(test_softmax);
  RUN(test_dropout);
  RUN(test_elementwise);
  RUN(test_reductions);
  RUN(test_adam);
  RUN(test_gauss);
  RUN(test_ppo);
  printf("worst nmse %.3e (limit %.0e)\n", worst_nmse, NMSE_TOL);
  srl_rng_destroy(rng);
  return TEST_REPORT();
}
