// dist.c: diagonal Gaussian policy head on host arrays: sample, mode, log-prob, entropy, KL.
#include "core/dist.h"

#include <math.h>
#include <string.h>

#include "core/error.h"

#define HALF_LOG_2PI 0.91893853320467274178


//---- descriptors ------------------------------------------------------------------------------

int srl_dist_init(srl_gauss *g, const float *mean, const float *log_std, int rows, int cols,
                  int log_std_per_row) {
  if (!g) return srl_error(SRL_EINVAL, "gaussian: descriptor is NULL");
  g->mean = mean;
  g->log_std = log_std;
  g->rows = rows;
  g->cols = cols;
  g->log_std_per_row = log_std_per_row ? 1 : 0;
  if (!mean || !log_std) return srl_error(SRL_EINVAL, "gaussian: mean or log_std is NULL");
  if (rows < 0 || cols < 1)
    return srl_error(SRL_EINVAL, "gaussian: shape %d×%d (need rows ≥ 0, cols ≥ 1)", rows, cols);
  return SRL_OK;
}


static int check(const srl_gauss *g, const char *what) {
  if (!g || !g->mean || !g->log_std)
    return srl_error(SRL_EINVAL, "%s: gaussian or its arrays are NULL", what);
  if (g->rows < 0 || g->cols < 1)
    return srl_error(SRL_EINVAL, "%s: gaussian shape %d×%d (need rows ≥ 0, cols ≥ 1)", what,
                     g->rows, g->cols);
  return SRL_OK;
}


// log_std of row r (cols values), whichever the layout
static inline const float *row_log_std(const srl_gauss *g, int r) {
  return g->log_std + (g->log_std_per_row ? (size_t)r * g->cols : 0);
}


//---- acting -----------------------------------------------------------------------------------

int srl_dist_sample(float *action, const srl_gauss *g, srl_rng *rng) {
  SRL_TRY(check(g, "dist_sample"));
  if (!action || !rng) return srl_error(SRL_EINVAL, "dist_sample: action or rng is NULL");
  for (int r = 0; r < g->rows; r++) {
    const float *mu = g->mean + (size_t)r * g->cols, *ls = row_log_std(g, r);
    float *a = action + (size_t)r * g->cols;
    for (int j = 0; j < g->cols; j++) a[j] = mu[j] + expf(ls[j]) * (float)srl_rng_normal(rng);
  }
  return SRL_OK;
}


int srl_dist_mode(float *action, const srl_gauss *g) {
  SRL_TRY(check(g, "dist_mode"));
  if (!action) return srl_error(SRL_EINVAL, "dist_mode: action is NULL");
  size_t n = (size_t)g->rows * g->cols;
  if (n && action != g->mean) memmove(action, g->mean, n * sizeof *action);
  return SRL_OK;
}


//---- densities --------------------------------------------------------------------------------

int srl_dist_logprob(float *logp, const float *action, const srl_gauss *g) {
  SRL_TRY(check(g, "dist_logprob"));
  if (!logp || !action) return srl_error(SRL_EINVAL, "dist_logprob: logp or action is NULL");
  for (int r = 0; r < g->rows; r++) {
    const float *mu = g->mean + (size_t)r * g->cols, *ls = row_log_std(g, r);
    const float *a = action + (size_t)r * g->cols;
    double s = 0;
    for (int j = 0; j < g->cols; j++) {
      double z = ((double)a[j] - mu[j]) * exp(-(double)ls[j]);
      s += -0.5 * z * z - ls[j] - HALF_LOG_2PI;
    }
    logp[r] = (float)s;
  }
  return SRL_OK;
}


int srl_dist_entropy(float *entropy, float *mean_out, const srl_gauss *g) {
  SRL_TRY(check(g, "dist_entropy"));
  double total = 0;
  for (int r = 0; r < g->rows; r++) {
    const float *ls = row_log_std(g, r);
    double s = 0;
    for (int j = 0; j < g->cols; j++) s += ls[j] + 0.5 + HALF_LOG_2PI;
    if (entropy) entropy[r] = (float)s;
    total += s;
  }
  if (mean_out) *mean_out = g->rows ? (float)(total / g->rows) : 0.0f;
  return SRL_OK;
}


//---- divergence -------------------------------------------------------------------------------

static int check_pair(const srl_gauss *p, const srl_gauss *q, const char *what) {
  SRL_TRY(check(p, what));
  SRL_TRY(check(q, what));
  if (p->rows != q->rows || p->cols != q->cols)
    return srl_error(SRL_EINVAL, "%s: shapes differ (%d×%d vs %d×%d)", what, p->rows, p->cols,
                     q->rows, q->cols);
  return SRL_OK;
}


int srl_dist_kl(float *kl, float *mean_out, const srl_gauss *p, const srl_gauss *q) {
  SRL_TRY(check_pair(p, q, "dist_kl"));
  double total = 0;
  for (int r = 0; r < p->rows; r++) {
    const float *mp = p->mean + (size_t)r * p->cols, *mq = q->mean + (size_t)r * q->cols;
    const float *lp = row_log_std(p, r), *lq = row_log_std(q, r);
    double s = 0;
    for (int j = 0; j < p->cols; j++) {
      double d = (double)mp[j] - mq[j];
      double var_ratio = exp(2.0 * ((double)lp[j] - lq[j]));  // σp²/σq²
      s += (double)lq[j] - lp[j] + 0.5 * (var_ratio + d * d * exp(-2.0 * lq[j])) - 0.5;
    }
    if (kl) kl[r] = (float)s;
    total += s;
  }
  if (mean_out) *mean_out = p->rows ? (float)(total / p->rows) : 0.0f;
  return SRL_OK;
}


int srl_dist_kl_backward(float *dmean_q, float *dlog_std_q, const srl_gauss *p, const srl_gauss *q,
                         float weight) {
  SRL_TRY(check_pair(p, q, "dist_kl_backward"));
  if (p->rows == 0) return SRL_OK;
  double w = (double)weight / p->rows;
  for (int r = 0; r < p->rows; r++) {
    const float *mp = p->mean + (size_t)r * p->cols, *mq = q->mean + (size_t)r * q->cols;
    const float *lp = row_log_std(p, r), *lq = row_log_std(q, r);
    float *dls = dlog_std_q ? dlog_std_q + (q->log_std_per_row ? (size_t)r * q->cols : 0) : NULL;
    for (int j = 0; j < p->cols; j++) {
      double d = (double)mq[j] - mp[j], inv_var_q = exp(-2.0 * lq[j]);
      if (dmean_q) dmean_q[(size_t)r * q->cols + j] = (float)(w * d * inv_var_q);
      if (dls) dls[j] += (float)(w * (1.0 - (exp(2.0 * lp[j]) + d * d) * inv_var_q));
    }
  }
  return SRL_OK;
}


//---- helpers ----------------------------------------------------------------------------------

int srl_dist_set_std(float *log_std, int cols, float std) {
  if (!log_std || cols < 1) return srl_error(SRL_EINVAL, "dist_set_std: no log_std to set");
  if (!(std > 0) || !isfinite(std))
    return srl_error(SRL_ERANGE, "dist_set_std: std must be positive and finite, got %g",
                     (double)std);
  float v = logf(std);
  for (int j = 0; j < cols; j++) log_std[j] = v;
  return SRL_OK;
}


int srl_dist_tanh_squash(float *action, float *logp, const float *u, int rows, int cols) {
  if (!action || !u) return srl_error(SRL_EINVAL, "dist_tanh_squash: action or u is NULL");
  if (rows < 0 || cols < 1)
    return srl_error(SRL_EINVAL, "dist_tanh_squash: shape %d×%d", rows, cols);
  for (int r = 0; r < rows; r++) {
    const float *ur = u + (size_t)r * cols;
    float *ar = action + (size_t)r * cols;
    double corr = 0;
    for (int j = 0; j < cols; j++) {
      // log(1 − tanh²u) = 2(log 2 − u − softplus(−2u)), exact where tanh²u rounds to 1
      double x = ur[j], m = -2.0 * x;
      double softplus = m > 0 ? m + log1p(exp(-m)) : log1p(exp(m));
      corr += 2.0 * (M_LN2 - x - softplus);
      ar[j] = tanhf(ur[j]);
    }
    if (logp) logp[r] = (float)(logp[r] - corr);
  }
  return SRL_OK;
}
