// test_cpo.c: CPO and TRPO-Lag. Conjugate gradient against a direct Cholesky solve; the
// Fisher-vector product against a dense Fisher built from reverse-mode per-sample Jacobians and
// against second differences of the KL; the KL and surrogate against host computations and finite
// differences; CPO's case analysis on hand-made 2-D quadratic problems against their exact
// geometric solution (every case, plus random problems); the line-search rules; whole updates
// on tiny batches (KL ≤ δ, cost surrogate not raised when c ≥ 0, θ_old kept when nothing is
// accepted); the trainer's CPO and TRPOLag entries on a synthetic epoch; CUDA against CPU.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "algos/cpo.h"
#include "algos/lagrange.h"
#include "core/buffer.h"
#include "core/dist.h"

#define OBS 3
#define ACT 2

//---- fixtures -----------------------------------------------------------------------------------

// a small actor-critic (actor 3 → 5 → 4 → 2, critics 3 → 8 → 8 → 1) with log_std (−0.3, 0.2)
static srl_actor_critic *make_ac(const srl_ops *ops, int max_batch, uint64_t seed) {
  srl_ac_config c = srl_ac_config_default(OBS, ACT, max_batch);
  c.actor_hidden[0] = 5, c.actor_hidden[1] = 4;
  c.critic_hidden[0] = c.critic_hidden[1] = 8;
  srl_rng *rng = NULL;
  srl_actor_critic *ac = NULL;
  if (srl_rng_create(&rng, seed, 0) < 0) return NULL;
  int rc = srl_ac_create(&ac, ops, &c, rng);
  srl_rng_destroy(rng);
  if (rc < 0) return NULL;
  const float ls[ACT] = {-0.3f, 0.2f};
  srl_mlp_tensor_upload(ac->actor, "log_std", ls, ACT);
  return ac;
}

// host data of one epoch: actions drawn from the CPU actor, their log-probabilities, advantages
typedef struct data {
  int n;
  float *obs, *act, *logp, *adv_r, *adv_c, *mean;  // mean: the actor's means at creation
} data;

static void data_free(data *d) {
  free(d->obs), free(d->act), free(d->logp), free(d->adv_r), free(d->adv_c), free(d->mean);
}

static data make_data(srl_actor_critic *ac, int n, uint64_t seed) {
  data d = {.n = n};
  d.obs = malloc(sizeof(float) * n * OBS), d.act = malloc(sizeof(float) * n * ACT);
  d.logp = malloc(sizeof(float) * n), d.adv_r = malloc(sizeof(float) * n);
  d.adv_c = malloc(sizeof(float) * n), d.mean = malloc(sizeof(float) * n * ACT);
  srl_rng *rng;
  srl_rng_create(&rng, seed, 7);
  srl_rng_fill_normal(rng, d.obs, (size_t)n * OBS, 0.0f, 1.0f);
  float ls[ACT];
  srl_mlp_tensor_download(ac->actor, "log_std", ls, ACT);
  // means through the CPU actor in pieces of its max_batch
  for (int s = 0; s < n; s += ac->cfg.max_batch) {
    int m = n - s < ac->cfg.max_batch ? n - s : ac->cfg.max_batch;
    srl_mlp_forward(ac->actor, d.obs + (size_t)s * OBS, m);
    ac->ops->download(d.mean + (size_t)s * ACT, ac->actor->out, sizeof(float) * m * ACT);
  }
  srl_gauss g;
  srl_dist_init(&g, d.mean, ls, n, ACT, 0);
  srl_dist_sample(d.act, &g, rng);
  srl_dist_logprob(d.logp, d.act, &g);
  // advantages: standardised reward, centred cost, partly correlated with the actions
  double mr = 0, mc = 0, vr = 0;
  for (int i = 0; i < n; i++) {
    d.adv_r[i] = (float)(srl_rng_normal(rng) + 0.8 * (d.act[i * ACT] - d.mean[i * ACT]));
    d.adv_c[i] =
        (float)(0.5 * srl_rng_normal(rng) + 0.6 * (d.act[i * ACT + 1] - d.mean[i * ACT + 1]));
    mr += d.adv_r[i], mc += d.adv_c[i];
  }
  mr /= n, mc /= n;
  for (int i = 0; i < n; i++) vr += (d.adv_r[i] - mr) * (d.adv_r[i] - mr);
  double sd = sqrt(vr / n);
  for (int i = 0; i < n; i++) {
    d.adv_r[i] = (float)((d.adv_r[i] - mr) / (sd + 1e-8));
    d.adv_c[i] = (float)(d.adv_c[i] - mc);
  }
  srl_rng_destroy(rng);
  return d;
}

static srl_cpo_batch batch_of(const data *d, float ep_cost, float lagrange) {
  srl_cpo_batch b = {d->obs, d->act, d->logp, d->adv_r, d->adv_c, d->n, ep_cost, lagrange};
  return b;
}

// host copies of the actor's parameters
static float *params_copy(const srl_actor_critic *ac) {
  size_t np = ac->actor->n_params;
  float *p = malloc(sizeof(float) * np);
  ac->ops->download(p, ac->actor->params, sizeof(float) * np);
  return p;
}

static void params_set(srl_actor_critic *ac, const float *p) {
  ac->ops->upload(ac->actor->params, p, sizeof(float) * ac->actor->n_params);
}

// host KL(old‖current) averaged over states and action dims, and the surrogates, computed with
// core/dist.h on the CPU actor (independent of the module's device code)
static void host_eval(srl_actor_critic *ac, const data *d, double *kl, double *sur_r,
                      double *sur_c) {
  int n = d->n;
  float *mu = malloc(sizeof(float) * n * ACT), *lp = malloc(sizeof(float) * n);
  for (int s = 0; s < n; s += ac->cfg.max_batch) {
    int m = n - s < ac->cfg.max_batch ? n - s : ac->cfg.max_batch;
    srl_mlp_forward(ac->actor, d->obs + (size_t)s * OBS, m);
    memcpy(mu + (size_t)s * ACT, ac->actor->out, sizeof(float) * m * ACT);
  }
  float ls_old[ACT] = {-0.3f, 0.2f}, ls[ACT];
  srl_mlp_tensor_download(ac->actor, "log_std", ls, ACT);
  srl_gauss p, q;
  srl_dist_init(&p, d->mean, ls_old, n, ACT, 0);
  srl_dist_init(&q, mu, ls, n, ACT, 0);
  float k;
  srl_dist_kl(NULL, &k, &p, &q);
  *kl = k / ACT;
  srl_dist_logprob(lp, d->act, &q);
  double sr = 0, sc = 0;
  for (int i = 0; i < n; i++) {
    double ratio = exp((double)lp[i] - d->logp[i]);
    sr += ratio * d->adv_r[i], sc += ratio * d->adv_c[i];
  }
  *sur_r = sr / n, *sur_c = sc / n;
  free(mu), free(lp);
}

//---- conjugate gradient -------------------------------------------------------------------------

typedef struct dense {
  const srl_ops *ops;
  const float *m;
  int n;
} dense;

static int dense_mv(void *ctx, float *out, const float *v) {
  dense *d = ctx;
  d->ops->matmul(out, d->m, v, d->n, 1, d->n, 0, 0, 1.0f, 0.0f);
  return SRL_OK;
}

// solve M x = b by Cholesky in double
static void cholesky_solve(double *x, const double *M, const double *b, int n) {
  double *L = calloc((size_t)n * n, sizeof(double)), *y = calloc(n, sizeof(double));
  for (int i = 0; i < n; i++)
    for (int j = 0; j <= i; j++) {
      double s = M[i * n + j];
      for (int k = 0; k < j; k++) s -= L[i * n + k] * L[j * n + k];
      L[i * n + j] = i == j ? sqrt(s) : s / L[j * n + j];
    }
  for (int i = 0; i < n; i++) {
    double s = b[i];
    for (int k = 0; k < i; k++) s -= L[i * n + k] * y[k];
    y[i] = s / L[i * n + i];
  }
  for (int i = n - 1; i >= 0; i--) {
    double s = y[i];
    for (int k = i + 1; k < n; k++) s -= L[k * n + i] * x[k];
    x[i] = s / L[i * n + i];
  }
  free(L), free(y);
}

TEST(test_cg_against_direct_solve) {
  enum { N = 8 };
  const srl_ops *ops = srl_ops_cpu();
  srl_rng *rng;
  srl_rng_create(&rng, 11, 0);
  float Q[N * N], M[N * N], b[N], x[N], work[4 * N];
  double Md[N * N], bd[N], xd[N];
  srl_rng_fill_normal(rng, Q, N * N, 0, 1);
  srl_rng_fill_normal(rng, b, N, 0, 1);
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) {
      double s = i == j ? 0.5 : 0.0;
      for (int k = 0; k < N; k++) s += (double)Q[k * N + i] * Q[k * N + j];
      M[i * N + j] = (float)s, Md[i * N + j] = (float)s;
    }
  for (int i = 0; i < N; i++) bd[i] = b[i];
  cholesky_solve(xd, Md, bd, N);
  dense ctx = {ops, M, N};
  int it = 0;
  CHECK_OK(srl_cg_solve(ops, x, b, N, 15, dense_mv, &ctx, work, &it));
  double err = 0, nrm = 0;
  for (int i = 0; i < N; i++) err += (x[i] - xd[i]) * (x[i] - xd[i]), nrm += xd[i] * xd[i];
  CHECK(sqrt(err / nrm) < 2e-3);
  CHECK(it >= N && it <= 15);

  // one iteration is the steepest-descent step (bᵀb/(bᵀMb + 1e-6))·b
  CHECK_OK(srl_cg_solve(ops, x, b, N, 1, dense_mv, &ctx, work, &it));
  CHECK_EQ_INT(it, 1);
  double bb = 0, bmb = 0;
  for (int i = 0; i < N; i++) {
    bb += (double)b[i] * b[i];
    for (int j = 0; j < N; j++) bmb += (double)b[i] * M[i * N + j] * b[j];
  }
  for (int i = 0; i < N; i++) CHECK_CLOSE(x[i], bb / (bmb + 1e-6) * b[i], 1e-6, 1e-4);

  // a zero right-hand side stops at once with x = 0
  float z[N] = {0};
  CHECK_OK(srl_cg_solve(ops, x, z, N, 15, dense_mv, &ctx, work, &it));
  CHECK_EQ_INT(it, 1);
  for (int i = 0; i < N; i++) CHECK(x[i] == 0.0f);
  CHECK_ERR(srl_cg_solve(ops, x, b, N, 0, dense_mv, &ctx, work, &it), SRL_EINVAL);
  srl_rng_destroy(rng);
}

//---- Fisher-vector products ---------------------------------------------------------------------

// (F + damping·I)·v from a dense Fisher of per-sample Jacobians ∂μ_ij/∂θ (reverse mode)
static void dense_fvp(srl_actor_critic *ac, const data *d, const float *v, double damping,
                      double *out) {
  srl_mlp *a = ac->actor;
  int n = d->n;
  size_t np = a->n_params;
  size_t ls_off = (size_t)(a->extra - a->params);
  float ls[ACT], *dout = calloc((size_t)n * ACT, sizeof(float));
  srl_mlp_tensor_download(a, "log_std", ls, ACT);
  for (size_t k = 0; k < np; k++) out[k] = damping * v[k];
  for (int i = 0; i < n; i++)
    for (int j = 0; j < ACT; j++) {
      srl_mlp_zero_grad(a);
      srl_mlp_forward(a, d->obs, n);
      dout[i * ACT + j] = 1.0f;
      srl_mlp_backward(a, NULL, dout);
      dout[i * ACT + j] = 0.0f;
      double jv = 0, w = exp(-2.0 * ls[j]) / ((double)n * ACT);
      for (size_t k = 0; k < np; k++) jv += (double)a->grads[k] * v[k];
      for (size_t k = 0; k < np; k++) out[k] += w * a->grads[k] * jv;
    }
  for (int j = 0; j < ACT; j++) out[ls_off + j] += 2.0 / ACT * v[ls_off + j];
  free(dout);
}

TEST(test_fvp_against_dense_fisher) {
  const srl_ops *ops = srl_ops_cpu();
  for (int variant = 0; variant < 3; variant++) {
    // one chunk, three chunks (max_batch 3 for 7 rows), and every 2nd row in the Fisher
    int max_batch = variant == 1 ? 3 : 7, freq = variant == 2 ? 2 : 1;
    srl_actor_critic *ac = make_ac(ops, max_batch, 5);
    srl_cpo *w = NULL;
    CHECK_OK(srl_cpo_create(&w, ac, 7));
    data d = make_data(ac, 7, 9);
    size_t np = srl_cpo_n_params(w);
    CHECK_EQ_INT(np, ac->actor->n_params);
    float *v = malloc(sizeof(float) * np), *fv = malloc(sizeof(float) * np);
    double *ref = malloc(sizeof(double) * np);
    srl_rng *rng;
    srl_rng_create(&rng, 3, 1);
    srl_rng_fill_normal(rng, v, np, 0, 1);
    // the dense reference on the Fisher's rows
    data sub = d;
    float *sub_obs = malloc(sizeof(float) * 7 * OBS);
    if (freq == 2) {
      sub.n = 4;
      for (int i = 0; i < 4; i++)
        memcpy(sub_obs + i * OBS, d.obs + 2 * i * OBS, sizeof(float) * OBS);
      sub.obs = sub_obs;
    }
    srl_actor_critic *big = make_ac(ops, 7, 5);
    dense_fvp(big, &sub, v, 0.1, ref);
    srl_cpo_config cfg = srl_cpo_config_default();
    cfg.fvp_sample_freq = freq;
    srl_cpo_batch b = batch_of(&d, 0, 0);
    CHECK_OK(srl_cpo_begin(w, &b, &cfg));
    CHECK_OK(srl_cpo_fvp(w, fv, v));
    double err = 0, nrm = 0;
    for (size_t k = 0; k < np; k++)
      err += (fv[k] - ref[k]) * (fv[k] - ref[k]), nrm += ref[k] * ref[k];
    CHECK(sqrt(err / nrm) < 1e-5);
    CHECK_ERR(srl_cpo_fvp(w, v, v), SRL_EINVAL);
    srl_rng_destroy(rng);
    free(v), free(fv), free(ref), free(sub_obs);
    data_free(&d);
    srl_cpo_destroy(w);
    srl_ac_destroy(ac);
    srl_ac_destroy(big);
  }
}

TEST(test_fvp_is_the_kl_hessian) {
  // uᵀHv from second differences of the module's KL, H the undamped Fisher
  const srl_ops *ops = srl_ops_cpu();
  srl_actor_critic *ac = make_ac(ops, 32, 21);
  srl_cpo *w = NULL;
  CHECK_OK(srl_cpo_create(&w, ac, 32));
  data d = make_data(ac, 32, 4);
  size_t np = srl_cpo_n_params(w);
  float *u = malloc(sizeof(float) * np), *v = malloc(sizeof(float) * np);
  float *hv = malloc(sizeof(float) * np), *hu = malloc(sizeof(float) * np);
  float *theta = params_copy(ac), *t = malloc(sizeof(float) * np);
  srl_rng *rng;
  srl_rng_create(&rng, 8, 2);
  srl_rng_fill_normal(rng, u, np, 0, 1);
  srl_rng_fill_normal(rng, v, np, 0, 1);
  srl_cpo_config cfg = srl_cpo_config_default();
  cfg.cg_damping = 0;
  srl_cpo_batch b = batch_of(&d, 0, 0);
  CHECK_OK(srl_cpo_begin(w, &b, &cfg));
  CHECK_OK(srl_cpo_fvp(w, hv, v));
  CHECK_OK(srl_cpo_fvp(w, hu, u));
  double vhv = 0, uhv = 0, vhu = 0;
  for (size_t k = 0; k < np; k++) vhv += (double)v[k] * hv[k], uhv += (double)u[k] * hv[k];
  for (size_t k = 0; k < np; k++) vhu += (double)v[k] * hu[k];
  CHECK_CLOSE(uhv, vhu, 1e-6, 1e-4);  // symmetric
  CHECK(vhv > 0);
  // KL(θ + εz) + KL(θ − εz) ≈ ε²·zᵀHz
  const double eps = 3e-3;
  double q[2][2];  // [u+v, u−v][+ε, −ε]
  for (int s = 0; s < 2; s++)
    for (int sg = 0; sg < 2; sg++) {
      for (size_t k = 0; k < np; k++)
        t[k] = theta[k] + (float)((sg ? -eps : eps) * (u[k] + (s ? -v[k] : v[k])));
      params_set(ac, t);
      float kl;
      CHECK_OK(srl_cpo_eval(w, NULL, NULL, &kl, NULL, NULL));
      q[s][sg] = kl;
    }
  double fd_uhv = ((q[0][0] + q[0][1]) - (q[1][0] + q[1][1])) / (4 * eps * eps);
  CHECK_CLOSE(fd_uhv, uhv, 1e-4, 2e-2);
  for (size_t k = 0; k < np; k++) t[k] = theta[k] + (float)(eps * v[k]);
  params_set(ac, t);
  float kp, km;
  CHECK_OK(srl_cpo_eval(w, NULL, NULL, &kp, NULL, NULL));
  for (size_t k = 0; k < np; k++) t[k] = theta[k] - (float)(eps * v[k]);
  params_set(ac, t);
  CHECK_OK(srl_cpo_eval(w, NULL, NULL, &km, NULL, NULL));
  CHECK_CLOSE((kp + km) / (eps * eps), vhv, 1e-4, 2e-2);
  params_set(ac, theta);
  srl_rng_destroy(rng);
  free(u), free(v), free(hv), free(hu), free(theta), free(t);
  data_free(&d);
  srl_cpo_destroy(w);
  srl_ac_destroy(ac);
}

//---- surrogate and KL ---------------------------------------------------------------------------

TEST(test_kl_and_losses_against_host) {
  const srl_ops *ops = srl_ops_cpu();
  srl_actor_critic *ac = make_ac(ops, 16, 2);  // 40 rows in chunks of 16
  srl_cpo *w = NULL;
  CHECK_OK(srl_cpo_create(&w, ac, 40));
  data d = make_data(ac, 40, 12);
  size_t np = ac->actor->n_params;
  float *theta = params_copy(ac), *t = malloc(sizeof(float) * np);
  srl_rng *rng;
  srl_rng_create(&rng, 1, 3);
  srl_cpo_config cfg = srl_cpo_config_default();
  srl_cpo_batch b = batch_of(&d, 0, 0);
  CHECK_OK(srl_cpo_begin(w, &b, &cfg));
  float lr, lc, kl;
  CHECK_OK(srl_cpo_eval(w, &lr, &lc, &kl, d.adv_r, d.adv_c));
  CHECK(fabsf(kl) < 1e-6f);
  double mr = 0, mc = 0;
  for (int i = 0; i < d.n; i++) mr += d.adv_r[i], mc += d.adv_c[i];
  CHECK_CLOSE(lr, -mr / d.n, 1e-5, 1e-4);
  CHECK_CLOSE(lc, mc / d.n, 1e-5, 1e-4);
  // a random move of every parameter, log_std included
  srl_rng_fill_normal(rng, t, np, 0, 0.05f);
  for (size_t k = 0; k < np; k++) t[k] += theta[k];
  params_set(ac, t);
  CHECK_OK(srl_cpo_eval(w, &lr, &lc, &kl, d.adv_r, d.adv_c));
  double hkl, hr, hc;
  host_eval(ac, &d, &hkl, &hr, &hc);
  CHECK(hkl > 1e-4);
  CHECK_CLOSE(kl, hkl, 1e-7, 1e-4);
  CHECK_CLOSE(lr, -hr, 1e-6, 1e-4);
  CHECK_CLOSE(lc, hc, 1e-6, 1e-4);
  params_set(ac, theta);
  srl_rng_destroy(rng);
  free(theta), free(t);
  data_free(&d);
  srl_cpo_destroy(w);
  srl_ac_destroy(ac);
}

TEST(test_surrogate_gradient_against_differences) {
  const srl_ops *ops = srl_ops_cpu();
  srl_actor_critic *ac = make_ac(ops, 16, 6);
  srl_cpo *w = NULL;
  CHECK_OK(srl_cpo_create(&w, ac, 40));
  data d = make_data(ac, 40, 13);
  size_t np = ac->actor->n_params;
  float *theta = params_copy(ac), *t = malloc(sizeof(float) * np);
  float *g = malloc(sizeof(float) * np), *bg = malloc(sizeof(float) * np);
  float *v = malloc(sizeof(float) * np);
  srl_rng *rng;
  srl_rng_create(&rng, 5, 3);
  srl_rng_fill_normal(rng, v, np, 0, 1);
  srl_cpo_config cfg = srl_cpo_config_default();
  srl_cpo_batch b = batch_of(&d, 0, 0);
  CHECK_OK(srl_cpo_begin(w, &b, &cfg));
  float vr, vc;
  CHECK_OK(srl_cpo_surrogate(w, g, &vr, d.adv_r));
  CHECK_OK(srl_cpo_surrogate(w, bg, &vc, d.adv_c));
  double mr = 0;
  for (int i = 0; i < d.n; i++) mr += d.adv_r[i];
  CHECK_CLOSE(vr, mr / d.n, 1e-5, 1e-4);
  double gv = 0, bv = 0;
  for (size_t k = 0; k < np; k++) gv += (double)g[k] * v[k], bv += (double)bg[k] * v[k];
  const double eps = 1e-3;
  float lr[2], lc[2];
  for (int s = 0; s < 2; s++) {
    for (size_t k = 0; k < np; k++) t[k] = theta[k] + (float)((s ? -eps : eps) * v[k]);
    params_set(ac, t);
    CHECK_OK(srl_cpo_eval(w, &lr[s], &lc[s], NULL, d.adv_r, d.adv_c));
  }
  CHECK_CLOSE(-(lr[0] - lr[1]) / (2 * eps), gv, 1e-3, 1e-2);
  CHECK_CLOSE((lc[0] - lc[1]) / (2 * eps), bv, 1e-3, 1e-2);
  params_set(ac, theta);
  srl_rng_destroy(rng);
  free(theta), free(t), free(g), free(bg), free(v);
  data_free(&d);
  srl_cpo_destroy(w);
  srl_ac_destroy(ac);
}

//---- CPO's case analysis on 2-D quadratic problems ----------------------------------------------

typedef struct prob {
  double H[4], g[2], b[2], c, delta;
} prob;

static void solve2(const double H[4], const double v[2], double out[2]) {
  double det = H[0] * H[3] - H[1] * H[2];
  out[0] = (H[3] * v[0] - H[1] * v[1]) / det;
  out[1] = (-H[2] * v[0] + H[0] * v[1]) / det;
}

static double quad2(const double H[4], const double d[2]) {
  return 0.5 * (d[0] * (H[0] * d[0] + H[1] * d[1]) + d[1] * (H[2] * d[0] + H[3] * d[1]));
}

// the step srl_cpo_solve gives for a problem
static srl_cpo_solution cpo_step(const prob *pr, double d[2]) {
  double x[2], p[2];
  solve2(pr->H, pr->g, x);
  solve2(pr->H, pr->b, p);
  srl_cpo_quad in = {.q = pr->g[0] * x[0] + pr->g[1] * x[1],
                     .r = pr->g[0] * p[0] + pr->g[1] * p[1],
                     .s = pr->b[0] * p[0] + pr->b[1] * p[1],
                     .bb = pr->b[0] * pr->b[0] + pr->b[1] * pr->b[1],
                     .c = pr->c,
                     .target_kl = pr->delta};
  srl_cpo_solution sol;
  srl_cpo_solve(&sol, &in);
  d[0] = sol.coef_x * x[0] + sol.coef_p * p[0];
  d[1] = sol.coef_x * x[1] + sol.coef_p * p[1];
  return sol;
}

// exact maximum of gᵀd over {½dᵀHd ≤ δ} ∩ {c + bᵀd ≤ 0} in 2-D: the unconstrained trust-region
// point if it is feasible, else the better point where the line bᵀd = −c meets the ellipse;
// returns 0 when the set is empty
static int exact2(const prob *pr, double best[2], double *value) {
  double x[2];
  solve2(pr->H, pr->g, x);
  double q = pr->g[0] * x[0] + pr->g[1] * x[1], a = sqrt(2 * pr->delta / q);
  double d0[2] = {a * x[0], a * x[1]};
  if (pr->c + pr->b[0] * d0[0] + pr->b[1] * d0[1] <= 0) {
    best[0] = d0[0], best[1] = d0[1];
    *value = pr->g[0] * d0[0] + pr->g[1] * d0[1];
    return 1;
  }
  double bb = pr->b[0] * pr->b[0] + pr->b[1] * pr->b[1];
  double dp[2] = {-pr->c * pr->b[0] / bb, -pr->c * pr->b[1] / bb}, u[2] = {-pr->b[1], pr->b[0]};
  double Hu[2] = {pr->H[0] * u[0] + pr->H[1] * u[1], pr->H[2] * u[0] + pr->H[3] * u[1]};
  double qa = 0.5 * (u[0] * Hu[0] + u[1] * Hu[1]), qb = dp[0] * Hu[0] + dp[1] * Hu[1];
  double qc = quad2(pr->H, dp) - pr->delta, disc = qb * qb - 4 * qa * qc;
  if (disc < 0) return 0;
  *value = -INFINITY;
  for (int s = -1; s <= 1; s += 2) {
    double t = (-qb + s * sqrt(disc)) / (2 * qa);
    double d[2] = {dp[0] + t * u[0], dp[1] + t * u[1]};
    double v = pr->g[0] * d[0] + pr->g[1] * d[1];
    if (v > *value) *value = v, best[0] = d[0], best[1] = d[1];
  }
  return 1;
}

// the step is feasible and as good as the exact optimum
static void check_optimal(const prob *pr, int want_case) {
  double d[2], e[2], ev;
  srl_cpo_solution sol = cpo_step(pr, d);
  if (want_case >= 0) CHECK_EQ_INT(sol.optim_case, want_case);
  CHECK(exact2(pr, e, &ev));
  double scale = sqrt(2 * pr->delta) * (fabs(pr->g[0]) + fabs(pr->g[1]));
  CHECK(quad2(pr->H, d) <= pr->delta * (1 + 1e-5));
  // (the 1e-8 guards in λ, ν and r/(c + 1e-8) leave violations of a few 1e-7 relative)
  double bd = pr->b[0] * d[0] + pr->b[1] * d[1];
  CHECK(pr->c + bd <= 1e-5 * (fabs(pr->c) + fabs(bd)) + 1e-7);
  CHECK_CLOSE(pr->g[0] * d[0] + pr->g[1] * d[1], ev, 1e-6 * scale, 1e-5);
  CHECK_CLOSE(d[0], e[0], 1e-5, 1e-3);
  CHECK_CLOSE(d[1], e[1], 1e-5, 1e-3);
}

TEST(test_cpo_cases_on_quadratic_problems) {
  const double H[4] = {2.0, 0.6, 0.6, 1.0};
  const double delta = 0.01;
  prob pr = {{H[0], H[1], H[2], H[3]}, {1.0, 0.5}, {0.3, -0.8}, -1.0, delta};
  double d[2];

  // case 4: no cost gradient, feasible → the trust-region step √(2δ/q)·x
  pr.b[0] = pr.b[1] = 0;
  srl_cpo_solution s = cpo_step(&pr, d);
  CHECK_EQ_INT(s.optim_case, 4);
  CHECK_CLOSE(quad2(H, d), delta, 1e-9, 1e-6);
  check_optimal(&pr, 4);

  // case 3: the whole trust region is feasible (c far below 0)
  pr.b[0] = 0.3, pr.b[1] = -0.8, pr.c = -1.0;
  s = cpo_step(&pr, d);
  CHECK_EQ_INT(s.optim_case, 3);
  CHECK(s.B < 0);
  CHECK(s.nu == 0);
  check_optimal(&pr, 3);

  // case 2, cost rising along the reward gradient (r > 0): the optimum lies on the boundary
  pr.b[0] = 0.9, pr.b[1] = 0.2, pr.c = -0.02;
  s = cpo_step(&pr, d);
  CHECK_EQ_INT(s.optim_case, 2);
  CHECK(s.nu > 0);
  CHECK_CLOSE(pr.c + pr.b[0] * d[0] + pr.b[1] * d[1], 0.0, 1e-7, 0);
  CHECK_CLOSE(quad2(H, d), delta, 1e-9, 1e-5);  // both constraints active
  check_optimal(&pr, 2);

  // case 2, cost falling along the reward gradient (r < 0): the trust-region step is feasible
  pr.b[0] = -0.9, pr.b[1] = -0.2, pr.c = -0.02;
  s = cpo_step(&pr, d);
  CHECK_EQ_INT(s.optim_case, 2);
  CHECK(s.nu == 0);
  check_optimal(&pr, 2);

  // case 1: infeasible now, a feasible part of the region exists
  pr.b[0] = 0.9, pr.b[1] = 0.2, pr.c = 0.05;
  s = cpo_step(&pr, d);
  CHECK_EQ_INT(s.optim_case, 1);
  check_optimal(&pr, 1);
  pr.b[0] = -0.4, pr.b[1] = 0.9, pr.c = 0.03;
  check_optimal(&pr, 1);

  // case 0: nothing feasible → −√(2δ/s)·p, the steepest cost descent within the region
  pr.b[0] = 0.3, pr.b[1] = -0.8, pr.c = 1.0;
  s = cpo_step(&pr, d);
  CHECK_EQ_INT(s.optim_case, 0);
  CHECK_CLOSE(quad2(H, d), delta, 1e-9, 1e-6);
  double best = INFINITY;
  for (int k = 0; k < 100000; k++) {
    // bᵀd over the region's boundary: d = L⁻ᵀ·√(2δ)(cos, sin) with H = LLᵀ
    double th = 2 * M_PI * k / 100000, l11 = sqrt(H[0]), l21 = H[2] / l11;
    double l22 = sqrt(H[3] - l21 * l21), r = sqrt(2 * delta);
    double u0 = r * cos(th), u1 = r * sin(th);
    double e1 = u1 / l22, e0 = (u0 - l21 * e1) / l11;
    double v = pr.b[0] * e0 + pr.b[1] * e1;
    if (v < best) best = v;
  }
  CHECK_CLOSE(pr.b[0] * d[0] + pr.b[1] * d[1], best, 1e-7, 1e-6);
  double e[2], ev;
  CHECK(!exact2(&pr, e, &ev));

  // random problems in cases 1 and 2 against the exact solution
  srl_rng *rng;
  srl_rng_create(&rng, 99, 0);
  int tried[5] = {0};
  for (int k = 0; k < 400; k++) {
    double m[4];
    for (int i = 0; i < 4; i++) m[i] = srl_rng_normal(rng);
    prob r = {{m[0] * m[0] + m[1] * m[1] + 0.3, m[0] * m[2] + m[1] * m[3],
               m[0] * m[2] + m[1] * m[3], m[2] * m[2] + m[3] * m[3] + 0.3},
              {srl_rng_normal(rng), srl_rng_normal(rng)},
              {srl_rng_normal(rng), srl_rng_normal(rng)},
              0,
              delta};
    double p[2];
    solve2(r.H, r.b, p);
    double sv = r.b[0] * p[0] + r.b[1] * p[1];
    r.c = srl_rng_uniform_range(rng, -1.5, 1.5) * sqrt(2 * delta * sv);
    srl_cpo_solution so = cpo_step(&r, d);
    tried[so.optim_case]++;
    if (so.optim_case == 0) {
      CHECK(!exact2(&r, e, &ev));
      continue;
    }
    check_optimal(&r, -1);
  }
  CHECK(tried[1] > 50 && tried[2] > 50 && tried[0] > 20);
  srl_rng_destroy(rng);
}

TEST(test_line_search_rules) {
  const double dk = 0.01;
  // CPO: the reward is checked only when case > 1
  CHECK(!srl_cpo_accept(2, -1e-7, 0, 0.005, -1, dk));
  CHECK(!srl_cpo_accept(3, -1e-7, 0, 0.005, -1, dk));
  CHECK(srl_cpo_accept(2, 0, 0, 0.005, -1, dk));
  CHECK(srl_cpo_accept(1, -5, -1e-3, 0.005, 0.5, dk));
  CHECK(srl_cpo_accept(0, -5, -1e-3, 0.005, 0.5, dk));
  // the cost may rise by max(−c, 0)
  CHECK(srl_cpo_accept(2, 1, 0.4, 0.005, -0.5, dk));
  CHECK(!srl_cpo_accept(2, 1, 0.6, 0.005, -0.5, dk));
  CHECK(srl_cpo_accept(1, 1, 0.0, 0.005, 0.3, dk));
  CHECK(!srl_cpo_accept(1, 1, 1e-6, 0.005, 0.3, dk));
  CHECK(srl_cpo_accept(3, 1, 1e30, 0.005, -INFINITY, dk));
  // KL ≤ δ
  CHECK(srl_cpo_accept(3, 1, 0, dk, -1, dk));
  CHECK(!srl_cpo_accept(3, 1, 0, dk * 1.0001, -1, dk));
  // anything not finite is refused, in every case
  CHECK(!srl_cpo_accept(0, NAN, 0, 0.005, 1, dk));
  CHECK(!srl_cpo_accept(0, 1, INFINITY, 0.005, -INFINITY, dk));
  CHECK(!srl_cpo_accept(3, 1, 0, NAN, -1, dk));
  // TRPO
  CHECK(srl_trpo_accept(0, 0.009, dk));
  CHECK(!srl_trpo_accept(-1e-9, 0.009, dk));
  CHECK(!srl_trpo_accept(1, 0.011, dk));
  CHECK(!srl_trpo_accept(NAN, 0.001, dk));
  CHECK(!srl_trpo_accept(1, NAN, dk));
}

//---- whole updates ------------------------------------------------------------------------------

TEST(test_line_search_fractions_and_restore) {
  const srl_ops *ops = srl_ops_cpu();
  srl_actor_critic *ac = make_ac(ops, 64, 31);
  srl_cpo *w = NULL;
  CHECK_OK(srl_cpo_create(&w, ac, 64));
  data d = make_data(ac, 64, 17);
  size_t np = ac->actor->n_params;
  float *theta = params_copy(ac), *g = malloc(sizeof(float) * np),
        *dir = malloc(sizeof(float) * np);
  srl_cpo_config cfg = srl_trpo_lag_config_default();
  srl_cpo_batch b = batch_of(&d, 0, 0);
  CHECK_OK(srl_cpo_begin(w, &b, &cfg));
  float v;
  CHECK_OK(srl_cpo_surrogate(w, g, &v, d.adv_r));
  double gg = 0;
  for (size_t k = 0; k < np; k++) gg += (double)g[k] * g[k];

  // uphill on the loss: nothing is accepted and θ_old comes back bit for bit
  for (size_t k = 0; k < np; k++) dir[k] = (float)(-0.05 * g[k] / sqrt(gg));
  srl_cpo_stats st;
  memset(&st, 0, sizeof st);
  CHECK_OK(srl_cpo_line_search(w, &st, dir, d.adv_r, NULL, -1, 0, -v, 0));
  CHECK_EQ_INT(st.accept_step, 0);
  CHECK(st.step_frac == 0 && st.kl == 0 && st.loss_r == -v);
  CHECK(memcmp(ac->actor->params, theta, sizeof(float) * np) == 0);
  // the CPO rule in case 2 refuses it too; in case 1 the reward is not checked
  CHECK_OK(srl_cpo_line_search(w, &st, dir, d.adv_r, d.adv_c, 2, -1.0, -v, 0));
  CHECK_EQ_INT(st.accept_step, 0);
  CHECK(memcmp(ac->actor->params, theta, sizeof(float) * np) == 0);

  // a step far too long (KL ≈ 20δ in the quadratic model): the first fraction 0.8^k with KL ≤ δ
  // and no loss is taken, the one before it was refused
  float *hg = malloc(sizeof(float) * np);
  cfg.cg_damping = 0;
  CHECK_OK(srl_cpo_begin(w, &b, &cfg));
  CHECK_OK(srl_cpo_fvp(w, hg, g));
  double ghg = 0;
  for (size_t k = 0; k < np; k++) ghg += (double)g[k] * hg[k];
  double t = sqrt(2 * 20 * cfg.target_kl / ghg);
  for (size_t k = 0; k < np; k++) dir[k] = (float)(t * g[k]);
  free(hg);
  CHECK_OK(srl_cpo_line_search(w, &st, dir, d.adv_r, NULL, -1, 0, -v, 0));
  CHECK(st.accept_step > 1);
  CHECK_CLOSE(st.step_frac, pow(0.8, st.accept_step - 1), 0, 1e-6);
  CHECK(st.kl <= cfg.target_kl);
  CHECK(st.loss_r <= -v);
  double hkl, hr, hc;
  host_eval(ac, &d, &hkl, &hr, &hc);
  CHECK_CLOSE(hkl, st.kl, 1e-7, 1e-4);
  for (size_t k = 0; k < np; k++)
    CHECK_CLOSE(ac->actor->params[k], theta[k] + st.step_frac * dir[k], 1e-6, 1e-5);
  float kl_prev, lr_prev;
  float frac_prev = st.step_frac / 0.8f;
  for (size_t k = 0; k < np; k++) ac->actor->params[k] = theta[k] + frac_prev * dir[k];
  CHECK_OK(srl_cpo_eval(w, &lr_prev, NULL, &kl_prev, d.adv_r, NULL));
  CHECK(kl_prev > cfg.target_kl || lr_prev > -v);
  params_set(ac, theta);
  free(theta), free(g), free(dir);
  data_free(&d);
  srl_cpo_destroy(w);
  srl_ac_destroy(ac);
}

TEST(test_cpo_update_cases_on_a_batch) {
  const srl_ops *ops = srl_ops_cpu();
  srl_actor_critic *ac = make_ac(ops, 32, 41);  // 96 rows in three chunks
  srl_cpo *w = NULL;
  CHECK_OK(srl_cpo_create(&w, ac, 96));
  data d = make_data(ac, 96, 23);
  float *theta = params_copy(ac);
  srl_cpo_config cfg = srl_cpo_config_default();
  cfg.cost_limit = 25;

  // a first look gives s, which sets the scale of c for each case
  srl_cpo_batch b = batch_of(&d, 25 + 5, 0);
  srl_cpo_stats st;
  CHECK_OK(srl_cpo_update_actor(w, &b, &cfg, &st));
  params_set(ac, theta);
  double edge = sqrt(2 * cfg.target_kl * st.s);  // |c| where B = 0
  CHECK(st.s > 0 && st.q > 0);
  const struct {
    double c;
    int want;
  } runs[] = {{50 * edge, 0}, {0.5 * edge, 1}, {-0.5 * edge, 2}, {-50 * edge, 3}};
  for (int i = 0; i < 4; i++) {
    b.ep_cost = (float)(25 + runs[i].c);
    CHECK_OK(srl_cpo_update_actor(w, &b, &cfg, &st));
    CHECK_EQ_INT(st.optim_case, runs[i].want);
    CHECK(st.accept_step >= 1);
    CHECK(st.cg_iters_x >= 1 && st.cg_iters_p >= 1);
    // independent host check of KL and of the surrogates' changes
    double hkl, hr, hc;
    host_eval(ac, &d, &hkl, &hr, &hc);
    CHECK(hkl <= cfg.target_kl * (1 + 1e-4));
    CHECK_CLOSE(hkl, st.kl, 1e-7, 1e-3);
    CHECK_CLOSE(-hr, st.loss_r, 1e-6, 1e-4);
    CHECK_CLOSE(hc, st.loss_c, 1e-6, 1e-4);
    double slack = runs[i].c < 0 ? -runs[i].c : 0;
    CHECK(hc - st.loss_c_before <= slack + 1e-6);
    if (runs[i].c >= 0) CHECK(hc <= st.loss_c_before + 1e-6);  // c ≥ 0: the cost does not rise
    if (runs[i].want >= 2) CHECK(-hr <= st.loss_r_before + 1e-7);  // the reward does not fall
    CHECK_CLOSE(st.loss_pi, st.loss_r + st.loss_c, 1e-6, 1e-5);
    params_set(ac, theta);
  }

  // no finished episode (Jc NaN) counts as c = −∞: the reward's trust-region step
  b.ep_cost = NAN;
  CHECK_OK(srl_cpo_update_actor(w, &b, &cfg, &st));
  CHECK(st.optim_case == 3 || st.optim_case == 4);
  CHECK(isinf(st.c) && st.c < 0);
  params_set(ac, theta);

  // a cost_limit of 0 works
  cfg.cost_limit = 0;
  b.ep_cost = 0;
  CHECK_OK(srl_cpo_update_actor(w, &b, &cfg, &st));
  CHECK_EQ_INT(st.optim_case, 1);
  params_set(ac, theta);

  // refusals: bad config, bad size, missing adv_c, non-finite advantages, calls out of order
  cfg.target_kl = 0;
  CHECK_ERR(srl_cpo_update_actor(w, &b, &cfg, &st), SRL_EINVAL);
  cfg = srl_cpo_config_default();
  b.n = 97;
  CHECK_ERR(srl_cpo_update_actor(w, &b, &cfg, &st), SRL_ERANGE);
  b.n = 96;
  b.adv_c = NULL;
  CHECK_ERR(srl_cpo_update_actor(w, &b, &cfg, &st), SRL_EINVAL);
  b.adv_c = d.adv_c;
  float keep = d.adv_r[5];
  d.adv_r[5] = NAN;
  CHECK_ERR(srl_cpo_update_actor(w, &b, &cfg, &st), SRL_ENONFINITE);
  CHECK_ERRMSG("reward surrogate");
  CHECK(memcmp(ac->actor->params, theta, sizeof(float) * ac->actor->n_params) == 0);
  d.adv_r[5] = keep;
  float *buf = malloc(sizeof(float) * ac->actor->n_params);
  srl_cpo *w2 = NULL;
  CHECK_OK(srl_cpo_create(&w2, ac, 4));
  float val;
  CHECK_ERR(srl_cpo_surrogate(w2, buf, &val, d.adv_r), SRL_ESTATE);
  srl_cpo *w3 = NULL;
  CHECK_ERR(srl_cpo_create(&w3, ac, 0), SRL_EINVAL);
  CHECK(w3 == NULL);
  free(buf);
  srl_cpo_destroy(w2);
  srl_cpo_destroy(NULL);
  free(theta);
  data_free(&d);
  srl_cpo_destroy(w);
  srl_ac_destroy(ac);
}

TEST(test_trpo_lag_update) {
  const srl_ops *ops = srl_ops_cpu();
  srl_actor_critic *ac = make_ac(ops, 64, 51);
  srl_cpo *w = NULL;
  CHECK_OK(srl_cpo_create(&w, ac, 64));
  data d = make_data(ac, 64, 29);
  float *theta = params_copy(ac);
  srl_cpo_config cfg = srl_trpo_lag_config_default();
  CHECK_EQ_INT(cfg.ls_steps, 15);
  const float lam = 0.5f;
  srl_cpo_batch b = batch_of(&d, 30, lam);
  srl_cpo_stats st;
  CHECK_OK(srl_trpo_lag_update_actor(w, &b, &cfg, &st));
  CHECK_EQ_INT(st.optim_case, -1);
  CHECK(st.accept_step >= 1);
  // the loss before is −mean((A_r − λA_c)/(1 + λ)) at ρ = 1
  double m = 0;
  for (int i = 0; i < d.n; i++) m += (d.adv_r[i] - lam * d.adv_c[i]) / (1 + lam);
  CHECK_CLOSE(st.loss_r_before, -m / d.n, 1e-6, 1e-4);
  double hkl, hr, hc;
  host_eval(ac, &d, &hkl, &hr, &hc);
  CHECK(hkl <= cfg.target_kl * (1 + 1e-4));
  CHECK_CLOSE(-(hr - lam * hc) / (1 + lam), st.loss_r, 1e-6, 1e-4);
  CHECK(st.loss_r < st.loss_r_before);
  CHECK(st.loss_pi == st.loss_r);
  // the full step is scaled to ½xᵀHx = δ
  CHECK_CLOSE(0.5 * st.alpha * st.alpha * st.xHx, cfg.target_kl, 1e-9, 1e-4);
  params_set(ac, theta);
  // λ = 0 without adv_c is plain TRPO; a negative λ is refused
  b.adv_c = NULL;
  b.lagrange = 0;
  CHECK_OK(srl_trpo_lag_update_actor(w, &b, &cfg, &st));
  params_set(ac, theta);
  b.lagrange = 0.2f;
  CHECK_ERR(srl_trpo_lag_update_actor(w, &b, &cfg, &st), SRL_EINVAL);
  b.adv_c = d.adv_c;
  b.lagrange = -0.1f;
  CHECK_ERR(srl_trpo_lag_update_actor(w, &b, &cfg, &st), SRL_EINVAL);
  b.lagrange = NAN;
  CHECK_ERR(srl_trpo_lag_update_actor(w, &b, &cfg, &st), SRL_ENONFINITE);
  free(theta);
  data_free(&d);
  srl_cpo_destroy(w);
  srl_ac_destroy(ac);
}

//---- the trainer's entries ----------------------------------------------------------------------

// a finished rollout of 2 envs × 100 steps with synthetic rewards and costs
static void fill_rollout(srl_rollout *rb, srl_actor_critic *ac, uint64_t seed) {
  srl_rollout_config rc = srl_rollout_config_default(2, 100, OBS, ACT);
  srl_rollout_init(rb, &rc);
  srl_rng *rng;
  srl_rng_create(&rng, seed, 4);
  float ls[ACT];
  srl_mlp_tensor_download(ac->actor, "log_std", ls, ACT);
  for (int t = 0; t < 100; t++) {
    float obs[2 * OBS], act[2 * ACT], mean[2 * ACT], logp[2], r[2], c[2], v[2] = {0, 0};
    srl_rng_fill_normal(rng, obs, 2 * OBS, 0, 1);
    srl_mlp_forward(ac->actor, obs, 2);
    memcpy(mean, ac->actor->out, sizeof mean);
    srl_gauss g;
    srl_dist_init(&g, mean, ls, 2, ACT, 0);
    srl_dist_sample(act, &g, rng);
    srl_dist_logprob(logp, act, &g);
    for (int e = 0; e < 2; e++) {
      r[e] = act[e * ACT] - 0.1f * obs[e * OBS];
      c[e] = act[e * ACT + 1] > 0.5f ? 1.0f : 0.0f;
    }
    srl_rollout_store(rb, obs, act, logp, r, c, v, v);
    int term[2] = {t % 37 == 36, 0}, trunc[2] = {0, 0};
    srl_rollout_end_paths(rb, term, trunc, NULL, NULL);
  }
  float last[2] = {0, 0};
  srl_rollout_finish(rb, last, last);
  srl_rng_destroy(rng);
}

TEST(test_trainer_entries) {
  const srl_ops *ops = srl_ops_cpu();
  for (int algo = 0; algo < 2; algo++) {
    const srl_onpolicy_algo *a = algo ? &srl_onpolicy_trpo_lag : &srl_onpolicy_cpo;
    CHECK(srl_onpolicy_algo_find(a->name) == a);
    srl_onpolicy_config cfg;
    CHECK_OK(srl_onpolicy_config_defaults(&cfg, a->name));
    // OmniSafe's CPO/TRPO-Lag defaults
    CHECK_EQ_INT(cfg.algo_cfgs.update_iters, 10);
    CHECK_EQ_INT(cfg.algo_cfgs.batch_size, 128);
    CHECK_CLOSE(cfg.algo_cfgs.target_kl, 0.01, 0, 1e-12);
    CHECK_EQ_INT(cfg.algo_cfgs.kl_early_stop, 0);
    CHECK_EQ_INT(cfg.algo_cfgs.cg_iters, 15);
    CHECK_CLOSE(cfg.algo_cfgs.cg_damping, 0.1, 0, 1e-12);
    CHECK_CLOSE(cfg.model_cfgs.critic.lr, 1e-3, 0, 1e-12);
    cfg.algo_cfgs.update_iters = 2;
    cfg.algo_cfgs.batch_size = 64;

    srl_actor_critic *ac = make_ac(ops, 64, 61);
    srl_rollout rb;
    fill_rollout(&rb, ac, 3);
    float *theta = params_copy(ac), *cr = malloc(sizeof(float) * ac->critic_r->n_params);
    memcpy(cr, ac->critic_r->params, sizeof(float) * ac->critic_r->n_params);
    void *state = NULL;
    CHECK_OK(a->create(&state, &cfg, ac, rb.capacity));
    srl_lagrange lg, *lag = NULL;
    if (a->lagrange >= 0) {
      srl_lagrange_config lc = srl_lagrange_config_default((srl_lagrange_kind)a->lagrange);
      CHECK_OK(srl_lagrange_init(&lg, &lc));
      lag = &lg;
    }
    srl_rng *rng;
    srl_rng_create(&rng, 1, 9);
    srl_onpolicy_batch b = {.rb = &rb,
                            .lagrange = lag,
                            .ep_cost = 40.0,
                            .cost_limit = 25.0,
                            .epoch = 0,
                            .epochs = 1,
                            .actor_lr = 0,
                            .rng = rng};
    srl_onpolicy_stats out;
    CHECK_OK(a->update(state, ac, &b, &out));
    CHECK(isfinite(out.loss_pi) && isfinite(out.loss_vr) && isfinite(out.loss_vc));
    CHECK(out.kl > 0 && out.kl <= 0.01f * ACT * (1 + 1e-4));
    CHECK_EQ_INT(out.iters, 2);
    float ls[ACT];
    srl_mlp_tensor_download(ac->actor, "log_std", ls, ACT);
    CHECK_CLOSE(out.entropy, ACT * 1.41893853320467 + ls[0] + ls[1], 1e-6, 1e-6);
    if (lag)
      CHECK(out.lambda > 0.001f);  // Jc > d: λ rose from its init
    else
      CHECK(out.lambda == 0);
    // the actor and both critics moved
    CHECK(memcmp(theta, ac->actor->params, sizeof(float) * ac->actor->n_params) != 0);
    CHECK(memcmp(cr, ac->critic_r->params, sizeof(float) * ac->critic_r->n_params) != 0);
    a->destroy(state);
    a->destroy(NULL);
    srl_rng_destroy(rng);
    srl_rollout_free(&rb);
    free(theta), free(cr);
    srl_ac_destroy(ac);
  }
}

TEST(test_shipped_configs_load) {
  const char *src = getenv("SRL_SOURCE_DIR");
  if (!src) SKIP("SRL_SOURCE_DIR not set");
  const char *files[] = {"cpo/SafetyPointGoal1", "cpo/SafetyCarGoal1",
                         "cpo/SafetyHalfCheetahVelocity", "trpo_lag/SafetyPointGoal1"};
  for (int i = 0; i < 4; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/configs/%s.yaml", src, files[i]);
    srl_onpolicy_config cfg;
    CHECK_OK(srl_onpolicy_config_load(&cfg, path, NULL, 0));
    CHECK_OK(srl_onpolicy_config_check(&cfg));
    CHECK(!strcmp(cfg.algo, i < 3 ? "CPO" : "TRPOLag"));
    CHECK_EQ_INT(cfg.algo_cfgs.update_iters, 10);
    CHECK_EQ_INT(cfg.algo_cfgs.batch_size, 128);
    CHECK_CLOSE(cfg.algo_cfgs.target_kl, 0.01, 0, 1e-12);
    CHECK_CLOSE(cfg.model_cfgs.critic.lr, 1e-3, 0, 1e-12);
    CHECK_CLOSE(cfg.lagrange_cfgs.cost_limit, 25, 0, 0);
    CHECK(srl_onpolicy_algo_find(cfg.algo) != NULL);
  }
}

//---- CUDA against CPU ---------------------------------------------------------------------------

TEST(test_cuda_matches_cpu) {
  const srl_ops *cuda;
  if (srl_ops_cuda(&cuda) < 0) SKIP("no usable CUDA device");
  const srl_ops *cpu = srl_ops_cpu();
  srl_actor_critic *hc = make_ac(cpu, 32, 71), *dc = make_ac(cuda, 32, 71);
  data d = make_data(hc, 80, 37);
  size_t np = hc->actor->n_params, F = sizeof(float);
  // the same parameters on both
  float *theta = params_copy(hc);
  params_set(dc, theta);
  // the epoch on the device
  float *dev = cuda->alloc(F * 80 * (OBS + ACT + 3));
  float *o = dev, *ac_ = o + 80 * OBS, *lp = ac_ + 80 * ACT, *ar = lp + 80, *acc = ar + 80;
  cuda->upload(o, d.obs, F * 80 * OBS);
  cuda->upload(ac_, d.act, F * 80 * ACT);
  cuda->upload(lp, d.logp, F * 80);
  cuda->upload(ar, d.adv_r, F * 80);
  cuda->upload(acc, d.adv_c, F * 80);
  srl_cpo *wh = NULL, *wd = NULL;
  CHECK_OK(srl_cpo_create(&wh, hc, 80));
  CHECK_OK(srl_cpo_create(&wd, dc, 80));
  srl_cpo_config cfg = srl_cpo_config_default();
  for (int algo = 0; algo < 2; algo++) {
    params_set(hc, theta);
    params_set(dc, theta);
    srl_cpo_batch bh = batch_of(&d, 25.2f, 0.3f);
    srl_cpo_batch bd = {o, ac_, lp, ar, acc, 80, 25.2f, 0.3f};
    srl_cpo_stats sh, sd;
    if (algo == 0) {
      CHECK_OK(srl_cpo_update_actor(wh, &bh, &cfg, &sh));
      CHECK_OK(srl_cpo_update_actor(wd, &bd, &cfg, &sd));
      CHECK_EQ_INT(sd.optim_case, sh.optim_case);
      CHECK_CLOSE(sd.r, sh.r, 1e-6, 1e-3);
      CHECK_CLOSE(sd.s, sh.s, 1e-6, 1e-3);
    } else {
      CHECK_OK(srl_trpo_lag_update_actor(wh, &bh, &cfg, &sh));
      CHECK_OK(srl_trpo_lag_update_actor(wd, &bd, &cfg, &sd));
    }
    CHECK_EQ_INT(sd.accept_step, sh.accept_step);
    CHECK_CLOSE(sd.xHx, sh.xHx, 1e-7, 1e-3);
    CHECK_CLOSE(sd.kl, sh.kl, 1e-7, 1e-3);
    CHECK_CLOSE(sd.loss_r, sh.loss_r, 1e-6, 1e-3);
    float *pd = params_copy(dc);
    CHECK(srl_test_nmse(pd, hc->actor->params, np) < 1e-7);
    free(pd);
  }
  cuda->free(dev);
  free(theta);
  data_free(&d);
  srl_cpo_destroy(wh);
  srl_cpo_destroy(wd);
  srl_ac_destroy(hc);
  srl_ac_destroy(dc);
}

int main(void) {
  srl_ops_cpu_set_threads(1);
  RUN(test_cg_against_direct_solve);
  RUN(test_fvp_against_dense_fisher);
  RUN(test_fvp_is_the_kl_hessian);
  RUN(test_kl_and_losses_against_host);
  RUN(test_surrogate_gradient_against_differences);
  RUN(test_cpo_cases_on_quadratic_problems);
  RUN(test_line_search_rules);
  RUN(test_line_search_fractions_and_restore);
  RUN(test_cpo_update_cases_on_a_batch);
  RUN(test_trpo_lag_update);
  RUN(test_trainer_entries);
  RUN(test_shipped_configs_load);
  RUN(test_cuda_matches_cpu);
  return TEST_REPORT();
}
