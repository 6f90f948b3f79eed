// test_dist.c: the diagonal Gaussian head: log-prob and entropy against closed forms, KL against a
// Monte-Carlo estimate and its own gradient, sample statistics, tanh squashing, argument errors.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dist.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/rng.h"
#include "test.h"

static srl_rng *rng;

static void rand_fill(float *x, size_t n, float lo, float hi) {
  srl_rng_fill_uniform(rng, x, n, lo, hi);
}

// log N(x; μ, σ) of one dimension, written as the log of the density itself
static double log_density(double x, double mu, double sd) {
  return log(exp(-(x - mu) * (x - mu) / (2 * sd * sd)) / (sd * sqrt(2 * M_PI)));
}


TEST(init_validates) {
  float m[6] = {0}, ls[3] = {0};
  srl_gauss g;
  CHECK_OK(srl_dist_init(&g, m, ls, 2, 3, 0));
  CHECK(g.mean == m && g.log_std == ls && g.rows == 2 && g.cols == 3 && g.log_std_per_row == 0);
  CHECK_OK(srl_dist_init(&g, m, ls, 0, 3, 1));
  CHECK_ERR(srl_dist_init(&g, NULL, ls, 2, 3, 0), SRL_EINVAL);
  CHECK_ERR(srl_dist_init(&g, m, NULL, 2, 3, 0), SRL_EINVAL);
  CHECK_ERR(srl_dist_init(&g, m, ls, -1, 3, 0), SRL_EINVAL);
  CHECK_ERR(srl_dist_init(&g, m, ls, 2, 0, 0), SRL_EINVAL);
  CHECK_ERRMSG("shape");
  CHECK_ERR(srl_dist_init(NULL, m, ls, 2, 3, 0), SRL_EINVAL);

  // every function refuses a bad descriptor with a message rather than crashing
  srl_gauss bad = {NULL, ls, 2, 3, 0};
  float out[6];
  CHECK_ERR(srl_dist_sample(out, &bad, rng), SRL_EINVAL);
  CHECK_ERR(srl_dist_mode(out, &bad), SRL_EINVAL);
  CHECK_ERR(srl_dist_logprob(out, out, &bad), SRL_EINVAL);
  CHECK_ERR(srl_dist_entropy(out, NULL, &bad), SRL_EINVAL);
  CHECK_ERR(srl_dist_kl(out, NULL, &bad, &g), SRL_EINVAL);
  CHECK_ERR(srl_dist_sample(out, &g, NULL), SRL_EINVAL);
  CHECK_ERR(srl_dist_sample(out, NULL, rng), SRL_EINVAL);
  srl_gauss other;
  CHECK_OK(srl_dist_init(&other, m, ls, 1, 3, 0));
  CHECK_OK(srl_dist_init(&g, m, ls, 2, 3, 0));
  CHECK_ERR(srl_dist_kl(out, NULL, &g, &other), SRL_EINVAL);
  CHECK_ERRMSG("shapes differ");
  CHECK_ERR(srl_dist_kl_backward(out, NULL, &g, &other, 1), SRL_EINVAL);
}


TEST(logprob_closed_form) {
  enum { R = 7, C = 4 };
  float mu[R * C], ls_row[R * C], ls_shared[C], a[R * C], logp[R], twin[R];
  rand_fill(mu, R * C, -1, 1);
  rand_fill(ls_row, R * C, -1.5f, 0.5f);
  rand_fill(ls_shared, C, -1.5f, 0.5f);
  rand_fill(a, R * C, -2, 2);
  const srl_ops *ops = srl_ops_cpu();
  for (int per_row = 0; per_row < 2; per_row++) {
    const float *ls = per_row ? ls_row : ls_shared;
    srl_gauss g;
    CHECK_OK(srl_dist_init(&g, mu, ls, R, C, per_row));
    CHECK_OK(srl_dist_logprob(logp, a, &g));
    for (int i = 0; i < R; i++) {
      double want = 0;
      for (int j = 0; j < C; j++)
        want += log_density(a[i * C + j], mu[i * C + j], exp(ls[per_row ? i * C + j : j]));
      CHECK_CLOSE(logp[i], want, 1e-5, 1e-6);
    }
    // the op table's twin agrees
    ops->gauss_logprob(twin, a, mu, ls, R, C, per_row);
    for (int i = 0; i < R; i++) CHECK_CLOSE(twin[i], logp[i], 1e-5, 1e-6);
  }
  // a standard normal at its mean, OmniSafe's initial head: −C·½log 2π
  float zero[C] = {0}, lp;
  srl_gauss g0;
  CHECK_OK(srl_dist_init(&g0, zero, zero, 1, C, 0));
  CHECK_OK(srl_dist_logprob(&lp, zero, &g0));
  CHECK_CLOSE(lp, -C * 0.5 * log(2 * M_PI), 1e-6, 1e-7);
  CHECK(SRL_GAUSS_LOG_STD_INIT == 0.0f);
}


TEST(entropy_closed_form) {
  enum { R = 5, C = 3 };
  float mu[R * C] = {0}, ls_row[R * C], ls_shared[C], ent[R], mean_ent;
  rand_fill(ls_row, R * C, -2, 1);
  rand_fill(ls_shared, C, -2, 1);
  for (int per_row = 0; per_row < 2; per_row++) {
    const float *ls = per_row ? ls_row : ls_shared;
    srl_gauss g;
    CHECK_OK(srl_dist_init(&g, mu, ls, R, C, per_row));
    CHECK_OK(srl_dist_entropy(ent, &mean_ent, &g));
    double total = 0;
    for (int i = 0; i < R; i++) {
      double want = 0;  // ½log(2πe σ²) per dimension
      for (int j = 0; j < C; j++) {
        double sd = exp(ls[per_row ? i * C + j : j]);
        want += 0.5 * log(2 * M_PI * M_E * sd * sd);
      }
      CHECK_CLOSE(ent[i], want, 1e-6, 1e-6);
      total += want;
    }
    CHECK_CLOSE(mean_ent, total / R, 1e-6, 1e-6);
    float only_mean;
    CHECK_OK(srl_dist_entropy(NULL, &only_mean, &g));
    CHECK(only_mean == mean_ent);
  }

  // Monte Carlo: entropy = −E[log p]
  enum { N = 100000 };
  float m1[2] = {0.3f, -1.0f}, l1[2] = {-0.7f, 0.4f}, *a = malloc(2 * N * sizeof(float)),
        *lp = malloc(N * sizeof(float)), e1;
  float *mrep = malloc(2 * N * sizeof(float));
  for (int i = 0; i < N; i++) mrep[2 * i] = m1[0], mrep[2 * i + 1] = m1[1];
  srl_gauss g;
  CHECK_OK(srl_dist_init(&g, mrep, l1, N, 2, 0));
  CHECK_OK(srl_dist_sample(a, &g, rng));
  CHECK_OK(srl_dist_logprob(lp, a, &g));
  double s = 0;
  for (int i = 0; i < N; i++) s -= lp[i];
  CHECK_OK(srl_dist_entropy(NULL, &e1, &g));
  CHECK_CLOSE(s / N, e1, 0.01, 0);  // std of −log p is √(2/2)=1 → 0.003 here
  free(a), free(lp), free(mrep);
}


// KL(p‖q) per dimension in its textbook form
static double kl_ref(double mp, double sp, double mq, double sq) {
  double vp = sp * sp, vq = sq * sq;
  return 0.5 * (vp / vq + (mq - mp) * (mq - mp) / vq - 1 + log(vq / vp));
}


TEST(kl_closed_form_and_zero) {
  enum { R = 6, C = 3 };
  float mp[R * C], mq[R * C], lp[R * C], lq[C], kl[R], mean_kl;
  rand_fill(mp, R * C, -1, 1);
  rand_fill(mq, R * C, -1, 1);
  rand_fill(lp, R * C, -1, 0.5f);
  rand_fill(lq, C, -1, 0.5f);
  srl_gauss p, q;
  CHECK_OK(srl_dist_init(&p, mp, lp, R, C, 1));  // state-dependent old policy
  CHECK_OK(srl_dist_init(&q, mq, lq, R, C, 0));  // against a shared log_std
  CHECK_OK(srl_dist_kl(kl, &mean_kl, &p, &q));
  double total = 0;
  for (int i = 0; i < R; i++) {
    double want = 0;
    for (int j = 0; j < C; j++)
      want += kl_ref(mp[i * C + j], exp(lp[i * C + j]), mq[i * C + j], exp(lq[j]));
    CHECK_CLOSE(kl[i], want, 1e-6, 1e-5);
    CHECK(kl[i] >= 0);
    total += want;
  }
  CHECK_CLOSE(mean_kl, total / R, 1e-6, 1e-5);

  // KL(p‖p) = 0, and KL is asymmetric
  CHECK_OK(srl_dist_kl(kl, &mean_kl, &p, &p));
  for (int i = 0; i < R; i++) CHECK_CLOSE(kl[i], 0, 1e-7, 0);
  CHECK_CLOSE(mean_kl, 0, 1e-7, 0);
  float kl_pq, kl_qp;
  CHECK_OK(srl_dist_kl(NULL, &kl_pq, &p, &q));
  CHECK_OK(srl_dist_kl(NULL, &kl_qp, &q, &p));
  CHECK(fabsf(kl_pq - kl_qp) > 1e-3f);

  // the same numbers laid out shared or per row give the same KL
  float lq_rows[R * C], kl2[R];
  for (int i = 0; i < R; i++) memcpy(lq_rows + i * C, lq, sizeof lq);
  srl_gauss q_rows;
  CHECK_OK(srl_dist_init(&q_rows, mq, lq_rows, R, C, 1));
  CHECK_OK(srl_dist_kl(kl, NULL, &p, &q));
  CHECK_OK(srl_dist_kl(kl2, NULL, &p, &q_rows));
  CHECK(memcmp(kl, kl2, sizeof kl) == 0);
}


TEST(kl_monte_carlo) {
  // KL(p‖q) = E_p[log p(a) − log q(a)] over many samples of one state
  enum { N = 200000, C = 3 };
  float mp[C] = {0.2f, -0.5f, 1.0f}, lp[C] = {-0.3f, 0.1f, -0.8f};
  float mq[C] = {0.5f, -0.2f, 0.7f}, lq[C] = {0.0f, -0.2f, -0.5f};
  float *mp_rep = malloc(N * C * sizeof(float)), *mq_rep = malloc(N * C * sizeof(float));
  float *a = malloc(N * C * sizeof(float)), *logp = malloc(N * sizeof(float)),
        *logq = malloc(N * sizeof(float));
  for (int i = 0; i < N; i++) {
    memcpy(mp_rep + i * C, mp, sizeof mp);
    memcpy(mq_rep + i * C, mq, sizeof mq);
  }
  srl_gauss p, q;
  CHECK_OK(srl_dist_init(&p, mp_rep, lp, N, C, 0));
  CHECK_OK(srl_dist_init(&q, mq_rep, lq, N, C, 0));
  CHECK_OK(srl_dist_sample(a, &p, rng));
  CHECK_OK(srl_dist_logprob(logp, a, &p));
  CHECK_OK(srl_dist_logprob(logq, a, &q));
  double s = 0, ss = 0;
  for (int i = 0; i < N; i++) {
    double d = (double)logp[i] - logq[i];
    s += d, ss += d * d;
  }
  double mc = s / N, se = sqrt((ss / N - mc * mc) / N);
  float kl;
  p.rows = q.rows = 1;
  CHECK_OK(srl_dist_kl(NULL, &kl, &p, &q));
  CHECK(kl > 0.1f);  // a divergence worth estimating
  CHECK_CLOSE(mc, kl, 4 * se, 0);
  free(mp_rep), free(mq_rep), free(a), free(logp), free(logq);
}


typedef struct {
  int rows, cols, per_row;
  const double *mp, *lp;
} kl_ctx;

// mean over rows of KL(p‖q) as a function of q = [mean (rows×cols) | log_std]
static double kl_loss(const double *x, const kl_ctx *c) {
  const double *mq = x, *lq = x + c->rows * c->cols;
  double s = 0;
  for (int i = 0; i < c->rows; i++)
    for (int j = 0; j < c->cols; j++) {
      int k = i * c->cols + j;
      s += kl_ref(c->mp[k], exp(c->lp[k]), mq[k], exp(lq[c->per_row ? k : j]));
    }
  return s / c->rows;
}


TEST(kl_backward_finite_differences) {
  enum { R = 4, C = 3 };
  for (int per_row = 0; per_row < 2; per_row++) {
    int nls = per_row ? R * C : C, np = R * C + nls;
    float mp[R * C], lp[R * C], mq[R * C], lq[R * C], dm[R * C], dls[R * C];
    double mpd[R * C], lpd[R * C], x[2 * R * C], g[2 * R * C];
    rand_fill(mp, R * C, -1, 1);
    rand_fill(lp, R * C, -1, 0.5f);
    rand_fill(mq, R * C, -1, 1);
    rand_fill(lq, nls, -1, 0.5f);
    for (int i = 0; i < R * C; i++) mpd[i] = mp[i], lpd[i] = lp[i], x[i] = mq[i];
    for (int i = 0; i < nls; i++) x[R * C + i] = lq[i];
    kl_ctx c = {R, C, per_row, mpd, lpd};
    for (int i = 0; i < np; i++) {
      double x0 = x[i], h = 1e-6;
      x[i] = x0 + h;
      double fp = kl_loss(x, &c);
      x[i] = x0 - h;
      double fm = kl_loss(x, &c);
      x[i] = x0;
      g[i] = 2.5 * (fp - fm) / (2 * h);  // weight 2.5
    }
    srl_gauss p, q;
    CHECK_OK(srl_dist_init(&p, mp, lp, R, C, 1));
    CHECK_OK(srl_dist_init(&q, mq, lq, R, C, per_row));
    for (int i = 0; i < nls; i++) dls[i] = 1.0f;  // accumulates onto this
    CHECK_OK(srl_dist_kl_backward(dm, dls, &p, &q, 2.5f));
    for (int i = 0; i < R * C; i++) CHECK_CLOSE(dm[i], g[i], 1e-5, 1e-4);
    for (int i = 0; i < nls; i++) CHECK_CLOSE(dls[i], 1.0 + g[R * C + i], 1e-5, 1e-4);
    // at q = p the gradient vanishes
    srl_gauss same;
    CHECK_OK(srl_dist_init(&same, mp, lp, R, C, 1));
    float dm0[R * C];
    memset(dls, 0, sizeof dls);
    CHECK_OK(srl_dist_kl_backward(dm0, dls, &p, &same, 1.0f));
    for (int i = 0; i < R * C; i++) {
      CHECK_CLOSE(dm0[i], 0, 1e-7, 0);
      CHECK_CLOSE(dls[i], 0, 1e-6, 0);
    }
    CHECK_OK(srl_dist_kl_backward(NULL, NULL, &p, &q, 1.0f));
  }
}


TEST(sample_statistics_and_mode) {
  enum { N = 50000, C = 3 };
  float mu[C] = {1.0f, -2.0f, 0.0f}, ls[C] = {0.0f, -1.0f, 0.5f};
  float *mrep = malloc(N * C * sizeof(float)), *a = malloc(N * C * sizeof(float)),
        *b = malloc(N * C * sizeof(float));
  for (int i = 0; i < N; i++) memcpy(mrep + i * C, mu, sizeof mu);
  srl_gauss g;
  CHECK_OK(srl_dist_init(&g, mrep, ls, N, C, 0));
  CHECK_OK(srl_dist_sample(a, &g, rng));
  for (int j = 0; j < C; j++) {
    double s = 0, ss = 0;
    for (int i = 0; i < N; i++) s += a[i * C + j];
    double m = s / N;
    for (int i = 0; i < N; i++) ss += (a[i * C + j] - m) * (a[i * C + j] - m);
    double sd = exp(ls[j]);
    CHECK_CLOSE(m, mu[j], 5 * sd / sqrt(N), 0);
    CHECK_CLOSE(sqrt(ss / (N - 1)), sd, 0.02 * sd, 0);
  }

  // state-dependent std: standardised samples are N(0, 1) whatever each row's σ
  float *lrows = malloc(N * C * sizeof(float));
  rand_fill(lrows, N * C, -2, 1);
  rand_fill(mrep, N * C, -3, 3);
  CHECK_OK(srl_dist_init(&g, mrep, lrows, N, C, 1));
  CHECK_OK(srl_dist_sample(a, &g, rng));
  double s = 0, ss = 0;
  for (int i = 0; i < N * C; i++) {
    double z = (a[i] - mrep[i]) / exp(lrows[i]);
    s += z, ss += z * z;
  }
  CHECK_CLOSE(s / (N * C), 0, 0.01, 0);
  CHECK_CLOSE(sqrt(ss / (N * C)), 1, 0.01, 0);

  // same stream state, same actions
  srl_rng *r1, *r2;
  CHECK_OK(srl_rng_create(&r1, 5, 2));
  CHECK_OK(srl_rng_create(&r2, 5, 2));
  CHECK_OK(srl_dist_sample(a, &g, r1));
  CHECK_OK(srl_dist_sample(b, &g, r2));
  CHECK(memcmp(a, b, N * C * sizeof(float)) == 0);
  srl_rng_destroy(r1);
  srl_rng_destroy(r2);

  // the deterministic action is the mean
  CHECK_OK(srl_dist_mode(a, &g));
  CHECK(memcmp(a, mrep, N * C * sizeof(float)) == 0);
  free(mrep), free(a), free(b), free(lrows);
}


TEST(set_std) {
  float ls[4];
  CHECK_OK(srl_dist_set_std(ls, 4, 0.5f));
  for (int j = 0; j < 4; j++) CHECK_CLOSE(ls[j], log(0.5), 1e-7, 0);
  CHECK_OK(srl_dist_set_std(ls, 4, 1.0f));
  for (int j = 0; j < 4; j++) CHECK(ls[j] == 0.0f);
  CHECK_ERR(srl_dist_set_std(ls, 4, 0.0f), SRL_ERANGE);
  CHECK_ERR(srl_dist_set_std(ls, 4, -1.0f), SRL_ERANGE);
  CHECK_ERR(srl_dist_set_std(ls, 4, NAN), SRL_ERANGE);
  CHECK_ERR(srl_dist_set_std(ls, 4, INFINITY), SRL_ERANGE);
  CHECK_ERR(srl_dist_set_std(NULL, 4, 1.0f), SRL_EINVAL);
  CHECK_ERR(srl_dist_set_std(ls, 0, 1.0f), SRL_EINVAL);
}


TEST(tanh_squash) {
  enum { R = 3, C = 4 };
  float u[R * C] = {0.1f, -0.5f, 1.0f, 2.0f, -3.0f, 0.0f, 0.7f, -1.2f, 9.0f, -12.0f, 20.0f, 0.3f};
  float logp[R] = {-1.0f, -2.0f, -3.0f}, act[R * C];
  double want_lp[R];
  for (int i = 0; i < R; i++) {
    double corr = 0;
    for (int j = 0; j < C; j++) {
      double x = u[i * C + j];
      // 1 − tanh² = sech² = 4/(eˣ + e⁻ˣ)², fine in double for |x| ≤ 20
      corr += log(4.0 / ((exp(x) + exp(-x)) * (exp(x) + exp(-x))));
    }
    want_lp[i] = logp[i] - corr;
  }
  CHECK_OK(srl_dist_tanh_squash(act, logp, u, R, C));
  for (int i = 0; i < R * C; i++) CHECK_CLOSE(act[i], tanh(u[i]), 1e-7, 1e-6);
  for (int i = 0; i < R; i++) CHECK_CLOSE(logp[i], want_lp[i], 1e-5, 1e-6);
  // in place, without logp
  CHECK_OK(srl_dist_tanh_squash(u, NULL, u, R, C));
  CHECK(memcmp(u, act, sizeof act) == 0);
  CHECK_ERR(srl_dist_tanh_squash(NULL, NULL, u, R, C), SRL_EINVAL);
  CHECK_ERR(srl_dist_tanh_squash(act, NULL, u, R, 0), SRL_EINVAL);

  // the squashed density integrates to one over (−1, 1): check ∫ p(a) da by the midpoint rule
  float mu = 0.4f, ls = -0.3f;
  double integral = 0;
  int K = 20000;
  for (int k = 0; k < K; k++) {
    double av = -1 + (k + 0.5) * 2.0 / K;
    float uu = (float)atanh(av), lp1, a1;
    srl_gauss g;
    CHECK_OK(srl_dist_init(&g, &mu, &ls, 1, 1, 0));
    CHECK_OK(srl_dist_logprob(&lp1, &uu, &g));
    CHECK_OK(srl_dist_tanh_squash(&a1, &lp1, &uu, 1, 1));
    integral += exp(lp1) * 2.0 / K;
  }
  CHECK_CLOSE(integral, 1.0, 2e-3, 0);
}


int main(void) {
  if (srl_rng_create(&rng, 77, 0) != 0) return 1;
  RUN(init_validates);
  RUN(logprob_closed_form);
  RUN(entropy_closed_form);
  RUN(kl_closed_form_and_zero);
  RUN(kl_monte_carlo);
  RUN(kl_backward_finite_differences);
  RUN(sample_statistics_and_mode);
  RUN(set_std);
  RUN(tanh_squash);
  srl_rng_destroy(rng);
  return TEST_REPORT();
}
