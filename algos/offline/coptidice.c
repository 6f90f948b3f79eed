// coptidice.c: COptiDICE as OSRL's (after deepmind/constrained_optidice): the f-divergences, the
// stationary-distribution correction w from the ν network, the cost upper bound through the χ
// network and τ, the multiplier λ, the weighted-likelihood policy extraction, checkpoints, and
// the offline table entry with its config fields.
#include <math.h>
#include <string.h>

#include "algos/offline/baselines.h"
#include "core/alloc.h"
#include "core/error.h"

//---- parameters ----------------------------------------------------------------------------------

#define P srl_coptidice_params
// clang-format off
const srl_cfg_field srl_coptidice_fields[] = {
  SRL_CFG_INT_LIST(P, actor_hidden, n_actor_hidden, "actor_hidden", "[256, 256]", 1, 65536,
                   "hidden widths of the Gaussian actor (ReLU)"),
  SRL_CFG_INT_LIST(P, critic_hidden, n_critic_hidden, "critic_hidden", "[256, 256]", 1, 65536,
                   "hidden widths of the nu and chi networks (ReLU)"),
  SRL_CFG_FLOAT(P, alpha, "alpha", "0.5", 1e-9, 1e9, "weight of the f-divergence"),
  SRL_CFG_FLOAT(P, cost_ub_epsilon, "cost_ub_epsilon", "0.01", 0, 1e9,
                "KL radius of the cost upper bound (0: the plain weighted cost, no chi)"),
  SRL_CFG_CHOICE(P, f_type, "f_type", "softchi", "softchi|chi2|kl", "the f-divergence"),
  SRL_CFG_INT(P, num_nu, "num_nu", "2", 1, SRL_BL_MAX_Q, "nu networks (value: their minimum)"),
  SRL_CFG_INT(P, num_chi, "num_chi", "2", 1, SRL_BL_MAX_Q, "chi networks (value: their minimum)"),
  SRL_CFG_FLOAT(P, noise, "noise", "0.1", 0, 1e3,
                "policy extraction noise, in data standard deviations, on observations and "
                "actions"),
  SRL_CFG_FLOAT(P, actor_lr, "actor_lr", "1e-4", 0, 1, "Adam learning rate of the actor"),
  SRL_CFG_FLOAT(P, critic_lr, "critic_lr", "1e-4", 0, 1, "Adam learning rate of nu and chi"),
  SRL_CFG_FLOAT(P, scalar_lr, "scalar_lr", "1e-4", 0, 1, "Adam learning rate of lambda and tau"),
};
// clang-format on
#undef P
#define N_FIELDS ((int)(sizeof srl_coptidice_fields / sizeof *srl_coptidice_fields))
const int srl_coptidice_n_fields = N_FIELDS;

int srl_coptidice_params_default(srl_coptidice_params *p) {
  static const srl_cfg_schema schema = {"coptidice", srl_coptidice_fields, N_FIELDS};
  memset(p, 0, sizeof *p);
  return srl_config_defaults(&schema, p);
}


//---- f-divergences -------------------------------------------------------------------------------

int srl_fdiv_from_name(const char *name) {
  if (!name) return -1;
  if (!strcmp(name, "softchi")) return SRL_FDIV_SOFTCHI;
  if (!strcmp(name, "chi2")) return SRL_FDIV_CHI2;
  if (!strcmp(name, "kl")) return SRL_FDIV_KL;
  return -1;
}


double srl_fdiv_f(srl_fdiv kind, double x) {
  switch (kind) {
    case SRL_FDIV_SOFTCHI:
      return x < 1.0 ? x * (log(x + 1e-10) - 1.0) + 1.0 : 0.5 * (x - 1.0) * (x - 1.0);
    case SRL_FDIV_CHI2:
      return 0.5 * (x - 1.0) * (x - 1.0);
    case SRL_FDIV_KL:
      return x * log(x + 1e-10);
  }
  return NAN;
}


double srl_fdiv_f_prime(srl_fdiv kind, double x) {
  switch (kind) {
    case SRL_FDIV_SOFTCHI:
      return x < 1.0 ? log(x + 1e-10) - 1.0 + x / (x + 1e-10) : x - 1.0;
    case SRL_FDIV_CHI2:
      return x - 1.0;
    case SRL_FDIV_KL:
      return log(x + 1e-10) + x / (x + 1e-10);
  }
  return NAN;
}


double srl_fdiv_f_prime_inv(srl_fdiv kind, double y) {
  switch (kind) {
    case SRL_FDIV_SOFTCHI:
      return y < 0.0 ? exp(y) : y + 1.0;
    case SRL_FDIV_CHI2:
      return y + 1.0;
    case SRL_FDIV_KL:
      return exp(y - 1.0);
  }
  return NAN;
}


double srl_fdiv_f_prime_inv_deriv(srl_fdiv kind, double y) {
  switch (kind) {
    case SRL_FDIV_SOFTCHI:
      return y < 0.0 ? exp(y) : 1.0;
    case SRL_FDIV_CHI2:
      return 1.0;
    case SRL_FDIV_KL:
      return exp(y - 1.0);
  }
  return NAN;
}


//---- pure pieces ---------------------------------------------------------------------------------

void srl_coptidice_residual(float *e, const float *r, const float *c, const float *done,
                            const float *nu, const float *nu_next, int n, double lambda,
                            double gamma) {
  float l = (float)lambda, g = (float)gamma;
  for (int i = 0; i < n; i++) e[i] = r[i] - l * c[i] + g * (1.0f - done[i]) * nu_next[i] - nu[i];
}


void srl_coptidice_w(float *w, float *dw, const float *e, int n, double alpha, srl_fdiv kind) {
  for (int i = 0; i < n; i++) {
    double y = (double)e[i] / alpha, v = srl_fdiv_f_prime_inv(kind, y);
    w[i] = v > 0.0 ? (float)v : 0.0f;  // relu
    if (dw) dw[i] = v > 0.0 ? (float)(srl_fdiv_f_prime_inv_deriv(kind, y) / alpha) : 0.0f;
  }
}


double srl_coptidice_nu_loss(float *dnu, float *dnu_next, float *dnu_init, const float *e,
                             const float *done, const float *nu_init, int n, double alpha,
                             double gamma, srl_fdiv kind) {
  double init = 0, body = 0;
  for (int i = 0; i < n; i++) {
    double y = (double)e[i] / alpha, v = srl_fdiv_f_prime_inv(kind, y);
    double w = v > 0.0 ? v : 0.0, dw = v > 0.0 ? srl_fdiv_f_prime_inv_deriv(kind, y) / alpha : 0.0;
    init += nu_init[i];
    body += w * e[i] - alpha * srl_fdiv_f(kind, w);
    // ∂/∂e (w·e − α·f(w)) = w + w'·(e − α·f'(w))
    double de = (w + dw * ((double)e[i] - alpha * srl_fdiv_f_prime(kind, w))) / n;
    if (dnu) dnu[i] = (float)-de;
    if (dnu_next) dnu_next[i] = (float)(gamma * (1.0 - done[i]) * de);
    if (dnu_init) dnu_init[i] = (float)((1.0 - gamma) / n);
  }
  return (1.0 - gamma) * init / n + body / n;
}


void srl_coptidice_chi_loss(srl_coptidice_chi_out *out, float *dchi, float *dchi_next,
                            float *dchi_init, const float *chi, const float *chi_next,
                            const float *chi_init, const float *w, const float *c,
                            const float *done, int n, double gamma, double tau) {
  // ℓ and a stable softmax of ℓ/τ over the batch
  double mx = -INFINITY, z = 0;
  for (int i = 0; i < n; i++) {
    double ell = (1.0 - gamma) * chi_init[i] +
                 (double)w[i] * (c[i] + gamma * (1.0 - done[i]) * chi_next[i] - chi[i]);
    if (ell / tau > mx || isnan(ell)) mx = ell / tau;
  }
  for (int i = 0; i < n; i++) {
    double ell = (1.0 - gamma) * chi_init[i] +
                 (double)w[i] * (c[i] + gamma * (1.0 - done[i]) * chi_next[i] - chi[i]);
    z += exp(ell / tau - mx);
  }
  double lz = mx + log(z), loss = 0, dkl = 0, wc = 0, avg = 0;
  for (int i = 0; i < n; i++) {
    double ell = (1.0 - gamma) * chi_init[i] +
                 (double)w[i] * (c[i] + gamma * (1.0 - done[i]) * chi_next[i] - chi[i]);
    double logp = ell / tau - lz, p = exp(logp), wt = n * p, lw = logp + log((double)n);
    loss += p * ell;
    dkl += wt * lw - wt + 1.0;
    wc += wt * w[i] * c[i];
    avg += p * ell;
  }
  out->loss = loss, out->d_kl = dkl / n, out->weighted_c = wc / n;
  // ∂(Σ p·ℓ)/∂ℓ_i = p_i·(1 + (ℓ_i − Σ p·ℓ)/τ)
  for (int i = 0; i < n; i++) {
    double ell = (1.0 - gamma) * chi_init[i] +
                 (double)w[i] * (c[i] + gamma * (1.0 - done[i]) * chi_next[i] - chi[i]);
    double p = exp(ell / tau - lz), g = p * (1.0 + (ell - avg) / tau);
    if (dchi_init) dchi_init[i] = (float)((1.0 - gamma) * g);
    if (dchi_next) dchi_next[i] = (float)(g * w[i] * gamma * (1.0 - done[i]));
    if (dchi) dchi[i] = (float)(-g * w[i]);
  }
}


static double softplus(double x) {
  return x > 20.0 ? x : log1p(exp(x));
}
static double sigmoid(double x) {
  return 1.0 / (1.0 + exp(-x));
}


double srl_coptidice_lambda_loss(double *grad, double param, double qc_thres, double weighted_c) {
  if (grad) *grad = sigmoid(param) * (qc_thres - weighted_c);
  return softplus(param) * (qc_thres - weighted_c);
}


double srl_coptidice_policy_loss(float *dout, const float *out, const float *x, const float *w,
                                 int n, int A) {
  const double half_log_2pi = 0.91893853320467274178;  // ½·log 2π
  double loss = 0;
  for (int i = 0; i < n; i++) {
    const float *mu = out + (size_t)i * 2 * A, *raw = mu + A;
    double lp = 0;
    for (int j = 0; j < A; j++) {
      double ls = raw[j] < -20.0f ? -20.0 : raw[j] > 2.0f ? 2.0 : raw[j];
      double var = exp(2.0 * ls), d = (double)x[(size_t)i * A + j] - mu[j];
      lp += -d * d / (2.0 * var) - ls - half_log_2pi;
      if (!dout) continue;
      double k = -(double)w[i] / n;
      dout[(size_t)i * 2 * A + j] = (float)(k * d / var);
      int inside = raw[j] >= -20.0f && raw[j] <= 2.0f;
      dout[(size_t)i * 2 * A + A + j] = inside ? (float)(k * (d * d / var - 1.0)) : 0.0f;
    }
    loss -= (double)w[i] * lp;
  }
  return loss / n;
}


//---- the agent -----------------------------------------------------------------------------------

struct srl_coptidice {
  const srl_ops *ops;
  srl_coptidice_params p;
  srl_fdiv f;
  int O, A, B, max_act, rows;  // rows: the actor's batch, max(B, max_act); ν and χ take 3B
  double gamma, thr;
  srl_mlp *actor;  // O → hidden → 2A: [μ, raw log σ]
  srl_optim *opt_actor;
  srl__qset nu, chi;
  srl__scalar_adam lam, tau;  // raw parameters of λ = softplus(·) and τ = softplus(·)
  double *moments;            // (1 + 2(O + A)) count, means, M2 of observations then actions
  srl_rng *rng;               // the extraction noise
  int64_t steps;
  float scalars[6];     // checkpoint image of lam and tau: p, m, v each
  int64_t scalar_t[2];  // and their Adam steps
  srl__ckpt ck;

  // device scratch
  float *d_x3;  // (3B, O) [s; s'; s0]
  float *d_dy;  // (3B) network output gradients
  float *d_x;   // (rows, O) actor input
  float *d_g;   // (rows, 2A) actor output gradient
  // host scratch
  float *h_x3;               // (3B, O)
  float *h_v[SRL_BL_MAX_Q];  // (3B) network outputs
  float *h_nu, *h_chi;       // (3B) minima: rows of s, then s', then s0
  int *h_inu, *h_ichi;       // (3B) argmins
  float *h_g3, *h_dq;        // (3B) gradients of the minima, of one network
  float *h_e, *h_w;          // (B)
  float *h_xs, *h_xa;        // (B, O), (B, A) noisy observations and actions
  float *h_out, *h_gout;     // (rows, 2A)
  void *dev, *host;
};


static int check(const srl_offline_setup *s, const srl_coptidice_params *p) {
  if (!s->ops) return srl_error(SRL_EINVAL, "coptidice: no op table in the setup");
  if (s->obs_dim < 1 || s->act_dim < 1 || s->batch_size < 1 || s->max_act_batch < 1)
    return srl_error(SRL_EINVAL,
                     "coptidice: obs_dim %d, act_dim %d, batch_size %d, max_act_batch %d must be "
                     "≥ 1",
                     s->obs_dim, s->act_dim, s->batch_size, s->max_act_batch);
  if (p->n_actor_hidden < 1 || p->n_actor_hidden > SRL_BL_MAX_HIDDEN || p->n_critic_hidden < 1 ||
      p->n_critic_hidden > SRL_BL_MAX_HIDDEN)
    return srl_error(SRL_EINVAL, "coptidice: %d actor and %d critic layers, expected 1 to %d",
                     p->n_actor_hidden, p->n_critic_hidden, SRL_BL_MAX_HIDDEN);
  if (p->num_nu < 1 || p->num_nu > SRL_BL_MAX_Q || p->num_chi < 1 || p->num_chi > SRL_BL_MAX_Q)
    return srl_error(SRL_EINVAL, "coptidice: num_nu %d and num_chi %d must lie in [1, %d]",
                     p->num_nu, p->num_chi, SRL_BL_MAX_Q);
  if (srl_fdiv_from_name(p->f_type) < 0)
    return srl_error(SRL_EINVAL, "coptidice: unknown f_type '%s' (softchi, chi2, kl)", p->f_type);
  if (!(p->alpha > 0) || !isfinite(p->alpha))
    return srl_error(SRL_EINVAL, "coptidice: alpha %g must be finite and > 0", p->alpha);
  if (s->batch_size > (1 << 24))
    return srl_error(SRL_EINVAL, "coptidice: batch_size %d is too large", s->batch_size);
  const double v[] = {p->cost_ub_epsilon, p->noise,     p->actor_lr,
                      p->critic_lr,       p->scalar_lr, s->gamma};
  for (size_t i = 0; i < sizeof v / sizeof *v; i++)
    if (!(v[i] >= 0) || !isfinite(v[i]))
      return srl_error(SRL_EINVAL,
                       "coptidice: epsilon, noise, rates and gamma must be finite and "
                       "≥ 0 (got %g)",
                       v[i]);
  return SRL_OK;
}


static int alloc_scratch(srl_coptidice *c) {
  const srl_ops *ops = c->ops;
  size_t f = sizeof(float), r = (size_t)c->rows, O = (size_t)c->O, A = (size_t)c->A;
  size_t B = (size_t)c->B, B3 = 3 * B;
  size_t total = 0;
  size_t o_x3 = srl_layout_add(&total, B3 * O * f), o_dy = srl_layout_add(&total, B3 * f);
  size_t o_x = srl_layout_add(&total, r * O * f), o_g = srl_layout_add(&total, r * 2 * A * f);
  if (!(c->dev = ops->alloc(total))) return SRL_ENOMEM;
  char *d = c->dev;
  c->d_x3 = (float *)(d + o_x3), c->d_dy = (float *)(d + o_dy);
  c->d_x = (float *)(d + o_x), c->d_g = (float *)(d + o_g);

  total = 0;
  size_t h_x3 = srl_layout_add(&total, B3 * O * f), h_v[SRL_BL_MAX_Q];
  for (int k = 0; k < SRL_BL_MAX_Q; k++) h_v[k] = srl_layout_add(&total, B3 * f);
  size_t h_nu = srl_layout_add(&total, B3 * f), h_chi = srl_layout_add(&total, B3 * f);
  size_t h_inu = srl_layout_add(&total, B3 * sizeof(int));
  size_t h_ichi = srl_layout_add(&total, B3 * sizeof(int));
  size_t h_g3 = srl_layout_add(&total, B3 * f), h_dq = srl_layout_add(&total, B3 * f);
  size_t h_e = srl_layout_add(&total, B * f), h_w = srl_layout_add(&total, B * f);
  size_t h_xs = srl_layout_add(&total, B * O * f), h_xa = srl_layout_add(&total, B * A * f);
  size_t h_out = srl_layout_add(&total, r * 2 * A * f),
         h_gout = srl_layout_add(&total, r * 2 * A * f);
  size_t h_mom = srl_layout_add(&total, (1 + 2 * (O + A)) * sizeof(double));
  if (!(c->host = srl_calloc(total))) return SRL_ENOMEM;
  char *h = c->host;
  c->h_x3 = (float *)(h + h_x3);
  for (int k = 0; k < SRL_BL_MAX_Q; k++) c->h_v[k] = (float *)(h + h_v[k]);
  c->h_nu = (float *)(h + h_nu), c->h_chi = (float *)(h + h_chi);
  c->h_inu = (int *)(h + h_inu), c->h_ichi = (int *)(h + h_ichi);
  c->h_g3 = (float *)(h + h_g3), c->h_dq = (float *)(h + h_dq);
  c->h_e = (float *)(h + h_e), c->h_w = (float *)(h + h_w);
  c->h_xs = (float *)(h + h_xs), c->h_xa = (float *)(h + h_xa);
  c->h_out = (float *)(h + h_out), c->h_gout = (float *)(h + h_gout);
  c->moments = (double *)(h + h_mom);
  return SRL_OK;
}


static int register_ckpt(srl_coptidice *c) {
  static const char *nn[] = {"nu.0", "nu.1", "nu.2", "nu.3", "nu.4", "nu.5", "nu.6", "nu.7"};
  static const char *cn[] = {"chi.0", "chi.1", "chi.2", "chi.3",
                             "chi.4", "chi.5", "chi.6", "chi.7"};
  srl__ckpt *ck = &c->ck;
  srl__ckpt_init(ck, c->ops, "coptidice checkpoint");
  SRL_TRY(srl__ckpt_net(ck, "actor", c->actor, c->opt_actor));
  for (int k = 0; k < c->nu.n; k++) SRL_TRY(srl__ckpt_net(ck, nn[k], c->nu.net[k], c->nu.opt[k]));
  for (int k = 0; k < c->chi.n; k++)
    SRL_TRY(srl__ckpt_net(ck, cn[k], c->chi.net[k], c->chi.opt[k]));
  SRL_TRY(srl__ckpt_array(ck, "lagrange.state", SRL_DTYPE_F32, c->scalars, 6));
  SRL_TRY(srl__ckpt_array(ck, "lagrange.steps", SRL_DTYPE_I64, c->scalar_t, 2));
  int64_t mb = (int64_t)((1 + 2 * (c->O + c->A)) * sizeof(double));
  SRL_TRY(srl__ckpt_array(ck, "coptidice.moments", SRL_DTYPE_U8, c->moments, mb));
  SRL_TRY(srl__ckpt_array(ck, "coptidice.steps", SRL_DTYPE_I64, &c->steps, 1));
  SRL_TRY(srl__ckpt_rng(ck, "coptidice.rng", c->rng));
  return srl__ckpt_ready(ck);
}


int srl_coptidice_create(srl_coptidice **out, const srl_offline_setup *s,
                         const srl_coptidice_params *p) {
  if (!out) return srl_error(SRL_EINVAL, "coptidice: NULL output handle");
  *out = NULL;
  if (!s || !p) return srl_error(SRL_EINVAL, "coptidice: NULL setup or parameters");
  SRL_TRY(check(s, p));
  srl_coptidice *c = srl_calloc(sizeof *c);
  if (!c) return SRL_ENOMEM;
  c->ops = s->ops, c->p = *p;
  c->f = (srl_fdiv)srl_fdiv_from_name(p->f_type);
  c->O = s->obs_dim, c->A = s->act_dim, c->B = s->batch_size, c->max_act = s->max_act_batch;
  c->rows = c->B > c->max_act ? c->B : c->max_act;
  c->gamma = s->gamma;
  c->thr = srl_baselines_qc_threshold(s->cost_limit, s->gamma, s->episode_len);
  c->lam.p = c->tau.p = 1.0f;  // torch.ones(1)

  srl_rng *init = NULL;
  int rc = srl_rng_create(&init, s->seed, 1);
  if (rc == 0) rc = srl_rng_create(&c->rng, s->seed, 2);
  if (rc == 0)
    rc = srl__bl_mlp(&c->actor, c->ops, c->O, p->n_actor_hidden, p->actor_hidden, 2 * c->A,
                     SRL_ACT_RELU, SRL_ACT_IDENTITY, c->rows, init);
  if (rc == 0)
    rc = srl__qset_create(&c->nu, c->ops, p->num_nu, c->O, p->n_critic_hidden, p->critic_hidden,
                          3 * c->B, p->critic_lr, 0, init);
  if (rc == 0)
    rc = srl__qset_create(&c->chi, c->ops, p->num_chi, c->O, p->n_critic_hidden, p->critic_hidden,
                          3 * c->B, p->critic_lr, 0, init);
  srl_rng_destroy(init);
  srl_optim_config oa = srl_optim_config_default(SRL_OPTIM_ADAM, (float)p->actor_lr);
  if (rc == 0) rc = srl_optim_create(&c->opt_actor, c->ops, c->actor->n_params, &oa);
  if (rc == 0) rc = alloc_scratch(c);
  if (rc == 0) rc = register_ckpt(c);
  if (rc < 0) {
    srl_coptidice_destroy(c);
    return rc;
  }
  *out = c;
  return SRL_OK;
}


void srl_coptidice_destroy(srl_coptidice *c) {
  if (!c) return;
  srl_mlp_destroy(c->actor);
  srl_optim_destroy(c->opt_actor);
  srl__qset_free(&c->nu);
  srl__qset_free(&c->chi);
  srl_rng_destroy(c->rng);
  if (c->dev) c->ops->free(c->dev);
  srl_free(c->host);
  srl__ckpt_free(&c->ck);
  srl_free(c);
}


double srl_coptidice_lambda(const srl_coptidice *c) {
  return softplus(c->lam.p);
}


//---- the update ----------------------------------------------------------------------------------

// merge a batch (rows × dim, columns from col) into the moments (Chan et al.)
static void merge_moments(double *mom, int D, int col, const float *x, int rows, int dim) {
  double na = mom[0], nb = rows, n = na + nb;
  double *mean = mom + 1, *m2 = mom + 1 + D;
  for (int j = 0; j < dim; j++) {
    double s = 0, ss = 0;
    for (int i = 0; i < rows; i++) s += x[(size_t)i * dim + j];
    double mb = s / rows;
    for (int i = 0; i < rows; i++) {
      double d = x[(size_t)i * dim + j] - mb;
      ss += d * d;
    }
    double delta = mb - mean[col + j];
    mean[col + j] += delta * nb / n;
    m2[col + j] += ss + delta * delta * na * nb / n;
  }
}


static float moment_std(const double *mom, int D, int k) {
  return mom[0] > 0 ? (float)sqrt(mom[1 + D + k] / mom[0]) : 0.0f;
}


static int check_batch(const srl_coptidice *c, const srl_offline_batch *b) {
  if (!b || !b->obs || !b->act || !b->reward || !b->cost || !b->next_obs || !b->done ||
      !b->init_obs)
    return srl_error(SRL_EINVAL,
                     "coptidice update: batch lacks obs, act, reward, cost, next_obs, "
                     "done or init_obs");
  if (b->n != c->B)
    return srl_error(SRL_EINVAL, "coptidice update: batch of %d rows, created for %d", b->n, c->B);
  return SRL_OK;
}


// forward a set on the first n rows of d_x3: minima and argmins into out, idx
static int set_eval(srl_coptidice *c, srl__qset *q, float *out, int *idx, int n) {
  SRL_TRY(srl__qset_eval(q, 0, 0, q->n, c->d_x3, n, c->h_v));
  srl__min_rows(out, idx, c->h_v, q->n, n);
  return SRL_OK;
}


// gradients h_g3 (3B) of the minima back through each row's argmin network, then Adam steps
static int set_step(srl_coptidice *c, srl__qset *q, const int *idx) {
  int n = 3 * c->B;
  for (int k = 0; k < q->n; k++) {
    srl_mlp *net = q->net[k];
    for (int i = 0; i < n; i++) c->h_dq[i] = idx[i] == k ? c->h_g3[i] : 0.0f;
    srl_mlp_zero_grad(net);
    SRL_TRY(c->ops->upload(c->d_dy, c->h_dq, (size_t)n * sizeof(float)));
    SRL_TRY(srl_mlp_backward(net, NULL, c->d_dy));
  }
  for (int k = 0; k < q->n; k++)
    SRL_TRY(srl_optim_step(q->opt[k], q->net[k]->params, q->net[k]->grads, (float)c->p.critic_lr));
  return SRL_OK;
}


int srl_coptidice_update(srl_coptidice *c, const srl_offline_batch *b, srl_offline_stats *st) {
  if (st) st->n = 0;
  SRL_TRY(check_batch(c, b));
  int B = c->B, O = c->O, A = c->A, D = O + A;
  double gamma = c->gamma, alpha = c->p.alpha;
  merge_moments(c->moments, D, 0, b->obs, B, O);
  merge_moments(c->moments, D, O, b->act, B, A);
  c->moments[0] += B;
  double lam = softplus(c->lam.p), tau = softplus(c->tau.p);

  // ν on [s; s'; s0], e and w
  memcpy(c->h_x3, b->obs, (size_t)B * O * sizeof(float));
  memcpy(c->h_x3 + (size_t)B * O, b->next_obs, (size_t)B * O * sizeof(float));
  memcpy(c->h_x3 + (size_t)2 * B * O, b->init_obs, (size_t)B * O * sizeof(float));
  SRL_TRY(c->ops->upload(c->d_x3, c->h_x3, (size_t)3 * B * O * sizeof(float)));
  SRL_TRY(set_eval(c, &c->nu, c->h_nu, c->h_inu, 3 * B));
  float *nu = c->h_nu, *nu_next = nu + B, *nu_init = nu + 2 * B;
  srl_coptidice_residual(c->h_e, b->reward, b->cost, b->done, nu, nu_next, B, lam, gamma);
  srl_coptidice_w(c->h_w, NULL, c->h_e, B, alpha, c->f);
  double df = 0, td = 0;
  for (int i = 0; i < B; i++) {
    df += srl_fdiv_f(c->f, c->h_w[i]);
    td += (double)c->h_e[i] * c->h_e[i];
  }

  // χ and τ: the cost upper bound
  srl_coptidice_chi_out co = {0, 0, 0};
  double ltau = 0;
  if (c->p.cost_ub_epsilon > 0) {
    SRL_TRY(set_eval(c, &c->chi, c->h_chi, c->h_ichi, 3 * B));
    float *g = c->h_g3;
    srl_coptidice_chi_loss(&co, g, g + B, g + 2 * B, c->h_chi, c->h_chi + B, c->h_chi + 2 * B,
                           c->h_w, b->cost, b->done, B, gamma, tau);
    if (!isfinite(co.loss) || !isfinite(co.d_kl))
      return srl_error(SRL_ENONFINITE,
                       "coptidice: chi loss %g, KL %g at update %lld; "
                       "parameters left unchanged",
                       co.loss, co.d_kl, (long long)c->steps);
    SRL_TRY(set_step(c, &c->chi, c->h_ichi));
    ltau = tau * (c->p.cost_ub_epsilon - co.d_kl);
    double gt = sigmoid(c->tau.p) * (c->p.cost_ub_epsilon - co.d_kl);
    srl__scalar_adam_step(&c->tau, gt, c->p.scalar_lr);
  } else {
    double wc = 0;
    for (int i = 0; i < B; i++) wc += (double)c->h_w[i] * b->cost[i];
    co.weighted_c = wc / B;
  }

  // ν: (1 − γ)·mean ν(s0) + mean(w·e − α·f(w))
  float *g = c->h_g3;
  double lnu =
      srl_coptidice_nu_loss(g, g + B, g + 2 * B, c->h_e, b->done, nu_init, B, alpha, gamma, c->f);
  if (!isfinite(lnu))
    return srl_error(SRL_ENONFINITE, "coptidice: nu loss is %g at update %lld; nu left unchanged",
                     lnu, (long long)c->steps);
  SRL_TRY(set_step(c, &c->nu, c->h_inu));

  // λ: softplus(p)·(qc_thres − Ĉ)
  double glam, llam = srl_coptidice_lambda_loss(&glam, c->lam.p, c->thr, co.weighted_c);
  srl__scalar_adam_step(&c->lam, glam, c->p.scalar_lr);

  // policy: w from the updated ν (λ as at the start), noisy observations and actions
  float ns = (float)c->p.noise;
  srl_rng_fill_normal(c->rng, c->h_xs, (size_t)B * O, 0.0f, 1.0f);
  srl_rng_fill_normal(c->rng, c->h_xa, (size_t)B * A, 0.0f, 1.0f);
  for (int i = 0; i < B; i++) {
    for (int j = 0; j < O; j++) {
      size_t k = (size_t)i * O + j;
      c->h_xs[k] = b->obs[k] + c->h_xs[k] * moment_std(c->moments, D, j) * ns;
    }
    for (int j = 0; j < A; j++) {
      size_t k = (size_t)i * A + j;
      c->h_xa[k] = b->act[k] + c->h_xa[k] * moment_std(c->moments, D, O + j) * ns;
    }
  }
  SRL_TRY(set_eval(c, &c->nu, c->h_nu, NULL, 2 * B));
  srl_coptidice_residual(c->h_e, b->reward, b->cost, b->done, nu, nu_next, B, lam, gamma);
  srl_coptidice_w(c->h_w, NULL, c->h_e, B, alpha, c->f);
  SRL_TRY(c->ops->upload(c->d_x, c->h_xs, (size_t)B * O * sizeof(float)));
  SRL_TRY(srl_mlp_forward(c->actor, c->d_x, B));
  SRL_TRY(c->ops->download(c->h_out, c->actor->out, (size_t)B * 2 * A * sizeof(float)));
  double la = srl_coptidice_policy_loss(c->h_gout, c->h_out, c->h_xa, c->h_w, B, A);
  if (!isfinite(la))
    return srl_error(SRL_ENONFINITE,
                     "coptidice: actor loss is %g at update %lld; actor left "
                     "unchanged",
                     la, (long long)c->steps);
  SRL_TRY(c->ops->upload(c->d_g, c->h_gout, (size_t)B * 2 * A * sizeof(float)));
  srl_mlp_zero_grad(c->actor);
  SRL_TRY(srl_mlp_backward(c->actor, NULL, c->d_g));
  SRL_TRY(srl_optim_step(c->opt_actor, c->actor->params, c->actor->grads, (float)c->p.actor_lr));
  c->steps++;

  srl__stat(st, "loss_nu", lnu);
  srl__stat(st, "loss_chi", co.loss);
  srl__stat(st, "loss_lambda", llam);
  srl__stat(st, "loss_tau", ltau);
  srl__stat(st, "loss_actor", la);
  srl__stat(st, "lambda", lam);
  srl__stat(st, "tau", tau);
  srl__stat(st, "d_kl", co.d_kl);
  srl__stat(st, "df", df / B);
  srl__stat(st, "td_error", td / B);
  srl__stat(st, "weighted_c", co.weighted_c);
  return SRL_OK;
}


//---- acting --------------------------------------------------------------------------------------

int srl_coptidice_act(srl_coptidice *c, float *act, const float *obs, int n) {
  if (n < 1 || n > c->max_act)
    return srl_error(SRL_ERANGE, "coptidice act: %d observations outside [1, %d]", n, c->max_act);
  int A = c->A;
  SRL_TRY(c->ops->upload(c->d_x, obs, (size_t)n * c->O * sizeof(float)));
  SRL_TRY(srl_mlp_forward(c->actor, c->d_x, n));
  SRL_TRY(c->ops->download(c->h_out, c->actor->out, (size_t)n * 2 * A * sizeof(float)));
  for (int i = 0; i < n; i++)
    for (int j = 0; j < A; j++) act[(size_t)i * A + j] = tanhf(c->h_out[(size_t)i * 2 * A + j]);
  return SRL_OK;
}


//---- the table entry -----------------------------------------------------------------------------

static int t_create(void **out, const srl_offline_setup *setup, const void *params) {
  srl_coptidice *c = NULL;
  int rc = srl_coptidice_create(&c, setup, params);
  *out = c;
  return rc;
}
static void t_destroy(void *a) {
  srl_coptidice_destroy(a);
}
static int t_update(void *a, const srl_offline_batch *b, srl_offline_stats *st) {
  return srl_coptidice_update(a, b, st);
}
static int t_act(void *a, float *act, const float *obs, int n, srl_rng *rng) {
  (void)rng;
  return srl_coptidice_act(a, act, obs, n);
}
static int t_save(void *a, srl_st_writer *w) {
  srl_coptidice *c = a;
  const srl__scalar_adam *s[2] = {&c->lam, &c->tau};
  for (int k = 0; k < 2; k++) {
    c->scalars[3 * k] = s[k]->p, c->scalars[3 * k + 1] = s[k]->m, c->scalars[3 * k + 2] = s[k]->v;
    c->scalar_t[k] = s[k]->t;
  }
  return srl__ckpt_save(&c->ck, w);
}
static int t_load(void *a, const srl_st_file *f) {
  srl_coptidice *c = a;
  SRL_TRY(srl__ckpt_load(&c->ck, f));
  srl__scalar_adam *s[2] = {&c->lam, &c->tau};
  for (int k = 0; k < 2; k++) {
    s[k]->p = c->scalars[3 * k], s[k]->m = c->scalars[3 * k + 1], s[k]->v = c->scalars[3 * k + 2];
    s[k]->t = c->scalar_t[k];
  }
  return SRL_OK;
}

const srl_offline_algo srl_offline_coptidice = {
    .name = "COptiDICE",
    .section = "coptidice",
    .params_size = sizeof(srl_coptidice_params),
    .fields = srl_coptidice_fields,
    .n_fields = N_FIELDS,
    .safe_episodes_only = 0,
    .create = t_create,
    .destroy = t_destroy,
    .update = t_update,
    .act = t_act,
    .save = t_save,
    .load = t_load,
};
