// test_nn.c: MLP forward against a double-precision reference written from the layer
// definitions, every parameter and input gradient against central finite differences of that
// reference (plain, each activation, layernorm, dropout, residual blocks), gradient accumulation,
// zero_grad, initialisation, tensor names, target-network helpers and argument errors.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/nn.h"
#include "core/ops.h"
#include "core/rng.h"
#include "test.h"

static const srl_ops *ops;


//---- double-precision reference -----------------------------------------------------------------

static double ref_act(double x, srl_act a) {
  switch (a) {
    case SRL_ACT_IDENTITY:
      return x;
    case SRL_ACT_TANH:
      return tanh(x);
    case SRL_ACT_RELU:
      return x > 0 ? x : 0;
    case SRL_ACT_MISH:
      return x * tanh(x > 20 ? x : log1p(exp(x)));
    case SRL_ACT_GELU:
      return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    case SRL_ACT_QUICK_GELU:
      return x / (1 + exp(-1.702 * x));
    case SRL_ACT_SIGMOID:
      return 1 / (1 + exp(-x));
    case SRL_ACT_SOFTPLUS:
      return x > 20 ? x : log1p(exp(x));
    default:
      return NAN;
  }
}


// y (B×out) = x (B×in) · Wᵀ + b, W stored (out×in)
static void ref_linear(double *y, const double *x, const double *w, const double *b, int rows,
                       int in, int out) {
  for (int r = 0; r < rows; r++)
    for (int o = 0; o < out; o++) {
      double s = b[o];
      for (int i = 0; i < in; i++) s += x[r * in + i] * w[o * in + i];
      y[r * out + o] = s;
    }
}


static void ref_layernorm(double *x, const double *w, const double *b, int rows, int cols) {
  for (int r = 0; r < rows; r++) {
    double *v = x + r * cols, mu = 0, var = 0;
    for (int j = 0; j < cols; j++) mu += v[j];
    mu /= cols;
    for (int j = 0; j < cols; j++) var += (v[j] - mu) * (v[j] - mu);
    var /= cols;
    for (int j = 0; j < cols; j++) v[j] = (v[j] - mu) / sqrt(var + 1e-5) * w[j] + b[j];
  }
}


typedef struct ref_net {
  const srl_mlp *net;                // shapes and tensor offsets only
  double *p;                         // (n_params) parameters
  double *mask[SRL_MLP_MAX_LINEAR];  // dropout masks per site, NULL when none
  double *buf[4];                    // scratch (rows × max width)
} ref_net;


static const double *W(const ref_net *R, int i) {
  return R->p + R->net->tensors[R->net->lin[i].tensor].offset;
}
static const double *Bv(const ref_net *R, int i) {
  return R->p + R->net->tensors[R->net->lin[i].tensor + 1].offset;
}
static const double *LNw(const ref_net *R, int i) {
  return R->p + R->net->tensors[R->net->ln[i].tensor].offset;
}
static const double *LNb(const ref_net *R, int i) {
  return R->p + R->net->tensors[R->net->ln[i].tensor + 1].offset;
}


// the network's function, written from its definition
static void ref_forward(const ref_net *R, const double *x, int rows, double *y) {
  const srl_mlp *net = R->net;
  const srl_mlp_config *c = &net->cfg;
  int L = net->n_linear;
  double *cur = R->buf[0], *nxt = R->buf[1];
  if (c->res_blocks == 0) {
    const double *in = x;
    for (int i = 0; i < L; i++) {
      const srl_linear *l = &net->lin[i];
      ref_linear(nxt, in, W(R, i), Bv(R, i), rows, l->in, l->out);
      size_t n = (size_t)rows * l->out;
      if (i == L - 1) {
        for (size_t k = 0; k < n; k++) y[k] = ref_act(nxt[k], c->out_act);
        return;
      }
      if (R->mask[i])
        for (size_t k = 0; k < n; k++) nxt[k] *= R->mask[i][k];
      if (c->layernorm) ref_layernorm(nxt, LNw(R, i), LNb(R, i), rows, l->out);
      for (size_t k = 0; k < n; k++) nxt[k] = ref_act(nxt[k], c->hidden_act);
      double *t = cur;
      cur = nxt, nxt = t;
      in = cur;
    }
  }
  int h = c->sizes[1];
  double *r = R->buf[0], *p = R->buf[1], *u = R->buf[2], *t = R->buf[3];
  ref_linear(r, x, W(R, 0), Bv(R, 0), rows, c->sizes[0], h);
  for (int j = 0; j < c->res_blocks; j++) {
    const srl_linear *l1 = &net->lin[2 * j + 1];
    for (int k = 0; k < rows * h; k++) p[k] = r[k] * (R->mask[j] ? R->mask[j][k] : 1.0);
    if (c->layernorm) ref_layernorm(p, LNw(R, j), LNb(R, j), rows, h);
    ref_linear(u, p, W(R, 2 * j + 1), Bv(R, 2 * j + 1), rows, h, l1->out);
    for (int k = 0; k < rows * l1->out; k++) u[k] = ref_act(u[k], c->hidden_act);
    ref_linear(t, u, W(R, 2 * j + 2), Bv(R, 2 * j + 2), rows, l1->out, h);
    for (int k = 0; k < rows * h; k++) r[k] += t[k];
  }
  for (int k = 0; k < rows * h; k++) r[k] = ref_act(r[k], c->hidden_act);
  ref_linear(t, r, W(R, L - 1), Bv(R, L - 1), rows, h, net->out_dim);
  for (int k = 0; k < rows * net->out_dim; k++) y[k] = ref_act(t[k], c->out_act);
}


// L = Σ c ⊙ y
static double ref_loss(const ref_net *R, const double *x, int rows, const double *cw, double *y) {
  ref_forward(R, x, rows, y);
  double s = 0;
  for (int k = 0; k < rows * R->net->out_dim; k++) s += cw[k] * y[k];
  return s;
}


//---- device helpers ---------------------------------------------------------------------------

static float *dev_from(const float *h, size_t n) {
  float *d = ops->alloc(n * sizeof(float));
  ops->upload(d, h, n * sizeof(float));
  return d;
}

static void host_from(float *h, const float *d, size_t n) {
  ops->download(h, d, n * sizeof(float));
}

static double norm_rel(const float *a, const double *b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return sqrt(num) / (sqrt(den) + 1e-12);
}


//---- the gradient check -----------------------------------------------------------------------

// forward + backward on the device, then output, every parameter gradient and the input gradient
// against the reference; returns the worst norm-wise relative gradient error
static double grad_check(const srl_mlp_config *cfg, int rows, int training, const char *label) {
  srl_rng *rng;
  srl_mlp *net;
  CHECK_OK(srl_rng_create(&rng, 42, 0));
  CHECK_OK(srl_mlp_create(&net, ops, cfg, rows + 3, rng));
  if (!net) return INFINITY;
  srl_mlp_set_training(net, training);
  int in = net->in_dim, out = net->out_dim;
  size_t nx = (size_t)rows * in, ny = (size_t)rows * out, np = net->n_params;

  float *xh = malloc(nx * sizeof(float)), *ch = malloc(ny * sizeof(float));
  srl_rng_fill_uniform(rng, xh, nx, -1.5f, 1.5f);
  srl_rng_fill_uniform(rng, ch, ny, -1.0f, 1.0f);
  float *xd = dev_from(xh, nx), *cd = dev_from(ch, ny), *dxd = ops->alloc(nx * sizeof(float));
  srl_mlp_zero_grad(net);
  CHECK_OK(srl_mlp_forward(net, xd, rows));
  CHECK_OK(srl_mlp_backward(net, dxd, cd));

  float *yh = malloc(ny * sizeof(float)), *gh = malloc(np * sizeof(float));
  float *dxh = malloc(nx * sizeof(float)), *ph = malloc(np * sizeof(float));
  host_from(yh, net->out, ny);
  host_from(gh, net->grads, np);
  host_from(dxh, dxd, nx);
  host_from(ph, net->params, np);

  // the reference, with the masks the device drew
  ref_net R = {.net = net};
  int maxw = in;
  for (int i = 0; i < net->n_linear; i++) maxw = net->lin[i].out > maxw ? net->lin[i].out : maxw;
  for (int k = 0; k < 4; k++) R.buf[k] = malloc((size_t)rows * maxw * sizeof(double));
  R.p = malloc(np * sizeof(double));
  for (size_t k = 0; k < np; k++) R.p[k] = ph[k];
  int sites = cfg->res_blocks ? cfg->res_blocks : net->n_linear - 1;
  for (int s = 0; s < sites && training && cfg->dropout > 0; s++) {
    const float *md = cfg->res_blocks ? net->block[s].mask : net->stage[s].mask;
    int w = cfg->res_blocks ? cfg->sizes[1] : net->lin[s].out;
    size_t n = (size_t)rows * w;
    float *mh = malloc(n * sizeof(float));
    host_from(mh, md, n);
    R.mask[s] = malloc(n * sizeof(double));
    for (size_t k = 0; k < n; k++) R.mask[s][k] = mh[k];
    free(mh);
  }
  double *x = malloc(nx * sizeof(double)), *cw = malloc(ny * sizeof(double));
  double *y = malloc(ny * sizeof(double));
  for (size_t k = 0; k < nx; k++) x[k] = xh[k];
  for (size_t k = 0; k < ny; k++) cw[k] = ch[k];

  ref_forward(&R, x, rows, y);
  double fe = norm_rel(yh, y, ny);
  if (!(fe < 1e-5)) {
    fprintf(stderr, "  %s: forward relative error %.3g\n", label, fe);
    CHECK(fe < 1e-5);
  }

  // every parameter tensor, then the input
  const double h = 1e-5;
  double worst = 0;
  for (int t = 0; t <= net->n_tensors; t++) {
    int is_x = t == net->n_tensors;
    size_t n = is_x ? nx : net->tensors[t].numel;
    double *v = is_x ? x : R.p + net->tensors[t].offset;
    const float *g = is_x ? dxh : gh + net->tensors[t].offset;
    double *fd = malloc(n * sizeof(double));
    for (size_t k = 0; k < n; k++) {
      double keep = v[k];
      v[k] = keep + h;
      double lp = ref_loss(&R, x, rows, cw, y);
      v[k] = keep - h;
      double lm = ref_loss(&R, x, rows, cw, y);
      v[k] = keep;
      fd[k] = (lp - lm) / (2 * h);
    }
    double e = norm_rel(g, fd, n);
    // an unused extra vector has zero gradient both ways
    double gmax = 0;
    for (size_t k = 0; k < n; k++) gmax = fmax(gmax, fabs(fd[k]));
    if (gmax == 0) {
      for (size_t k = 0; k < n; k++) CHECK(g[k] == 0.0f);
      e = 0;
    }
    if (!(e < 1e-5)) {
      fprintf(stderr, "  %s: %s gradient relative error %.3g (first: %.7g vs %.7g)\n", label,
              is_x ? "input" : net->tensors[t].name, e, g[0], fd[0]);
      CHECK(e < 1e-5);
    }
    worst = fmax(worst, e);
    free(fd);
  }

  if (getenv("SRL_TEST_VERBOSE"))
    printf("  %-40s forward %.2g, worst gradient %.2g\n", label, fe, worst);
  for (int k = 0; k < 4; k++) free(R.buf[k]);
  for (int s = 0; s < SRL_MLP_MAX_LINEAR; s++) free(R.mask[s]);
  free(R.p), free(x), free(cw), free(y), free(xh), free(ch), free(yh), free(gh), free(dxh);
  free(ph);
  ops->free(xd), ops->free(cd), ops->free(dxd);
  srl_mlp_destroy(net);
  srl_rng_destroy(rng);
  return worst;
}


//---- tests ------------------------------------------------------------------------------------

TEST(linear_gradients) {
  srl_mlp_config c = srl_mlp_config_plain(2, (int[]){7, 5}, SRL_ACT_TANH, SRL_ACT_IDENTITY);
  grad_check(&c, 6, 0, "linear");
  c.out_act = SRL_ACT_TANH;
  grad_check(&c, 1, 0, "linear+tanh");
}


TEST(mlp_each_activation) {
  for (int a = 0; a < SRL_ACT_COUNT; a++) {
    char label[64];
    snprintf(label, sizeof label, "mlp hidden %s", srl_act_name(a));
    srl_mlp_config c = srl_mlp_config_plain(4, (int[]){5, 9, 7, 3}, a, SRL_ACT_IDENTITY);
    grad_check(&c, 6, 0, label);
    snprintf(label, sizeof label, "mlp output %s", srl_act_name(a));
    c.hidden_act = SRL_ACT_TANH;
    c.out_act = a;
    grad_check(&c, 6, 0, label);
  }
}


TEST(mlp_layernorm) {
  srl_mlp_config c = srl_mlp_config_plain(4, (int[]){5, 9, 7, 3}, SRL_ACT_MISH, SRL_ACT_IDENTITY);
  c.layernorm = 1;
  grad_check(&c, 6, 0, "layernorm mish");
  c.hidden_act = SRL_ACT_IDENTITY;
  grad_check(&c, 4, 0, "layernorm identity");
  c.hidden_act = SRL_ACT_RELU;
  c.n_sizes = 5;
  c.sizes[3] = 8, c.sizes[4] = 2;
  grad_check(&c, 5, 0, "layernorm relu, three hidden");
}


TEST(mlp_dropout) {
  srl_mlp_config c = srl_mlp_config_plain(4, (int[]){5, 9, 7, 3}, SRL_ACT_TANH, SRL_ACT_IDENTITY);
  c.dropout = 0.3f;
  grad_check(&c, 6, 1, "dropout");
  c.layernorm = 1;
  grad_check(&c, 6, 1, "dropout+layernorm");
  grad_check(&c, 6, 0, "dropout in eval mode");
}


TEST(residual_gradients) {
  srl_mlp_config c = srl_mlp_config_plain(3, (int[]){4, 6, 3}, SRL_ACT_MISH, SRL_ACT_IDENTITY);
  c.res_blocks = 2;
  c.res_hidden = 10;
  grad_check(&c, 5, 0, "residual");
  c.layernorm = 1;
  grad_check(&c, 5, 0, "residual+layernorm");
  c.dropout = 0.25f;
  grad_check(&c, 5, 1, "residual+layernorm+dropout");
  c.layernorm = 0;
  grad_check(&c, 5, 1, "residual+dropout");
  c.hidden_act = SRL_ACT_IDENTITY;
  c.res_blocks = 1;
  c.res_hidden = 0;  // 4·hidden
  c.out_act = SRL_ACT_TANH;
  c.extra = 2;
  snprintf(c.extra_name, sizeof c.extra_name, "log_std");
  grad_check(&c, 3, 1, "residual identity, 4x inner, extra");
}


// a small net, its device input and output gradient
typedef struct fixture {
  srl_rng *rng;
  srl_mlp *net;
  float *x, *d;
} fixture;

static void fixture_make(fixture *f, const srl_mlp_config *c, int rows, uint64_t seed) {
  CHECK_OK(srl_rng_create(&f->rng, seed, 0));
  CHECK_OK(srl_mlp_create(&f->net, ops, c, rows, f->rng));
  size_t nx = (size_t)rows * c->sizes[0], ny = (size_t)rows * c->sizes[c->n_sizes - 1];
  float *h = malloc((nx + ny) * sizeof(float));
  srl_rng_fill_uniform(f->rng, h, nx + ny, -1, 1);
  f->x = dev_from(h, nx);
  f->d = dev_from(h + nx, ny);
  free(h);
}

static void fixture_free(fixture *f) {
  ops->free(f->x);
  ops->free(f->d);
  srl_mlp_destroy(f->net);
  srl_rng_destroy(f->rng);
}


TEST(accumulation_and_zero_grad) {
  srl_mlp_config c = srl_mlp_config_plain(4, (int[]){6, 8, 8, 2}, SRL_ACT_TANH, SRL_ACT_IDENTITY);
  c.layernorm = 1;
  for (int res = 0; res <= 1; res++) {
    if (res) {
      c = srl_mlp_config_plain(3, (int[]){6, 8, 2}, SRL_ACT_RELU, SRL_ACT_SIGMOID);
      c.res_blocks = 2;
    }
    fixture f;
    fixture_make(&f, &c, 7, 3);
    size_t np = f.net->n_params;
    float *g1 = malloc(np * sizeof(float)), *g2 = malloc(np * sizeof(float));
    // the block starts zero; one pass; two passes are exactly twice one
    host_from(g1, f.net->grads, np);
    for (size_t k = 0; k < np; k++) CHECK(g1[k] == 0.0f);
    CHECK_OK(srl_mlp_forward(f.net, f.x, 7));
    CHECK_OK(srl_mlp_backward(f.net, NULL, f.d));
    host_from(g1, f.net->grads, np);
    CHECK_OK(srl_mlp_backward(f.net, NULL, f.d));
    host_from(g2, f.net->grads, np);
    double nz = 0;
    for (size_t k = 0; k < np; k++) {
      CHECK_CLOSE(g2[k], 2.0 * g1[k], 1e-7, 1e-6);
      nz += fabs(g1[k]);
    }
    CHECK(nz > 0);
    // padding between tensors stays zero, so norms over the block are the tensors' norms
    double sq = 0;
    for (int t = 0; t < f.net->n_tensors; t++)
      for (size_t k = 0; k < f.net->tensors[t].numel; k++)
        sq += (double)g1[f.net->tensors[t].offset + k] * g1[f.net->tensors[t].offset + k];
    double sq_all = 0;
    for (size_t k = 0; k < np; k++) sq_all += (double)g1[k] * g1[k];
    CHECK_CLOSE(sq_all, sq, 0, 1e-12);
    srl_mlp_zero_grad(f.net);
    host_from(g2, f.net->grads, np);
    for (size_t k = 0; k < np; k++) CHECK(g2[k] == 0.0f);
    // after zero_grad, one pass gives the one-pass gradient again
    CHECK_OK(srl_mlp_backward(f.net, NULL, f.d));
    host_from(g2, f.net->grads, np);
    for (size_t k = 0; k < np; k++) CHECK(g2[k] == g1[k]);
    free(g1), free(g2);
    fixture_free(&f);
  }
}


TEST(input_gradient_optional) {
  srl_mlp_config c = srl_mlp_config_plain(3, (int[]){4, 8, 3}, SRL_ACT_GELU, SRL_ACT_IDENTITY);
  fixture f;
  fixture_make(&f, &c, 5, 9);
  size_t np = f.net->n_params;
  float *g1 = malloc(np * sizeof(float)), *g2 = malloc(np * sizeof(float));
  float *dx = ops->alloc(5 * 4 * sizeof(float));
  CHECK_OK(srl_mlp_forward(f.net, f.x, 5));
  CHECK_OK(srl_mlp_backward(f.net, dx, f.d));
  host_from(g1, f.net->grads, np);
  srl_mlp_zero_grad(f.net);
  CHECK_OK(srl_mlp_backward(f.net, NULL, f.d));
  host_from(g2, f.net->grads, np);
  for (size_t k = 0; k < np; k++) CHECK(g1[k] == g2[k]);
  ops->free(dx);
  free(g1), free(g2);
  fixture_free(&f);
}


TEST(initialisation) {
  srl_mlp_config c = srl_mlp_config_plain(3, (int[]){60, 64, 2}, SRL_ACT_TANH, SRL_ACT_IDENTITY);
  c.layernorm = 1;
  c.extra = 2;
  c.extra_init = -0.5f;
  snprintf(c.extra_name, sizeof c.extra_name, "log_std");
  srl_rng *rng;
  srl_mlp *a, *b, *d;
  CHECK_OK(srl_rng_create(&rng, 7, 0));
  CHECK_OK(srl_mlp_create(&a, ops, &c, 4, rng));
  srl_rng_seed(rng, 7, 0);
  CHECK_OK(srl_mlp_create(&b, ops, &c, 4, rng));
  CHECK_OK(srl_mlp_create(&d, ops, &c, 4, rng));
  size_t np = a->n_params;
  float *pa = malloc(np * sizeof(float)), *pb = malloc(np * sizeof(float));
  float *pd = malloc(np * sizeof(float));
  host_from(pa, a->params, np);
  host_from(pb, b->params, np);
  host_from(pd, d->params, np);
  CHECK(memcmp(pa, pb, np * sizeof(float)) == 0);  // same seed, same parameters
  CHECK(memcmp(pa, pd, np * sizeof(float)) != 0);

  // layers.0.weight (64×60): U(±1/√60), mean ≈ 0, variance ≈ bound²/3
  int t = srl_mlp_tensor_find(a, "layers.0.weight");
  CHECK(t >= 0);
  const srl_nn_tensor *w = srl_mlp_tensor(a, t);
  CHECK_EQ_INT(w->shape[0], 64);
  CHECK_EQ_INT(w->shape[1], 60);
  double bound = 1 / sqrt(60.0), s = 0, ss = 0, mx = 0;
  for (size_t k = 0; k < w->numel; k++) {
    double v = pa[w->offset + k];
    s += v, ss += v * v, mx = fmax(mx, fabs(v));
  }
  double mean = s / w->numel, var = ss / w->numel - mean * mean;
  CHECK(mx <= bound && mx > 0.95 * bound);
  CHECK(fabs(mean) < 0.05 * bound);
  CHECK_CLOSE(var, bound * bound / 3, 0, 0.05);
  // biases share the weight's bound; the output layer's fan-in is 64
  float bias[64];
  CHECK_OK(srl_mlp_tensor_download(a, "layers.0.bias", bias, 64));
  mx = 0;
  for (int k = 0; k < 64; k++) mx = fmax(mx, fabs(bias[k]));
  CHECK(mx <= bound && mx > 0.5 * bound);
  float w1[128];
  CHECK_OK(srl_mlp_tensor_download(a, "layers.1.weight", w1, 128));
  mx = 0;
  for (int k = 0; k < 128; k++) mx = fmax(mx, fabs(w1[k]));
  CHECK(mx <= 1 / 8.0 && mx > 0.8 / 8.0);
  // layernorm scale 1, shift 0; extra at its initial value
  float lnw[64], lnb[64], ls[2];
  CHECK_OK(srl_mlp_tensor_download(a, "ln.0.weight", lnw, 64));
  CHECK_OK(srl_mlp_tensor_download(a, "ln.0.bias", lnb, 64));
  CHECK_OK(srl_mlp_tensor_download(a, "log_std", ls, 2));
  for (int k = 0; k < 64; k++) CHECK(lnw[k] == 1.0f && lnb[k] == 0.0f);
  CHECK(ls[0] == -0.5f && ls[1] == -0.5f);
  CHECK(a->extra == a->params + a->tensors[a->n_tensors - 1].offset);
  free(pa), free(pb), free(pd);
  srl_mlp_destroy(a), srl_mlp_destroy(b), srl_mlp_destroy(d);
  srl_rng_destroy(rng);
}


TEST(tensor_names) {
  srl_mlp_config c = srl_mlp_config_plain(3, (int[]){5, 6, 2}, SRL_ACT_MISH, SRL_ACT_IDENTITY);
  c.res_blocks = 2;
  c.layernorm = 1;
  fixture f;
  fixture_make(&f, &c, 2, 1);
  static const char *names[] = {
      "layers.0.weight", "layers.0.bias", "ln.0.weight",     "ln.0.bias",
      "layers.1.weight", "layers.1.bias", "layers.2.weight", "layers.2.bias",
      "ln.1.weight",     "ln.1.bias",     "layers.3.weight", "layers.3.bias",
      "layers.4.weight", "layers.4.bias", "layers.5.weight", "layers.5.bias"};
  static const int shapes[][2] = {{6, 5},  {6, 0}, {6, 0}, {6, 0}, {24, 6}, {24, 0},
                                  {6, 24}, {6, 0}, {6, 0}, {6, 0}, {24, 6}, {24, 0},
                                  {6, 24}, {6, 0}, {2, 6}, {2, 0}};
  CHECK_EQ_INT(srl_mlp_tensor_count(f.net), 16);
  size_t end = 0;
  for (int i = 0; i < 16 && i < srl_mlp_tensor_count(f.net); i++) {
    const srl_nn_tensor *t = srl_mlp_tensor(f.net, i);
    CHECK(strcmp(t->name, names[i]) == 0);
    CHECK_EQ_INT(t->shape[0], shapes[i][0]);
    CHECK_EQ_INT(t->shape[1], shapes[i][1]);
    CHECK_EQ_INT(t->ndim, shapes[i][1] ? 2 : 1);
    CHECK(t->offset >= end && t->offset % 16 == 0);  // in order, cache-line aligned
    end = t->offset + t->numel;
  }
  CHECK(end <= f.net->n_params);
  CHECK(srl_mlp_tensor(f.net, 16) == NULL);
  CHECK(srl_mlp_tensor_find(f.net, "layers.9.weight") == -1);
  float buf[30];
  CHECK_ERR(srl_mlp_tensor_download(f.net, "nope", buf, 6), SRL_ENOTFOUND);
  CHECK_ERR(srl_mlp_tensor_download(f.net, "layers.0.bias", buf, 5), SRL_EINVAL);
  // upload then download round-trips, and changes the forward
  for (int k = 0; k < 30; k++) buf[k] = 0.01f * k;
  CHECK_OK(srl_mlp_tensor_upload(f.net, "layers.0.weight", buf, 30));
  float back[30];
  CHECK_OK(srl_mlp_tensor_download(f.net, "layers.0.weight", back, 30));
  CHECK(memcmp(buf, back, sizeof buf) == 0);
  fixture_free(&f);
}


TEST(dropout_masks) {
  srl_mlp_config c = srl_mlp_config_plain(3, (int[]){8, 256, 2}, SRL_ACT_RELU, SRL_ACT_IDENTITY);
  c.dropout = 0.25f;
  fixture f;
  fixture_make(&f, &c, 16, 5);
  size_t n = 16 * 256;
  float *m1 = malloc(n * sizeof(float)), *m2 = malloc(n * sizeof(float));
  float y_eval[32], y_eval2[32], y_train[32];
  // evaluation mode: no masks, deterministic
  CHECK_OK(srl_mlp_forward(f.net, f.x, 16));
  host_from(y_eval, f.net->out, 32);
  CHECK(f.net->dropped == 0);
  srl_mlp_set_training(f.net, 1);
  CHECK_OK(srl_mlp_forward(f.net, f.x, 16));
  host_from(m1, f.net->stage[0].mask, n);
  host_from(y_train, f.net->out, 32);
  CHECK_OK(srl_mlp_forward(f.net, f.x, 16));
  host_from(m2, f.net->stage[0].mask, n);
  int dropped = 0, differ = 0, odd = 0;
  for (size_t k = 0; k < n; k++) {
    dropped += m1[k] == 0.0f;
    differ += m1[k] != m2[k];
    odd += m1[k] != 0.0f && fabsf(m1[k] - 1 / 0.75f) > 1e-6f;
  }
  CHECK_EQ_INT(odd, 0);
  CHECK(fabs(dropped / (double)n - 0.25) < 0.03);
  CHECK(differ > (int)n / 4);  // a fresh mask each training forward
  CHECK(memcmp(y_eval, y_train, sizeof y_eval) != 0);
  srl_mlp_set_training(f.net, 0);
  CHECK_OK(srl_mlp_forward(f.net, f.x, 16));
  host_from(y_eval2, f.net->out, 32);
  CHECK(memcmp(y_eval, y_eval2, sizeof y_eval) == 0);
  // the same (seed, step) repeats the same mask
  srl_mlp_set_training(f.net, 1);
  f.net->dropout_step--;
  f.net->dropout_step--;
  CHECK_OK(srl_mlp_forward(f.net, f.x, 16));
  host_from(m2, f.net->stage[0].mask, n);
  CHECK(memcmp(m1, m2, n * sizeof(float)) == 0);
  free(m1), free(m2);
  fixture_free(&f);
}


TEST(target_networks) {
  srl_mlp_config c = srl_mlp_config_plain(3, (int[]){3, 5, 1}, SRL_ACT_RELU, SRL_ACT_IDENTITY);
  srl_rng *rng;
  srl_mlp *a, *b, *odd;
  CHECK_OK(srl_rng_create(&rng, 2, 0));
  CHECK_OK(srl_mlp_create(&a, ops, &c, 2, rng));
  CHECK_OK(srl_mlp_create(&b, ops, &c, 2, rng));
  c.sizes[1] = 6;
  CHECK_OK(srl_mlp_create(&odd, ops, &c, 2, rng));
  size_t np = a->n_params;
  float *pa = malloc(np * sizeof(float)), *pb = malloc(np * sizeof(float));
  float *pc = malloc(np * sizeof(float));
  host_from(pa, a->params, np);
  host_from(pb, b->params, np);
  CHECK_OK(srl_mlp_polyak(b, a, 0.25f));
  host_from(pc, b->params, np);
  for (size_t k = 0; k < np; k++) CHECK_CLOSE(pc[k], 0.25 * pa[k] + 0.75 * pb[k], 1e-7, 1e-6);
  CHECK_OK(srl_mlp_copy_params(b, a));
  host_from(pc, b->params, np);
  CHECK(memcmp(pa, pc, np * sizeof(float)) == 0);
  CHECK_ERR(srl_mlp_copy_params(odd, a), SRL_EINVAL);
  CHECK_ERR(srl_mlp_polyak(b, a, 1.5f), SRL_EINVAL);
  free(pa), free(pb), free(pc);
  srl_mlp_destroy(a), srl_mlp_destroy(b), srl_mlp_destroy(odd);
  srl_rng_destroy(rng);
}


TEST(argument_errors) {
  srl_rng *rng;
  srl_mlp *net = (srl_mlp *)&net;
  CHECK_OK(srl_rng_create(&rng, 1, 0));
  srl_mlp_config c = srl_mlp_config_plain(1, (int[]){4}, SRL_ACT_TANH, SRL_ACT_IDENTITY);
  CHECK_ERR(srl_mlp_create(&net, ops, &c, 4, rng), SRL_EINVAL);
  CHECK(net == NULL);
  CHECK_ERRMSG("sizes");
  c = srl_mlp_config_plain(3, (int[]){4, 0, 2}, SRL_ACT_TANH, SRL_ACT_IDENTITY);
  CHECK_ERR(srl_mlp_create(&net, ops, &c, 4, rng), SRL_EINVAL);
  c.sizes[1] = 8;
  c.dropout = 1.0f;
  CHECK_ERR(srl_mlp_create(&net, ops, &c, 4, rng), SRL_EINVAL);
  CHECK_ERRMSG("dropout");
  c.dropout = 0;
  c.hidden_act = SRL_ACT_COUNT;
  CHECK_ERR(srl_mlp_create(&net, ops, &c, 4, rng), SRL_EINVAL);
  c.hidden_act = SRL_ACT_TANH;
  CHECK_ERR(srl_mlp_create(&net, ops, &c, 0, rng), SRL_EINVAL);
  CHECK_ERR(srl_mlp_create(&net, ops, &c, 4, NULL), SRL_EINVAL);
  c.extra = 3;
  CHECK_ERR(srl_mlp_create(&net, ops, &c, 4, rng), SRL_EINVAL);  // unnamed extra
  snprintf(c.extra_name, sizeof c.extra_name, "layers.9.weight");
  CHECK_ERR(srl_mlp_create(&net, ops, &c, 4, rng), SRL_EINVAL);
  c.extra = 0;
  c.res_blocks = 1;
  c.n_sizes = 4;
  c.sizes[3] = 1;
  CHECK_ERR(srl_mlp_create(&net, ops, &c, 4, rng), SRL_EINVAL);
  CHECK_ERRMSG("residual");
  c.n_sizes = 3;
  CHECK_OK(srl_mlp_create(&net, ops, &c, 4, rng));
  float *x = ops->alloc(5 * 4 * sizeof(float)), *d = ops->alloc(5 * 2 * sizeof(float));
  CHECK_ERR(srl_mlp_backward(net, NULL, d), SRL_ESTATE);
  CHECK_ERR(srl_mlp_forward(net, x, 5), SRL_ERANGE);
  CHECK_ERRMSG("max_batch");
  CHECK_ERR(srl_mlp_forward(net, x, 0), SRL_ERANGE);
  CHECK_ERR(srl_mlp_forward(net, NULL, 2), SRL_EINVAL);
  CHECK_OK(srl_mlp_forward(net, x, 4));
  CHECK_ERR(srl_mlp_backward(net, NULL, NULL), SRL_EINVAL);
  CHECK_OK(srl_mlp_backward(net, NULL, d));
  ops->free(x), ops->free(d);
  srl_mlp_destroy(net);
  srl_mlp_destroy(NULL);
  srl_rng_destroy(rng);
}


int main(void) {
  // SRL_TEST_DEVICE=cuda runs the same checks on another op table
  const char *dev = getenv("SRL_TEST_DEVICE");
  ops = srl_ops_cpu();
  if (dev && srl_ops_get(&ops, dev) < 0) {
    printf("skip: device '%s': %s\n", dev, srl_errmsg());
    return 0;
  }
  RUN(linear_gradients);
  RUN(mlp_each_activation);
  RUN(mlp_layernorm);
  RUN(mlp_dropout);
  RUN(residual_gradients);
  RUN(accumulation_and_zero_grad);
  RUN(input_gradient_optional);
  RUN(initialisation);
  RUN(tensor_names);
  RUN(dropout_masks);
  RUN(target_networks);
  RUN(argument_errors);
  return TEST_REPORT();
}
